"""``logs report``: a chart's values per minute (``Minutes``), kept as a few numpy arrays
per batch of records instead of an ``array('d')`` per minute (a month has ~43,000
minutes and five stages: ~200,000 small arrays, each grown and merged by a Python loop).

The values of a minute are those fed for it, in the order fed; the minutes are in the
order each first appeared -- what a dict of ``array('d')`` per minute holds (``as_dict``),
and ``buckets`` merges them into the chart's buckets in that order, as a loop over that
dict would.
"""

from __future__ import annotations

from array import array
from typing import Any

BASE = 60  # seconds: a minute (report_data.BASE)


def runs_of(minutes: Any, values: Any) -> tuple[Any, Any, Any]:
    """``values`` (numpy float64) grouped by their ``minutes`` (numpy int64, one each):
    the minutes in order of first appearance, how many values each has, and the values
    of each minute together, in their order (a stable sort)."""
    import numpy as np

    if len(minutes) == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0, dtype=np.float64)
    uniq, first, inv = np.unique(minutes, return_index=True, return_inverse=True)
    by_first = np.argsort(first, kind="stable")  # the unique minutes, first seen first
    rank = np.empty_like(by_first)
    rank[by_first] = np.arange(len(by_first))
    key = rank[inv.reshape(-1)]
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key, minlength=len(uniq)).astype(np.int64)
    return uniq[by_first].astype(np.int64), counts, values[order]


SCALES = (1, 1000)  # whole milliseconds; microseconds


def packed(values: Any) -> Any:
    """``values`` (numpy float64) in 2 or 4 bytes each where that keeps every one of
    them to the bit: as uint16 or int32 ``k`` with ``k / scale`` the same float
    (latencies in whole milliseconds, the usual case -- under 65.536 s: 2 bytes --, or
    whole microseconds), else as they are (``unpacked`` gives them back)."""
    import numpy as np

    if len(values) == 0 or not np.isfinite(values).all():
        return values
    for scale in SCALES:
        with np.errstate(over="ignore"):  # (a huge value: inf here, too large below)
            k = np.rint(values * scale)
        if np.abs(k).max() >= 2**31:
            continue
        small = k.min() >= 0 and k.max() < 2**16
        ints = k.astype(np.uint16 if small else np.int32)
        back = ints / np.float64(scale)
        if np.array_equal(back.view(np.int64), values.view(np.int64)):  # (bit for bit: -0.0)
            return (ints, scale)
    return values


def unpacked(values: Any) -> Any:
    """The float64 values ``packed`` kept."""
    import numpy as np

    if isinstance(values, tuple):
        ints, scale = values
        return ints / np.float64(scale)
    return values


class Minutes:
    """Values per minute (an int: epoch seconds // 60): fed one at a time (``add``) or a
    batch at a time (``add_runs``), in order; kept ``packed`` (4 bytes a value where
    that is exact)."""

    def __init__(self) -> None:
        self.pending: dict[int, array[float]] = {}  # fed one at a time since the last batch
        self.chunks: list[tuple[Any, Any, Any]] = []  # (minutes, counts, values) runs

    def add(self, minute: int, x: float) -> None:
        a = self.pending.get(minute)
        if a is None:
            a = self.pending[minute] = array("d")
        a.append(x)

    def extend(self, minute: int, xs: Any) -> None:
        a = self.pending.get(minute)
        if a is None:
            a = self.pending[minute] = array("d")
        a.extend(xs)

    def add_runs(self, minutes: Any, counts: Any, values: Any) -> None:
        """A batch's values, grouped by minute (``runs_of``)."""
        self._flush()
        if len(minutes):
            self.chunks.append((minutes, counts, packed(values)))

    def add_values(self, minutes: Any, values: Any) -> None:
        """A batch's values and their minutes (numpy arrays), in order."""
        self.add_runs(*runs_of(minutes, values))

    def _flush(self) -> None:
        import numpy as np

        if not self.pending:
            return
        p, self.pending = self.pending, {}
        minutes = np.fromiter(p.keys(), dtype=np.int64, count=len(p))
        counts = np.fromiter((len(a) for a in p.values()), dtype=np.int64, count=len(p))
        values = np.concatenate([np.frombuffer(a, dtype=np.float64) for a in p.values()])
        self.chunks.append((minutes, counts, packed(values)))

    def _all(self) -> tuple[Any, Any, Any, Any]:
        """Every run: its minute, count, start in the values, and all the values."""
        import numpy as np

        self._flush()
        if not self.chunks:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z, np.zeros(0, dtype=np.float64)
        minutes = np.concatenate([m for m, _c, _v in self.chunks])
        counts = np.concatenate([c for _m, c, _v in self.chunks])
        values = np.concatenate([unpacked(v) for _m, _c, v in self.chunks])
        starts = np.zeros(len(counts), dtype=np.int64)
        if len(counts) > 1:
            np.cumsum(counts[:-1], out=starts[1:])
        return minutes, counts, starts, values

    def runs(self) -> tuple[Any, Any, Any]:
        """Every run fed so far: its minute, its count, and all the values (numpy), what
        ``add_runs`` of them gives back (``report_parts`` keeps them per file)."""
        minutes, counts, _starts, values = self._all()
        return minutes, counts, values

    def as_dict(self) -> dict[int, array[float]]:
        """The values per minute, the minutes in order of first appearance."""
        out: dict[int, array[float]] = {}
        minutes, counts, starts, values = self._all()
        for m, c, s in zip(minutes.tolist(), counts.tolist(), starts.tolist(), strict=True):
            a = out.get(m)
            if a is None:
                a = out[m] = array("d")
            a.frombytes(values[s:s + c].tobytes())
        return out

    def buckets(self, t0: float, bucket: int, n: int, missing: list[bool]) -> list[array[float]]:
        """The values merged into ``n`` buckets of ``bucket`` seconds from ``t0`` (none
        into a ``missing`` one): each bucket's minutes in order of first appearance, each
        minute's values in the order fed (``Collect.view``'s loop over ``as_dict``)."""
        import numpy as np

        out = [array("d") for _ in range(n)]
        minutes, counts, starts, values = self._all()
        if len(minutes) == 0:
            return out
        # (the same float operations as ``int((b * BASE - t0) // bucket)``)
        idx = np.floor_divide((minutes * BASE).astype(np.float64) - t0, float(bucket))
        ok = (idx >= 0) & (idx < n)
        idx = np.where(ok, idx, 0).astype(np.int64)
        if any(missing):
            ok &= ~np.asarray(missing, dtype=bool)[idx]
        run = np.arange(len(minutes))
        _u, first, inv = np.unique(minutes, return_index=True, return_inverse=True)
        rank = first[inv.reshape(-1)]  # the run where each run's minute first appeared
        keep = np.flatnonzero(ok)
        order = keep[np.lexsort((run[keep], rank[keep], idx[keep]))]
        cnt = counts[order]
        total = int(cnt.sum())
        if total == 0:
            return out
        # the values' positions, run after run in ``order``
        ends = np.cumsum(cnt)
        pos = np.arange(total, dtype=np.int64) - np.repeat(ends - cnt, cnt) \
            + np.repeat(starts[order], cnt)
        picked = values[pos]
        per = np.bincount(idx[order], weights=cnt, minlength=n).astype(np.int64)
        at = 0
        for i in range(n):
            k = int(per[i])
            if k:
                out[i].frombytes(picked[at:at + k].tobytes())
                at += k
        return out
