"""``logs window``: what happened between two times (the seed's step one).

Counts by level, by error and warning code and by event; syntheses started, completed
and failed, the failure rate; the ids of the syntheses started in the window
(``--ids-out``, sorted and unique like the seed's ``sort -u``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .coverage import coverage
from .output import Report, Table
from .scan import Query, Scan
from .sources import Snapshot


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

    def feed(self, rec) -> None:  # type: ignore[no-untyped-def]
        self.records += 1
        ts = rec.ts
        if self.first is None or ts < self.first:
            self.first = ts
        if self.last is None or ts > self.last:
            self.last = ts
        lvl = rec.level
        self.levels[lvl] += 1
        ev = rec.event or "(free text)"
        self.events[ev] += 1
        f = rec.fields
        if lvl in ("ERROR", "CRITICAL"):
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

    @property
    def failure_rate(self) -> float | None:
        n = sum(self.complete.values())
        return self.complete.get("failed", 0) / n if n else None


def run(snap: Snapshot, since: str | None, until: str | None, *, use_index: bool = True,
        ids_out: str | None = None) -> Report:
    scan = Scan(snap, Query(since, until, use_index=use_index))
    wc = WindowCounts(keep_ids=ids_out is not None)  # memory: ids only when asked for
    for rec in scan.records():
        wc.feed(rec)
    rep = Report("window", problems=snap.problems)
    rs = scan.stats.read
    rate = wc.failure_rate
    rep.summary = {
        "window": f"{since or 'start'} .. {until or 'end'} (until exclusive)",
        "records": wc.records,
        "first / last record": f"{wc.first or '-'} / {wc.last or '-'}",
        "ERROR + WARNING records": wc.levels["ERROR"] + wc.levels["WARNING"],
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
        rep.text.extend(f"  {e[:160]}" for e in rs.skipped_examples[:3])
    ids = sorted(wc.ids or ())
    if ids_out:
        Path(ids_out).write_text("".join(i + "\n" for i in ids))
        rep.text.append(f"{len(ids)} synthesis ids written to {ids_out}")
    if wc.records == 0:
        lo, hi = coverage(snap)
        rep.empty = (f"no records between {since or 'the start'} and {until or 'the end'}"
                     f"; the logs cover {lo or '?'} .. {hi or '?'}")
    return rep
