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
from .sqlwhere import lit, where_sql
from .url import ChUrl

_PCT = (50, 95, 99)

# one row a synthesis: its components as (name, value) pairs, plus ('', mode code):
# 0 none, 1 cumulative, 2 per-stage, +10 when a stage was written twice
_SYNTHESES = """
SELECT
  arrayMap(x -> x.2, recs) AS isc,
  arrayCumSum(isc) AS k,
  arrayMap((x, kk) -> if(x.2 = 1, kk, kk + 1), recs, k) AS syn,
  arrayJoin(arrayFilter(i -> isc[i] = 1, arrayEnumerate(recs))) AS ci,
  recs[ci] AS c,
  syn[ci] AS m,
  arrayFilter((x, sy) -> sy = m AND x.2 = 0 AND x.3 != '' AND isNotNull(x.4), recs, syn)
    AS st,
  arrayMap(x -> x.3, st) AS names,
  arrayMap(x -> assumeNotNull(x.4), st) AS vals,
  arrayExists(x -> isNotNull(x.5), st) AS has_el,
  length(vals) AS n,
  c.4 AS e2e, c.6 AS q, c.7 AS cts,
  {cumulative} AS cum,
  multiIf(n < 2, 0, cum, 1, {per_stage}, 2, 0)
    + 10 * (length(arrayDistinct(names)) != n) AS mode,
  if(cum, arrayMap((v, i) -> v - if(i = 1, 0., vals[i - 1]), vals, arrayEnumerate(vals)),
     vals) AS per,
  isNotNull(q) AND assumeNotNull(q) != 0 AS qw,
  arrayConcat(names, if(qw, ['queue_wait'], emptyArrayString())) AS wn,
  arrayConcat(per, if(qw, [assumeNotNull(q)], emptyArrayFloat64())) AS wv,
  if(length(wv) = 0, '-', wn[indexOf(wv, arrayReduce('max', wv))]) AS worst,
  arrayConcat(
    arrayMap((nm, v) -> tuple(nm, v), names, per),
    arrayFilter(x -> isNotNull(q), [tuple('queue_wait', ifNull(q, 0.))]),
    arrayFilter(x -> isNotNull(e2e), [tuple('end_to_end', ifNull(e2e, 0.))]),
    [tuple('', toFloat64(mode + 100 * ids))]) AS pairs,
  sid
FROM (
  SELECT any(id) AS sid, uniqExact(id) != 1 AS ids,
    arraySort(x -> x.1, groupArray(tuple(tuple(file_ts, file, seq),
      toUInt8(event = 'synthesis_complete'), stage, duration_ms, elapsed_ms, queue_ms, ts)))
      AS recs
  FROM {table}
  WHERE event IN ('stage_time', 'synthesis_complete') AND id != '' AND {where}
  GROUP BY cityHash64(id))
WHERE {emitted}
"""

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


def _modes(mode: str) -> tuple[str, str]:
    """(is the synthesis cumulative, is it per-stage) for ``--stage-time`` ``mode``."""
    if mode == "cumulative":
        return "n >= 2", "0"
    if mode == "per-stage":
        return "0", "1"
    auto = ("n >= 2 AND NOT has_el"
            " AND arrayAll((v, i) -> i = 1 OR v >= vals[i - 1], vals, arrayEnumerate(vals))"
            " AND (isNull(e2e) OR vals[n] <= (assumeNotNull(e2e) + 1. * n)"
            " + 0.01 * assumeNotNull(e2e))")
    return auto, "NOT has_el"


def answer(client: Any, url: ChUrl, since: str | None, until: str | None,
           slowest: int) -> Any:
    """The ``stages`` report, or None when SQL's answer could differ from the file
    engine's (the caller goes the general way)."""
    from ..forensics.analyses.stages import JOIN_MARGIN_S
    from ..forensics.reading.timeargs import shift
    from ..logformat.dialects import stage_time_mode

    start = shift(since, -JOIN_MARGIN_S) if since else None
    cum, per = _modes(stage_time_mode())
    emitted = "1" if since is None else f"cts >= {lit(since)}"
    syntheses = _SYNTHESES.format(table=f"`{url.database}`.`{TABLE}`",
                                  where=where_sql(start, until), cumulative=cum,
                                  per_stage=per, emitted=emitted)
    sql = _COMPONENTS.format(pcts=", ".join(_pct(q) for q in _PCT),
                             slowest=max(slowest, 0), syntheses=syntheses)
    rows = call(client, sql, settings={"max_memory_usage": 8_000_000_000})
    return _report(rows, since, until, slowest)


def _report(rows: list[tuple[Any, ...]], since: str | None, until: str | None,
            slowest: int) -> Any:
    from ..forensics.analyses.answer import Report, Table
    from ..forensics.analyses.stages import COMPONENTS

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
    rep = Report("stages")
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}", "syntheses": n_syn}
    if cum:
        rep.summary["stage_time"] = (f"cumulative (time since the request started) in {cum} "
                                     f"of {cum + per} syntheses: read as the difference "
                                     "from the stage before")
    t = Table("stages", "stage latency (ms); share = sum of the component / sum of end to end",
              ["component", "n", "p50", "p95", "p99", "mean", "share_%"])
    for r2 in out:
        t.rows.append([r2["component"], r2["n"], round(r2["p50"], 1), round(r2["p95"], 1),
                       round(r2["p99"], 1), round(r2["mean"], 1),
                       None if r2["share_pct"] is None else round(r2["share_pct"], 1)])
    rep.tables.append(t)
    if slow:
        st = Table("slowest", "slowest syntheses", ["id", "end_to_end_ms", "largest component"])
        st.rows = [[i, e, c] for e, i, c in slow]
        rep.tables.append(st)
    rep.data = {"rows": out, "slowest": [{"id": i, "e2e_ms": e, "component": c}
                                         for e, i, c in slow],
                "stage_time": {"cumulative": cum, "per_stage": per}}
    if n_syn == 0:
        rep.empty = f"no completed syntheses between {since or 'the start'} and " \
                    f"{until or 'the end'}"
    if not math.isfinite(e2e_sum):
        return None
    return rep
