"""The SQL that joins a host's records into syntheses as ``assemble.Assembler`` joins
them, shared by the tables ``ship`` keeps beside the logs (``schema.derived``, filled by
materialized views block by block) and by ``stages --source`` (``sqlstages``), which
reads them or runs the join itself. See ``sqlstages`` for how the answer is kept equal
to the file engine's.
"""

from __future__ import annotations

import re

# one row a synthesis: its components as (name, value) pairs, plus ('', mode code):
# 0 none, 1 cumulative, 2 per-stage, +10 when a stage was written twice. ``RECS_SQL``
# joins the records of one id hash (``ids``: more than one id has it), ``PER_SYNTHESIS``
# makes the syntheses of them (its aliases, computed in steps by ``layered``; one row
# each: ``arrayJoin``)
RECS_SQL = """any(id) AS sid, uniqExact(id) != 1 AS ids,
    arraySort(x -> x.1, groupArray(tuple(tuple(file_ts, file, seq),
      toUInt8(event = 'synthesis_complete'), stage, duration_ms, elapsed_ms, queue_ms, ts)))
      AS recs"""
PER_SYNTHESIS = """
  arrayMap(x -> x.2, recs) AS isc,
  arrayCumSum(isc) AS k,
  arrayMap((x, kk) -> if(x.2 = 1, kk, kk + 1), recs, k) AS syn,
  arrayJoin(arrayFilter(i -> isc[i] = 1, arrayEnumerate(recs))) AS ci,
  recs[ci] AS c,
  syn[ci] AS m,
  arrayFilter((x, sy) -> sy = m AND x.2 = 0 AND x.3 != '' AND isNotNull(x.4), recs, syn)
    AS st,
  arrayMap(x -> x.3, st) AS names,
  arrayMap(x -> assumeNotNull(x.4), st) AS svals,
  arrayExists(x -> isNotNull(x.5), st) AS has_el,
  length(svals) AS n,
  c.4 AS e2e, c.6 AS q, c.7 AS cts,
  {cumulative} AS cum,
  multiIf(n < 2, 0, cum, 1, {per_stage}, 2, 0)
    + 10 * (length(arrayDistinct(names)) != n) AS mode,
  if(cum, arrayMap((v, i) -> v - if(i = 1, 0., svals[i - 1]), svals, arrayEnumerate(svals)),
     svals) AS per,
  isNotNull(q) AND assumeNotNull(q) != 0 AS qw,
  arrayConcat(names, if(qw, ['queue_wait'], emptyArrayString())) AS wn,
  arrayConcat(per, if(qw, [assumeNotNull(q)], emptyArrayFloat64())) AS wv,
  if(length(wv) = 0, '-', wn[indexOf(wv, arrayReduce('max', wv))]) AS worst,
  arrayConcat(
    arrayMap((nm, v) -> tuple(nm, v), names, per),
    arrayFilter(x -> isNotNull(q), [tuple('queue_wait', ifNull(q, 0.))]),
    arrayFilter(x -> isNotNull(e2e), [tuple('end_to_end', ifNull(e2e, 0.))]),
    [tuple('', toFloat64(mode + 100 * ids))]) AS pairs"""
ROWS = "event IN ('stage_time', 'synthesis_complete') AND id != ''"


def syntheses_sql(table: str, rows: str, where: str, mode: str, emitted: str) -> str:
    """The SELECT of the syntheses (``cts``, ``worst``, ``pairs``, ``sid``) of the rows of
    ``table`` that meet ``rows`` and ``where``, stage times read as ``--stage-time``
    ``mode`` says, those that meet ``emitted`` (of ``cts``). (``recs``' aliases are
    made in ``ignore``, as ``block_selects``' are: 18.16 does not find the columns of a
    subquery that only lambdas name.)"""
    return ("SELECT s.1 AS cts, s.2 AS worst, s.3 AS pairs, sid FROM (\n  SELECT sid, arrayJoin("
            + layered(("cts", "worst", "pairs"), mode) + ") AS s,\n  ignore(" + RECS_SQL
            + ", arrayMap(x -> x.2, recs) AS isc) AS _defs\n  FROM " + table
            + f"\n  WHERE {rows} AND {where}\n  GROUP BY cityHash64(id))\nWHERE {emitted}\n")


SYN, HIST, OPEN, RECS = "ttsops_syn", "ttsops_stage_hist", "ttsops_open", "ttsops_stage_recs"
SYN_COLUMNS = ("`hid` UInt64, `sid` String, `cts` String, `e2e` Nullable(Float64), "
               "`worst` String, `pn` Array(String), `pv` Array(Float64), `_defs` UInt8, "
               "`host` String")
HIST_COLUMNS = "`host` String, `comp` String, `val` Float64, `cnt` UInt64, `_defs` UInt8"
OPEN_COLUMNS = "`hid` UInt64, `host` String"
# the records the syntheses are joined from, by id hash: those of the ids in ``OPEN``
# are read from here (a few granules) rather than from the logs' table (all of it)
RECS_COLUMNS = ("`hid` UInt64, `id` String, `file_ts` String, `file` String, `seq` UInt64, "
                "`event` String, `stage` String, `duration_ms` Nullable(Float64), "
                "`elapsed_ms` Nullable(Float64), `queue_ms` Nullable(Float64), `ts` String")


