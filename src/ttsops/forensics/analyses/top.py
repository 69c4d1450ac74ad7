"""``logs top errors|warnings``: the most frequent codes, with count, share, first and
last seen, the runbook hint from the registry and the ``where`` seen for each."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ...errors import REGISTRY
from ...logformat import ERROR_LEVELS, Record
from ...logformat.dialects import level_needles
from ..reading.scan import Query, Scan
from ..reading.sources import Snapshot
from .answer import Report, Table

LEVELS = {"errors": ERROR_LEVELS, "warnings": ("WARNING",)}
# the text heads of those levels, aliases (WARN, FATAL) included
NEEDLES = {k: level_needles(*v) for k, v in LEVELS.items()}


def code_of(rec: Record, kind: str) -> str:
    f = rec.fields
    code = f.get("error_code") if kind == "errors" else \
        f.get("warning_code") or f.get("error_code")
    if code:
        return code
    return f"({rec.event})" if rec.event else "(no code)"


@dataclass
class CodeStats:
    count: int = 0
    first: str = ""
    last: str = ""
    where: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    example_id: str | None = None
    example_ts: str | None = None


class TopCodes:
    """Collector of ERROR or WARNING records by code."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.levels = LEVELS[kind]
        self.codes: dict[str, CodeStats] = {}
        self.total = 0

    def feed(self, rec: Record) -> None:
        if rec.level not in self.levels:
            return
        self.total += 1
        c = code_of(rec, self.kind)
        st = self.codes.get(c)
        if st is None:
            st = self.codes[c] = CodeStats(first=rec.ts)
        st.count += 1
        if rec.ts < st.first:
            st.first = rec.ts
        if rec.ts > st.last:
            st.last = rec.ts
        w = rec.fields.get("where")
        if w:
            st.where[w] += 1
        st.events[rec.event] += 1
        if st.example_id is None:
            st.example_id = rec.fields.get("id") or rec.fields.get("request_id")
            st.example_ts = rec.ts

    def ranked(self) -> list[tuple[str, CodeStats]]:
        return sorted(self.codes.items(), key=lambda kv: (-kv[1].count, kv[0]))


def hint(code: str) -> str:
    spec = REGISTRY.get(code)
    return spec.hint if spec else "(not a registry code)"


def run(snap: Snapshot, since: str | None, until: str | None, *, kind: str, top: int = 5,
        use_index: bool = True) -> Report:
    scan = Scan(snap, Query(since, until, needles=NEEDLES[kind], use_index=use_index,
                             tracebacks=False))
    col = TopCodes(kind)
    for rec in scan.records():
        col.feed(rec)
    ranked = col.ranked()
    rep = Report(f"top {kind}", problems=snap.problems)
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}",
                   f"{kind[:-1]} records": col.total, "distinct codes": len(ranked)}
    t = Table("codes", f"top {kind}", ["code", "count", "share_%", "first_seen", "last_seen",
                                       "where", "hint", "example"])
    for code, st in ranked[:top] if top else ranked:
        where = "; ".join(f"{w} ({n})" for w, n in st.where.most_common(3)) or "-"
        t.rows.append([code, st.count, round(100.0 * st.count / col.total, 2), st.first,
                       st.last, where, hint(code), st.example_id or ""])
    rep.tables.append(t)
    rep.data = {"total": col.total,
                "codes": [{"code": c, "count": s.count, "first": s.first, "last": s.last,
                           "where": dict(s.where), "events": dict(s.events),
                           "hint": hint(c), "example": s.example_id} for c, s in ranked]}
    if not ranked:
        rep.text.append(f"no {kind[:-1].upper()} records in this window")
    return rep
