"""The log under sustained load across many rotations, with the server SIGKILLed in the
middle (see load.kill_under_load). "Answered" means the client received the response.

What must hold: every rotated .gz passes `gzip -t` and reads back; every line of the
plain files is a whole record; every synthesis answered more than 0.5 s before the kill
has exactly one synthesis_complete; no synthesis_complete is doubled or belongs to a
request nobody sent; so the count of synthesis_complete equals the answered syntheses,
plus those the server finished whose response was still in flight at the kill, minus
those answered in the last moment whose record was still in the writer's memory (the
writer never makes a request wait for the disk). Those lost are the tail of the writer's
queue, and only that: no record reached the disk of a request sent after a lost one was
answered.

How long that tail is depends on the machine, not on the code: normally the writer's
50 ms poll (a handful of records), but a writer that waits for the previous file's
compression (its fsync stalls 100-200 ms now and then on a busy disk) or for a CPU is
behind by that long. A bound in records (it was "in flight + 8") failed in CI with 52 lost,
all answered in the last 0.5 s; the bound in time (0.5 s) and the tail's shape are what the
writer promises."""

from __future__ import annotations

import pytest

from .load import kill_under_load

pytestmark = pytest.mark.slow


def test_sigkill_under_load_across_rotations_loses_and_corrupts_nothing(tmp_path):
    r = kill_under_load(tmp_path, seconds=7.0, clients=8, max_bytes=32768, min_rotated=10)
    assert r["rotated"] >= 10, r["files"]
    assert r["bad_gz"] == [] and r["bad_gz_after"] == []
    assert r["torn"] == []
    assert r["early"] > 100 and r["early_missing"] == []
    assert r["doubled"] == [] and r["phantom"] == []
    assert r["synthesis_complete"] == (r["answered_syntheses"] - len(r["late_missing"])
                                       + len(r["in_flight_logged"]))
    assert r["not_tail"] == [], (r["not_tail"][:5], r["lost_within_s"])
    assert r["recovered_same"]
