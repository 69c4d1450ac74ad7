"""``logs check``: does this deployment log what it must? Pass/fail per item, with
examples (file and line content), over a full scan.

Items: every synthesis_complete has id, duration_ms and status; every start has a
complete (and the other way round); failed syntheses carry an error_code and a
synthesis_failed with ``where`` and a traceback; successful syntheses that were not cache
hits have all five stage times; every error/warning code is in the registry; timestamps
never step back (beyond a tolerance) within one directory; no unparsable lines; every
rotated ``.gz`` carries its block index.

Several processes that each rotate one file (gunicorn workers, each with its own
``RotatingFileHandler``) lose records and leave traces that one writer never leaves:
byte-identical rotated files (``duplicate_files``), a file whose first record is earlier
than the last record of the file before it (``file_overlap``), a synthesis whose records
sit in two files with another file between them (``split_ids``), records of one file out
of time order (``interleaving``: processes appending to one file), size-rotated files of
very different sizes (``rotation_sizes``: a process rotates the file another one just
began). When any of them fails
the report says what was likely lost and the fix. ``--ids-out`` writes every synthesis
that started and never completed (the table shows three).

``monotonic`` counts steps back, not lines below the running maximum: a record is bad
when its time is more than the tolerance before the time of the record just before it in
the same directory. One misdated line is then one or two bad steps (the step to a
too-early line, or the step back from a too-late one), not every line after it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...errors import REGISTRY
from ...logline import STAGES, Record
from ..reading._naming import NUMBERED_RE
from ..reading.assemble import Assembler
from ..reading.scan import Query, Scan
from ..reading.sources import LogFile, Snapshot
from ..reading.timeargs import human_duration, shift, ts_to_epoch
from .answer import Report, Table, safe, write_lines

if TYPE_CHECKING:
    from .check_ids import FrameIds

SYNTHESIS_EVENTS = frozenset({"synthesis_start", "stage_time", "synthesis_complete",
                              "synthesis_failed", "audio_metrics"})
# the fields the frame path reads from their own columns (``sidecar.HOT``)
FRAME_HOT = ("elapsed_ms", "id", "stage", "error_code", "warning_code", "duration_ms",
             "status", "cache_hit", "where")
# the columns the frame path takes from the sidecars only for a few rows (the examples)
FRAME_LAZY = ("fields", "logger")
WRITER_ITEMS = ("duplicate_files", "file_overlap", "split_ids", "interleaving",
                "rotation_sizes")
ONE_WRITER_FIX = (
    "fix: one writer per file -- each worker puts its records on a queue "
    "(logging.handlers.QueueHandler) and one process writes them (a QueueListener owning "
    "the RotatingFileHandler, or a SocketHandler to one log server), or let ttsops' own "
    "sink write (one process), or write with WatchedFileHandler and rotate with logrotate")


def writers_verdict(chk: Checker) -> list[str]:
    """What the multi-writer items mean together: likely loss and the fix ([] if none
    failed)."""
    it = chk.items
    bad = [n for n in WRITER_ITEMS if it[n].bad]
    if not bad:
        return []
    what = []
    if it["duplicate_files"].bad:
        what.append(f"{it['duplicate_files'].bad} rotated file(s) byte-identical to another")
    if it["file_overlap"].bad:
        what.append(f"{it['file_overlap'].bad} file boundar"
                    f"{'y' if it['file_overlap'].bad == 1 else 'ies'} where time steps back "
                    f"(up to {human_duration(chk.overlap_s)})")
    if it["split_ids"].bad:
        what.append(f"{it['split_ids'].bad} synthesis id(s) with a file between their "
                    "records")
    if it["interleaving"].bad:
        what.append(f"{it['interleaving'].bad} file(s) whose records interleave out of "
                    "time order")
    if it["rotation_sizes"].bad:
        what.append(f"{it['rotation_sizes'].bad} rotated file(s) under half the size of the "
                    "largest (rotated early by another process)")
    lost_start = it["complete_has_start"].bad
    lost_end = len(chk.never_completed)
    done = it["complete_has_start"].checked
    out = ["several processes appear to write and rotate the same log file: "
           + "; ".join(what) + "."]
    loss = ("likely lost: what a process wrote into a file another process had already "
            "rotated away (renamed or compressed and removed), and every file a second "
            "rotation overwrote")
    if lost_start or lost_end:
        loss += (f"; here {lost_start} of {done} completed syntheses have no start and "
                 f"{lost_end} starts never completed (their records are gone)")
    out.append(loss + ".")
    out.append(ONE_WRITER_FIX + ".")
    return out


@dataclass
class Item:
    name: str
    what: str
    checked: int = 0
    bad: int = 0
    examples: list[str] = field(default_factory=list)
    na: bool = False

    def fail(self, example: str) -> None:
        self.bad += 1
        if len(self.examples) < 3:
            self.examples.append(example[:220])

    def fail_many(self, bad: int, examples: list[str]) -> None:
        """``fail`` ``bad`` times, the first examples given (at least as many as still
        wanted)."""
        self.bad += bad
        self.examples.extend(x[:220] for x in examples[:max(0, 3 - len(self.examples))])

    @property
    def status(self) -> str:
        if self.checked == 0 or self.na:
            return "n/a"
        return "pass" if self.bad == 0 else "FAIL"


class Checker:
    synthesis_events = SYNTHESIS_EVENTS  # the events whose id joins a synthesis
    ID_FILE_MAX = 200_000  # open ids kept for split_ids (the least recently seen dropped)
    MAX_PENDING = 500_000  # open syntheses kept (the oldest dropped)

    def __init__(self, tolerance_ms: float = 1000.0, since: str | None = None,
                 until: str | None = None) -> None:
        self.until = until
        self.tol = tolerance_ms / 1000.0
        self.since = since  # syntheses completing soon after it may have started before
        self.since_grace = shift(since, 900.0) if since else ""
        mk = Item
        self.items = OrderedDict((i.name, i) for i in [
            mk("complete_fields", "every synthesis_complete has id, duration_ms, status"),
            mk("start_has_complete", "every synthesis_start has its synthesis_complete"),
            mk("complete_has_start", "every synthesis_complete has its synthesis_start"),
            mk("failure_code", "every failed synthesis has an error_code"),
            mk("failure_traceback", "every failed synthesis has synthesis_failed with where "
                                    "and a traceback (or a client error)"),
            mk("stage_times", "successful uncached syntheses have all five stage_time"),
            mk("registry_codes", "error/warning codes are in the registry"),
            mk("monotonic", "timestamps never step back within a directory (bad = "
                            "records more than the tolerance earlier than the record just "
                            "before them: one misdated line counts once or twice)"),
            mk("parsable", "no unparsable lines"),
            mk("indexed", "rotated .gz files carry their block index"),
        ])
        self.asm = Assembler(max_pending=self.MAX_PENDING)
        self.last_ts: dict[int, tuple[float, str]] = {}
        # --- several writers on one file (multi-writer damage) ---
        self.items.update((i.name, i) for i in [
            mk("duplicate_files", "no two rotated files are byte-identical (two processes "
                                  "compressed the same file)"),
            mk("file_overlap", "each file begins after the file before it ends (bad = file "
                               "boundaries where time steps back)"),
            mk("split_ids", "a synthesis's records are in one file or in adjacent files "
                            "(bad = ids with a file between their records)"),
            mk("interleaving", "records of one file are in time order (bad = files where "
                               "1% or more of the records are earlier than the one before: "
                               "several processes appending)"),
            mk("rotation_sizes", "size-rotated files (app.log.N) are about the same size "
                                 "(bad = files under half the largest: a second process "
                                 "rotated them early)"),
        ])
        self.file_records: dict[str, int] = {}  # records per file (path)
        self.file_back: dict[str, int] = {}  # steps back within the file
        # stream -> (file, its number, its latest time, its last record's time)
        self.file_no: dict[int, tuple[LogFile, int, str, str]] = {}
        self.small_overlaps: list[tuple[float, str]] = []  # within the tolerance
        self.inner_back = 0  # steps back between records of one file, of any size
        self.inner_n = 0
        self.id_file: OrderedDict[str, int] = OrderedDict()  # open id -> its last file no
        self.overlap_s = 0.0  # the largest step back across a file boundary
        self.never_completed: list[str] = []
        from .dialect import DialectStats

        self.dialect = DialectStats()  # which dialect, what was converted (own table)
        self.ids: FrameIds | None = None  # the joins by id of the frame path
        self._sec = ""  # ``_epoch``'s cache: the last second's text and its epoch
        self._sec_epoch = 0

    def _epoch(self, ts: str) -> float:
        """``ts_to_epoch(ts)``, the same float, with the whole second's conversion kept
        (records come in order: most share the second before them)."""
        if len(ts) == 23 and ts[19] == "," and ts[20:23].isascii() and ts[20:23].isdigit():
            sec = ts[:19]
            if sec != self._sec:
                self._sec_epoch = int(ts_to_epoch(sec + ",000"))
                self._sec = sec
            # what datetime's timestamp() computes: microseconds / 10**6, rounded once
            return (self._sec_epoch * 1_000_000 + int(ts[20:23]) * 1000) / 1_000_000
        return ts_to_epoch(ts)

    def _writers(self, rec: Record, f: LogFile) -> int:
        """File boundaries that step back, steps back within a file (see the module);
        the file's number in its stream."""
        cur = self.file_no.get(f.stream)
        if cur is None or cur[0] is not f:
            n = 0 if cur is None else cur[1] + 1
            if cur is not None:
                self.file_boundary(cur[0], cur[2], f, rec.ts)
            cur = (f, n, rec.ts, rec.ts)
        elif rec.ts < cur[3]:
            self.inner_back += 1
            key = str(f.path)
            self.file_back[key] = self.file_back.get(key, 0) + 1
        self.inner_n += 1
        key = str(f.path)
        self.file_records[key] = self.file_records.get(key, 0) + 1
        self.file_no[f.stream] = (f, cur[1], max(cur[2], rec.ts), rec.ts)
        return cur[1]

    def _split_id(self, rec: Record, f: LogFile, n: int) -> None:
        """Ids with a file between their records (``f`` is file ``n`` of its stream)."""
        it = self.items
        sid = rec.fields.get("id") if rec.event in SYNTHESIS_EVENTS else None
        if not sid:
            return
        key = f"{f.stream}\x00{sid}"
        last = self.id_file.get(key)
        if last is None:
            it["split_ids"].checked += 1
        elif n > last + 1:
            it["split_ids"].fail(f"{sid}: records in {n - last - 1} file(s) apart "
                                 f"(the last at {rec.ts} in {f.name})")
        if rec.event == "synthesis_complete":
            self.id_file.pop(key, None)
            return
        self.id_file[key] = n
        self.id_file.move_to_end(key)
        if len(self.id_file) > self.ID_FILE_MAX:
            self.id_file.popitem(last=False)

    def feed(self, rec: Record, f: LogFile, dialect: bool = True) -> None:
        if dialect:  # (False: counted a frame at a time, ``DialectStats.feed_frame``)
            self.dialect.feed(rec)
        self._split_id(rec, f, self.feed_one(rec, f))
        self.synthesis(rec)

    def feed_one(self, rec: Record, f: LogFile) -> int:
        """The checks of one record on its own (not joined by id); the number of its
        file in its stream."""
        it = self.items
        no = self._writers(rec, f)
        # monotonic per stream (one writer per directory)
        t = self._epoch(rec.ts)
        prev = self.last_ts.get(f.stream)
        it["monotonic"].checked += 1
        if prev is not None and t < prev[0] - self.tol:
            it["monotonic"].fail(f"{f.name}: {rec.ts} after {prev[1]}")
        # compared with the previous record, not the running maximum: after one line
        # dated in the future, the lines that follow it are not all "steps back"
        self.last_ts[f.stream] = (t, rec.ts)
        fl = rec.fields
        for key in ("error_code", "warning_code"):
            code = fl.get(key)
            if code:
                it["registry_codes"].checked += 1
                if code not in REGISTRY:
                    it["registry_codes"].fail(f"{f.name}: {rec.ts} {rec.event}: {key}={code}")
        if rec.event == "synthesis_complete":
            it["complete_fields"].checked += 1
            missing = [k for k in ("id", "duration_ms", "status") if not fl.get(k)]
            if missing:
                it["complete_fields"].fail(f"{f.name}: {rec.ts} missing {','.join(missing)}")
        return no

    def synthesis(self, rec: Record) -> None:
        """The items judged on joined syntheses (``rec`` fed to the Assembler)."""
        it = self.items
        s = self.asm.feed(rec)
        if s is None:
            return
        it["complete_has_start"].checked += 1
        if s.start is None and not (self.since and s.ts < self.since_grace):
            it["complete_has_start"].fail(f"{s.id} completed at {s.ts} without a start")
        if s.status == "failed":
            it["failure_code"].checked += 1
            code = s.get("error_code")
            if not code:
                it["failure_code"].fail(f"{s.id} at {s.ts}")
            it["failure_traceback"].checked += 1
            spec = REGISTRY.get(code or "")
            client_error = spec is not None and spec.status < 500
            if not client_error and (s.failed is None or not s.failed.fields.get("where")
                                     or not s.failed.traceback):
                it["failure_traceback"].fail(
                    f"{s.id} at {s.ts} ({code}): " + ("no synthesis_failed" if s.failed is None
                                                      else "no where/traceback"))
        elif s.status == "success" and s.get("cache_hit") == "false":
            it["stage_times"].checked += 1
            missing = [st for st in STAGES if st not in s.stages]
            if missing:
                it["stage_times"].fail(f"{s.id} at {s.ts}: no {', '.join(missing)}")

    def file_boundary(self, prev: LogFile, prev_last: str, f: LogFile, first: str) -> None:
        """Judge where one file of a stream hands over to the next: ``f`` beginning
        (``first``) before ``prev`` ended (``prev_last``) is an overlap."""
        it = self.items
        it["file_overlap"].checked += 1
        if first < prev_last:
            back = ts_to_epoch(prev_last) - ts_to_epoch(first)
            ex = f"{f.name} begins at {first}, before {prev.name} ends ({prev_last})"
            if back > self.tol:
                self.overlap_s = max(self.overlap_s, back)
                it["file_overlap"].fail(ex)
            else:  # judged at the end against the steps back within files
                self.small_overlaps.append((back, ex))

    def feed_frame(self, f: LogFile, df: Any,
                   rows_of: Callable[[list[int]], Any] | None = None) -> None:
        """``feed`` (without the dialect) every record of ``f``'s sidecar frame (columns
        ts, event, tb, units and ``k_`` of id, stage, error_code, warning_code, where,
        duration_ms, elapsed_ms, status, cache_hit), one file at a time in order:
        ``frame_checks`` then ``frame_ids``. (The two touch different items: ``run``
        does the first a file ahead, in the thread that reads the frames.)"""
        self.frame_ids(f, df, self.frame_checks(f, df, rows_of))

    def frame_checks(self, f: LogFile, df: Any,
                     rows_of: Callable[[list[int]], Any] | None = None) -> int:
        """The checks of single records by Polars (``check_frames``; times not in the
        canonical form record by record: ``rows_of(rows)`` gives rows with every record
        column when the frame lacks some, ``sidecar.frame_rows``); the file's number in
        its stream."""
        from . import check_frames

        no = check_frames.feed_frame(self, f, df)
        if no is None:
            from ..reading.sidecar import RECORD_COLUMNS, records_of

            whole = list(range(df.height))
            for rec in records_of(rows_of(whole) if rows_of is not None
                                  else df.select(RECORD_COLUMNS)):
                no = self.feed_one(rec, f)
        return no or 0

    def frame_ids(self, f: LogFile, df: Any, no: int) -> None:
        """The joins by id by Polars (``check_ids``) of file number ``no``."""
        from .check_ids import FrameIds

        if self.ids is None:
            self.ids = FrameIds()
        self.ids.feed(self, f, df, no)

    def pending(self) -> list[tuple[str, str | None]]:
        """The syntheses that never completed, oldest first: (id, its start's time or
        None)."""
        if self.ids is not None:
            return self.ids.pending(self)
        return [(s.id, s.start.ts if s.start is not None else None)
                for s in self.asm.pending.values()]

    def finish(self, scan: Scan, snap: Snapshot) -> None:
        it = self.items
        pending = self.pending()
        it["start_has_complete"].checked = it["complete_has_start"].checked + sum(
            1 for _s, start in pending if start is not None)
        latest = max((t for t, _ in self.last_ts.values()), default=0.0)
        for sid, start in pending:
            # still running at the end of the logs (or of the window): not a failure
            if start is not None and self._epoch(start) < latest - 120.0:
                it["start_has_complete"].fail(f"{sid} started at {start}, never completed")
                self.never_completed.append(sid)
        # small steps back at file boundaries: one threaded writer makes them as often
        # between lines as between files; several writers that rotate make them at the
        # boundaries far more often than anywhere else
        ov = it["file_overlap"]
        inner_rate = self.inner_back / max(1, self.inner_n)
        if len(self.small_overlaps) >= 3 and \
                len(self.small_overlaps) / max(1, ov.checked) > 10 * inner_rate + 0.05:
            for back, ex in self.small_overlaps:
                self.overlap_s = max(self.overlap_s, back)
                ov.fail(ex)
        il = it["interleaving"]
        for f in snap.files:
            n = self.file_records.get(str(f.path), 0)
            if n == 0:
                continue
            il.checked += 1
            back = self.file_back.get(str(f.path), 0)
            if back >= 20 and back >= 0.01 * n:
                il.fail(f"{f.name}: {back} of {n} records are earlier than the record before "
                        "them")
        rs_item = it["rotation_sizes"]
        if self.since is None and not self.until:  # whole files only
            sized = [(self.file_records.get(str(f.path), 0), f) for f in snap.files
                     if f.role == "rotated" and NUMBERED_RE.match(f.name)]
            sized = [(n, f) for n, f in sized if n]
            rs_item.checked = len(sized)
            big = max((n for n, _f in sized), default=0)
            short = [(n, f) for n, f in sized if n < big / 2]
            if len(short) >= 2:
                for n, f in short:
                    rs_item.fail(f"{f.name}: {n} records (the largest rotated file: {big})")
        dup = it["duplicate_files"]
        dup.checked = sum(1 for f in snap.files if f.role != "live") + len(snap.duplicates)
        for kept, dropped in snap.duplicates:
            dup.fail(f"{dropped} = {kept} (read once)")
        rs = scan.stats.read
        it["parsable"].checked = rs.lines
        it["parsable"].bad = rs.skipped
        it["parsable"].examples = rs.skipped_examples[:3]
        for f in snap.files:
            if f.gz:
                it["indexed"].checked += 1
                if f.get_index() is None:
                    it["indexed"].fail(f"{f.name}: no block index (ttsops logs index can add "
                                       "one; queries are slower, not wrong)")


