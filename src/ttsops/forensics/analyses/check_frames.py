"""``logs check`` over sidecar frames: the checks of single records done by Polars, a
file's frame at a time (``Checker.feed_frame``): the file boundary and the steps back
within the file (several writers), monotonic time, the codes in the registry and the
fields of synthesis_complete. Each gives the same counts and examples, in the same
order, as ``Checker.feed_one`` record by record (the joins by id: ``check_ids``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from ...errors import REGISTRY
from ..reading.sources import LogFile

if TYPE_CHECKING:
    from .check import Checker

# the step back (microseconds) within which float rounding may decide (it errs by well
# under a microsecond for times before the year 2100, by 30 at most before 9999)
_MARGIN_US = 2000
CANONICAL_TS = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}$"


def feed_frame(chk: Checker, f: LogFile, df: Any) -> int | None:
    """The frame-level checks of ``f``'s frame; the file's number in its stream, or None
    (nothing counted) when a time is not in the canonical form: then the caller feeds
    its records one by one."""
    if df.height == 0:
        cur = chk.file_no.get(f.stream)
        return cur[1] if cur is not None else 0
    ts = pl.col("ts")
    base = ts.str.slice(0, 19).str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="ms",
                                               time_zone="UTC", strict=False)
    d = df.lazy().select("ts", "event", "k_id", "k_duration_ms", "k_status", "k_error_code",
                         "k_warning_code", base=base.dt.epoch("s")).collect()
    if not d.select(ts.str.contains(CANONICAL_TS).all()
                    & pl.col("base").is_not_null().all()).item():
        return None
    no = _writers(chk, f, d)
    _monotonic(chk, f, d)
    _fields(chk, f, d)
    return no


def _writers(chk: Checker, f: LogFile, d: Any) -> int:
    """Several writers: the file boundary, steps back within the file; the file's number
    in its stream."""
    ts = pl.col("ts")
    n = d.height
    first, last, top = d.select(ts.first().alias("a"), ts.last().alias("b"),
                                ts.max().alias("c")).row(0)
    cur = chk.file_no.get(f.stream)
    back = d.select((ts < ts.shift(1)).sum()).item()
    if cur is None or cur[0] is not f:
        no = 0 if cur is None else cur[1] + 1
        if cur is not None:
            chk.file_boundary(cur[0], cur[2], f, first)
        cur = (f, no, first, first)
    elif first < cur[3]:
        back += 1
    key = str(f.path)
    if back:
        chk.inner_back += back
        chk.file_back[key] = chk.file_back.get(key, 0) + back
    chk.inner_n += n
    chk.file_records[key] = chk.file_records.get(key, 0) + n
    chk.file_no[f.stream] = (f, cur[1], max(cur[2], top), last)
    return cur[1]


def _monotonic(chk: Checker, f: LogFile, d: Any) -> None:
    """Each record against the one before it, as ``Checker._epoch``'s floats compare
    (``t < t_before - tolerance``): decided on whole microseconds where the step back is
    far from the tolerance (floats near 1e9 s err by under a microsecond), by Python's
    float arithmetic on the few near it."""
    ts = pl.col("ts")
    d = d.select("ts", us=pl.col("base") * 1_000_000
                 + ts.str.slice(20, 3).cast(pl.Int64) * 1000)
    tol = chk.tol
    mono = chk.items["monotonic"]
    mono.checked += d.height
    ts0, us0 = d.row(0)
    bad = 0
    examples: list[str] = []
    prev = chk.last_ts.get(f.stream)
    if prev is not None and us0 / 1_000_000 < prev[0] - tol:
        bad += 1
        examples.append(f"{f.name}: {ts0} after {prev[1]}")
    gap = pl.col("us").shift(1) - pl.col("us")  # how far back from the record before
    cand = (d.with_columns(p=ts.shift(1), pus=pl.col("us").shift(1))
            .filter(gap > tol * 1e6 - _MARGIN_US)
            .select("ts", "p", "us", "pus", sure=gap > tol * 1e6 + _MARGIN_US))
    if cand.height:
        near = cand.filter(~pl.col("sure"))
        bad += cand.height - near.height + sum(
            1 for u, p in near.select("us", "pus").iter_rows()
            if u / 1_000_000 < p / 1_000_000 - tol)
        for a, b, u, p, sure in cand.iter_rows():
            if len(examples) == 3:
                break
            if sure or u / 1_000_000 < p / 1_000_000 - tol:
                examples.append(f"{f.name}: {a} after {b}")
    mono.fail_many(bad, examples)
    ts_last, us_last = d.row(-1)
    chk.last_ts[f.stream] = (us_last / 1_000_000, ts_last)


def _fields(chk: Checker, f: LogFile, d: Any) -> None:
    """Codes in the registry; synthesis_complete's fields."""
    it = chk.items
    reg = it["registry_codes"]
    keys = ("error_code", "warning_code")
    has = [(pl.col(f"k_{k}").fill_null("") != "") for k in keys]
    off = [h & ~pl.col(f"k_{k}").is_in(list(REGISTRY)) for h, k in zip(has, keys, strict=True)]
    codes = d.lazy().select("ts", "event", "k_error_code", "k_warning_code",
                            has0=has[0], has1=has[1], off0=off[0], off1=off[1]).collect()
    n0, n1, b0, b1 = codes.select(pl.col("has0", "has1", "off0", "off1").sum()).row(0)
    reg.checked += n0 + n1
    examples = []  # in the order of the records, the error code before the warning code
    for a, e, ec, wc, _h0, _h1, o0, o1 in codes.filter(pl.col("off0") | pl.col("off1")) \
            .head(3).iter_rows():
        examples += [f"{f.name}: {a} {e}: {k}={v}" for k, v, o in
                     (("error_code", ec, o0), ("warning_code", wc, o1)) if o]
    reg.fail_many(b0 + b1, examples)
    names = ("id", "duration_ms", "status")
    comp = (d.lazy().filter(pl.col("event") == "synthesis_complete")
            .select("ts", *[(pl.col(f"k_{k}").fill_null("") == "").alias(k) for k in names])
            .collect())
    if comp.height:
        cf = it["complete_fields"]
        cf.checked += comp.height
        bad = comp.filter(pl.any_horizontal(*names))
        cf.fail_many(bad.height, [
            f"{f.name}: {t} missing {','.join(k for k, m in zip(names, ms, strict=True) if m)}"
            for t, *ms in bad.head(3).iter_rows()])
