"""Query planning over the block index: which blocks a query can answer from the index's
counts alone, which it must read, which it can skip.

A block answers a window count from its index when it lies wholly inside the window
(its first and last record times), its index carries the version 2 counts (codes by
level, statuses, failure codes) and it holds no unparsable lines (whose place in the
window only reading can tell). Blocks that straddle an end of the window are read, as
are files without an index: the answer is the same either way, only the cost differs.

Likewise a block wholly inside the window whose index keeps the head lines of its
synthesis_complete records that did not succeed (``BlockStats.failed``) answers a count
of failed syntheses (``logs patterns --where status=failed``) from them and its count of
``synthesis_complete`` records, without being read (``plan_failed``).
"""

from __future__ import annotations

from ...logindex import BlockStats, IndexDamaged
from ...plain import Plain
from .sources import Snapshot


class CountPlan(Plain):
    __slots__ = ("counted", "exclude", "read_bytes")
    FIELDS = __slots__

    def __init__(self, counted: list[BlockStats] | None = None,
                 exclude: dict[str, frozenset[int]] | None = None, read_bytes: int = 0) -> None:
        self.counted: list[BlockStats] = [] if counted is None else counted  # from the index
        # path -> block numbers
        self.exclude: dict[str, frozenset[int]] = {} if exclude is None else exclude
        self.read_bytes = read_bytes  # compressed bytes left to read (the rest of the query)

    @property
    def blocks(self) -> int:
        return len(self.counted)


def inside(b: BlockStats, since: str | None, until: str | None) -> bool:
    return b.first_ts is not None and b.last_ts is not None and \
        (since is None or b.first_ts >= since) and (until is None or b.last_ts < until)


def outside(b: BlockStats, since: str | None, until: str | None) -> bool:
    """No record of ``b`` (a block or a file's totals) can be inside the window."""
    return (since is not None and b.last_ts is not None and b.last_ts < since) or \
        (until is not None and b.first_ts is not None and b.first_ts >= until)


def span_outside(span: tuple[str | None, str | None], since: str | None,
                 until: str | None) -> bool:
    """``outside`` for a file's (first, last) record time (``FileIndex.span``: its totals
    are not decoded for a file the window does not touch)."""
    first, last = span
    return (since is not None and last is not None and last < since) or \
        (until is not None and first is not None and first >= until)


def plan_counts(snap: Snapshot, since: str | None, until: str | None, *,
                unparsable: bool = False) -> CountPlan:
    """The blocks of ``snap`` whose index counts answer a window count exactly.
    ``unparsable``: blocks holding unparsable lines too (right only for a window without
    ends, where every line counts wherever it is)."""
    plan = CountPlan()
    for f in snap.files:
        idx = f.get_index() if f.gz else None
        if idx is None:
            plan.read_bytes += f.size
            continue
        if span_outside(idx.span, since, until):  # whole files first: their block
            continue  # lists (and totals) are not even decoded
        t = idx.total
        if t.counted and (t.skipped == 0 or unparsable) and inside(t, since, until):
            plan.counted.append(t)
            plan.exclude[f.where] = frozenset(range(idx.nblocks))
            continue
        ex: set[int] = set()
        try:
            blocks = idx.blocks
        except IndexDamaged as e:  # its block list disagrees with its checked table
            f.index_damaged(str(e))
            plan.read_bytes += f.size
            continue
        for i, b in enumerate(blocks):
            if b.counted and (b.skipped == 0 or unparsable) and inside(b, since, until):
                ex.add(i)
                plan.counted.append(b)
            elif not outside(b, since, until):
                plan.read_bytes += b.clen
        if ex:
            plan.exclude[f.where] = frozenset(ex)
    return plan


class FailedPlan(Plain):
    __slots__ = ("completes", "exclude", "lines")
    FIELDS = __slots__

    def __init__(self) -> None:
        self.exclude: dict[str, frozenset[int]] = {}  # path -> blocks not to read
        self.lines: list[str] = []  # their failed synthesis_complete head lines
        self.completes = 0  # their synthesis_complete records, failed or not


def plan_failed(snap: Snapshot, since: str | None, until: str | None) -> FailedPlan:
    """The blocks of ``snap`` wholly inside the window whose index keeps their failed
    ``synthesis_complete`` lines (``FailedPlan``); every other block is read."""
    plan = FailedPlan()
    for f in snap.files:
        idx = f.get_index() if f.gz else None
        if idx is None:
            continue
        if span_outside(idx.span, since, until):
            continue
        try:
            blocks = idx.blocks
        except IndexDamaged as e:  # its block list disagrees with its checked table
            f.index_damaged(str(e))
            continue
        ex: set[int] = set()
        for i, b in enumerate(blocks):
            if b.failed is not None and inside(b, since, until):
                ex.add(i)
                plan.lines.extend(b.failed)
                plan.completes += b.events.get("synthesis_complete", 0)
        if ex:
            plan.exclude[f.where] = frozenset(ex)
    return plan
