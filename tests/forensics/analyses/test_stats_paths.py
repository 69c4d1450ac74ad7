"""Many values are sorted by numpy (``stats.sort``) and audio anomalies picked by numpy
(``AudioStats.anomalies``): the same floats, the same anomalies, in the same order, as
the pure-Python path on the same values (``BIG`` lowered so that small lists take the
numpy path)."""

from __future__ import annotations

import math
from array import array

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ttsops.forensics.analyses import audio, stats
from ttsops.forensics.analyses.diagnose_synth_frames import Pairs

# numpy's warnings on infinities would reach a user's terminal from `logs diagnose`
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

VALUES = st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64),
                            st.sampled_from([0.0, -0.0, 1.0, 1.5, 2.0, 1e300, -1e-300]),
                            st.integers(-10**6, 10**6)), min_size=1, max_size=80)


def _both(fn, *a):
    """``fn(*a)`` by the Python path, then by the numpy path."""
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(stats, "BIG", 10**9)
        slow = fn(*a)
        mp.setattr(stats, "BIG", 1)
        fast = fn(*a)
    finally:
        mp.undo()
    return slow, fast


def _same(x: float, y: float) -> None:
    assert (math.isnan(x) and math.isnan(y)) or (x == y and math.copysign(1, x)
                                                  == math.copysign(1, y)), (x, y)


@settings(max_examples=300, deadline=None)
@given(VALUES, st.sampled_from([0, 5, 25, 50, 95, 99, 100]))
@example([-1.7976931348623157e308, 1e300], 0)  # (two ranks whose difference overflows)
def test_sorted_by_numpy_gives_the_same_floats(values, q):
    for v in (values, array("d", [float(x) for x in values])):
        _same(*_both(stats.median, v))
        _same(*_both(stats.mad, v))
        s, f = _both(stats.sort, v)
        _same(stats.percentile(s, q), stats.percentile(f, q))
        assert _both(stats.percentiles, v)[0] == _both(stats.percentiles, v)[1]


def test_nan_keeps_the_python_order():
    v = [3.0, float("nan"), 1.0, 2.0] * 10
    s, f = _both(stats.sort, v)
    assert [repr(x) for x in s] == [repr(float(x)) for x in f]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["alloy", "nova"]),
                          st.one_of(st.just(float("nan")),
                                    st.floats(0, 5000, allow_nan=False),
                                    st.sampled_from([2000.0, 2001.0, 9000.0]))),
                min_size=1, max_size=120), st.booleans())
def test_anomalies_by_numpy_are_the_same(rows, bulk):
    col = audio.AudioStats(metrics=["rms"])
    for i, (voice, x) in enumerate(rows):
        col.values[(voice,)]["rms"].append(x)
        col.ids[(voice,)].append((f"ts_{i:04d}", f"2024-06-12 00:00:{i % 60:02d},{i:03d}"))
    if bulk:  # the frames' pass keeps them as Arrow strings (``Pairs``)
        for key, pairs in list(col.ids.items()):
            half = len(pairs) // 2
            p = Pairs(pairs[:half])
            p.add(pl.Series([a for a, _ in pairs[half:]]), pl.Series([b for _, b in pairs[half:]]))
            col.ids[key] = p
    mp = pytest.MonkeyPatch()
    try:
        got = []
        for big in (10**9, 1):
            mp.setattr(stats, "BIG", big)
            mp.setattr(audio, "BIG", big)
            got.append((col.anomalies(2.0, 3), col.baselines(3), col.thin_groups(3)))
    finally:
        mp.undo()
    assert repr(got[0]) == repr(got[1])


@pytest.mark.parametrize("big", [10**9, 1])
def test_a_value_on_the_threshold_is_no_anomaly(big, monkeypatch):
    monkeypatch.setattr(stats, "BIG", big)
    monkeypatch.setattr(audio, "BIG", big)
    col = audio.AudioStats(metrics=["rms"])
    thr = 2.0 * (stats.MAD_TO_SIGMA * 1.0)  # k x 1.4826 x MAD, MAD 1 around the median 0
    vals = [0.0] * 30 + [-1.0] * 30 + [1.0] * 30 + [thr, -thr, thr * 1.0001]
    for i, x in enumerate(vals):
        col.values[("alloy",)]["rms"].append(x)
        col.ids[("alloy",)].append((f"ts_{i}", f"2024-06-12 00:00:00,{i:03d}"))
    got = col.anomalies(2.0, 3)
    assert [a["id"] for a in got] == [f"ts_{len(vals) - 1}"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=False, width=64),
                          st.sampled_from([0.0, -0.0, 1.0, 2.0, math.inf, -math.inf])),
                min_size=1, max_size=40))
def test_median_by_partition_is_the_sorted_median(values):
    """``median`` of many values puts only the middle ranks in place (``np.partition``):
    the same float as the sorted list's, infinities (inf - inf: NaN) and zeros of
    either sign too, odd and even counts."""
    want = stats.percentile(sorted(values), 50)
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(stats, "BIG", 1)
        got = stats.median(values)
    finally:
        mp.undo()
    _same(want, got)
