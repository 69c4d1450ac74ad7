"""``Minutes`` (a chart's values per minute, kept as numpy runs) holds what a dict of
``array('d')`` per minute held, and merges into buckets as ``Collect.view``'s loop over
that dict did: the same values in the same order (NaN too: compared as bytes)."""

from __future__ import annotations

from array import array

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttsops.forensics.rendering.report_minutes import BASE, Minutes, packed, unpacked

_VALUE = st.one_of(st.floats(-1e6, 1e6), st.just(float("nan")), st.just(-0.0), st.just(0.0))
# a batch: fed one at a time (``add``) or at once (``add_values``); minutes near each other
_BATCH = st.tuples(st.booleans(), st.lists(st.tuples(st.integers(-3, 40), _VALUE), max_size=30))


def _reference(batches: list[tuple[bool, list[tuple[int, float]]]]) -> dict[int, array[float]]:
    ref: dict[int, array[float]] = {}
    for _one, pairs in batches:
        for m, x in pairs:
            ref.setdefault(m, array("d")).append(x)
    return ref


def _fed(batches: list[tuple[bool, list[tuple[int, float]]]], base: int) -> Minutes:
    got = Minutes()
    for one, pairs in batches:
        if one:
            for m, x in pairs:
                got.add(base + m, x)
        else:
            got.add_values(np.array([base + m for m, _x in pairs], dtype=np.int64),
                           np.array([x for _m, x in pairs], dtype=np.float64))
    return got


def _bytes(d: dict[int, array[float]]) -> list[tuple[int, bytes]]:
    return [(k, v.tobytes()) for k, v in d.items()]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_BATCH, max_size=6), st.integers(0, 3), st.sampled_from([60, 300, 600, 900]),
       st.integers(1, 12), st.lists(st.booleans(), max_size=12), st.floats(-200.0, 2000.0))
@example([(False, [(3, 1.0), (1, 2.0), (3, 3.0)]), (True, [(1, 4.0), (0, 5.0)])], 0, 60, 4,
         [], 0.0)
def test_buckets_are_the_loop_over_the_minutes(batches, shift, bucket, n, missing, t0):
    base = 28_000_000 + shift  # epoch minutes of today's logs
    ref = {base + m: v for m, v in _reference(batches).items()}
    got = _fed(batches, base)
    assert _bytes(got.as_dict()) == _bytes(ref)
    missing = (missing + [False] * n)[:n]
    t0 = base * BASE + t0
    want = [array("d") for _ in range(n)]  # ``Collect.view``'s loop before ``Minutes``
    for b, vals in ref.items():
        i = int((b * BASE - t0) // bucket)
        if 0 <= i < n and not missing[i]:
            want[i].extend(vals)
    assert [a.tobytes() for a in got.buckets(t0, bucket, n, missing)] == \
        [a.tobytes() for a in want]


def test_nothing_fed_is_empty_buckets():
    m = Minutes()
    assert m.as_dict() == {}
    assert m.buckets(0.0, 60, 3, [False] * 3) == [array("d")] * 3


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                          st.integers(-2**31 - 2, 2**31 + 2).map(float),
                          st.integers(-3, 2**16 + 3).map(float),
                          st.integers(-10**9, 10**9).map(lambda k: k / 1000.0)),
                max_size=20))
@example([0.0, -0.0, 1.0])
@example([0.0, 65535.0, 7.0])
@example([65536.0, 3.0])
@example([0.5, 65.535])
@example([2147483647.0])
@example([0.001, 1.5])
def test_packed_values_come_back_to_the_bit(xs):
    v = np.array(xs, dtype=np.float64)
    got = unpacked(packed(v))
    assert got.dtype == np.float64 and got.tobytes() == v.tobytes()


def test_whole_milliseconds_are_packed_in_four_bytes():
    v = np.array([463.0, 6.0, 26.0, 1e6], dtype=np.float64)
    p = packed(v)
    assert isinstance(p, tuple) and p[0].dtype == np.int32 and p[1] == 1
    p = packed(np.array([463.0, 0.0, 65535.0]))  # (under 65.536 s: two bytes)
    assert isinstance(p, tuple) and p[0].dtype == np.uint16 and p[1] == 1
    assert packed(np.array([463.0, -1.0]))[0].dtype == np.int32
    assert isinstance(packed(np.array([0.5, 0.25])), tuple)  # (whole microseconds)
    assert not isinstance(packed(np.array([0.1 + 0.2])), tuple)  # (not exact at 1/1000)
