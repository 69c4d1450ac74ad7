"""``logs patterns --source``: the counts as one ``GROUP BY`` in the database, the file
engine's ``patterns`` report built from the grouped rows.

The rows are grouped by the values of the fields the command asks about (``--by`` and
``--where``; a field absent from a record kept apart from an empty one); each group is
then judged in Python exactly as the file engine judges one synthesis or record
(``filters.matches`` and ``group_key`` on the same field values), weighted by its count.
Equality conditions are also said in SQL (a row that fails one makes no group of its
own), so the groups stay few. A synthesis here is one ``synthesis_complete`` record with
an id (``assemble.Assembler``: its fields with the pseudo-fields of its own time); the
grouping of fields a synthesis takes from its other records (``--by voice``: the
start's) goes the general way, as does a window holding a ``synthesis_complete`` without
an id (``answer`` gives None)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .client import call
from .schema import TABLE
from .sqlwhere import lit, where_sql
from .url import ChUrl

# the pseudo-fields of a record (filters.with_pseudo): from its time, level, event, logger
_PSEUDO = {"ts": "ts", "level": "level", "event": "event", "logger": "logger",
           "day": "substring(ts, 1, 10)", "hour": "substring(ts, 1, 13)",
           "minute": "substring(ts, 1, 16)"}


def _value(f: str) -> tuple[str, str]:
    """(is ``f`` present, its value) as SQL, for a record's fields with pseudo-fields."""
    k = lit(f)
    given = f"vals[indexOf(keys, {k})]"
    if f in _PSEUDO:  # a field of that name wins (setdefault)
        return "1", f"if(has(keys, {k}), {given}, {_PSEUDO[f]})"
    return f"has(keys, {k})", given


def answer(client: Any, url: ChUrl, since: str | None, until: str | None, *, by: list[str],
           where: list[Any], buckets: dict[str, Any], event: str | None, top: int) -> Any:
    """The ``patterns`` report, or None when the general way must answer."""
    from ..forensics.analyses import patterns
    from ..forensics.reading.filters import group_key, matches

    fields = list(dict.fromkeys([*by, *(c.field for c in where)]))
    if not event:
        if not set(fields) <= patterns.COMPLETE_FIELDS:
            return None  # fields of the synthesis's other records: the general way
        rows_of = "event = 'synthesis_complete'"
    elif event == "*":
        rows_of = "level != ''"
    else:
        rows_of = f"event = {lit(event)} AND level != ''"
    eqs = []
    for c in where:
        if c.op == "=":
            ok, v = _value(c.field)
            eqs.append(f"({ok} AND {v} = {lit(c.value)})")
    keep = " AND ".join(eqs) or "1"
    cols = []
    for f in fields:
        ok, v = _value(f)
        cols += [f"if(keep, {ok}, 0)", f"if(keep, {v}, '')"]
    idok = "1" if event else "id != ''"
    named = [f"{c} AS c{i}" for i, c in enumerate(cols)]
    sql = (f"SELECT {idok} AS idok, {keep} AS keep, {', '.join([*named, 'count()'])} "
           f"FROM `{url.database}`.`{TABLE}` WHERE {rows_of} AND {where_sql(since, until)} "
           f"GROUP BY {', '.join(['idok', 'keep', *(f'c{i}' for i in range(len(cols)))])}")
    groups: Counter[tuple[str, ...]] = Counter()
    total = matched = 0
    for row in call(client, sql):
        idok, ok, vals, n = row[0], row[1], row[2:-1], int(row[-1])
        if not idok:
            return None  # a synthesis_complete without an id: the Assembler's own rules
        total += n
        if not ok:
            continue
        d = {f: vals[2 * i + 1] for i, f in enumerate(fields) if vals[2 * i]}
        if matches(where, d):
            matched += n
            groups[group_key(d, by, buckets)] += n
    return patterns.report(groups, total, matched, since, until, by=by, where=where,
                           event=event, top=top)
