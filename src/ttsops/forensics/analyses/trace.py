"""``logs trace ID``: every record of a synthesis id or request id, in order, with its
traceback, and a timeline of queue wait and the five stages (the seed's step two).

A record belongs to the trace when one of its id fields (``logindex.ID_KEYS``: ``id``,
``request_id``, ``trace_id``, a web page report's ``synthesis_request_id``, a dead
worker's ``job``) *equals* the id. A record that only mentions the id - in its input
text, a voice name, a detail, a message or a traceback - is someone else's record and is
not part of the trace: an anonymous request whose ``input`` is a victim's synthesis id
adds nothing to that synthesis's trace. A part of an id finds nothing either
(``ts_1417ce9`` is not ``ts_1417ce9a``). Every read path (index, full scan, threads,
worker processes) hands candidates to the one check here (the scan's literal pre-filter
finds the id as a substring, a superset); the bloom filters hold the values of exactly
those fields, so the index and the scan agree. An empty or blank id is a usage error
(``TraceArgError``).
"""

from __future__ import annotations

from ...logformat import Record
from ...logformat.dialects import is_cumulative, per_stage, stage_time_mode
from ...logindex import ID_KEYS
from ...plain import Plain
from ..reading.filters import FilterError
from ..reading.scan import Query, Scan
from ..reading.sources import LogFile, Snapshot
from .answer import Report, Table, safe

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

CONTEXT = ("request_id", "trace_id", "id")


def _stages() -> tuple[str, ...]:
    from ...logformat.record import STAGES

    return tuple(STAGES)
BAR = 40


class Timeline(Plain):
    FIELDS = ("id", "start_ts", "stages", "stage_mode", "queue_ms", "total_ms", "status",
              "error_code", "model_stage", "where")

    def __init__(self, id: str, start_ts: str | None = None,
                 stages: dict[str, tuple[float, float]] | None = None,
                 stage_mode: str | None = None, queue_ms: float | None = None,
                 total_ms: float | None = None, status: str | None = None,
                 error_code: str | None = None, model_stage: str | None = None,
                 where: str | None = None) -> None:
        self.id = id
        self.start_ts = start_ts
        # stage -> (duration, elapsed)
        self.stages: dict[str, tuple[float, float]] = {} if stages is None else stages
        self.stage_mode = stage_mode  # how its stage_time values were read (two stages+)
        self.queue_ms = queue_ms
        self.total_ms = total_ms
        self.status = status
        self.error_code = error_code
        self.model_stage = model_stage
        self.where = where

    def rows(self) -> list[tuple[str, float, float]]:
        """(component, start offset ms, duration ms) in order, queue wait included."""
        out: list[tuple[str, float, float]] = []
        known = _stages()
        order = [s for s in known if s in self.stages] + \
            [s for s in self.stages if s not in known]
        for s in order:
            dur, el = self.stages[s]
            if s == "llm_prompt_gen" and self.queue_ms:
                q_end = el - dur
                out.append(("queue_wait", max(0.0, q_end - self.queue_ms), self.queue_ms))
            out.append((s, max(0.0, el - dur), dur))
        if self.queue_ms and not any(r[0] == "queue_wait" for r in out):
            end = max((a + d for _, a, d in out), default=0.0)
            out.append(("queue_wait", end, self.queue_ms))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "start": self.start_ts, "status": self.status,
                "error_code": self.error_code, "model_stage": self.model_stage,
                "where": self.where, "total_ms": self.total_ms, "queue_ms": self.queue_ms,
                "stage_time": self.stage_mode,
                "components": [{"name": n, "start_ms": a, "duration_ms": d}
                               for n, a, d in self.rows()]}

    def render(self) -> list[str]:
        rows = self.rows()
        total = self.total_ms or max((a + d for _, a, d in rows), default=0.0) or 1.0
        head = f"[bold]timeline of {safe(self.id)}[/]"
        if self.total_ms is not None:
            head += f": end to end {self.total_ms:.1f} ms"
        if self.status:
            head += f", {safe(self.status)}"
        if self.error_code:
            head += f" [red]{safe(self.error_code)}[/]"
        if self.model_stage:
            head += f" (last stage {safe(self.model_stage)})"
        if self.stage_mode == "cumulative":
            head += " [dim](stage_time written as time since the start; drawn per stage)[/]"
        lines = [head]
        slowest = max(rows, key=lambda r: r[2])[0] if rows else None
        for name, a, d in rows:
            lo = int(a / total * BAR)
            width = max(1, round(d / total * BAR))
            bar = " " * min(lo, BAR) + "█" * min(width, BAR - min(lo, BAR - 1))
            color = "red" if name == slowest else "cyan"
            lines.append(f"  {safe(name):<15} {a:9.1f} +{d:9.1f} ms  [{color}]{bar}[/]")
        if self.where:
            lines.append(f"  where: {safe(self.where)}")
        return lines


