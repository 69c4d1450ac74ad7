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
from .client import FleetError, call, unknown_table
from .schema import STRING_FIELDS, TABLE
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
    there, complete: on a cluster its ``Distributed`` table, on one server its view,
    both made after the table was filled; a database without it makes the server
    refuse the statement, and the logs' rows answer), else from the logs' rows. One
    statement: the rows' total and the groups."""
    from ..forensics.analyses import patterns

    fields = list(dict.fromkeys([*by, *(c.field for c in where)]))
    if not event and not set(fields) <= patterns.COMPLETE_FIELDS:
        return None  # fields of the synthesis's other records: the general way
    got = None
    if fields_table and not event and fieldsql.covers(fields):
        name = fieldsql.COMPLETE if url.cluster else f"{fieldsql.COMPLETE}_view"
        try:
            # the fields as columns (a few read, not every row's keys/vals); its rows
            # are the synthesis_complete records
            got = call(client, _sql(f"`{url.database}`.`{name}`", "1", "v_id", fields,
                                    where, event, since, until, fieldsql.column))
        except FleetError as e:
            if not unknown_table(e):
                raise
    if got is None:
        rows_of = ("event = 'synthesis_complete'" if not event else "level != ''"
                   if event == "*" else f"event = {lit(event)} AND level != ''")
        got = call(client, _sql(f"`{url.database}`.`{TABLE}`", rows_of, "id", fields,
                                where, event, since, until, fieldsql.value))
    return _report(got, fields, by=by, where=where, buckets=buckets, event=event, top=top,
                   since=since, until=until)


def _sql(table: str, rows_of: str, sid: str, fields: list[str], where: list[Any],
         event: str | None, since: str | None, until: str | None,
         on: Callable[[str], tuple[str, str]]) -> str:
    """The rows' count (and how many have no id) and the groups, in one statement: a
    row ``(0, ..., total, no id)``, and ``(1, present, value, ..., count, 0)`` per
    group."""
    rows_of += f" AND {where_sql(since, until)}"
    keep = " AND ".join([*(_equal(c.field, c.value, on) for c in where if c.op == "="),
                         *([] if event else [f"{sid} != ''"])]) or "1"
    blank, cols = [], []
    for n, f in enumerate(fields):
        ok, v = fieldsql.value(f, n) if on is fieldsql.value else on(f)
        blank += [f"toUInt8(0) AS h{n}", f"'' AS v{n}"]
        cols += [f"toUInt8({ok}) AS h{n}", f"{v} AS v{n}"]
    keys = [x for n in range(len(fields)) for x in (f"h{n}", f"v{n}")]
    return (f"SELECT {', '.join(['toUInt8(0) AS g', *blank])}, count(), countIf({sid} = '') "
            f"FROM {table} WHERE {rows_of} UNION ALL "
            f"SELECT {', '.join(['toUInt8(1) AS g', *cols])}, count(), toUInt64(0) "
            f"FROM {table} WHERE {rows_of} AND {keep}"
            + (f" GROUP BY {', '.join(keys)}" if keys else ""))


def _report(got: list[Any], fields: list[str], *, by: list[str], where: list[Any],
            buckets: dict[str, Any], event: str | None, top: int, since: str | None,
            until: str | None) -> Any:
    """The report from ``_sql``'s rows (None: a synthesis_complete without an id, which
    the Assembler's own rules answer)."""
    from ..forensics.analyses import patterns
    from ..forensics.reading.filters import group_key, matches

    total = no_id = 0
    groups: Counter[tuple[str, ...]] = Counter()
    matched = 0
    for row in got:
        if not row[0]:
            total, no_id = int(row[-2]), int(row[-1])
            continue
        n = int(row[-2])
        d = {f: row[2 * i + 2] for i, f in enumerate(fields) if row[2 * i + 1]}
        if n and matches(where, d):
            matched += n
            groups[group_key(d, by, buckets)] += n
    if not event and no_id:
        return None  # a synthesis_complete without an id: the Assembler's own rules
    return patterns.report(groups, total - (no_id if not event else 0), matched,
                           since, until, by=by, where=where, event=event, top=top)