def inlined(given: dict[str, str] | None = None, mode: str = "auto") -> dict[str, str]:
    """``PER_SYNTHESIS``' aliases written out, each as one expression of ``recs`` and
    ``isc`` with ``ci`` (the synthesis's complete record) a lambda's parameter: 18.16
    loses track of a second ``arrayJoin`` after a ``GROUP BY``, and computes the
    syntheses of one id hash fastest as one ``arrayMap`` over them. ``given``: aliases
    taken as these expressions instead (``layered``); ``mode``: ``--stage-time``'s."""
    cum, per = modes(mode)
    items, depth, cur = [], 0, ""
    for ch in PER_SYNTHESIS.format(cumulative=cum, per_stage=per):
        depth += (ch in "([") - (ch in ")]")
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    done: dict[str, str] = {}
    for item in items:
        expr, _as, alias = item.strip().rpartition(" AS ")
        for a, d in done.items():
            expr = re.sub(rf"(?<![\w.']){a}(?![\w'])", f"({d})", expr)
        done[alias] = (given[alias] if given and alias in given
                       else "ci" if alias == "ci" else expr)
    return done


# ``layered``'s steps: the aliases each hands to the next (as a tuple's items)
# (never an array a step indexes: 18.16 writes ``(t.5)[i]`` as ``t.5[i]`` when it
# sends a query to a cluster's shards, which they cannot parse)
_STEPS = (("cts", "e2e", "q", "st"),
          ("cts", "e2e", "q", "names", "per", "mode"))


def layered(final: tuple[str, ...], mode: str = "auto") -> str:
    """The tuple of the aliases ``final`` for every synthesis of one id hash, as an
    array, computed in steps (``arrayMap`` over the tuples of the step before, ``_STEPS``):
    written out in one expression, an alias is repeated in every one that uses it (the
    worst component's was 13 kB of SQL, 18.16 analysed the ``ttsops_syn`` view's 23 kB
    for ~75 ms of every insert); each step names the values of the one before once."""
    done = inlined(mode=mode)
    expr = each_synthesis(f"tuple({', '.join(done[a] for a in _STEPS[0])})")
    for n, (before, now) in enumerate(zip(_STEPS, (*_STEPS[1:], final), strict=True)):
        var = f"t{n}"
        done = inlined({a: f"{var}.{i}" for i, a in enumerate(before, 1)}, mode)
        expr = f"arrayMap({var} -> tuple({', '.join(done[a] for a in now)}), {expr})"
    return expr


def each_synthesis(expr: str) -> str:
    """``expr`` (of ``ci``) for every synthesis of one id hash, as an array."""
    return f"arrayMap(ci -> {expr}, arrayFilter(i -> isc[i] = 1, arrayEnumerate(recs)))"


def block_selects(db: str, source: str, where: str = "1") -> dict[str, str]:
    """Table -> the SELECT of its rows from the rows of ``source`` (a view's block, or
    the rows already there when a database of an older ttsops is upgraded)."""
    # (a block is one host's: the host is said for the count of hosts, see answer)
    src = f"FROM `{db}`.`{source}` WHERE {ROWS} AND {where} GROUP BY cityHash64(id), host"
    d = inlined()
    defs = f"ignore({RECS_SQL}, arrayMap(x -> x.2, recs) AS isc) AS _defs"
    return {
        SYN: ("SELECT cityHash64(id) AS hid, sid, (arrayJoin("
              + layered(("cts", "e2e", "worst", "pairs"))
              + ") AS s).1 AS cts, s.2 AS e2e, s.3 AS worst, arrayMap(x -> x.1, s.4) AS pn, "
              f"arrayMap(x -> x.2, s.4) AS pv, {defs}, host {src}"),
        HIST: ("SELECT host, (arrayJoin(arrayReduce('groupArrayArray', "
               + each_synthesis(d["pairs"]) + ")) AS p).1 AS comp, p.2 AS val, "
               f"toUInt64(1) AS cnt, {defs} {src}"),
        OPEN: (f"SELECT cityHash64(id) AS hid, host {src} "
               "HAVING argMax(event, tuple(file_ts, file, seq)) = 'stage_time'"),
        RECS: ("SELECT cityHash64(id) AS hid, id, file_ts, file, seq, event, stage, "
               f"duration_ms, elapsed_ms, queue_ms, ts FROM `{db}`.`{source}` "
               f"WHERE {ROWS} AND {where}"),
    }



def hist_of_syn(db: str, syn: str) -> str:
    """``HIST``'s rows from those of ``SYN`` (``syn``: its view): each synthesis's
    components, the syntheses joined once per block for both (a view on the inserts of
    the view that fills ``SYN`` from the logs)."""
    return ("SELECT host, (arrayJoin(arrayMap((n, v) -> tuple(n, v), pn, pv)) AS p).1 AS comp, "
            f"p.2 AS val, toUInt64(1) AS cnt, toUInt8(0) AS _defs FROM `{db}`.`{syn}`")


def modes(mode: str) -> tuple[str, str]:
    """(is the synthesis cumulative, is it per-stage) for ``--stage-time`` ``mode``."""
    if mode == "cumulative":
        return "n >= 2", "0"
    if mode == "per-stage":
        return "0", "1"
    auto = ("n >= 2 AND NOT has_el"
            " AND arrayAll((v, i) -> i = 1 OR v >= svals[i - 1], svals, arrayEnumerate(svals))"
            " AND (isNull(e2e) OR svals[n] <= (assumeNotNull(e2e) + 1. * n)"
            " + 0.01 * assumeNotNull(e2e))")
    return auto, "NOT has_el"