def timelines(records: list[Record]) -> list[Timeline]:
    """One timeline per synthesis id: each stage drawn where it ran. ``elapsed_ms``
    (ttsops' own writer) says where a stage ended; cumulative values (the tutorial's
    ``stage_time``, ``dialects.is_cumulative``) are where it ended and the difference
    from the stage before is its duration; per-stage values without ``elapsed_ms`` are
    laid one after the other."""
    by_id: dict[str, Timeline] = {}
    raw: dict[str, dict[str, tuple[float, float | None]]] = {}
    for rec in records:
        sid = rec.fields.get("id")
        if not sid or rec.event not in ("synthesis_start", "stage_time",
                                        "synthesis_complete", "synthesis_failed"):
            continue
        tl = by_id.setdefault(sid, Timeline(sid))
        f = rec.fields
        if rec.event == "synthesis_start":
            tl.start_ts = rec.ts
        elif rec.event == "stage_time":
            d, el = rec.num("duration_ms"), rec.num("elapsed_ms")
            if f.get("stage") and d is not None:
                raw.setdefault(sid, {})[f["stage"]] = (d, el)
        elif rec.event == "synthesis_complete":
            tl.total_ms = rec.num("duration_ms")
            tl.queue_ms = rec.num("queue_ms")
            tl.status = f.get("status")
            tl.error_code = f.get("error_code")
            tl.model_stage = f.get("model_stage")
        else:
            tl.where = f.get("where")
            tl.error_code = tl.error_code or f.get("error_code")
    for sid, st in raw.items():
        _place(by_id[sid], st)
    return list(by_id.values())


def _place(tl: Timeline, st: dict[str, tuple[float, float | None]]) -> None:
    """The stages of one timeline as (duration, end offset)."""
    vals = [d for d, _ in st.values()]
    has_el = any(el is not None for _, el in st.values())
    if len(vals) >= 2 and is_cumulative(vals, tl.total_ms, has_el):
        tl.stages = {s: (d, end) for s, d, end in zip(st, per_stage(vals), vals, strict=True)}
        tl.stage_mode = "cumulative"
        return
    if len(vals) >= 2 and not (has_el and stage_time_mode() == "auto"):
        tl.stage_mode = "per-stage"  # decided so (ttsops' own records need no decision)
    end = 0.0
    for s, (d, el) in st.items():
        if el is None:  # laid after the stage before
            end += d
            el = end
        else:
            end = el
        tl.stages[s] = (d, el)


class TraceArgError(FilterError):
    """An id ``trace`` cannot look up (empty): a usage error (the command line's exit 2)."""


def check_ids(ids: list[str]) -> list[str]:
    """The ids without surrounding whitespace (an id never holds any); TraceArgError for
    none at all or an empty one (it would match everything, or nothing, depending on the
    path)."""
    out = [i.strip() for i in ids]
    if not out:
        raise TraceArgError("trace: give at least one synthesis id or request id")
    for raw, i in zip(ids, out, strict=True):
        if not i:
            raise TraceArgError(f"trace: an id must not be empty or blank (got {raw!r})")
    return out


def identifies(rec: Record, ids: list[str] | set[str] | frozenset[str]) -> bool:
    """Is one of ``rec``'s id fields equal to one of ``ids`` (see the module docstring)?
    Values are compared as parsed (unescaped), so the answer is the same for a record
    written as text or as JSON."""
    f = rec.fields
    return any(f.get(k) in ids for k in ID_KEYS)


mentions = identifies  # the name earlier callers used


def find(snap: Snapshot, ids: list[str], since: str | None = None, until: str | None = None,
         use_index: bool = True) -> tuple[list[tuple[Record, LogFile]], Scan]:
    """The records of ``ids`` in time order (stable: file order within a millisecond).
    An id matches as a whole token only (see the module docstring), on every path. A
    blank id mentions nothing (``run`` refuses one: a usage error); nothing is read for
    no ids at all."""
    ids = [i.strip() for i in ids if i.strip()]
    q = Query(since, until, needles=tuple(ids), ids=tuple(ids) if use_index else None,
              use_index=use_index)
    scan = Scan(snap, q, child_read=False)  # an id's few records: nothing to overlap
    if not ids:
        return [], scan
    wanted = frozenset(ids)
    hits = [(rec, f) for rec, f in scan.hits() if identifies(rec, wanted)]
    hits.sort(key=lambda h: h[0].ts)
    return hits, scan