def _read(snap: Snapshot, since: str | None, until: str | None, tolerance_ms: float,
          use_index: bool, frames: bool = True) -> tuple[Checker, Scan]:
    """Every record of the window fed to a new Checker, then ``finish``: from the
    sidecars' frames by Polars where they cover the scan, else record by record."""
    from ..reading import sidecar, vector
    from . import read_ahead
    from .check_ids import Overflow

    chk = Checker(tolerance_ms, since, until)
    scan = Scan(snap, Query(since, until, use_index=use_index))
    if frames and len(scan.streams()) == 1 and vector.available() and sidecar.covered(scan):
        cols = [*sidecar.RECORD_COLUMNS, sidecar.UNITS, *(f"k_{k}" for k in FRAME_HOT)]
        def first(f: LogFile, df: Any) -> int:
            def rows_of(rows: list[int]) -> Any:
                return sidecar.frame_rows(scan, f, df, rows, sidecar.RECORD_COLUMNS)

            chk.dialect.feed_frame(df, rows_of)
            return chk.frame_checks(f, df, rows_of)

        try:  # (the dialect and single records in the thread that reads the next files)
            for f, df, no in read_ahead.frames(scan, cols, first, lazy=FRAME_LAZY):
                chk.frame_ids(f, df, no)
            if chk.ids is not None:
                chk.ids.flush(chk)
        except (Overflow, sidecar.Gone):  # more open syntheses than the Assembler keeps:
            # as it drops them; a sidecar gone while read: as without sidecars
            return _read(snap, since, until, tolerance_ms, use_index, frames=False)
    else:
        for rec, f in scan.hits():
            chk.feed(rec, f)
    chk.finish(scan, snap)
    return chk, scan


