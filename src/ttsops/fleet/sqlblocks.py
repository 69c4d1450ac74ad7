"""``stages --source`` over all the logs of one host from the tables ``ship`` keeps
beside the logs (``synsql``: ``SYN``, ``HIST``, ``OPEN``, ``RECS``), in two statements.

The components counted by value as each insert saw its syntheses (``HIST``), less the
syntheses of the ids whose records span inserts as their inserts saw them (``SYN`` of
the ids of ``OPEN``), plus those syntheses joined again from all their records
(``RECS``, joined here: ``synjoin``); the slowest from the syntheses' table. The first
statement asks whether the tables are complete, which ids span inserts, and the
counts; the second, with those ids as a literal set (the servers look them up by the
primary key and read only the granules that hold one; a ``GLOBAL IN`` subquery would
read the whole key column), their syntheses and records, and the slowest of the
others. Each statement is one ``UNION ALL`` whose branches share one row shape, its
first column saying which branch a row is of.
"""

from __future__ import annotations

import math
from typing import Any

from .client import FleetError, call, unknown_table
from .sqlwhere import lit
from .synjoin import Rec, syntheses
from .synsql import HIST, OPEN, RECS, SYN
from .url import ChUrl

PCT = (50, 95, 99)  # the percentiles `stages` reports

# more spanning ids than this are said as a subquery, not a literal set
_LITERAL_IDS = 5000
_MEMORY = {"max_memory_usage": 8_000_000_000}


def _select(k: int, hid: str, s: str, f: str, n: str = "toUInt64(0)",
            m: str | None = None) -> str:
    """One branch's columns (every branch names them: the union's row shape)."""
    nulls = "" if m is None else f", toUInt8({m}) AS m"
    return f"SELECT toUInt8({k}) AS k, {hid} AS hid, {s} AS s, {f} AS f, {n} AS n{nulls}"


def _first(db: str, cluster: bool) -> tuple[str, list[str]]:
    """The tables' completeness (the names ``has_derived`` asks for), the spanning ids
    and their hosts, the counts, the counts' hosts: rows (branch, hid, a string, a
    value, a count) -- plain columns, which the client reads fastest (the counts are a
    few thousand rows); and the names of the tables."""
    want = sorted(n if cluster else f"{n}_view" for n in (SYN, HIST, OPEN, RECS))
    names = ", ".join(f"'{n}'" for n in want)

    def sel(k: int, hid: str, a: str, v: str = "0.", n: str = "0") -> str:
        return (f"SELECT toUInt8({k}) AS k, toUInt64({hid}) AS hid, {a} AS a, "
                f"toFloat64({v}) AS v, toUInt64({n}) AS n")

    return "\nUNION ALL\n".join((
        f"{sel(0, '0', 'name')} FROM system.tables WHERE database = {lit(db)} AND name IN "
        f"({names})",
        f"{sel(1, 'hid', 'host')} FROM `{db}`.`{OPEN}` GROUP BY hid, host",
        f"{sel(2, '0', 'comp', 'val', 'sum(cnt)')} FROM `{db}`.`{HIST}` GROUP BY comp, val",
        f"{sel(3, '0', 'host')} FROM `{db}`.`{HIST}` GROUP BY host")), want


def _second(db: str, spans: str | None, pw: str, gin: str, floor: float | None,
            slowest: int) -> str:
    """The spanning ids' syntheses (branch 3) and records (4), the slowest of the
    other syntheses (5: from ``floor`` up, when given): rows (branch, hid, strings,
    values, count, which values are NULL). ``spans``: the spanning ids (None: none)."""
    parts = []
    if spans is not None:
        parts += [
            f"{_select(3, 'hid', 'pn', 'pv', m='0')} FROM `{db}`.`{SYN}` {pw} hid {gin} {spans}",
            _select(4, "hid", "[id, file_ts, file, event, stage]",
                    "[ifNull(duration_ms, 0.), ifNull(elapsed_ms, 0.), ifNull(queue_ms, 0.)]",
                    "seq", "isNull(duration_ms) + 2 * isNull(elapsed_ms) + 4 * isNull(queue_ms)")
            + f" FROM `{db}`.`{RECS}` {pw} hid {gin} {spans}"]
    if slowest > 0:
        parts.append(_slowest(db, spans, gin, floor, slowest))
    return "\nUNION ALL\n".join(parts)


def _slowest(db: str, spans: str | None, gin: str, floor: float | None, slowest: int) -> str:
    at_least = "" if floor is None else f"e2e >= {floor!r} AND "
    others = "" if spans is None else f"WHERE hid {gin.replace('IN', 'NOT IN')} {spans} "
    return (f"{_select(5, 'toUInt64(0)', '[sid, worst]', '[assumeNotNull(e2e)]', m='0')} "
            f"FROM (SELECT sid, worst, e2e FROM `{db}`.`{SYN}` PREWHERE {at_least}"
            f"isNotNull(e2e) {others}ORDER BY e2e DESC, sid DESC, worst DESC "
            f"LIMIT {int(slowest)})")