def _days(y: int, m: int, d: int) -> int:
    """Days from 0000-03-01 to the date (the proleptic Gregorian calendar), for a
    difference of dates."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _ms(ts: str) -> int | None:
    """Milliseconds since 0000-03-01 of a valid time of the canonical form
    (``2024-06-11 09:40:00,425``), else None."""
    digits = ts[:4] + ts[5:7] + ts[8:10] + ts[11:13] + ts[14:16] + ts[17:19] + ts[20:]
    if len(ts) != 23 or ts[4] != "-" or ts[7] != "-" or ts[10] != " " or ts[13] != ":" \
            or ts[16] != ":" or ts[19] != "," or not (digits.isascii() and digits.isdigit()):
        return None
    y, m, d = int(ts[:4]), int(ts[5:7]), int(ts[8:10])
    hh, mm, ss = int(ts[11:13]), int(ts[14:16]), int(ts[17:19])
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if not (y >= 1 and 1 <= m <= 12 and 1 <= d <= _MONTH_DAYS[m - 1] + (m == 2 and leap)
            and hh <= 23 and mm <= 59 and ss <= 59):
        return None
    return (((_days(y, m, d) * 24 + hh) * 60 + mm) * 60 + ss) * 1000 + int(ts[20:23])


def offset_ms(t0: str, ts: str) -> int:
    """``round((from_ts(ts) - from_ts(t0)).total_seconds() * 1000)``; for two valid
    record times of the canonical form by arithmetic on their digits, without loading
    ``datetime`` (~2 ms of a trace's start); anything else as ``from_ts`` reads it."""
    a, b = _ms(t0), _ms(ts)
    if a is not None and b is not None:
        return b - a
    from ..reading.timeargs import from_ts

    return round((from_ts(ts) - from_ts(t0)).total_seconds() * 1000)


def _brief(rec: Record, skip: tuple[str, ...]) -> str:
    parts = [f"{k}={v}" for k, v in rec.fields.items() if k not in skip]
    return ", ".join(parts)


def run(snap: Snapshot, ids: list[str], since: str | None = None, until: str | None = None,
        *, use_index: bool = True) -> Report:
    ids = check_ids(ids)
    hits, scan = find(snap, ids, since, until, use_index)
    rep = Report("trace", problems=snap.problems)
    multi = len(snap.streams) > 1
    recs = [r for r, _ in hits]
    ctx: dict[str, set[str]] = {k: {r.fields[k] for r in recs if k in r.fields}
                                for k in CONTEXT}
    rep.summary = {"ids": ", ".join(ids), "records": len(hits),
                   "files": len({f.where for _, f in hits}),
                   "request_id": ", ".join(sorted(ctx["request_id"])) or "-",
                   "synthesis id": ", ".join(sorted(ctx["id"])) or "-"}
    if ctx["trace_id"]:
        rep.summary["trace_id"] = ", ".join(sorted(ctx["trace_id"]))
    cols = ["time", "+ms", "file", "level", "event", "fields"]
    if multi:
        cols.insert(2, "host")
    table = Table("records", "records in order", cols)
    t0 = recs[0].ts if recs else None
    for rec, f in hits:
        row: list[Any] = [rec.ts, offset_ms(t0, rec.ts) if t0 else 0, f.name, rec.level,
                          rec.event or "(text)", _brief(rec, CONTEXT)]
        if multi:
            row.insert(2, f.label)
        table.rows.append(row)
    rep.tables.append(table)
    tls = timelines(recs)
    for rec, f in hits:
        if rec.traceback:
            rep.text.append(f"[bold]traceback of {safe(rec.event)} at {safe(rec.ts)}[/] "
                            f"({safe(f.name)}):")
            rep.text.extend(f"[dim]  {safe(t)}[/]" for t in rec.traceback)
    for tl in tls:
        rep.text.extend(tl.render())
    rep.data = {"records": [{"ts": r.ts, "file": f.where, "host": f.label,
                             "level": r.level, "logger": r.logger, "event": r.event,
                             "fields": r.fields, "traceback": r.traceback} for r, f in hits],
                "timelines": [t.to_json() for t in tls],
                "read": scan.stats.counters.__dict__}
    if not hits:
        c = scan.stats.counters
        rep.empty = (f"no record has the id {', '.join(ids)} in {len(snap.files)} files"
                     + (f" ({c.blocks_skipped} index blocks skipped by their bloom filter;"
                        " --no-index reads every line)" if c.blocks_skipped else ""))
    return rep
