"""``logs trace --source``: the rows of the ids found through the id lookup
(``schema.IDS``, ordered by id) instead of a look at every row's fields.

The lookup says, for each id, the events, the first and last time it was written with,
and the days; the fetch then asks the logs' table (ordered by event and time) for
those ranges only, which reads a few granules instead of the whole table. The rows
are still checked as before (``source._conditions``: an id field holds the id; the
file engine's ``trace`` checks again), so the lookup only narrows what is read."""

from __future__ import annotations

from typing import Any

from .client import call
from .schema import IDS, has_ids
from .sqlwhere import lit
from .url import ChUrl


def narrow(client: Any, url: ChUrl, ids: list[str]) -> list[str] | None:
    """Conditions on the primary key (event, time) and the partition (day) that hold
    every row of ``ids``; ``["0"]`` when no row has one; None without a lookup."""
    if not ids or not has_ids(client, url):
        return None
    lits = ", ".join(lit(i) for i in ids)
    rows = call(client, "SELECT groupUniqArrayArray(events), min(lo), max(hi), "
                        f"groupUniqArray(date) FROM `{url.database}`.`{IDS}` "
                        f"WHERE idv IN ({lits}) GROUP BY idv")
    if not rows:
        return ["0"]
    ranges = " OR ".join(
        f"(event IN ({', '.join(lit(e) for e in sorted(evs))}) AND ts >= {lit(lo)} "
        f"AND ts <= {lit(hi)})" for evs, lo, hi, _days in rows)
    days = sorted({d.isoformat() for r in rows for d in r[3]})
    return [f"({ranges})", f"date IN ({', '.join(f'toDate({lit(d)})' for d in days)})"]
