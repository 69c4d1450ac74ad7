"""``diagnose``'s collectors of syntheses fed a frame of them at a time
(``synth_frames``: one row per synthesis, in the order they complete) instead of one
``Synthesis`` at a time: latency per time bucket (``LatencyBuckets``), failures against
the input dimensions (``FailurePatterns``) and audio metrics per voice (``AudioStats``).

Each ends in the state ``feed`` leaves it in, fed the same syntheses in the same order:
values appended in that order (sums over them are then the same floats), counters and
dicts filled in order of first appearance, the first and last of each code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...logline import STAGES
from ..reading.timeargs import ts_to_epoch

if TYPE_CHECKING:
    from .audio import AudioStats
    from .diagnose_collect import FailurePatterns, LatencyBuckets

CANON = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}$"


def epochs(ts: Any, utc: bool = True) -> Any:
    """``ts_to_epoch`` of a string series, as a numpy float64 array: the same floats
    (microseconds since the epoch divided by 1e6, correctly rounded, as
    ``datetime.timestamp`` divides them); times not in the canonical form, or local
    time, one by one by ``ts_to_epoch`` itself."""
    import numpy as np
    import polars as pl

    if len(ts) == 0:
        return np.zeros(0, dtype=np.float64)
    if utc and bool(ts.str.contains(CANON).all()):
        us = (ts.str.slice(0, 19).str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us",
                                                  strict=False).dt.epoch("us")
              + ts.str.slice(20, 3).cast(pl.Int64) * 1000)
        if not us.null_count():
            return us.to_numpy().astype(np.int64) / 1e6
    return np.array([ts_to_epoch(x, utc) for x in ts.to_list()], dtype=np.float64)


def feed_latency(lat: LatencyBuckets, syn: Any) -> None:
    """``lat.feed`` of every synthesis of ``syn`` (columns ts, status, cache_hit, e2e,
    queue, id, ``st_<stage>``), in order."""
    import numpy as np
    import polars as pl

    d = syn.filter((pl.col("status") == "success")
                   & (pl.col("cache_hit").fill_null("") != "true")
                   & pl.col("e2e").is_not_null())
    if d.height == 0:
        return
    t = epochs(d.get_column("ts"), lat.utc)
    key = t - np.fmod(t, lat.bucket_s)  # t - t % bucket_s, for t >= 0 (else Python's)
    if (t < 0).any():
        key = np.array([x - x % lat.bucket_s for x in t.tolist()], dtype=np.float64)
    comps = ["queue", *[f"st_{s}" for s in STAGES]]
    cols = d.select(pl.col("e2e"), *[pl.col(c).fill_null(0.0) for c in comps])
    order, groups, bounds = groups_in_order(pl.DataFrame({"k": key}))
    keys = [float(k[0]) for k in groups]
    e2e = cols.get_column("e2e").to_numpy()[order]
    vals = [(name, cols.get_column(c).to_numpy()[order])
            for name, c in zip(["queue_wait", *STAGES], comps, strict=True)]
    for g, k in enumerate(keys):
        lo, hi = bounds[g], bounds[g + 1]
        b = lat.b[k]
        b["e2e"].frombytes(e2e[lo:hi].tobytes())
        for name, v in vals:
            b[name].frombytes(v[lo:hi].tobytes())
    tops = (d.select(pl.col("id"), pl.col("e2e"), key=pl.Series(key))
            .group_by("key", maintain_order=True)
            .agg(pl.col("id").get(pl.col("e2e").arg_max()).alias("top_id"),
                 pl.col("e2e").max().alias("top")))
    for k, top_id, top in tops.iter_rows():
        if top > lat.slowest.get(k, (0.0, ""))[0]:
            lat.slowest[k] = (top, top_id)


def groups_in_order(keys: Any) -> tuple[Any, list[tuple[Any, ...]], list[int]]:
    """The rows of ``keys`` (a frame of key columns) grouped: ``order`` (a numpy array of
    row numbers, each group's in their order), the groups' keys (tuples) in order of
    first appearance, and each group's bounds in ``order`` (group g:
    ``order[bounds[g]:bounds[g + 1]]``)."""
    import numpy as np
    import polars as pl

    names = keys.columns
    g = (keys.with_row_index("_i").group_by(names, maintain_order=True)
         .agg(pl.col("_i")))
    rows = g.get_column("_i")
    order = rows.explode().to_numpy() if len(rows) else np.zeros(0, dtype=np.int64)
    bounds = [0, *np.cumsum(rows.list.len().to_numpy()).tolist()]
    return order, g.select(names).rows(), bounds


def feed_patterns(pats: FailurePatterns, syn: Any, dims: tuple[str, ...],
                  label: Any) -> None:
    """``pats.feed`` of every synthesis of ``syn`` (the fields of ``dims``, error_code,
    status, where, ts, id), in order; ``label``: the text length's bucket label of a
    value (``TEXT_LEN_BUCKETS.label``)."""
    import polars as pl

    if syn.height == 0:
        return
    pats.n += syn.height
    lens = syn.get_column("text_len").drop_nulls().unique().to_list()
    d = syn.with_columns(
        **{f"v_{x}": pl.col(x).fill_null("").replace("", "(none)") for x in dims},
        v_len_b=pl.col("text_len").replace_strict({v: label(v) for v in lens},
                                                  default=None, return_dtype=pl.Utf8)
        .fill_null(label(None)))
    names = (*dims, "len_b")
    for x in names:
        _count(pats.total[x], d.group_by(f"v_{x}", maintain_order=True).len().rows())
    f = d.filter(pl.col("status") == "failed").with_columns(
        code=pl.col("error_code").fill_null("").replace("", "(no code)"))
    if f.height == 0:
        return
    _count(pats.codes, f.group_by("code", maintain_order=True).len().rows())
    for code, first, last, ex in f.group_by("code", maintain_order=True).agg(
            pl.col("ts").first().alias("a"), pl.col("ts").last().alias("b"),
            pl.col("id").first()).rows():
        pats.first.setdefault(code, first)
        pats.last[code] = last
        pats.example.setdefault(code, ex)
    w = f.filter(pl.col("where").fill_null("") != "")
    for code, where, n in w.group_by("code", "where", maintain_order=True).len().rows():
        pats.where[code][where] += n
    ms = f.with_columns(ms=pl.col("model_stage").fill_null("").replace("", "?"))
    for code, stage, n in ms.group_by("code", "ms", maintain_order=True).len().rows():
        pats.stage[code][stage] += n
    for x in names:
        for code, v, n in f.group_by("code", f"v_{x}", maintain_order=True).len().rows():
            pats.fail[x][(code, v)] += n


def _count(counter: Any, rows: list[tuple[Any, int]]) -> None:
    for k, n in rows:
        counter[k] += n


def feed_audio(audio: AudioStats, syn: Any) -> None:
    """``audio.feed`` of every synthesis of ``syn`` (voice, audio_ts, ``m_<metric>``),
    in order (robust mode by voice: ``usable``)."""
    import polars as pl

    a = syn.filter(pl.col("audio_ts").is_not_null())
    if a.height == 0:
        return
    audio.n += a.height
    a = a.with_columns(k=pl.col("voice").fill_null("").replace("", "(none)"))
    g = a.group_by("k", maintain_order=True).agg(
        pl.col("id"), pl.col("audio_ts"), *[pl.col(f"m_{m}").fill_null(float("nan"))
                                            for m in audio.metrics])
    for i, k in enumerate(g.get_column("k").to_list()):
        key = (k,)
        pairs = audio.ids.get(key)
        if not isinstance(pairs, Pairs):
            pairs = audio.ids[key] = Pairs(pairs or ())
        pairs.add(compact(g.get_column("id")[i]), compact(g.get_column("audio_ts")[i]))
        per = audio.values[key]
        for m in audio.metrics:
            per[m].frombytes(g.get_column(f"m_{m}")[i].cast(pl.Float64).to_numpy().tobytes())


class Pairs(list[tuple[str, str]]):
    """A list of (id, time) pairs that keeps those added in bulk (``add``) as Arrow
    strings, not as two ``str`` objects and a tuple each (a month holds about a million
    syntheses with audio): iterated and counted as the list of all of them, in order
    (the bulk ones first: nothing is appended after them)."""

    def __init__(self, pairs: Any = ()) -> None:
        super().__init__(pairs)
        self.bulk: list[tuple[Any, Any]] = []
        self.n = 0

    def add(self, ids: Any, ts: Any) -> None:
        if list.__len__(self):  # keep the order: the pairs so far go first
            self.bulk.insert(0, (_series([p[0] for p in list.__iter__(self)]),
                                 _series([p[1] for p in list.__iter__(self)])))
            self.n += list.__len__(self)
            self.clear()
        self.bulk.append((ids, ts))
        self.n += len(ids)

    def __len__(self) -> int:
        return self.n + list.__len__(self)

    def at(self, rows: list[int]) -> list[tuple[str, str]]:
        """The pairs at positions ``rows`` (ascending), as the iteration gives them."""
        out: list[tuple[str, str]] = []
        lo = 0
        i = 0
        for ids, ts in self.bulk:
            hi = lo + len(ids)
            j = i
            while j < len(rows) and rows[j] < hi:
                j += 1
            if j > i:
                pick = [r - lo for r in rows[i:j]]
                out.extend(zip(ids.gather(pick).to_list(), ts.gather(pick).to_list(),
                               strict=True))
                i = j
            lo = hi
        rest = [p for p in list.__iter__(self)]
        out.extend(rest[r - lo] for r in rows[i:])
        return out

    def __iter__(self) -> Any:
        for ids, ts in self.bulk:
            yield from zip(ids.to_list(), ts.to_list(), strict=True)
        yield from list.__iter__(self)

    def __bool__(self) -> bool:
        return len(self) > 0


def compact(s: Any) -> Any:
    """A copy of a string series that holds its own strings only: a series picked from a
    larger one (filter, gather) keeps the larger one's string buffers alive, a file's
    worth each, which a month's kept picks add up to hundreds of MB."""
    import polars as pl

    return pl.Series(s.name, s.to_list(), dtype=s.dtype)


def _series(values: list[str]) -> Any:
    import polars as pl

    return pl.Series(values, dtype=pl.Utf8)


def usable(audio: AudioStats) -> bool:
    """Can ``feed_audio`` feed this collector (by voice, no threshold)?"""
    return not audio.where and list(audio.by) == ["voice"]
