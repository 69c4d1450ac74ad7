"""``logs patterns``: syntheses (or any event's records) grouped by fields, counted,
sorted (the seed's step three: which inputs fail, and how).

By default one row per synthesis: its ``synthesis_complete`` fields overlaid on its
``synthesis_start`` fields (so ``--by voice,error_code`` works), counted in the window by
the time of its completion. ``--event NAME`` groups the raw records of another event.

The total (``syntheses`` / ``NAME records``) counts every record of the event in the time
range, whatever ``--where`` says; ``matching`` those that pass it. Equality conditions
still pre-filter the text lines (a line without the value cannot match): the lines they
drop are only counted, from their head (time, level, event), never parsed.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Iterator

from ..logindex import norm_ts
from ..logline import Record
from .assemble import Assembler
from .fastparse import head_parse, iter_records
from .filters import Buckets, Cond, group_key, literal_values, matches, with_pseudo
from .output import Report, Table
from .scan import Query, Scan
from .sources import Snapshot
from .timeargs import shift

# fields of synthesis_complete (DESIGN.md §2) + context + pseudo-fields
COMPLETE_FIELDS = {"id", "request_id", "trace_id", "status", "duration_ms", "queue_ms",
                   "text_len", "audio_size_kb", "rtf", "cache_hit", "cache_saved",
                   "model_stage", "error_code", "ts", "level", "event", "logger", "hour",
                   "minute", "day"}
JOIN_MARGIN_S = 900.0  # look this far before --since for the start of a synthesis
_HAS_ID = re.compile(r"(?:: |, )id=[^,\s]")


class _Tally:
    """Records of the event that the literal pre-filter dropped (counted, not parsed)."""

    def __init__(self) -> None:
        self.n = 0


def _stream_records(scan: Scan, stream: int, event: str, require: tuple[str, ...],
                    need_id: bool, tally: _Tally) -> Iterator[Record]:
    since, until = scan.query.since, scan.query.until
    for _f, lines, rs in scan.batches(stream):
        if require:
            keep: list[str] = []
            dropping = False
            for ln in lines:
                c = ln[:1]
                if not (c.isdigit() or c == "{"):  # a continuation line
                    if not dropping:
                        keep.append(ln)
                    continue
                dropping = False
                if c == "{" or all(r in ln for r in require):
                    keep.append(ln)
                    continue
                h = head_parse(ln)
                if h is None:  # not a plain text record: parse it in full
                    keep.append(ln)
                    continue
                dropping = True
                ts, _level, ev = h
                rs.lines += 1
                rs.records += 1
                if ev == event and (since is None or ts >= since) \
                        and (until is None or ts < until) \
                        and (not need_id or _HAS_ID.search(ln)):
                    tally.n += 1
            lines = keep
        for rec in iter_records(lines, rs):
            if rec.ts[10:11] != " ":
                rec.ts = norm_ts(rec.ts)
            if (since is not None and rec.ts < since) or (until is not None
                                                          and rec.ts >= until):
                continue
            yield rec


def _records(scan: Scan, event: str, require: tuple[str, ...], need_id: bool,
             tally: _Tally) -> Iterator[Record]:
    """``scan.records()`` of a scan without ``require``, except that text records of the
    event lacking a required literal are tallied from their head instead of parsed (they
    cannot match; they still count in the total)."""
    gens = [_stream_records(scan, s, event, require, need_id, tally) for s in scan.streams()]
    if len(gens) == 1:
        yield from gens[0]
    else:
        yield from heapq.merge(*gens, key=lambda r: r.ts)


def run(snap: Snapshot, since: str | None, until: str | None, *, by: list[str],
        where: list[Cond], buckets: dict[str, Buckets], event: str | None = None,
        top: int = 0, use_index: bool = True) -> Report:
    groups: Counter[tuple[str, ...]] = Counter()
    total = 0
    matched = 0
    if event:
        needles = None if event == "*" else (event,)
        tally = _Tally()
        scan = Scan(snap, Query(since, until, needles=needles, use_index=use_index,
                                tracebacks=False))
        require = literal_values(where) if needles else ()
        for rec in _records(scan, event, require, False, tally):
            if event != "*" and rec.event != event:
                continue
            total += 1
            d = with_pseudo(rec.ts, rec.level, rec.event, rec.logger, rec.fields)
            if matches(where, d):
                matched += 1
                groups[group_key(d, by, buckets)] += 1
        total += tally.n
    else:
        need = set(by) | {c.field for c in where}
        join = not need <= COMPLETE_FIELDS
        needles = ("synthesis_complete", "synthesis_start", "audio_metrics",
                   "synthesis_failed") if join else ("synthesis_complete",)
        start = shift(since, -JOIN_MARGIN_S) if (since and join) else since
        scan = Scan(snap, Query(start, until, needles=needles, use_index=use_index,
                                tracebacks=False))
        tally = _Tally()
        asm = Assembler()
        for rec in _records(scan, "synthesis_complete", () if join else literal_values(where),
                            True, tally):
            s = asm.feed(rec)
            if s is None or (since is not None and s.ts < since):
                continue
            total += 1
            d = s.fields()
            if matches(where, d):
                matched += 1
                groups[group_key(d, by, buckets)] += 1
        total += tally.n
    rows = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))
    rep = Report("patterns", problems=snap.problems)
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
