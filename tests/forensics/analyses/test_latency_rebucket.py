"""``LatencyBuckets.rebucket`` (diagnose's latency per time bucket merged to the span's
size, freeing each fine bucket as it is merged) gives what feeding the same syntheses
(in time order) at the coarse size gives: the same values in the same order, the same slowest."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.forensics.analyses.diagnose_collect import LatencyBuckets
from ttsops.forensics.reading.assemble import Synthesis
from ttsops.logline import STAGES, Record

SYN = st.tuples(st.integers(0, 3 * 86400 - 1), st.integers(0, 999),
                st.sampled_from(["success", "failed"]), st.sampled_from(["true", "false"]),
                st.floats(0, 5000, allow_nan=False), st.floats(0, 100, allow_nan=False),
                st.sampled_from(STAGES), st.floats(0, 900, allow_nan=False))


def _synthesis(i: int, t: int, ms: int, status: str, hit: str, e2e: float, queue: float,
               stage: str, st_ms: float) -> Synthesis:
    d, s = divmod(t, 86400)
    ts = f"2024-06-{10 + d:02d} {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d},{ms:03d}"
    fields = {"id": f"ts_{i:05d}", "status": status, "cache_hit": hit,
              "duration_ms": repr(e2e), "queue_ms": repr(queue)}
    rec = Record(ts, "app", "INFO", "synthesis_complete", fields, [], 0)
    return Synthesis(f"ts_{i:05d}", complete=rec, stages={stage: st_ms})


@settings(max_examples=60, deadline=None)
@given(st.lists(SYN, max_size=120), st.sampled_from([600.0, 1800.0, 3600.0]))
def test_rebucket_is_feeding_at_the_coarse_size(rows, coarse):
    # (in time order, as the syntheses of a log complete)
    syns = [_synthesis(i, *r) for i, r in enumerate(sorted(rows, key=lambda r: r[:2]))]
    fine, direct = LatencyBuckets(300.0), LatencyBuckets(coarse)
    for s in syns:
        fine.feed(s)
        direct.feed(s)
    fine.rebucket(coarse)
    assert fine.bucket_s == coarse
    assert {k: {c: list(v) for c, v in d.items()} for k, d in fine.b.items()} == \
        {k: {c: list(v) for c, v in d.items()} for k, d in direct.b.items()}
    assert fine.slowest == direct.slowest
