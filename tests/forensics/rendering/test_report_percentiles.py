"""The report's percentiles (``percentiles_of``: two ranks put in place by
``numpy.partition``) are those of the sorted values (``stats.percentile(stats.sort(v), q)``,
the charts' old way), to the bit: zeros of either sign, infinities, NaN, ties, any size."""

from __future__ import annotations

import math
import struct
from array import array

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ttsops.forensics.analyses.stats import percentile, sort
from ttsops.forensics.rendering.report_html import percentile_of, percentiles_of

_VALUE = st.one_of(st.floats(-1e6, 1e6), st.integers(-5, 5).map(float), st.just(-0.0),
                   st.just(0.0), st.just(math.inf), st.just(-math.inf), st.just(math.nan))
_QS = st.lists(st.floats(0, 100), min_size=1, max_size=4)


def _bits(x: float | None) -> bytes | None:
    return None if x is None else struct.pack("<d", x)


def _sorted_way(vals: array[float], q: float) -> float | None:
    return percentile(sort(vals), q) if len(vals) else None


@settings(max_examples=400, deadline=None)
@given(st.lists(_VALUE, max_size=60), _QS)
@example([0.0, -0.0], [0.0, 50.0, 100.0])
@example([-0.0, -0.0, 0.0, 3.0], [0.0, 25.0, 33.3, 100.0])
@example([-1.0, -0.0, 0.0], [50.0, 100.0])
@example([-0.0], [50.0])
def test_percentiles_as_sorted(values: list[float], qs: list[float]) -> None:
    vals = array("d", values)
    want = [_bits(_sorted_way(vals, q)) for q in qs]
    assert [_bits(x) for x in percentiles_of(vals, qs)] == want
    assert [_bits(percentile_of(vals, q)) for q in qs] == want


@settings(max_examples=20, deadline=None)
@given(st.integers(20_000, 60_000), st.integers(0, 2**32 - 1), _QS)
def test_many_values(n: int, seed: int, qs: list[float]) -> None:
    """A bucket of a month (``sort`` sorts it by numpy), whole milliseconds with ties."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vals = array("d", np.round(rng.lognormal(6.0, 1.0, n)).tolist())
    assert [_bits(x) for x in percentiles_of(vals, qs)] == \
        [_bits(_sorted_way(vals, q)) for q in qs]
