"""``logs window``: what happened between two times (the seed's step one).

Counts by level, by error and warning code and by event; syntheses started, completed
and failed, the failure rate; the ids of the syntheses started in the window
(``--ids-out``, sorted and unique like the seed's ``sort -u``).

With block indexes (version 2) the blocks wholly inside the window are answered from
their counts (``plan``); only the blocks at the window's ends, and files without an index,
are read. Reading counts most records from their head alone (time, level, event:
``fastparse.head_parse``); only records whose fields matter (errors, warnings,
``synthesis_complete``, and ``synthesis_start`` when ids are wanted) are parsed in full.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from ...logformat.record import ERROR_LEVELS, ReadStats, Record
from ..reading.plan import plan_counts
from ..reading.scan import Query, Scan
from .answer import Report, Table, safe, write_lines

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from ...logindex import BlockStats
    from ..reading.sources import Snapshot

_FIELD_LEVELS = frozenset((*ERROR_LEVELS, "WARNING"))
_OTHER_LINE = re.compile(r"\n[^0-9\t]")
_HEADS: list[re.Pattern[str]] = []


def _heads() -> re.Pattern[str]:
    """In "\\n"-joined text, every line ``fastparse.head_parse`` accepts, and the metric
    lines of one bare ``key=value`` (``total_duration_ms=695``: one per request in the
    tutorial's logs), and only those; groups: the line, its timestamp, level, event (""
    for a metric line: its event is ``metric``, as ``parse`` reads it). Compiled when
    lines are first read: an answer from the index needs none."""
    if not _HEADS:
        from ...logformat.heads import BARE, LEVEL_ALT, NAME
        from ...logformat.timestamps import TS_ASCII

        _HEADS.append(re.compile(
            rf"^(({TS_ASCII}) - [^ \n]+ - ({LEVEL_ALT}) - "
            rf"(?:({NAME})(?::(?: [^\n]*)?)?|{NAME}={BARE}))$", re.M))
    return _HEADS[0]


class WindowCounts:
    """Collector: feed records, read the counts."""

    def __init__(self, keep_ids: bool = True) -> None:
        self.levels: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.error_codes: Counter[str] = Counter()
        self.warning_codes: Counter[str] = Counter()
        self.failure_codes: Counter[str] = Counter()
        self.complete: Counter[str] = Counter()
        self.started = 0
        self.ids: set[str] | None = set() if keep_ids else None
        self.first: str | None = None
        self.last: str | None = None
        self.records = 0

    def feed(self, rec: Record) -> None:
        self.records += 1
        ts = rec.ts
        if self.first is None or ts < self.first:
            self.first = ts
        if self.last is None or ts > self.last:
            self.last = ts
        lvl = rec.level
        self.levels[lvl] += 1
        ev = rec.event or "(no event)"
        self.events[ev] += 1
        f = rec.fields
        if lvl in ERROR_LEVELS:
            self.error_codes[f.get("error_code") or "(no code)"] += 1
        elif lvl == "WARNING":
            self.warning_codes[f.get("warning_code") or f.get("error_code") or "(no code)"] += 1
        if ev == "synthesis_start":
            self.started += 1
            sid = f.get("id")
            if sid and self.ids is not None:
                self.ids.add(sid)
        elif ev == "synthesis_complete":
            st = f.get("status", "(none)")
            self.complete[st] += 1
            if st == "failed":
                self.failure_codes[f.get("error_code") or "(no code)"] += 1

    def _span(self, first: str, last: str) -> None:
        if self.first is None or first < self.first:
            self.first = first
        if self.last is None or last > self.last:
            self.last = last

    def add_block(self, b: BlockStats) -> None:
        """Add an index block that lies wholly inside the window (``plan.plan_counts``)."""
        assert b.counted and b.first_ts is not None and b.last_ts is not None
        self.records += b.records
        self._span(b.first_ts, b.last_ts)
        self.levels.update(b.levels)
        for ev, n in b.events.items():
            self.events[ev or "(no event)"] += n
        for key, n in (b.lcodes or {}).items():
            lvl, _, code = key.partition(":")
            (self.warning_codes if lvl == "WARNING" else self.error_codes)[code] += n
        self.complete.update(b.status or {})
        self.failure_codes.update(b.fcodes or {})
        self.started += b.events.get("synthesis_start", 0)

    def feed_lines(self, lines: list[str], rs: ReadStats, since: str | None,
                   until: str | None) -> None:
        """Count the records of ``lines`` (as ``Scan.batches`` hands them out): grouped
        and counted exactly as ``fastparse.iter_records`` + ``feed`` would, but most
        records from their head alone."""
        full_events = ("synthesis_complete", "synthesis_start") if self.ids is not None \
            else ("synthesis_complete",)
        if lines and self._feed_block(lines, rs, full_events, since, until):
            return
        self._feed_slow(lines, rs, since, until, full_events, False)

    def _feed_slow(self, lines: list[str], rs: ReadStats, since: str | None,
                   until: str | None, full_events: tuple[str, ...], cur: bool) -> bool:
        """Count ``lines`` one by one (``cur``: a record is open before the first);
        returns whether a record is open after the last."""
        from ...logformat.fastparse import head_parse, parse_line
        from ...logformat.parse import FOREIGN_TB

        for raw in lines:
            rs.lines += 1
            line = raw.rstrip("\r\n")
            if line.startswith("\t"):
                if cur:
                    rs.continuation += 1
                else:
                    rs.skip(line)
                continue
            c = line[:1]
            if not c.isdigit() and c != "{":
                rec = None  # neither parser takes it (a traceback's line): as they say
            else:
                h = head_parse(line)
                if h is not None:
                    rs.records += 1
                    cur = True
                    self._feed_head(line, *h, full_events)
                    continue
                rec = parse_line(line)
            if rec is None:
                if cur and line and FOREIGN_TB.match(line):
                    rs.continuation += 1
                elif line:
                    rs.skip(line)
                continue
            rs.records += 1
            cur = True
            if rec.ts[10:11] != " ":
                from ...logformat.timestamps import norm_ts

                rec.ts = norm_ts(rec.ts)
            if (since is not None and rec.ts < since) or (until is not None and rec.ts >= until):
                continue
            self.feed(rec)
        return cur

    def _feed_block(self, lines: list[str], rs: ReadStats, full_events: tuple[str, ...],
                    since: str | None, until: str | None) -> bool:
        """The common case at C speed: the record heads ``head_parse`` accepts are found
        by one regex over the joined text and counted from their head; only the lines
        between them (tracebacks, other writers' lines) go one by one. False (nothing
        counted) for text with a carriage return."""
        text = "\n".join(lines)
        if "\r" in text:
            return False
        rx = _heads()
        # a line led by neither a digit nor a tab (a foreign traceback, a JSON line) means
        # a mixed block: straight to the one-by-one walk below, not two regex passes
        mixed = _OTHER_LINE.search(text) is not None or not text[:1].isdigit()
        heads = [] if mixed else rx.findall(text)
        ntab = text.count("\n\t")
        if not mixed and len(heads) + ntab == len(lines):
            rs.lines += len(lines)
            rs.records += len(heads)
            rs.continuation += ntab
            self._feed_heads(heads, full_events)
            return True
        # heads and other lines mixed: the heads in bulk, the lines between them slowly
        # (in order: a skipped line's example and the open record depend on it)
        cur = False
        pos = 0  # where the next line starts
        found: list[tuple[str, str, str, str]] = []
        for m in rx.finditer(text):
            s = m.start()
            if s != pos:
                cur = self._feed_slow(text[pos:s - 1].split("\n"), rs, since, until,
                                      full_events, cur)
            cur = True
            found.append(m.groups())  # type: ignore[arg-type]  # four groups, none optional
            pos = m.end() + 1
        if pos <= len(text):
            self._feed_slow(text[pos:].split("\n"), rs, since, until, full_events, cur)
        rs.lines += len(found)
        rs.records += len(found)
        # the head regex has four groups, none optional: each a str
        self._feed_heads(found, full_events)
        return True

    def _feed_heads(self, heads: list[tuple[str, str, str, str]],
                    full_events: tuple[str, ...]) -> None:
        """``_feed_head`` for many heads (line, ts, level, event): those whose fields
        count parsed one by one, the others counted in bulk (the counts do not depend on
        the order)."""
        from ...logformat.fastparse import parse_line

        simple = []
        for h in heads:
            if h[2] in _FIELD_LEVELS or h[3] in full_events:
                rec = parse_line(h[0])
                assert rec is not None
                self.feed(rec)
            else:
                simple.append(h)
        if not simple:
            return
        self.records += len(simple)
        ts = [h[1] for h in simple]
        lo, hi = min(ts), max(ts)
        if self.first is None or lo < self.first:
            self.first = lo
        if self.last is None or hi > self.last:
            self.last = hi
        from ...logformat.dialects import METRIC

        self.levels.update([h[2] for h in simple])
        events = [h[3] or METRIC for h in simple]
        self.events.update(events)
        self.started += events.count("synthesis_start")

    def _feed_head(self, line: str, ts: str, lvl: str, ev: str,
                   full_events: tuple[str, ...]) -> None:
        """Count one record from its head (time, level, event) alone, or parse it in full
        when its fields count (errors, warnings, ``full_events``)."""
        if lvl in _FIELD_LEVELS or ev in full_events:
            from ...logformat.fastparse import parse_line

            rec = parse_line(line)
            assert rec is not None
            self.feed(rec)
            return
        self.records += 1
        if self.first is None or ts < self.first:
            self.first = ts
        if self.last is None or ts > self.last:
            self.last = ts
        self.levels[lvl] += 1
        self.events[ev] += 1
        if ev == "synthesis_start":
            self.started += 1

    @property
    def failure_rate(self) -> float | None:
        n = sum(self.complete.values())
        return self.complete.get("failed", 0) / n if n else None


def count(snap: Snapshot, since: str | None, until: str | None, *, use_index: bool = True,
          keep_ids: bool = False, progress: Callable[[int], None] | None = None,
          ) -> tuple[WindowCounts, Scan]:
    """The window's counts: index blocks wholly inside it from their counts (unless ids
    are wanted: the index does not hold them), everything else read."""
    plan = None
    unparsable: list[tuple[str, BlockStats]] = []
    if use_index and not keep_ids and since is None and until is None:
        # no ends: a block's unparsable lines count wherever they are, so every block of
        # an indexed snapshot answers from its index (their examples in reading order)
        plan = plan_counts(snap, since, until, unparsable=True)
        if plan.read_bytes == 0 and all(
                f.gz and f.index is not None and len(plan.exclude.get(f.where, ()))
                == f.index.nblocks for f in snap.files):
            unparsable = [(f.name, b) for f in snap.files if f.index is not None
                          and f.index.total.skipped for b in f.index.blocks if b.skipped]
        else:
            plan = None
    if plan is None and use_index and not keep_ids:
        plan = plan_counts(snap, since, until)
    scan = Scan(snap, Query(since, until, use_index=use_index), progress=progress,
                exclude=plan.exclude if plan else None)
    wc = WindowCounts(keep_ids=keep_ids)  # memory: ids only when asked for
    for b in plan.counted if plan else ():
        wc.add_block(b)
    read = scan.stats.read
    for name, b in unparsable:
        read.skipped += b.skipped
        for ex in b.examples:
            if len(read.skipped_examples) < 5:
                read.skipped_examples.append(f"{name}: {ex}")
    for stream in scan.streams():
        for _f, lines, rs in scan.batches(stream):
            wc.feed_lines(lines, rs, since, until)
    return wc, scan


def run(snap: Snapshot, since: str | None, until: str | None, *, use_index: bool = True,
        ids_out: str | None = None, progress: Callable[[int], None] | None = None) -> Report:
    wc, scan = count(snap, since, until, use_index=use_index, keep_ids=ids_out is not None,
                     progress=progress)
    rep = Report("window", problems=snap.problems)
    rs = scan.stats.read
    rate = wc.failure_rate
    rep.summary = {
        "window": f"{since or 'start'} .. {until or 'end'} (until exclusive)",
        "records": wc.records,
        "first / last record": f"{wc.first or '-'} / {wc.last or '-'}",
        "ERROR + WARNING records": wc.levels["ERROR"] + wc.levels["WARNING"]
        + wc.levels["CRITICAL"],
        "syntheses started": wc.started,
        "completed": f"{sum(wc.complete.values())} ({wc.complete.get('success', 0)} success, "
                     f"{wc.complete.get('failed', 0)} failed)",
        "failure rate": "-" if rate is None else f"{rate * 100:.2f}%",
        "files read": scan.stats.counters.files,
        "unparsable lines": rs.skipped,
    }
    rep.data = {"window": {"since": since, "until": until}, "records": wc.records,
                "first": wc.first, "last": wc.last, "levels": dict(wc.levels),
                "events": dict(wc.events), "error_codes": dict(wc.error_codes),
                "warning_codes": dict(wc.warning_codes),
                "failure_codes": dict(wc.failure_codes), "started": wc.started,
                "complete": dict(wc.complete), "failure_rate": rate,
                "unparsable_lines": rs.skipped,
                "unparsable_examples": rs.skipped_examples,
                "read": scan.stats.counters.__dict__}
    counts = Table("counts", "counts in the window", ["kind", "key", "count"])
    for kind, c in (("level", wc.levels), ("error_code", wc.error_codes),
                    ("warning_code", wc.warning_codes), ("failed_synthesis", wc.failure_codes),
                    ("event", wc.events)):
        for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])):
            counts.rows.append([kind, k, n])
    rep.tables.append(counts)
    if rs.skipped_examples:
        rep.text.append(f"[yellow]{rs.skipped} unparsable lines[/], e.g.:")
        rep.text.extend(f"  {safe(e[:160])}" for e in rs.skipped_examples[:3])
    ids = sorted(wc.ids or ())
    if ids_out:  # "-": stdout (the CLI then prints the report on stderr)
        where = write_lines(ids_out, ids)
        rep.text.append(f"{len(ids)} synthesis ids written to {safe(where)}")
    if wc.records == 0:
        from ..reading.coverage import coverage

        lo, hi = coverage(snap)
        held = f"the logs cover {lo} .. {hi}" if lo and hi else "the logs hold no records"
        rep.empty = f"no records between {since or 'the start'} and {until or 'the end'}; {held}"
    return rep
