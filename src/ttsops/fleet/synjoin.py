"""The syntheses of a few id hashes joined in Python from their records, exactly as
``synsql``'s SQL joins them (``RECS_SQL`` and ``PER_SYNTHESIS`` with ``modes("auto")``):
``stages --source`` joins again the ids whose records span inserts (``sqlstages``)
here, on the few hundred rows it fetches, where 18.16 spent most of the command's time
analysing the join's query.

The same steps, and the same floating-point operations in the same order, give the
same pairs: the records of one id hash in reading order (file time, file, row), a
``synthesis_complete`` closing the stage times since the one before; per synthesis its
stages (those with a name and a ``duration_ms``), read as cumulative or per-stage as
``dialects.is_cumulative`` decides (``auto``; the file engine's rule, which the SQL
writes out), the worst component, and the pairs
(component, value) with ``('', mode code)`` last (0 none, 1 cumulative, 2 per-stage,
+10 a stage written twice, +100 more than one id of that hash).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ..logformat.dialects import is_cumulative, per_stage


class Rec(NamedTuple):
    """A row of ``ttsops_stage_recs`` (what the join reads of it)."""

    hid: int
    id: str
    file_ts: str
    file: str
    seq: int
    event: str
    stage: str
    duration_ms: float | None
    elapsed_ms: float | None
    queue_ms: float | None


class Joined(NamedTuple):
    """One synthesis: its components (``pairs``), its id and worst component."""

    pairs: list[tuple[str, float]]
    sid: str
    worst: str


def syntheses(rows: Iterable[Rec]) -> Iterator[Joined]:
    """The syntheses of ``rows`` (all the records of some id hashes), hash by hash."""
    by: dict[int, list[Rec]] = {}
    for r in rows:
        by.setdefault(r.hid, []).append(r)
    for recs in by.values():
        recs.sort(key=lambda r: (r.file_ts, r.file, r.seq))
        ids = int(len({r.id for r in recs}) != 1)
        sid = recs[0].id  # (SQL's ``any(id)``: one id, or the mode code says otherwise)
        since: list[Rec] = []
        for r in recs:
            if r.event == "synthesis_complete":
                yield _one(since, r, ids, sid)
                since = []
            else:
                since.append(r)


def _one(since: list[Rec], c: Rec, ids: int, sid: str) -> Joined:
    st = [r for r in since if r.stage != "" and r.duration_ms is not None]
    names = [r.stage for r in st]
    svals = [float(r.duration_ms) for r in st if r.duration_ms is not None]
    has_el = any(r.elapsed_ms is not None for r in st)
    n = len(svals)
    e2e, q = c.duration_ms, c.queue_ms
    cum = is_cumulative(svals, e2e, has_el, "auto")
    mode = (0 if n < 2 else 1 if cum else 2 if not has_el else 0) + 10 * (len(set(names)) != n)
    per = per_stage(svals) if cum else svals
    qw = q is not None and q != 0
    wn = names + (["queue_wait"] if qw else [])
    wv = per + ([q] if qw and q is not None else [])
    worst = "-" if not wv else wn[wv.index(max(wv))]
    pairs = list(zip(names, per, strict=True))
    if q is not None:
        pairs.append(("queue_wait", q))
    if e2e is not None:
        pairs.append(("end_to_end", e2e))
    pairs.append(("", float(mode + 100 * ids)))
    return Joined(pairs, sid, worst)
