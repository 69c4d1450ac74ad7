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
from .schema import STRING_FIELDS, TABLE
from .sqlwhere import lit, where_sql
from .url import ChUrl

# the pseudo-fields of a record (filters.with_pseudo): from its time, level, event, logger
_PSEUDO = {"ts": "ts", "level": "level", "event": "event", "logger": "logger",
           "day": "substring(ts, 1, 10)", "hour": "substring(ts, 1, 13)",
           "minute": "substring(ts, 1, 16)"}


def _value(f: str, n: int | None = None) -> tuple[str, str]:
    """(is ``f`` present, its value) as SQL, for a record's fields with pseudo-fields;
    with ``n`` its index in ``keys`` (0 when absent) is named ``i<n>``."""
    at = f"indexOf(keys, {lit(f)})" if n is None else f"(indexOf(keys, {lit(f)}) AS i{n})"
    i = at if n is None else f"i{n}"
    if f in _PSEUDO:  # a field of that name wins (setdefault)
        return "1", f"if({at} > 0, vals[{i}], {_PSEUDO[f]})"
    return f"{at} > 0", f"vals[{i}]"  # vals[0]: ''


def _equal(f: str, value: str) -> str:
    """SQL for ``f = value`` (filters.Cond): on the golden column where it says the
    same (a string field holds '' when absent: a value that is not '' is equal only
    when present), else on ``keys``/``vals``."""
    if f in STRING_FIELDS and value:
        return f"{f} = {lit(value)}"
    ok, v = _value(f)
    return f"({ok} AND {v} = {lit(value)})"


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
    table = f"`{url.database}`.`{TABLE}`"
    rows_of += f" AND {where_sql(since, until)}"
    total, no_id = call(client, f"SELECT count(), countIf(id = '') FROM {table} "
                                f"WHERE {rows_of}")[0]
    if not event and no_id:
        return None  # a synthesis_complete without an id: the Assembler's own rules
    keep = " AND ".join([*(_equal(c.field, c.value) for c in where if c.op == "="),
                         *([] if event else ["id != ''"])]) or "1"
    cols = []
    for n, f in enumerate(fields):
        ok, v = _value(f, n)
        cols += [f"{ok} AS h{n}", f"{v} AS v{n}"]
    keys = [x for n in range(len(fields)) for x in (f"h{n}", f"v{n}")]
    sql = (f"SELECT {', '.join([*cols, 'count()'])} FROM {table} WHERE {rows_of} AND {keep}"
           + (f" GROUP BY {', '.join(keys)}" if keys else ""))
    groups: Counter[tuple[str, ...]] = Counter()
    matched = 0
    for row in call(client, sql):
        n = int(row[-1])
        d = {f: row[2 * i + 1] for i, f in enumerate(fields) if row[2 * i]}
        if n and matches(where, d):
            matched += n
            groups[group_key(d, by, buckets)] += n
    return patterns.report(groups, int(total) - (int(no_id) if not event else 0), matched,
                           since, until, by=by, where=where, event=event, top=top)
