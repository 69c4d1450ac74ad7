"""A query over a snapshot: records in time order, with the cheap work done first.

    with open_snapshot(dirs, files) as snap:
        scan = Scan(snap, Query(since=..., until=..., needles=("synthesis_complete",)))
        for rec in scan.records():
            ...
        scan.stats, snap.problems

Order of work, cheapest first: index blocks outside the window or without the wanted ids
are skipped undecompressed (reader); the rest is read ahead and decompressed on several
threads (``parallel``); a chunk none of whose lines can start inside the window (no line
begins with the prefix the window's two ends share) is dropped unsplit; within a chunk,
literal ``needles`` pick candidate records in the raw bytes (as grep would; the rarest
required literal is searched) and the window is checked on the raw timestamp text; only
the survivors are decoded and parsed. Several directories (hosts) are merged by time.

``needles`` is a pre-filter, not a predicate: a record whose head line contains none of
them is never seen; the collector still checks the parsed fields (``trace``, for one,
keeps only records holding an id as a whole token: ``has_token``). An empty needle is
refused (ValueError): it is found everywhere, and the search would never advance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ...logformat.record import ReadStats, Record
from ...plain import Frozen, Plain
from ._inflate import SMALL_READ
from .match import (
    DROPPED,
    ID_CHARS,
    Select,
    check_needles,
    chunk_in_window,
    common_prefix,
    count_heads,
    grep_bytes,
    grep_lines,
    has_json,
    has_token,
    may_hold_window,
    window_lines,
)
from .reader import ReadCounters, file_units
from .sources import LogFile, Problem, Snapshot

__all__ = ["FANOUT_BYTES", "ID_CHARS", "Hit", "Query", "Scan", "ScanStats", "check_needles",
           "chunk_in_window", "common_prefix", "count_heads", "grep_bytes", "grep_lines",
           "has_json", "has_token", "may_hold_window", "progress_factory", "window_lines"]

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

    from .parallel import Unit

Hit = tuple[Record, LogFile]

# a selective scan of more compressed bytes than this filters on several processes
FANOUT_BYTES = 32 << 20
# below this many compressed bytes a scan's lines are read in the calling thread (unless
# TTSOPS_LOGS_WORKERS says how many threads): the read-ahead threads save at most the
# inflating (isal: ~30 ms for the tutorial's 14 MB day) but the caller's literal search
# holds the GIL through each chunk, so every hand-off waits for it (CPU 0.10 against
# 0.12 s, wall 0.16 against 0.20 s for that day's trace, medians of 11 at load ~9)
THREAD_BYTES = FANOUT_BYTES
# a selective scan of at least this many (and less than FANOUT_BYTES) compressed bytes is
# read and filtered by one forked child while the caller parses (``forkread``) when a CPU
# is free: the day's 3.6 MB of unindexed gzip, as the shell pipeline's stages run on two
# cores at once
FORK_BYTES = 1 << 20

# set by the command line (``progress.factory``): makes a bar for a scan's planned bytes
progress_factory: Callable[[int, str], Callable[[int], None] | None] | None = None


class Query(Frozen):
    """What a scan looks for (immutable, hashable)."""

    FIELDS = ("since", "until", "needles", "ids", "use_index", "require", "tracebacks",
              "count_event")
    __slots__ = FIELDS
    since: str | None
    until: str | None
    needles: tuple[str, ...] | None
    ids: tuple[str, ...] | None
    use_index: bool
    require: tuple[str, ...]
    tracebacks: bool
    count_event: str | None

    def __init__(self, since: str | None = None, until: str | None = None,
                 needles: tuple[str, ...] | None = None, ids: tuple[str, ...] | None = None,
                 use_index: bool = True, require: tuple[str, ...] = (),
                 tracebacks: bool = True, count_event: str | None = None) -> None:
        self._set("since", since)  # inclusive, log timestamp text
        self._set("until", until)  # exclusive
        self._set("needles", needles)  # literal pre-filter on head lines (any of)
        self._set("ids", ids)  # index blocks whose bloom has none are skipped
        self._set("use_index", use_index)
        # with needles: text head lines must also contain all
        self._set("require", require)
        # False: with needles, records come without continuation lines
        self._set("tracebacks", tracebacks)
        # with require: also count the text records of this event in the window that the
        # required literals dropped (``ScanStats.dropped``), so that a total stays a total
        self._set("count_event", count_event)


class ScanStats(Plain):
    FIELDS = ("read", "counters", "skipped_by_file", "dropped")
    __slots__ = FIELDS

    def __init__(self, read: ReadStats | None = None, counters: ReadCounters | None = None,
                 skipped_by_file: dict[str, int] | None = None, dropped: int = 0) -> None:
        self.read = ReadStats() if read is None else read
        self.counters = ReadCounters() if counters is None else counters
        self.skipped_by_file: dict[str, int] = {} if skipped_by_file is None \
            else skipped_by_file
        self.dropped = dropped  # records of ``Query.count_event`` that ``require`` dropped


class Scan:
    """One pass over a snapshot for a query."""

    def __init__(self, snap: Snapshot, query: Query | None = None, *,
                 workers: int | None = None,
                 progress: Callable[[int], None] | None = None,
                 exclude: dict[str, frozenset[int]] | None = None,
                 child_read: bool = True) -> None:
        self.snap = snap
        self.query = query or Query()
        check_needles(self.query.needles or ())  # here, not in a worker process
        check_needles(self.query.require, "required string")
        self.stats = ScanStats()
        self.workers = workers
        self.progress = progress  # called with compressed bytes consumed
        self.exclude = exclude or {}  # file path -> index blocks answered elsewhere
        # False: the caller has little to parse (an id's few records), so a child reading
        # ahead (``forkread``) would only add its cost
        self.child_read = child_read

    @property
    def problems(self) -> list[Problem]:
        return self.snap.problems

    def units(self, files: list[LogFile]) -> list[Unit[bytes]]:
        q = self.query
        units = [u for f in files for u in file_units(
            f, since=q.since, until=q.until, ids=q.ids, use_index=q.use_index,
            exclude=self.exclude.get(f.where, frozenset()))]
        if sum(int(u.state["bytes"]) for u in units) <= SMALL_READ:
            for u in units:  # a few index blocks in all: inflated by the standard zlib
                u.state["small"] = True
        return units

    def planned_bytes(self) -> int:
        """Compressed bytes this scan will read (for progress bars)."""
        return sum(int(u.state["bytes"]) for u in self.units(self.snap.files))

    def _finish_unit(self, u: Unit[bytes], rs: ReadStats) -> None:
        self.snap.problems.extend(u.problems)
        self.add_read(u.state["file"], rs, u.state["counters"])

    def add_read(self, f: LogFile, rs: ReadStats, counters: ReadCounters) -> None:
        """Count one file's (or unit's) reading: lines, records, skipped lines and their
        examples, and its counters (also for a file read from its sidecar)."""
        st = self.stats.read
        st.lines += rs.lines
        st.records += rs.records
        st.continuation += rs.continuation
        st.skipped += rs.skipped
        for ex in rs.skipped_examples:
            if len(st.skipped_examples) < 5:
                st.skipped_examples.append(f"{f.name}: {ex}")
        if rs.skipped:
            key = f.where
            self.stats.skipped_by_file[key] = self.stats.skipped_by_file.get(key, 0) \
                + rs.skipped
        self.stats.counters.add(counters)

    @staticmethod
    def of_file(f: LogFile) -> Scan:
        """A scan of ``f`` alone without a query: the file read whole (a sidecar is
        written from it)."""
        return Scan(Snapshot([f], [f.label]), Query())

    def new_bar(self, total: int) -> Callable[[int], None] | None:
        """A progress bar over ``total`` compressed bytes from ``progress_factory`` (None
        without one): for readers beside ``batches`` (``sidecar``)."""
        if progress_factory is None:
            return None
        return progress_factory(total, "reading logs")

    def batches(self, stream: int) -> Iterator[tuple[LogFile, list[str], ReadStats]]:
        """(file, candidate lines, the unit's read stats) of one stream, in order: the
        lines of whole records that passed the needles and the window's text check (JSON
        lines are checked after parsing). Parse them with ``iter_records(lines, rs)``."""
        q = self.query
        since, until = q.since, q.until
        prefix = common_prefix(since, until)
        units = self.units(self.snap.stream_files(stream))
        bar = None
        if self.progress is None and progress_factory is not None:
            bar = progress_factory(sum(int(u.state["bytes"]) for u in units),
                                   "reading logs")
        try:
            yield from self._batches(units, bar or self.progress, prefix)
        finally:
            if bar is not None and hasattr(bar, "close"):
                bar.close()

    def _batches(self, units: list[Unit[bytes]], progress: Callable[[int], None] | None,
                 prefix: bytes) -> Iterator[tuple[LogFile, list[str], ReadStats]]:
        from .parallel import ReadAhead, default_workers, workers_set

        select = Select(self.query, prefix)
        total = sum(int(u.state["bytes"]) for u in units)
        if self._fork_read(total):
            from . import forkread

            yield from self._selected(forkread.items(units, select.raw, select.finish),
                                      progress)
            return
        if not total or (self.workers is None and total < THREAD_BYTES and not workers_set()):
            # nothing to decompress (all answered from the index), or little: no threads
            workers = 1
        else:
            workers = default_workers() if self.workers is None else max(1, self.workers)
        if self._fan_out(units, workers):
            from . import fanout

            selected: Iterator[tuple[Unit[bytes], Any]] = fanout.items(units, select, workers)
        else:
            selected = ((u, c if c is None else select(c) or [])
                        for u, c in ReadAhead(units, workers).items())
        yield from self._selected(selected, progress)

    def _selected(self, selected: Iterator[tuple[Unit[bytes], Any]],
                  progress: Callable[[int], None] | None,
                  ) -> Iterator[tuple[LogFile, list[str], ReadStats]]:
        """``_batches``' output from (unit, selected lines, or None when the unit is
        done): dropped counts taken, progress told, each unit's reading counted."""
        rs = ReadStats()
        done = 0
        for u, lines in selected:
            if lines and lines[-1].startswith(DROPPED):
                self.stats.dropped += int(lines.pop()[len(DROPPED):])
            if progress is not None:
                c = u.state["counters"].bytes_compressed
                if c > done:
                    progress(c - done)
                    done = c
            if lines is None:
                self._finish_unit(u, rs)
                rs = ReadStats()
                done = 0
                continue
            if lines:
                yield u.state["file"], lines, rs

    def _fork_read(self, total: int) -> bool:
        """Read and filter in one forked child (``forkread``): a selective query (literal
        needles, or a window with both ends) over ``FORK_BYTES`` to ``FANOUT_BYTES`` of
        compressed input, when a CPU is free (``forkread.spare_cpu``), unless the
        caller or ``TTSOPS_LOGS_WORKERS`` says how many threads read."""
        q = self.query
        if not (self.child_read and FORK_BYTES <= total < FANOUT_BYTES) or \
                self.workers is not None:
            return False
        if not (q.needles or (q.since is not None and q.until is not None)):
            return False
        from .parallel import workers_set

        if workers_set():
            return False
        from . import forkread

        return forkread.spare_cpu() and forkread.available()

    def _fan_out(self, units: list[Unit[bytes]], workers: int) -> bool:
        """Filter on several processes: a selective query (literal needles, or a window
        with both ends) over more than ``FANOUT_BYTES`` of compressed input."""
        q = self.query
        if workers <= 1 or len(units) <= 1:
            return False
        if not (q.needles or (q.since is not None and q.until is not None)):
            return False
        if sum(int(u.state["bytes"]) for u in units) < FANOUT_BYTES:
            return False
        from . import fanout

        return fanout.available()

    def chunks(self, stream: int) -> Iterator[tuple[LogFile, bytes]]:
        """(file, raw chunk of whole records) of one stream, in order, unfiltered (for
        readers that search the bytes themselves, e.g. ``vector``)."""
        from .parallel import ReadAhead

        units = self.units(self.snap.stream_files(stream))
        bar = None
        progress = self.progress
        if progress is None and progress_factory is not None:
            bar = progress_factory(sum(int(u.state["bytes"]) for u in units),
                                   "reading logs")
            progress = bar
        done = 0
        try:
            for u, chunk in ReadAhead(units, self.workers).items():
                if progress is not None:
                    c = u.state["counters"].bytes_compressed
                    if c > done:
                        progress(c - done)
                        done = c
                if chunk is None:
                    self._finish_unit(u, ReadStats())
                    done = 0
                    continue
                yield u.state["file"], chunk
        finally:
            if bar is not None and hasattr(bar, "close"):
                bar.close()

    def _may_use_sidecars(self) -> bool:
        """False when ``sidecar.applies`` is sure to say no (a query for ids, a pre-filter
        the sidecars do not serve, blocks answered elsewhere): the hot queries then never
        import the sidecar module (pyarrow/polars, tempfile: tens of ms of start-up)."""
        q = self.query
        if q.ids is not None or self.exclude:
            return False
        return q.needles is None or bool(getattr(self, "sidecar_needles", False))

    def _stream_hits(self, stream: int) -> Iterator[Hit]:
        if self._may_use_sidecars():
            from . import sidecar  # parsed rotated files kept once (sidecar.py)

            if sidecar.applies(self):
                yield from sidecar.stream_hits(self, stream)
                return
        from ...logformat.fastparse import iter_records
        from ...logformat.timestamps import norm_ts

        since, until = self.query.since, self.query.until
        for f, lines, rs in self.batches(stream):
            for rec in iter_records(lines, rs):
                if rec.ts[10:11] != " ":
                    rec.ts = norm_ts(rec.ts)
                if (since is not None and rec.ts < since) or \
                        (until is not None and rec.ts >= until):
                    continue
                yield rec, f

    def streams(self) -> list[int]:
        return sorted({f.stream for f in self.snap.files})

    def hits(self) -> Iterator[Hit]:
        """(record, file) in time order (merged across streams)."""
        streams = self.streams()
        if len(streams) == 1:
            yield from self._stream_hits(streams[0])
            return
        import heapq

        yield from heapq.merge(*(self._stream_hits(s) for s in streams),
                               key=lambda h: h[0].ts)

    def records(self) -> Iterator[Record]:
        for rec, _f in self.hits():
            yield rec
