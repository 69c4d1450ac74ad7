"""``logs check``: does this deployment log what it must? Pass/fail per item, with
examples (file and line content), over a full scan.

Items: every synthesis_complete has id, duration_ms and status; every start has a
complete (and the other way round); failed syntheses carry an error_code and a
synthesis_failed with ``where`` and a traceback; successful syntheses that were not cache
hits have all five stage times; every error/warning code is in the registry; timestamps
never step back (beyond a tolerance) within one directory; no unparsable lines; every
rotated ``.gz`` carries its block index.

``monotonic`` counts steps back, not lines below the running maximum: a record is bad
when its time is more than the tolerance before the time of the record just before it in
the same directory. One misdated line is then one or two bad steps (the step to a
too-early line, or the step back from a too-late one), not every line after it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from ..errors import REGISTRY
from ..logline import STAGES, Record
from .assemble import Assembler
from .output import Report, Table
from .scan import Query, Scan
from .sources import LogFile, Snapshot
from .timeargs import shift, ts_to_epoch


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

    @property
    def status(self) -> str:
        if self.checked == 0 or self.na:
            return "n/a"
        return "pass" if self.bad == 0 else "FAIL"


class Checker:
    def __init__(self, tolerance_ms: float = 1000.0, since: str | None = None) -> None:
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
        self.asm = Assembler(max_pending=500_000)
        self.last_ts: dict[int, tuple[float, str]] = {}
        from .dialect import DialectStats

        self.dialect = DialectStats()  # which dialect, what was converted (own table)

    def feed(self, rec: Record, f: LogFile) -> None:
        self.dialect.feed(rec)
        it = self.items
        # monotonic per stream (one writer per directory)
        t = ts_to_epoch(rec.ts)
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

    def finish(self, scan: Scan, snap: Snapshot) -> None:
        it = self.items
        it["start_has_complete"].checked = it["complete_has_start"].checked + sum(
            1 for s in self.asm.pending.values() if s.start is not None)
        latest = max((t for t, _ in self.last_ts.values()), default=0.0)
        for s in self.asm.pending.values():
            # still running at the end of the logs (or of the window): not a failure
            if s.start is not None and ts_to_epoch(s.start.ts) < latest - 120.0:
                it["start_has_complete"].fail(f"{s.id} started at {s.start.ts}, never completed")
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


def run(snap: Snapshot, since: str | None, until: str | None, *, tolerance_ms: float = 1000.0,
        use_index: bool = True) -> Report:
    chk = Checker(tolerance_ms, since)
    scan = Scan(snap, Query(since, until, use_index=use_index))
    for rec, f in scan.hits():
        chk.feed(rec, f)
    chk.finish(scan, snap)
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
    rep.data = {"passed": not fails, "dialect": chk.dialect.to_json(chk.asm.stage_modes),
                "items": [{"name": i.name, "status": i.status, "checked": i.checked,
                           "bad": i.bad, "what": i.what, "examples": i.examples}
                          for i in items]}
    rep.failed = bool(fails)
    if scan.stats.read.records == 0:
        rep.empty = "no records to check in this window"
    return rep
