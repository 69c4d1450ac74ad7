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
from collections.abc import Callable
from typing import Any

from . import fieldsql
from .client import call
from .schema import STRING_FIELDS, TABLE, has_derived
from .sqlwhere import lit, where_sql
from .url import ChUrl


def _equal(f: str, value: str, on: Callable[[str], tuple[str, str]]) -> str:
    """SQL for ``f = value`` (filters.Cond) on what ``on`` reads (``fieldsql.value``:
    the logs' ``keys``/``vals``, or its golden column where that says the same: a string
    field holds '' when absent; ``fieldsql.column``: the fields' table). A value that is
    not '' is equal only where the field is present."""
    if on is fieldsql.value and f in STRING_FIELDS and value:
        return f"{f} = {lit(value)}"
    ok, v = on(f)
    return (f"{v} = {lit(value)}" if value or ok == "1"
            else f"({ok} AND {v} = {lit(value)})")


def answer(client: Any, url: ChUrl, since: str | None, until: str | None, *, by: list[str],
           where: list[Any], buckets: dict[str, Any], event: str | None, top: int,
           fields_table: bool = True) -> Any:
    """The ``patterns`` report, or None when the general way must answer; from the
    fields' table where it holds the fields asked about (``fields_table``: where it is
    there), else from the logs' rows."""
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
    on: Callable[[str], tuple[str, str]] = fieldsql.value
    table, sid = f"`{url.database}`.`{TABLE}`", "id"
    if (fields_table and not event and fieldsql.covers(fields)
            and has_derived(client, url, fieldsql.COMPLETE)):
        # the fields as columns (a few read, not every row's keys/vals); its rows are
        # the synthesis_complete records
        table, on, sid = f"`{url.database}`.`{fieldsql.COMPLETE}`", fieldsql.column, "v_id"
        rows_of = "1"
    rows_of += f" AND {where_sql(since, until)}"
    total, no_id = call(client, f"SELECT count(), countIf({sid} = '') FROM {table} "
                                f"WHERE {rows_of}")[0]
    if not event and no_id:
        return None  # a synthesis_complete without an id: the Assembler's own rules
    keep = " AND ".join([*(_equal(c.field, c.value, on) for c in where if c.op == "="),
                         *([] if event else [f"{sid} != ''"])]) or "1"
    cols = []
    for n, f in enumerate(fields):
        ok, v = fieldsql.value(f, n) if on is fieldsql.value else on(f)
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
