"""The WHERE clauses the fleet's queries share: literals and the time window."""

from __future__ import annotations

import re

__all__ = ["DAY", "lit", "where_sql"]

# a time that starts with a day: its ``date`` sorts as its text does
DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"
_DAY = re.compile(DAY)


def lit(s: str) -> str:
    """A ClickHouse string literal."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def where_sql(since: str | None, until: str | None, extra: list[str] | None = None) -> str:
    """The rows of the window [since, until) (and ``extra``). The days are said too, so
    that the server reads only their partitions: a row's ``date`` is the day its time
    starts with (``shiprows.date_of``), or 1970-01-01 for a time that does not start
    with one -- always read, as the time decides."""
    conds = list(extra or ())
    if since is not None:
        conds.append(f"ts >= {lit(since)}")
        if _DAY.match(since[:10]):
            conds.append(f"(date = toDate('1970-01-01') OR date >= toDate({lit(since[:10])}))")
    if until is not None:
        conds.append(f"ts < {lit(until)}")
        if _DAY.match(until[:10]):
            conds.append(f"(date = toDate('1970-01-01') OR date <= toDate({lit(until[:10])}))")
    return " AND ".join(conds) if conds else "1"
