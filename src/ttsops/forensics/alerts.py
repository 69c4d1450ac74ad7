"""``logs alerts``: the alert rules over history -- every episode of every rule in a
window, with the record that fired it and when it ended. The engine is the one
``logs tail`` runs live (``rules.Engine``), fed the same records in the same order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from .output import Report, Table
from .rules import Alert, Engine, Rule
from .scan import Query, Scan
from .sources import Snapshot


def evaluate(snap: Snapshot, since: str | None, until: str | None, rules: list[Rule], *,
             use_index: bool = True, progress: Callable[[int], None] | None = None,
             ) -> tuple[list[Alert], Scan]:
    eng = Engine(rules)
    scan = Scan(snap, Query(since, until, needles=eng.needles(), use_index=use_index,
                            tracebacks=False),
                progress=progress)
    scan.sidecar_needles = True  # type: ignore[attr-defined]  # (sidecar.applies)
    for rec in scan.records():
        eng.feed(rec)
    return eng.finish(), scan


def run(snap: Snapshot, since: str | None, until: str | None, rules: list[Rule], *,
        use_index: bool = True, source: str = "") -> Report:
    episodes, _scan = evaluate(snap, since, until, rules, use_index=use_index)
    rep = Report("alerts", problems=snap.problems)
    by_rule = Counter(a.rule for a in episodes)
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}",
                   "rules": f"{len(rules)} ({source or 'built-in defaults'})",
                   "episodes": len(episodes),
                   "rules that fired": ", ".join(f"{r} ({n})" for r, n in by_rule.items())
                   or "-"}
    t = Table("alerts", "alert episodes, in order",
              ["fired", "rule", "severity", "value", "detail", "example", "ended"])
    for a in episodes:
        t.rows.append([a.ts, a.rule, a.severity,
                       None if a.value is None else round(a.value, 4), a.detail,
                       a.id or a.request_id or "", a.resolved or "(ongoing at the end)"])
    rep.tables.append(t)
    rr = Table("rules", "rules", ["rule", "kind", "severity", "condition", "meaning",
                                  "episodes"])
    for r in rules:
        rr.rows.append([r.name, r.kind, r.severity, r.describe(), r.message,
                        by_rule.get(r.name, 0)])
    rep.tables.append(rr)
    rep.data = {"episodes": [a.to_json() for a in episodes]}
    return rep
