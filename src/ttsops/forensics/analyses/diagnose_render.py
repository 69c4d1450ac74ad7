"""``logs diagnose``, step three: rendering. The ranked findings as a :class:`Report`:
a summary, the findings table, the findings in words (rich markup, log values escaped)
with their example traces as timelines, and the same as JSON data.
"""

from __future__ import annotations

from ...logline import Record
from .answer import Report, Table, safe
from .diagnose_collect import Collected
from .diagnose_judge import SEVERITY, Finding, pct
from .trace import timelines

COLORS = {3: "red", 2: "yellow", 1: "cyan", 0: "dim"}


def _text(findings: list[Finding], traces: dict[str, list[Record]]) -> list[str]:
    out: list[str] = []
    for i, f in enumerate(findings, 1):
        color = COLORS[f.severity]
        # titles and details hold log values (codes, user agents, details): safe()
        out.append(f"[bold {color}]{i}. {safe('[' + SEVERITY[f.severity] + ']')}[/] "
                   f"{safe(f.title)}")
        out.extend(f"   {safe(d)}" for d in f.details)
        if f.example and f.example in traces:
            recs = traces[f.example]
            out.append(f"   example {safe(f.example)}: " + " → ".join(
                safe(r.event or "(text)") for r in recs))
            for tl in timelines(recs):
                out.extend("   " + line for line in tl.render()[1:])
        out.append("")
    return out


def render(c: Collected, findings: list[Finding], traces: dict[str, list[Record]]) -> Report:
    since, until = c.since, c.until
    total, nfail = c.total, c.nfail
    rep = Report("diagnose", problems=c.snap.problems)
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}",
                   "records": c.win.records, "syntheses": total,
                   "failure rate": pct(nfail / total) if total else "-",
                   "findings": len(findings)}  # as many as are listed, info included
    t = Table("findings", "findings, most severe first", ["rank", "severity", "kind", "finding",
                                                          "affected", "example"])
    for i, f in enumerate(findings, 1):
        t.rows.append([i, SEVERITY[f.severity], f.kind, f.title, f.affected, f.example or ""])
    rep.tables.append(t)
    rep.text.extend(_text(findings, traces))
    rep.data = {"findings": [{"rank": i, "severity": SEVERITY[f.severity], "kind": f.kind,
                              "title": f.title, "details": f.details, "affected": f.affected,
                              "example": f.example, "data": f.data}
                             for i, f in enumerate(findings, 1)],
                "top_errors": [{"code": code, "count": s.count, "where": dict(s.where)}
                               for code, s in c.errs.ranked()[:5]],
                "top_warnings": [{"code": code, "count": s.count}
                                 for code, s in c.warns.ranked()[:5]]}
    if c.win.records == 0:
        rep.empty = f"no records between {since or 'the start'} and {until or 'the end'}"
    return rep
