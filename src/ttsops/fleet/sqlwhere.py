"""The WHERE clauses the fleet's queries share: literals and the time window."""

from __future__ import annotations

__all__ = ["lit", "where_sql"]


def lit(s: str) -> str:
    """A ClickHouse string literal."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def where_sql(since: str | None, until: str | None, extra: list[str] | None = None) -> str:
    conds = list(extra or ())
    if since is not None:
        conds.append(f"ts >= {lit(since)}")
    if until is not None:
        conds.append(f"ts < {lit(until)}")
    return " AND ".join(conds) if conds else "1"
