"""``logs patterns``: syntheses (or any event's records) grouped by fields, counted,
sorted (the seed's step three: which inputs fail, and how).

By default one row per synthesis: its ``synthesis_complete`` fields overlaid on its
``synthesis_start`` fields (so ``--by voice,error_code`` works), counted in the window by
the time of its completion. ``--event NAME`` groups the raw records of another event.

The total (``syntheses`` / ``NAME records``) counts every record of the event in the time
range, whatever ``--where`` says; ``matching`` those that pass it. Equality conditions
still pre-filter the text lines on the raw bytes (a line without the value cannot match):
the scan counts the records they drop (``Query.count_event``) without parsing them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import chain

from ...logformat.record import Record
from ..reading.assemble import Assembler
from ..reading.filters import Buckets, Cond, group_key, literal_values, matches, with_pseudo
from ..reading.plan import plan_failed
from ..reading.scan import Query, Scan
from ..reading.sources import Snapshot
from .answer import Report, Table

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

# fields of synthesis_complete (docs/DESIGN.md §2, Events) + context + pseudo-fields
COMPLETE_FIELDS = {"id", "request_id", "trace_id", "status", "duration_ms", "queue_ms",
                   "text_len", "audio_size_kb", "rtf", "cache_hit", "cache_saved",
                   "model_stage", "error_code", "ts", "level", "event", "logger", "hour",
                   "minute", "day"}
JOIN_MARGIN_S = 900.0  # look this far before --since for the start of a synthesis


def failed_only(where: list[Cond]) -> bool:
    """Only syntheses that did not succeed can pass ``where`` (``status=<not success>``)."""
    return any(c.field == "status" and c.op == "=" and c.value != "success" for c in where)


def extract_records(lines: list[str]) -> Iterator[Record]:
    """The records of head lines kept in an index, parsed as a scan parses what it reads."""
    from ...logformat.fastparse import iter_records
    from ...logformat.timestamps import norm_ts

    for rec in iter_records(lines):
        if rec.ts[10:11] != " ":
            rec.ts = norm_ts(rec.ts)
        yield rec


def run(snap: Snapshot, since: str | None, until: str | None, *, by: list[str],
        where: list[Cond], buckets: dict[str, Buckets], event: str | None = None,
        top: int = 0, use_index: bool = True) -> Report:
    groups: Counter[tuple[str, ...]] = Counter()
    total = 0
    matched = 0
    if event:
        needles: tuple[str, ...] | None = None if event == "*" else (event,)
        scan = Scan(snap, Query(since, until, needles=needles, use_index=use_index,
                                require=literal_values(where) if needles else (),
                                count_event=event if needles else None, tracebacks=False))
        for rec in scan.records():
            if event != "*" and rec.event != event:
                continue
            total += 1
            d = with_pseudo(rec.ts, rec.level, rec.event, rec.logger, rec.fields)
            if matches(where, d):
                matched += 1
                groups[group_key(d, by, buckets)] += 1
        total += scan.stats.dropped
    else:
        need = set(by) | {c.field for c in where}
        join = not need <= COMPLETE_FIELDS
        needles = ("synthesis_complete", "synthesis_start", "audio_metrics",
                   "synthesis_failed") if join else ("synthesis_complete",)
        if since and join:
            from ..reading.timeargs import shift

            start: str | None = shift(since, -JOIN_MARGIN_S)
        else:
            start = since
        plan = plan_failed(snap, since, until) if use_index and not join and \
            failed_only(where) else None
        scan = Scan(snap, Query(start, until, needles=needles, use_index=use_index,
                                require=() if join else literal_values(where),
                                count_event="synthesis_complete", tracebacks=False),
                    exclude=plan.exclude if plan else None)
        asm = Assembler()
        if plan is not None:  # blocks answered from their index: no line of theirs is read
            total += plan.completes - len(plan.lines)  # the failed ones count below
            scanned: Iterator[Record] = chain(extract_records(plan.lines), scan.records())
        else:
            scanned = scan.records()
        for rec in scanned:
            s = asm.feed(rec)
            if s is None or (since is not None and s.ts < since):
                continue
            total += 1
            d = s.fields()
            if matches(where, d):
                matched += 1
                groups[group_key(d, by, buckets)] += 1
        total += scan.stats.dropped
    return report(groups, total, matched, since, until, by=by, where=where, event=event,
                  top=top, problems=snap.problems)


def report(groups: Counter[tuple[str, ...]], total: int, matched: int, since: str | None,
           until: str | None, *, by: list[str], where: list[Cond], event: str | None,
           top: int, problems: list[Any] | None = None) -> Report:
    """The report of the grouped counts (``run``'s, and ``--source``'s from SQL)."""
    rows = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))
    rep = Report("patterns", problems=problems)
    what = f"{event} records" if event else "syntheses"
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}",
                   what: total, "matching": matched,
                   "where": " and ".join(map(str, where)) or "-",
                   "by": ",".join(by) or "-", "groups": len(rows)}
    t = Table("groups", f"{what} by {', '.join(by) or '(all)'}", [*by, "count", "share_%"])
    shown = rows[:top] if top else rows
    for key, n in shown:
        t.rows.append([*key, n, round(100.0 * n / matched, 2) if matched else 0.0])
    rep.tables.append(t)
    if top and len(rows) > top:
        rep.text.append(f"({len(rows) - top} more groups; -n 0 shows all)")
    rep.data = {"total": total, "matching": matched,
                "groups": [{"key": dict(zip(by, k, strict=True)), "count": n}
                           for k, n in rows]}
    if matched == 0:
        rep.empty = (f"no {what} match {' and '.join(map(str, where)) or 'anything'} "
                     f"between {since or 'the start'} and {until or 'the end'}")
    return rep