def run(snap: Snapshot, since: str | None, until: str | None, *, tolerance_ms: float = 1000.0,
        use_index: bool = True, ids_out: str | None = None) -> Report:
    chk, scan = _read(snap, since, until, tolerance_ms, use_index)
    items = list(chk.items.values())
    # the last syntheses may still be running when the snapshot was taken
    rep = Report("check", problems=snap.problems)
    fails = [i for i in items if i.status == "FAIL"]
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}",
                   "records": scan.stats.read.records, "items failed": len(fails)}
    t = Table("items", "logging contract", ["item", "status", "checked", "bad", "what",
                                            "examples"])
    for i in items:
        t.rows.append([i.name, i.status, i.checked, i.bad, i.what, " | ".join(i.examples)])
    rep.tables.append(t)
    rep.tables.append(chk.dialect.table(chk.asm.stage_modes))
    verdict = writers_verdict(chk)
    rep.text.extend(safe(x) for x in verdict)
    nc = chk.never_completed
    if ids_out is not None:
        where = write_lines(ids_out, sorted(set(nc)))
        rep.summary["never completed"] = f"{len(set(nc))} (ids written to {where})"
    elif len(nc) > 3:
        rep.text.append(f"{len(nc)} syntheses started and never completed; the table names "
                        "3: --ids-out FILE writes them all")
    rep.data = {"passed": not fails, "dialect": chk.dialect.to_json(chk.asm.stage_modes),
                "never_completed": sorted(set(nc)),
                "several_writers": verdict,
                "items": [{"name": i.name, "status": i.status, "checked": i.checked,
                           "bad": i.bad, "what": i.what, "examples": i.examples}
                          for i in items]}
    rep.failed = bool(fails)
    if scan.stats.read.records == 0:
        rep.empty = "no records to check in this window"
    return rep

