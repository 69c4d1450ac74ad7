"""``logs trace --source``: the rows of the ids found through the id lookup
(``schema.IDS``, ordered by id) instead of a look at every row's fields -- in the same
statement as the fetch of the rows (one round trip).

The lookup says, for each id, the events, the first and last time it was written with,
and the days; the fetch asks the logs' table (ordered by event and time, partitioned by
day) for those ranges only, which reads a few granules instead of the whole table. The
lookup is said as subqueries of the fetch: the events and days as ``IN (SELECT ...)``
sets, the times as a scalar ``(min(lo), max(hi))`` of each id (``WITH``), all of which
the server turns into conditions on the primary key and the partitions before it reads.
On a cluster the ``IN`` sets are each shard's own (``distributed_product_mode =
'local'``: the shard's ``ttsops_ids_local``, which holds the ids of the rows that shard
holds), so a shard without the id reads nothing. The rows are still checked as before
(``source._conditions``: an id field holds the id; the file engine's ``trace`` checks
again), so the lookup only narrows what is read.

The lookup is read only where it is complete: on a cluster through its ``Distributed``
table (made last, after every shard's table was filled), on one server through its view
(``SELECT`` from a materialized view reads its table; the view is made after the table
was filled). A database without it (shipped by an older ttsops, or mid-upgrade) makes
the server refuse the statement (no such table): ``source`` then fetches without the
lookup, every row looked at, as before."""

from __future__ import annotations

from .schema import IDS
from .sqlwhere import lit
from .url import ChUrl

# the sets of the lookup's IN subqueries are each shard's own (see above)
SETTINGS = {"distributed_product_mode": "local"}


def lookup_table(url: ChUrl) -> str:
    """What the lookup is read from: complete, or not there at all (see above)."""
    name = IDS if url.cluster else f"{IDS}_view"
    return f"`{url.database}`.`{name}`"


def narrowing(url: ChUrl, ids: list[str]) -> tuple[str, list[str]]:
    """(``WITH`` clause, conditions) that hold every row of ``ids`` and read only the
    ranges of the primary key (event, time) and the days the lookup gives for them."""
    t = lookup_table(url)
    withs, ranges = [], []
    for n, i in enumerate(ids):
        withs.append(f"(SELECT (min(lo), max(hi)) FROM {t} WHERE idv = {lit(i)}) AS _id{n}")
        ranges.append(f"(event IN (SELECT arrayJoin(events) FROM {t} WHERE idv = {lit(i)}) "
                      f"AND ts >= _id{n}.1 AND ts <= _id{n}.2)")
    days = (f"date IN (SELECT date FROM {t} WHERE idv IN "
            f"({', '.join(lit(i) for i in ids)}))")
    return "WITH " + ", ".join(withs) + " ", [f"({' OR '.join(ranges)})", days]
