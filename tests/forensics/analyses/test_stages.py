"""stages: percentiles equal the generator's (same values, independent computation)."""

from __future__ import annotations

from ..forensics_helpers import cli_json


def test_stage_percentiles_equal_the_truth(incident):
    d, truth = incident
    rep = cli_json("stages", "--dir", str(d))
    rows = {r["component"]: r for r in rep["rows"]}
    for stage, want in truth["stages"].items():
        got = rows[stage]
        assert got["n"] == want["n"]
        for q in ("p50", "p95", "p99"):
            assert round(got[q], 3) == want[q], (stage, q)
    for comp, key in (("queue_wait", "queue_wait"), ("end_to_end", "e2e")):
        for q in ("p50", "p95", "p99"):
            assert round(rows[comp][q], 3) == truth[key][q]
    assert abs(rows["end_to_end"]["share_pct"] - 100.0) < 1e-9
    shares = sum(r["share_pct"] for c, r in rows.items() if c != "end_to_end")
    assert 95.0 < shares <= 100.0  # the rest is overhead between stages
    slowest = rep["slowest"]
    assert slowest[0]["e2e_ms"] == max(s["e2e_ms"] for s in slowest)


def test_stages_by_voice_and_where(incident):
    d, _ = incident
    rep = cli_json("stages", "--dir", str(d), "--by", "voice", "--where", "cache_hit=false")
    voices = {r["voice"] for r in rep["rows"]}
    assert {"alloy", "nova", "onyx"} <= voices
    q = [r for r in rep["rows"] if r["component"] == "queue_wait"]
    assert all(r["n"] > 0 for r in q)


def test_slow_queue_window_shows_in_stages(incident):
    d, truth = incident
    a, b = truth["windows"]["queue"]
    rep = cli_json("stages", "--dir", str(d), "--since", a, "--until", b)
    rows = {r["component"]: r for r in rep["rows"]}
    assert rows["queue_wait"]["p50"] > 1500
    assert rep["slowest"][0]["component"] == "queue_wait"


def test_long_value_columns_are_sorted_as_sorted_sorts_them():
    """The numpy sort of a month's columns gives what ``sorted`` gives, value for value
    (signed zeros and infinities in their places)."""
    import random
    from array import array

    from ttsops.forensics.analyses.stages import _sorted

    rnd = random.Random(6)
    values = [rnd.choice([0.0, -0.0, float("inf"), -float("inf"), 1e-300,
                          round(rnd.uniform(-5, 3000), 1)]) for _ in range(150_000)]
    got, want = _sorted(array("d", values)), sorted(values)
    assert len(got) == len(want) == 150_000
    assert [repr(x) for x in got] == [repr(x) for x in want]


def test_a_negative_slowest_count_lists_none_instead_of_crashing():
    from ttsops.forensics.analyses.stages import StageTimes

    col = StageTimes(slowest=-1)
    col.offer_slow(10.0, "ts_1", "llm_inference")
    col.offer_slow(20.0, "ts_2", "llm_inference")
    assert col.slow == []
