"""``logs stages --source`` (without ``--by``/``--where``): per-stage p50/p95/p99, mean
and share as SQL, the file engine's ``stages`` report built from one grouped answer.

The records of each id are joined into syntheses in the database as
``assemble.Assembler`` joins them (reading order: the host's files in order, the rows in
them; a ``synthesis_complete`` closes its id's stage times before it), each synthesis's
stage times read as cumulative or per-stage as ``assemble.read_stages`` decides
(``dialects.is_cumulative``), then grouped by component. The percentiles are those of
``stats.percentile`` (linear between closest ranks) taken from the sorted values: SQL's
``quantileExact`` picks one rank, which is not the same number. The same floating-point
operations in the same order give the same bits. Where the answer could differ --
values that are not whole numbers (``math.fsum`` against SQL's ``sum``), a stage
written twice in one synthesis, two ids of one hash, several hosts (the streams' merge
order) -- ``answer`` says so (None) and the command goes the general way.
"""

from __future__ import annotations

import math
from typing import Any

from .client import call
from .schema import TABLE
from .sqlblocks import PCT
from .sqlwhere import lit, where_sql
from .synsql import ROWS, syntheses_sql
from .url import ChUrl

# the components: count, exact sum, values that are not whole, the sorted values'
# percentiles; the slowest syntheses; the modes (component '')
_COMPONENTS = """
SELECT p.1 AS comp, count() AS n, sum(p.2), countIf(p.2 != floor(p.2)),
  arraySort(groupArray(p.2)) AS s,
  {pcts},
  arraySlice(arrayReverseSort(groupArrayIf(tuple(p.2, sid, worst), p.1 = 'end_to_end')),
             1, {slowest}),
  countIf(p.1 = '' AND toUInt32(p.2) % 10 = 1), countIf(p.1 = '' AND toUInt32(p.2) % 10 = 2),
  countIf(p.1 = '' AND p.2 >= 10)
FROM (SELECT arrayJoin(pairs) AS p, sid, worst FROM ({syntheses}))
GROUP BY comp
"""


def _pct(q: int) -> str:
    """``stats.percentile(s, q)`` of the sorted array ``s`` of ``n`` values, as SQL."""
    pos = f"((n - 1) * {q} / 100)"
    lo = f"toUInt64(floor({pos}))"
    return (f"s[{lo} + 1] + (s[least({lo} + 2, n)] - s[{lo} + 1]) * ({pos} - floor({pos}))")


def from_blocks(client: Any, url: ChUrl, since: str | None, until: str | None,
                slowest: int) -> Any:
    """The ``stages`` report of all the logs of one host from the tables ship keeps
    (two statements: ``sqlblocks``), or None (a window, another --stage-time, several
    hosts, a database without them: ``answer``)."""
    from ..logformat.dialects import stage_time_mode

    if since is not None or until is not None or stage_time_mode() != "auto":
        return None
    from . import sqlblocks

    rows = sqlblocks.rows(client, url, slowest)
    return None if rows is None else _report(rows, since, until, slowest)


def answer(client: Any, url: ChUrl, since: str | None, until: str | None,
           slowest: int) -> Any:
    """The ``stages`` report, or None when SQL's answer could differ from the file
    engine's (the caller goes the general way)."""
    from ..forensics.analyses.stages import JOIN_MARGIN_S
    from ..forensics.reading.timeargs import shift
    from ..logformat.dialects import stage_time_mode

    start = shift(since, -JOIN_MARGIN_S) if since else None
    emitted = "1" if since is None else f"cts >= {lit(since)}"
    joined = syntheses_sql(f"`{url.database}`.`{TABLE}`", ROWS, where_sql(start, until),
                           stage_time_mode(), emitted)
    sql = _COMPONENTS.format(pcts=", ".join(_pct(q) for q in PCT),
                             slowest=max(slowest, 0), syntheses=joined)
    rows = call(client, sql, settings={"max_memory_usage": 8_000_000_000})
    return _report(rows, since, until, slowest)


def _report(rows: list[tuple[Any, ...]], since: str | None, until: str | None,
            slowest: int) -> Any:
    from ..forensics.analyses.stages import COMPONENTS, report

    comps = {r[0]: r for r in rows if r[0] != ""}
    meta = next((r for r in rows if r[0] == ""), None)
    n_syn = int(meta[1]) if meta else 0
    cum, per, bad = (int(meta[-3]), int(meta[-2]), int(meta[-1])) if meta else (0, 0, 0)
    if bad or any(int(r[3]) for r in comps.values()) or any(
            abs(float(r[2])) >= 2.0 ** 52 for r in comps.values()):
        return None  # a stage twice, ids sharing a hash, sums SQL may round
    e2e = comps.get("end_to_end")
    e2e_sum = float(e2e[2]) if e2e else 0.0
    other = sorted(c for c in comps if c not in COMPONENTS and c != "end_to_end")
    out: list[dict[str, Any]] = []
    for comp in (*COMPONENTS, *other, "end_to_end"):
        r = comps.get(comp)
        if r is None or not r[1]:
            continue
        n, total = int(r[1]), float(r[2])
        out.append({"component": comp, "n": n, "p50": float(r[5]), "p95": float(r[6]),
                    "p99": float(r[7]), "mean": total / n,
                    "share_pct": (100.0 * total / e2e_sum) if e2e_sum else None})
    slow = [(float(e), str(i), str(w)) for e, i, w in (e2e[8] if e2e else [])][:slowest]
    if not math.isfinite(e2e_sum):
        return None
    return report(out, slow, n_syn, cum, per, since, until)