def rows(client: Any, url: ChUrl, slowest: int) -> list[tuple[Any, ...]] | None:
    """``sqlstages``' rows of the components (as its ``_COMPONENTS`` query gives them)
    for all the logs, or None: the tables missing or incomplete (a database of an older
    ttsops, an upgrade cut short), several hosts (the reading order of their records is
    their streams' merge by time), counts that do not add up (a view that missed a
    block), values SQL and Python may differ on -- the general way answers."""
    db = url.database
    sql, want = _first(db, bool(url.cluster))
    try:
        got = call(client, sql)
    except FleetError as e:
        if unknown_table(e):
            return None
        raise
    have: set[str] = set()
    hosts: set[str] = set()
    open_ids: set[int] = set()
    counts: dict[str, dict[float, int]] = {}
    for k, hid, a, v, n in got:
        if k == 0:
            have.add(a)
        elif k == 2:
            counts.setdefault(a, {})[v] = int(n)
        else:
            hosts.add(a)
            if k == 1:
                open_ids.add(int(hid))
    if have != set(want) or len(hosts) > 1:
        return None
    spans, pw, gin = _spans(db, open_ids, bool(url.cluster))
    floor = _floor(counts.get("end_to_end", {}), slowest)
    slow: list[tuple[float, str, str]] = []
    recs: list[Rec] = []
    sql = _second(db, spans, pw, gin, floor, slowest)
    for k, hid, s, f, n, m in (call(client, sql, settings=_MEMORY) if sql else ()):
        if k == 3:
            for comp, val in zip(s, f, strict=True):
                c = counts.setdefault(comp, {})
                c[val] = c.get(val, 0) - 1
        elif k == 4:
            recs.append(Rec(int(hid), s[0], s[1], s[2], int(n), s[3], s[4],
                            None if m & 1 else f[0], None if m & 2 else f[1],
                            None if m & 4 else f[2]))
        else:
            slow.append((f[0], s[0], s[1]))
    for syn in syntheses(recs):
        for comp, val in syn.pairs:
            c = counts.setdefault(comp, {})
            c[val] = c.get(val, 0) + 1
            if comp == "end_to_end":
                slow.append((val, syn.sid, syn.worst))
    slow = sorted(slow, reverse=True)[:max(slowest, 0)]
    return _components(counts, slow)


def _spans(db: str, open_ids: set[int], cluster: bool) -> tuple[str | None, str, str]:
    """(the spanning ids as SQL -- None: none --, PREWHERE or WHERE, IN or GLOBAL IN)."""
    if not open_ids:
        return None, "PREWHERE", "IN"
    if len(open_ids) <= _LITERAL_IDS:
        return f"({', '.join(map(str, sorted(open_ids)))})", "PREWHERE", "IN"
    return (f"(SELECT hid FROM `{db}`.`{OPEN}`)", "WHERE",
            "GLOBAL IN" if cluster else "IN")


def _floor(e2e: dict[float, int], rank: int) -> float | None:
    """The ``rank``-th largest end-to-end time of the counts (None: fewer, or one that
    is not finite). The slowest syntheses that do not span inserts are among those from
    it up: joining again the syntheses of the spanning ids changes their stages, not
    their end-to-end times (each is its ``synthesis_complete``'s, counted once, in the
    insert that holds it), so the counts hold the end-to-end times of the answer."""
    seen = 0
    for v in sorted((v for v, n in e2e.items() if n > 0), reverse=True):
        seen += e2e[v]
        if seen >= rank:
            return v if math.isfinite(v) else None
    return None


def _components(counts: dict[str, dict[float, int]], slow: list[tuple[float, str, str]]
                ) -> list[tuple[Any, ...]] | None:
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
        pcts = [_pct_of(vals, n, q) for q in PCT]
        codes = [(int(v), k) for v, k in vals] if comp == "" else []
        rows.append((comp, n, total, nonwhole, None, *pcts,
                     slow if comp == "end_to_end" else [],
                     sum(k for v, k in codes if v % 10 == 1),
                     sum(k for v, k in codes if v % 10 == 2),
                     sum(k for v, k in codes if v >= 10)))
    return rows


def _pct_of(vals: list[tuple[float, int]], n: int, q: int) -> float:
    """``stats.percentile`` of the sorted values ``vals`` given as (value, how many),
    the same floating-point operations as ``sqlstages``' SQL."""
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
