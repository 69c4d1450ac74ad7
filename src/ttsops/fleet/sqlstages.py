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
from .synsql import (
    HIST,
    OPEN,
    RECS,
    ROWS,
    SYN,
    SYNTHESES,
    modes,
)
from .url import ChUrl

_PCT = (50, 95, 99)

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
    (a few small reads), or None (a window, another --stage-time, several hosts, a
    database without them: ``answer``)."""
    from ..logformat.dialects import stage_time_mode
    from .schema import has_derived

    if since is not None or until is not None or stage_time_mode() != "auto":
        return None
    if not has_derived(client, url, SYN, HIST, OPEN, RECS):
        return None
    rows = _from_blocks(client, url, slowest)
    return None if rows is None else _report(rows, since, until, slowest)


def answer(client: Any, url: ChUrl, since: str | None, until: str | None,
           slowest: int) -> Any:
    """The ``stages`` report, or None when SQL's answer could differ from the file
    engine's (the caller goes the general way)."""
    from ..forensics.analyses.stages import JOIN_MARGIN_S
    from ..forensics.reading.timeargs import shift
    from ..logformat.dialects import stage_time_mode

    start = shift(since, -JOIN_MARGIN_S) if since else None
    cum, per = modes(stage_time_mode())
    emitted = "1" if since is None else f"cts >= {lit(since)}"
    syntheses = SYNTHESES.format(table=f"`{url.database}`.`{TABLE}`", rows=ROWS,
                                  where=where_sql(start, until), cumulative=cum,
                                  per_stage=per, emitted=emitted)
    sql = _COMPONENTS.format(pcts=", ".join(_pct(q) for q in _PCT),
                             slowest=max(slowest, 0), syntheses=syntheses)
    rows = call(client, sql, settings={"max_memory_usage": 8_000_000_000})
    return _report(rows, since, until, slowest)


def _from_blocks(client: Any, url: ChUrl, slowest: int) -> list[tuple[Any, ...]] | None:
    """``_COMPONENTS``' rows for all the logs from the tables ship keeps (``SYN``,
    ``HIST``, ``OPEN``): the components counted by value, less the syntheses of the ids
    whose records span blocks as their blocks saw them, plus those syntheses joined
    again from all their records; the slowest from the syntheses' table. None when
    the counts do not add up (a view that missed a block): the general way."""
    db = url.database
    gin = "GLOBAL IN" if url.cluster else "IN"
    hosts: set[str] = set()
    open_ids: set[int] = set()
    for hid, host in call(client, f"SELECT DISTINCT hid, host FROM `{db}`.`{OPEN}`"):
        open_ids.add(int(hid))
        hosts.add(host)
    # the ids as a literal set: the servers look them up by the primary key, and read
    # the other columns only of the granules that hold one (PREWHERE: each part's
    # granule of an id is read, most parts do not hold it; a fifth of the CPU)
    pw = "WHERE"
    if len(open_ids) <= 5000:
        spans, gin = f"({', '.join(map(str, sorted(open_ids))) or '0'})", "IN"
        pw = "PREWHERE"
    else:
        spans = f"(SELECT hid FROM `{db}`.`{OPEN}`)"
    counts: dict[str, dict[float, int]] = {}
    for host, comp, val, n in call(client, f"SELECT host, comp, val, sum(cnt) FROM "
                                           f"`{db}`.`{HIST}` GROUP BY host, comp, val"):
        hosts.add(host)
        c = counts.setdefault(comp, {})
        c[val] = c.get(val, 0) + int(n)
    if len(hosts) > 1:
        return None  # the reading order of several hosts: their streams merged by time
    for pn, pv in call(client, f"SELECT pn, pv FROM `{db}`.`{SYN}` {pw} hid {gin} {spans}"):
        for comp, val in zip(pn, pv, strict=True):
            c = counts.setdefault(comp, {})
            c[val] = c.get(val, 0) - 1
    cum, per = modes("auto")
    # (RECS holds only those rows: the condition on them would cost 18.16 its index.) The
    # join runs on the server asked, on the rows the shards send: analysing it costs
    # 18.16 tens of milliseconds of CPU, once here rather than once more on every shard
    recs = f"(SELECT * FROM `{db}`.`{RECS}` {pw} hid {gin} {spans})"
    raw = SYNTHESES.format(table=recs, rows="1", where="1", cumulative=cum, per_stage=per,
                           emitted="1")
    slow: list[tuple[float, str, str]] = []
    for pairs, sid, worst in call(client, f"SELECT pairs, sid, worst FROM ({raw})",
                                  settings={"max_memory_usage": 8_000_000_000}):
        for comp, val in pairs:
            c = counts.setdefault(comp, {})
            c[val] = c.get(val, 0) + 1
            if comp == "end_to_end":
                slow.append((val, sid, worst))
    e2e = counts.get("end_to_end", {})
    if slowest > 0 and e2e:
        # the slowest are among the values from the k-th largest up (the counts say which)
        seen, floor_ = 0, None
        for v in sorted((v for v, n in e2e.items() if n > 0), reverse=True):
            seen += e2e[v]
            floor_ = v
            if seen >= slowest:
                break
        gnot = gin.replace("IN", "NOT IN")
        at_least = "" if floor_ is None or not math.isfinite(floor_) else f"e2e >= {floor_!r} AND "
        slow += call(client, f"SELECT e2e, sid, worst FROM `{db}`.`{SYN}` PREWHERE {at_least}"
                             f"isNotNull(e2e) WHERE hid {gnot} {spans} ORDER BY e2e DESC, "
                             f"sid DESC, worst DESC LIMIT {int(slowest)}")
    slow = sorted(slow, reverse=True)[:max(slowest, 0)]
    rows: list[tuple[Any, ...]] = []
    for comp, c in counts.items():
        if any(n < 0 for n in c.values()) or not all(map(math.isfinite, c)):
            return None  # a view that missed a block; values SQL and Python may differ on
        vals = sorted((v, n) for v, n in c.items() if n > 0)
        n = sum(k for _v, k in vals)
        if not n:
            continue
        whole = all(v == math.floor(v) for v, _k in vals)
        total = float(sum(int(v) * k for v, k in vals)) if whole else math.nan
        nonwhole = sum(k for v, k in vals if v != math.floor(v))
        pcts = [_pct_of(vals, n, q) for q in _PCT]
        codes = [(int(v), k) for v, k in vals] if comp == "" else []
        rows.append((comp, n, total, nonwhole, None, *pcts,
                     slow if comp == "end_to_end" else [],
                     sum(k for v, k in codes if v % 10 == 1),
                     sum(k for v, k in codes if v % 10 == 2),
                     sum(k for v, k in codes if v >= 10)))
    return rows


def _pct_of(vals: list[tuple[float, int]], n: int, q: int) -> float:
    """``_pct`` (``stats.percentile``) of the sorted values ``vals`` given as (value,
    how many), the same floating-point operations."""
    pos = (n - 1) * q / 100
    lo = math.floor(pos)

    def at(rank: int) -> float:  # the value of 0-based rank ``rank``
        seen = 0
        for v, k in vals:
            seen += k
            if rank < seen:
                return v
        return vals[-1][0]

    a, b = at(lo), at(min(lo + 1, n - 1))
    return a + (b - a) * (pos - math.floor(pos))


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
