"""A query over a snapshot: records in time order, with the cheap work done first.

    with open_snapshot(dirs, files) as snap:
        scan = Scan(snap, Query(since=..., until=..., needles=("synthesis_complete",)))
        for rec in scan.records():
            ...
        scan.stats, snap.problems

Order of work, cheapest first: index blocks outside the window or without the wanted ids
are skipped undecompressed (reader); within a chunk, literal ``needles`` pick candidate
lines with ``str.find`` (as grep would) and the window is checked on the raw timestamp
text; only the survivors are parsed. Several directories (hosts) are merged by time.

``needles`` is a pre-filter, not a predicate: a record whose head line contains none of
them is never seen; the collector still checks the parsed fields.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..logline import ReadStats, Record
from .fastparse import iter_records
from .reader import ReadCounters, iter_chunks
from .sources import LogFile, Problem, Snapshot

Hit = tuple[Record, LogFile]


@dataclass(frozen=True)
class Query:
    since: str | None = None  # inclusive, log timestamp text
    until: str | None = None  # exclusive
    needles: tuple[str, ...] | None = None  # literal pre-filter on head lines (any of)
    ids: tuple[str, ...] | None = None  # index blocks whose bloom has none are skipped
    use_index: bool = True
    require: tuple[str, ...] = ()  # with needles: text head lines must also contain all


@dataclass
class ScanStats:
    read: ReadStats = field(default_factory=ReadStats)
    counters: ReadCounters = field(default_factory=ReadCounters)
    skipped_by_file: dict[str, int] = field(default_factory=dict)


def _is_head_char(c: str) -> bool:
    return c.isdigit() or c == "{"


def grep_lines(text: str, needles: Iterable[str], require: tuple[str, ...] = ()) -> list[str]:
    """Lines of ``text`` whose record contains a needle, each record whole: its head line
    and the continuation lines after it (a match inside a traceback selects the record).
    Text head lines must also contain every string of ``require``; JSON lines are all
    candidates (their spelling differs)."""
    n = len(text)
    if text.startswith("{") or "\n{" in text:
        # JSON lines may spell levels and fields differently: every JSON line is a
        # candidate; text records as below, with their continuation lines
        out_j: list[str] = []
        keep = False
        for ln in text.split("\n"):
            c = ln[:1]
            if c == "{":
                keep = True
            elif c.isdigit():
                keep = any(x in ln for x in needles)
            if keep and ln:
                out_j.append(ln)
        return out_j
    starts: set[int] = set()
    for needle in needles:
        i = text.find(needle)
        while i >= 0:
            s = text.rfind("\n", 0, i) + 1
            while s > 0 and not _is_head_char(text[s:s + 1]):
                s = text.rfind("\n", 0, s - 1) + 1
            starts.add(s)
            e = text.find("\n", i)
            if e < 0:
                break
            i = text.find(needle, e)
    out: list[str] = []
    for s in sorted(starts):
        e = text.find("\n", s)
        e = n if e < 0 else e
        if require:
            head = text[s:e]
            if not all(r in head for r in require):
                continue
        out.append(text[s:e])
        while e + 1 < n and not _is_head_char(text[e + 1]):
            s2 = e + 1
            e = text.find("\n", s2)
            e = n if e < 0 else e
            out.append(text[s2:e])
    return out


def window_lines(lines: list[str], since: str | None, until: str | None) -> list[str]:
    """Text records whose timestamp is in [since, until), with their continuation lines;
    JSON lines are kept (their time is checked after parsing)."""
    if since is None and until is None:
        return lines
    out: list[str] = []
    keep = False
    lo = since or ""
    hi = until or "\uffff"
    for line in lines:
        c = line[:1]
        if c.isdigit():
            ts = line[:23]
            keep = lo <= ts < hi
        elif c == "{":
            keep = True
        if keep:
            out.append(line)
    return out


def _norm_ts(ts: str) -> str:
    """A foreign JSON timestamp (ISO 'T', '.', 'Z') in the log's own text form."""
    if len(ts) >= 19 and ts[10] == "T":
        ts = ts[:10] + " " + ts[11:]
    if len(ts) > 19 and ts[19] == ".":
        ts = ts[:19] + "," + ts[20:]
    if ts.endswith("Z"):
        ts = ts[:-1]
    return ts


class Scan:
    """One pass over a snapshot for a query."""

    def __init__(self, snap: Snapshot, query: Query | None = None) -> None:
        self.snap = snap
        self.query = query or Query()
        self.stats = ScanStats()

    @property
    def problems(self) -> list[Problem]:
        return self.snap.problems

    def _file_hits(self, f: LogFile) -> Iterator[Hit]:
        q = self.query
        rs = ReadStats()
        counters = ReadCounters()
        since, until = q.since, q.until
        try:
            for text in iter_chunks(f, self.snap.problems, counters, since=since, until=until,
                                    ids=q.ids, use_index=q.use_index):
                if q.needles:
                    lines = grep_lines(text, q.needles, q.require)
                else:
                    lines = text.split("\n")
                    if lines and lines[-1] == "":
                        lines.pop()
                lines = window_lines(lines, since, until)
                for rec in iter_records(lines, rs):
                    if rec.ts[10:11] != " ":
                        rec.ts = _norm_ts(rec.ts)
                    if (since is not None and rec.ts < since) or \
                            (until is not None and rec.ts >= until):
                        continue
                    yield rec, f
        finally:
            st = self.stats.read
            st.lines += rs.lines
            st.records += rs.records
            st.continuation += rs.continuation
            st.skipped += rs.skipped
            for ex in rs.skipped_examples:
                if len(st.skipped_examples) < 5:
                    st.skipped_examples.append(f"{f.name}: {ex}")
            if rs.skipped:
                self.stats.skipped_by_file[str(f.path)] = rs.skipped
            self.stats.counters.add(counters)

    def _stream_hits(self, stream: int) -> Iterator[Hit]:
        for f in self.snap.stream_files(stream):
            yield from self._file_hits(f)

    def hits(self) -> Iterator[Hit]:
        """(record, file) in time order (merged across streams)."""
        streams = sorted({f.stream for f in self.snap.files})
        if len(streams) == 1:
            yield from self._stream_hits(streams[0])
            return
        yield from heapq.merge(*(self._stream_hits(s) for s in streams),
                               key=lambda h: h[0].ts)

    def records(self) -> Iterator[Record]:
        for rec, _f in self.hits():
            yield rec
