"""Query planning over the block index (``reading/plan.py``): which blocks a query can
answer from the index alone. The answers themselves are held to the unindexed ones in
``test_index_agreement.py``; here, that the plans really leave blocks unread."""

from __future__ import annotations

from ttsops.forensics.reading.plan import plan_failed
from ttsops.forensics.reading.sources import open_snapshot
from ttsops.logindex import read_index


def test_failed_syntheses_come_from_the_index_of_every_block_inside_the_window(incident):
    d, _truth = incident
    rotated = sorted(d.glob("app.log.*.gz"))
    indexes = [read_index(p) for p in rotated]
    assert all(ix is not None for ix in indexes)
    blocks = [b for ix in indexes for b in ix.blocks]  # type: ignore[union-attr]
    not_ok = sum(n for b in blocks for s, n in b.status.items() if s != "success")
    assert not_ok > 0
    with open_snapshot([d]) as snap:
        plan = plan_failed(snap, None, None)
    # no window: every block of every rotated file (the live file has no index)
    assert {k: len(v) for k, v in plan.exclude.items()} == \
        {str(p): len(ix.blocks) for p, ix in zip(rotated, indexes, strict=True)}  # type: ignore[union-attr]
    assert len(plan.lines) == not_ok
    assert plan.completes == sum(b.events.get("synthesis_complete", 0) for b in blocks)
    assert all(" - synthesis_complete: " in ln and "status=success" not in ln
               for ln in plan.lines)

    # a window: only the blocks wholly inside it; those that straddle an end are read
    mid = sorted(b.first_ts for b in blocks)[len(blocks) // 2]
    since = mid[:11] + mid[11:13] + ":00:00,000"
    until = blocks[-1].first_ts
    with open_snapshot([d]) as snap:
        part = plan_failed(snap, since, until)
    kept = [b for b in blocks if b.first_ts >= since and b.last_ts < until]
    assert 0 < sum(len(v) for v in part.exclude.values()) == len(kept) < len(blocks)
    assert part.completes == sum(b.events.get("synthesis_complete", 0) for b in kept)


def test_an_index_without_the_failed_lines_leaves_its_blocks_to_be_read(incident):
    d, _ = incident
    with open_snapshot([d]) as snap:
        for f in snap.files:
            ix = f.get_index() if f.gz else None
            for b in ix.blocks if ix is not None else ():
                b.failed = None  # as read from an index written before they were kept
        plan = plan_failed(snap, None, None)
    assert plan.exclude == {} and plan.lines == [] and plan.completes == 0
