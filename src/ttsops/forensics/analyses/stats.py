"""Small statistics without numpy at import (``ttsops logs`` must start fast); many
values (a month's latencies or audio metrics) are sorted by numpy, imported then, to the
same floats."""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Any, cast

BIG = 20_000  # values from which ``sort`` sorts with numpy


def floats(values: Sequence[float]) -> Any:
    """``values`` as a numpy float64 array (a view of an ``array('d')``)."""
    import numpy as np

    if isinstance(values, array) and values.typecode == "d":
        return np.frombuffer(values, dtype=np.float64) if len(values) else \
            np.zeros(0, dtype=np.float64)
    return np.asarray(values, dtype=np.float64)


def sort(values: Sequence[float]) -> Sequence[float]:
    """``sorted(values)``: by numpy (a stable sort: equal values, 0.0 and -0.0, keep their
    order as ``sorted`` keeps it) when there are many and none is NaN (``sorted``'s order
    of NaNs is its own)."""
    if len(values) < BIG:
        return sorted(values)
    import numpy as np

    a = floats(values)
    if np.isnan(a).any():
        return sorted(values)
    # an array of float64: indexable and sized as the callers use it
    return cast("Sequence[float]", np.sort(a, kind="stable"))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, statistics'
    ``method='inclusive'``); ``sorted_values`` must be sorted and non-empty."""
    n = len(sorted_values)
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    # in Python's floats: numpy's (a sorted array) would warn where a difference of two
    # ranks overflows (a RuntimeWarning on a user's terminal); the same IEEE result
    a, b = float(sorted_values[lo]), float(sorted_values[hi])
    return a + (b - a) * frac


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> list[float]:
    s = sort(values)
    return [percentile(s, q) for q in qs] if len(s) else [math.nan] * len(qs)


def partitioned(values: Sequence[float], qs: Sequence[float]) -> list[float]:
    """``percentile(sort(values), q)`` for each q (``values`` not empty), without sorting:
    the two ranks each q reads put in place by one ``numpy.partition``, the same floats at
    those ranks as a sort gives. The sign of a zero there cannot change ``percentile``'s
    answer for two values or more (``x + (y - x) * f`` with ``y >= x`` is never -0.0);
    NaNs (``sorted``'s order of them is its own) and a single value go the sorted way."""
    import numpy as np

    n = len(values)
    a = floats(values)
    if n == 1 or np.isnan(a).any():
        srt = sort(values)
        return [percentile(srt, q) for q in qs]
    ranks = []
    for q in qs:  # (``percentile``'s ranks and arithmetic)
        pos = (n - 1) * q / 100.0
        lo = math.floor(pos)
        ranks.append((lo, min(lo + 1, n - 1), pos - lo))
    part = np.partition(a, sorted({k for lo, hi, _f in ranks for k in (lo, hi)}))
    with np.errstate(invalid="ignore", over="ignore"):  # (infinities: as Python's floats)
        return [float(part[lo] + (part[hi] - part[lo]) * frac) for lo, hi, frac in ranks]


def median(values: Sequence[float]) -> float:
    """``percentile(sort(values), 50)``; many values by ``partitioned`` (the two middle
    ranks put in place, not a whole sort)."""
    n = len(values)
    if not n:
        return math.nan
    if n < BIG:
        return percentile(sorted(values), 50)
    return partitioned(values, (50,))[0]


def mad(values: Sequence[float], med: float | None = None) -> float:
    """Median absolute deviation (unscaled)."""
    if not len(values):
        return math.nan
    m = median(values) if med is None else med
    if len(values) >= BIG:
        import numpy as np

        with np.errstate(over="ignore", invalid="ignore"):  # (inf - inf: nan, as below)
            dev = np.abs(floats(values) - m)  # (the same IEEE operations)
        return median(dev)
    return median([abs(v - m) for v in values])


MAD_TO_SIGMA = 1.4826  # for normally distributed data, sigma ~= 1.4826 * MAD


def r(x: float, nd: int = 1) -> float | None:
    """Round for display/JSON; NaN becomes None."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(x, nd)


def sig(x: float, digits: int = 3) -> str:
    """``x`` for a sentence with ``digits`` significant digits (at least), never in
    exponent notation: 1987.9 -> "1988", 0.01234 -> "0.0123", 0.5 -> "0.5", 0 -> "0"."""
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return str(x)
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    nd = max(0, digits - 1 - mag)
    s = f"{x:.{nd}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s
