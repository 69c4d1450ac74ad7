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
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> list[float]:
    s = sort(values)
    return [percentile(s, q) for q in qs] if len(s) else [math.nan] * len(qs)


def median(values: Sequence[float]) -> float:
    """``percentile(sort(values), 50)``; many values (no NaN) by numpy's partition: only
    the two middle ranks put in place, the same floats as the stable sort gives there
    (the one exception, a 0.0 that a -0.0 equals, falls back to the sort)."""
    n = len(values)
    if not n:
        return math.nan
    if n < BIG or n == 1:
        return percentile(sorted(values), 50)
    import numpy as np

    a = floats(values)
    if np.isnan(a).any():
        return percentile(sorted(values), 50)
    pos = (n - 1) * 50 / 100.0  # (``percentile``'s ranks and arithmetic)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    part = np.partition(a, [lo, hi])
    x, y = float(part[lo]), float(part[hi])  # (Python's arithmetic: no numpy warning)
    if x == 0.0 or y == 0.0:  # (which zero the stable sort puts there is its order's)
        return percentile(np.sort(a, kind="stable").tolist(), 50)
    return float(x + (y - x) * (pos - lo))


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
