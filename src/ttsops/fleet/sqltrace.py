"""``logs trace --source``: the rows of the ids found through the id lookup
(``schema.IDS``, ordered by id) instead of a look at every row's fields.

The lookup says, for each id, the events, the first and last time it was written with,
and the days; the fetch then asks the logs' table (ordered by event and time,
partitioned by day) for those ranges only, which reads a few granules instead of the
whole table. On a cluster the fetch also says the days as each shard's own set
(``date IN (SELECT date FROM ttsops_ids ...)`` with ``distributed_product_mode =
'local'``: the shard's ``ttsops_ids_local`` holds the ids of the rows that shard holds),
so a shard without the id reads nothing. The rows are still checked as before
(``source._conditions``: an id field holds the id; the file engine's ``trace`` checks
again), so the lookup only narrows what is read.

Two statements, measured against one (the ranges as subqueries of the fetch: 18.16
evaluates a scalar subquery of a query on a ``Distributed`` table three times, each on
every shard): the lookup and the fetch took 4 + 12 ms of the servers' CPU, the one
statement 23 ms (the month, two shards).

The lookup is read only where it is complete: on a cluster through its ``Distributed``
table (made last, after every shard's table was filled), on one server through its view
(``SELECT`` from a materialized view reads its table; the view is made after the table
was filled). A database without it (shipped by an older ttsops, or mid-upgrade) makes
the server refuse the statement (no such table): the fetch then looks at every row, as
before."""

from __future__ import annotations

from typing import Any

from .client import FleetError, call, unknown_table
from .schema import IDS
from .sqlwhere import lit
from .url import ChUrl

# the fetch's IN set of days is each shard's own (see above)
SETTINGS = {"distributed_product_mode": "local"}


def lookup_table(url: ChUrl) -> str:
    """What the lookup is read from: complete, or not there at all (see above)."""
    name = IDS if url.cluster else f"{IDS}_view"
    return f"`{url.database}`.`{name}`"


def narrow(client: Any, url: ChUrl, ids: list[str]) -> list[str] | None:
    """Conditions on the primary key (event, time) and the partition (day) that hold
    every row of ``ids``; ``["0"]`` when no row has one; None without a lookup."""
    if not ids:
        return None
    t = lookup_table(url)
    lits = ", ".join(lit(i) for i in ids)
    try:
        rows = call(client, "SELECT groupUniqArrayArray(events), min(lo), max(hi), "
                            f"groupUniqArray(date) FROM {t} WHERE idv IN ({lits}) "
                            "GROUP BY idv")
    except FleetError as e:
        if unknown_table(e):
            return None  # a database without the lookup (an older ttsops)
        raise
    if not rows:
        return ["0"]
    ranges = " OR ".join(
        f"(event IN ({', '.join(lit(e) for e in sorted(evs))}) AND ts >= {lit(lo)} "
        f"AND ts <= {lit(hi)})" for evs, lo, hi, _days in rows)
    if url.cluster:
        days = f"date IN (SELECT date FROM {t} WHERE idv IN ({lits}))"
    else:
        got = sorted({d.isoformat() for r in rows for d in r[3]})
        days = f"date IN ({', '.join(f'toDate({lit(d)})' for d in got)})"
    return [f"({ranges})", days]
