"""``logs report``, the charts' data: ``Collect`` (per minute, while reading) and
``Series`` (merged into the chart's buckets), and the spans lost to damaged input.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...logline import Record
from ..reading.sources import Snapshot
from ..reading.timeargs import ts_to_epoch
from .report_minutes import Minutes

BUCKETS = (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)


def pick_bucket(span_s: float, most: int = 96) -> int:
    return next((b for b in BUCKETS if span_s / b <= most), BUCKETS[-1])


BASE = 60  # seconds: the finest bucket, collected while reading; merged at the end
# a canonical time whose seconds are 00..59 (its minute then tells its minute bucket)
STRICT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-5][0-9],[0-9]{3}$"


@dataclass
class Collect:
    """What the charts need, per minute, for whatever span the records turn out to
    cover (the span is known only after reading: a whole-file gzip tells its times only
    when read). ``view`` merges the minutes into the chart's buckets."""

    utc: bool = True
    ok: Counter[int] = field(default_factory=Counter)
    failed: Counter[int] = field(default_factory=Counter)
    codes: dict[str, Counter[int]] = field(default_factory=dict)
    # the values per minute (``Minutes``): of each stage, end to end, queue wait
    stage: dict[str, Minutes] = field(default_factory=dict)
    e2e: Minutes = field(default_factory=Minutes)
    queue: Minutes = field(default_factory=Minutes)
    usage: list[tuple[float, float]] = field(default_factory=list)
    records: int = 0
    levels: Counter[str] = field(default_factory=Counter)
    first: str | None = None  # the earliest and latest record times seen
    last: str | None = None
    # per file (by path): its first and last record times, to bound the holes of damage
    file_span: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._sec = ""
        self._base = 0.0

    def _t(self, ts: str) -> float:
        s = ts[:19]
        if s != self._sec:
            self._base = ts_to_epoch(s + ",000", self.utc)
            self._sec = s
        try:
            return self._base + int(ts[20:23]) / 1000.0
        except ValueError:
            return self._base

    def feed(self, rec: Record, path: str | None = None) -> None:
        self.records += 1
        self.levels[rec.level] += 1
        try:
            t = self._t(rec.ts)
        except ValueError:
            return
        ts = rec.ts
        if self.first is None or ts < self.first:
            self.first = ts
        if self.last is None or ts > self.last:
            self.last = ts
        if path is not None:
            sp = self.file_span.get(path)
            if sp is None:
                self.file_span[path] = [ts, ts]
            elif ts < sp[0]:
                sp[0] = ts
            elif ts > sp[1]:
                sp[1] = ts
        b = int(t // BASE)
        ev = rec.event
        f = rec.fields
        if ev == "synthesis_complete":
            if f.get("status") == "failed":
                self.failed[b] += 1
            else:
                self.ok[b] += 1
            x = rec.num("duration_ms")
            if x is not None:
                self.e2e.add(b, x)
            q = rec.num("queue_ms")
            if q is not None:
                self.queue.add(b, q)
        elif ev == "stage_time":
            st = f.get("stage")
            x = rec.num("duration_ms")
            if st and x is not None:
                self._stage(st).add(b, x)
        elif ev == "cache_health":
            u = rec.num("usage")
            if u is not None:
                self.usage.append((t, u))
        if rec.level in ("ERROR", "CRITICAL"):
            code = f.get("error_code") or f"({ev or 'no code'})"
            c = self.codes.get(code)
            if c is None:
                c = self.codes[code] = Counter()
            c[b] += 1

    # the sidecar columns ``feed_frame`` reads
    FRAME_COLUMNS = ("ts", "level", "event", "k_status", "k_duration_ms", "k_queue_ms",
                     "k_stage", "k_usage", "k_error_code")

    def feed_frame(self, df: Any, path: str | None = None) -> None:
        """``feed`` every record of a sidecar frame (``sidecar.frames`` with
        ``FRAME_COLUMNS``), in order, by Polars. Times not in the canonical form go
        record by record."""
        import polars as pl

        from ..reading.vector_frames import num_expr

        n = df.height
        if n == 0 or (self.utc and self._feed_canonical(df, path)):
            return
        ts = pl.col("ts")
        canon = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}$"
        sec = ts.str.slice(0, 19)
        base = None
        if df.select(ts.str.contains(canon).all()).item():
            if self.utc:
                base = sec.str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="ms",
                                           time_zone="UTC", strict=False).dt.epoch("s")
            else:  # local time: each second as ``ts_to_epoch`` takes it
                try:
                    secs = df.select(sec.unique()).to_series().to_list()
                    base = sec.replace_strict(
                        {x: int(ts_to_epoch(x + ",000", False)) for x in secs},
                        return_dtype=pl.Int64)
                except (ValueError, OverflowError):
                    base = None
        d = df.with_row_index("_row").with_columns(base=base) if base is not None else None
        if d is None or d.get_column("base").null_count():
            # times not in the canonical form, or not taken by Polars: record by record
            for row in df.iter_rows(named=True):
                self.feed(Record(row["ts"], "", row["level"], row["event"], {
                    k[2:]: v for k, v in row.items() if k.startswith("k_") and v is not None
                }), path)
            return
        self.records += n
        for lv, c in df.group_by("level", maintain_order=True).len().rows():
            self.levels[lv] += c
        # ``_t``: the second plus the milliseconds / 1000.0, divided by numpy (IEEE
        # division as Python's; Polars multiplies by the reciprocal)
        ms = d.get_column("ts").str.slice(20, 3).cast(pl.Int64).to_numpy()
        d = d.with_columns(b=pl.col("base") // BASE,
                           t=pl.col("base").cast(pl.Float64) + pl.Series(ms / 1000.0))
        lo, hi = d.select(ts.min().alias("lo"), ts.max().alias("hi")).row(0)
        if self.first is None or lo < self.first:
            self.first = lo
        if self.last is None or hi > self.last:
            self.last = hi
        if path is not None:
            sp = self.file_span.get(path)
            if sp is None:
                self.file_span[path] = [lo, hi]
            else:
                sp[0], sp[1] = min(sp[0], lo), max(sp[1], hi)
        ev = pl.col("event")
        comp = d.filter(ev == "synthesis_complete")
        if comp.height:
            for b, failed, c in (comp.group_by("b", (pl.col("k_status") == "failed")
                                               .fill_null(False).alias("f"),
                                               maintain_order=True)
                                 .len().rows()):
                (self.failed if failed else self.ok)[b] += c
            for name, dst in (("k_duration_ms", self.e2e), ("k_queue_ms", self.queue)):
                got: dict[Any, array[float]] = {}
                self._extend(comp.with_columns(x=num_expr(pl.col(name))), ["b"], got)
                for b, vals in got.items():
                    dst.extend(b, vals)
        st = (d.filter((ev == "stage_time") & (pl.col("k_stage").fill_null("") != ""))
              .with_columns(x=num_expr(pl.col("k_duration_ms"))))
        if st.height:
            per: dict[tuple[Any, ...], array[float]] = {}
            self._extend(st, ["k_stage", "b"], per)
            for (stage, b), vals in per.items():
                self._stage(stage).extend(b, vals)
        us = (d.filter(ev == "cache_health").with_columns(x=num_expr(pl.col("k_usage")))
              .filter(pl.col("x").is_not_null()))
        self.usage.extend(us.select("t", "x").rows())
        err = d.filter(pl.col("level").is_in(["ERROR", "CRITICAL"]))
        if err.height:
            code = (pl.when(pl.col("k_error_code").fill_null("") != "")
                    .then(pl.col("k_error_code"))
                    .otherwise(pl.format("({})", pl.when(ev.fill_null("") != "").then(ev)
                                         .otherwise(pl.lit("no code")))))
            for c, b, k in err.group_by(code.alias("code"), "b", maintain_order=True).len().rows():
                cnt = self.codes.get(c)
                if cnt is None:
                    cnt = self.codes[c] = Counter()
                cnt[b] += k

    def feed_frames(self, parts: list[tuple[Any, str | None]]) -> None:
        """``feed_frame`` of each (frame, path) of ``parts``, in order: at once where
        every time is in the canonical form (UTC), else one by one."""
        import numpy as np
        import polars as pl

        parts = [(df, p) for df, p in parts if df.height]
        if len(parts) > 1 and self.utc and all(p is not None for _df, p in parts):
            df = pl.concat([df for df, _p in parts], how="vertical_relaxed")
            heights = [d.height for d, _p in parts]
            files = pl.Series("_file", np.repeat(np.arange(len(parts)), heights))
            if self._feed_canonical(df, None, (files, [p for _d, p in parts])):
                return
        for df, p in parts:
            self.feed_frame(df, p)

    def _feed_canonical(self, df: Any, path: str | None,
                        files: tuple[Any, list[Any]] | None = None) -> bool:
        """``feed_frame`` of a frame whose times are all in the canonical form (UTC),
        in one Polars plan, the minute of each record from the text of its minute, the
        values handed over as arrays; False (nothing fed) for any other frame.
        ``files``: the frame is several files' frames one after another: each row's file
        (a series of indexes into the list of their paths) and those paths."""
        import numpy as np
        import polars as pl

        from ..reading.synth_frames import numbers

        ts, ev, lv = pl.col("ts"), pl.col("event"), pl.col("level")
        b = (ts.str.slice(0, 16).str.to_datetime("%Y-%m-%d %H:%M", time_unit="ms",
                                                 time_zone="UTC", strict=False)
             .dt.epoch("s") // BASE)
        lf = df.lazy().with_columns(b=b)
        code = (pl.when(pl.col("k_error_code").fill_null("") != "")
                .then(pl.col("k_error_code"))
                .otherwise(pl.format("({})", pl.when(ev.fill_null("") != "").then(ev)
                                     .otherwise(pl.lit("no code")))))
        plans = [
            lf.select(ok=ts.str.contains(STRICT).all() & pl.col("b").is_not_null().all(),
                      lo=ts.min(), hi=ts.max()),
            lf.group_by("level", maintain_order=True).len(),
            lf.filter(ev == "synthesis_complete").select(
                "b", (pl.col("k_status") == "failed").fill_null(False).alias("f"),
                "k_duration_ms", "k_queue_ms"),
            lf.filter((ev == "stage_time") & (pl.col("k_stage").fill_null("") != ""))
            .select("k_stage", "b", "k_duration_ms"),
            lf.filter(ev == "cache_health").select("b", "ts", "k_usage"),
            lf.filter(lv.is_in(["ERROR", "CRITICAL"]))
            .group_by(code.alias("code"), "b", maintain_order=True).len(),
        ]
        if files is not None:
            plans.append(df.lazy().with_columns(files[0]).group_by("_file", maintain_order=True)
                         .agg(ts.min().alias("lo"), ts.max().alias("hi")))
        head, levels, comp, st, us, err, *spans = pl.collect_all(plans)
        ok, lo, hi = head.row(0)
        if not ok:
            return False
        self.records += df.height
        for lv_, c in levels.rows():
            self.levels[lv_] += c
        if self.first is None or lo < self.first:
            self.first = lo
        if self.last is None or hi > self.last:
            self.last = hi
        each = [(path, lo, hi)] if path is not None else []
        if files is not None:
            each = [(files[1][i], a, z) for i, a, z in spans[0].rows()]
        for p, a, z in each:
            sp = self.file_span.get(p)
            if sp is None:
                self.file_span[p] = [a, z]
            else:
                sp[0], sp[1] = min(sp[0], a), max(sp[1], z)

        def values(raw: Any, *keys: Any) -> tuple[Any, list[Any]] | None:
            """The numbers of ``raw`` (numpy) and the columns ``keys`` (numpy) where
            ``raw`` has one; None: nowhere."""
            x = numbers(raw)
            has = x.is_not_null()
            if not has.any():
                return None
            return (x.filter(has).cast(pl.Float64).to_numpy(),
                    [k.filter(has).to_numpy() for k in keys])

        if comp.height:
            for bk, failed, c in comp.group_by("b", "f", maintain_order=True).len().rows():
                (self.failed if failed else self.ok)[bk] += c
            for name, dst in (("k_duration_ms", self.e2e), ("k_queue_ms", self.queue)):
                got = values(comp.get_column(name), comp.get_column("b"))
                if got is not None:
                    dst.add_values(got[1][0].astype(np.int64), got[0])
        if st.height:
            x = numbers(st.get_column("k_duration_ms"))
            if x.is_not_null().any():
                have = st.select("k_stage", "b").with_columns(x=x.cast(pl.Float64)) \
                    .filter(pl.col("x").is_not_null())
                # (the stages in order of first appearance)
                for part in have.partition_by("k_stage", maintain_order=True):
                    self._stage(part.get_column("k_stage")[0]).add_values(
                        part.get_column("b").to_numpy().astype(np.int64),
                        part.get_column("x").to_numpy())
        if us.height:
            x = numbers(us.get_column("k_usage")).to_list()
            for bk, t, u in zip(us.get_column("b").to_list(), us.get_column("ts").to_list(), x,
                                strict=True):
                if u is not None:  # (the second plus the milliseconds / 1000.0, as ``_t``)
                    self.usage.append((float(bk * BASE + int(t[17:19])) + int(t[20:23]) / 1000.0,
                                       u))
        for c, bk, k in err.rows():
            cnt = self.codes.get(c)
            if cnt is None:
                cnt = self.codes[c] = Counter()
            cnt[bk] += k
        return True

    def _stage(self, name: str) -> Minutes:
        m = self.stage.get(name)
        if m is None:
            m = self.stage[name] = Minutes()
        return m

    @staticmethod
    def _extend(d: Any, keys: list[str], dst: dict[Any, array[float]]) -> None:
        """Append the non-null ``x`` of ``d`` to ``dst[key]`` in the frame's order."""
        import polars as pl

        g = (d.filter(pl.col("x").is_not_null()).group_by(keys, maintain_order=True)
             .agg(pl.col("x")))
        for row in g.iter_rows():
            key = row[0] if len(keys) == 1 else tuple(row[:-1])
            a = dst.get(key)
            if a is None:
                a = dst[key] = array("d")
            a.extend(row[-1])

    def view(self, t0: float, bucket: int, n: int,
             gaps: list[tuple[float, float, str]]) -> Series:
        """The minutes merged into ``n`` buckets of ``bucket`` seconds from ``t0``;
        buckets that a gap (lost data) touches are left empty and listed."""
        ser = Series(t0, bucket, n, self.utc, gaps=gaps)
        missing = ser.missing

        def idx(b: int) -> int | None:
            i = int((b * BASE - t0) // bucket)
            return i if 0 <= i < n and not missing[i] else None
        for src, dst in ((self.ok, ser.ok), (self.failed, ser.failed)):
            for b, c in src.items():
                i = idx(b)
                if i is not None:
                    dst[i] += c
        for code, cnt in self.codes.items():
            row = ser.codes[code] = [0] * n
            for b, c in cnt.items():
                i = idx(b)
                if i is not None:
                    row[i] += c
        ser.e2e = self.e2e.buckets(t0, bucket, n, missing)
        ser.queue = self.queue.buckets(t0, bucket, n, missing)
        for st, per in self.stage.items():
            ser.stage[st] = per.buckets(t0, bucket, n, missing)
        ser.usage = self.usage
        ser.records = self.records
        ser.levels = self.levels
        return ser


@dataclass
class Series:
    """What the charts need, per time bucket (``missing``: buckets without data)."""

    t0: float
    bucket: int
    n: int
    utc: bool = True
    ok: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    codes: dict[str, list[int]] = field(default_factory=dict)
    stage: dict[str, list[array[float]]] = field(default_factory=dict)
    e2e: list[array[float]] = field(default_factory=list)
    queue: list[array[float]] = field(default_factory=list)
    usage: list[tuple[float, float]] = field(default_factory=list)
    records: int = 0
    levels: Counter[str] = field(default_factory=Counter)
    gaps: list[tuple[float, float, str]] = field(default_factory=list)
    missing: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ok = [0] * self.n
        self.failed = [0] * self.n
        self.e2e = [array("d") for _ in range(self.n)]
        self.queue = [array("d") for _ in range(self.n)]
        self.missing = [False] * self.n
        for a, b, _why in self.gaps:
            lo = max(0, int((a - self.t0) // self.bucket))
            hi = min(self.n - 1, int((b - self.t0) // self.bucket))
            for i in range(lo, hi + 1):
                self.missing[i] = True

    @property
    def xs(self) -> list[float]:
        return [self.t0 + i * self.bucket for i in range(self.n)]


def holes(snap: Snapshot, col: Collect, utc: bool) -> list[tuple[float, float, str]]:
    """The time spans whose records were lost to damaged input, as (start, end, why):
    a problem's ``hole`` with its open ends bounded by the records around it (the last
    record of the file before, the first of the file after, in the same stream)."""
    out: list[tuple[float, float, str]] = []
    seen: set[tuple[str, str]] = set()
    files = snap.files
    for p in snap.problems:
        if p.hole is None or (p.path, p.message) in seen:
            continue
        seen.add((p.path, p.message))
        a, b = p.hole
        i = next((k for k, f in enumerate(files) if str(f.path) == p.path), None)
        if i is not None:
            f = files[i]
            same = [g for g in files if g.stream == f.stream]
            j = same.index(f)
            if a is None:  # lost from the start of the file: after the file before it
                for g in reversed(same[:j]):
                    sp = col.file_span.get(str(g.path))
                    if sp:
                        a = sp[1]
                        break
            if b is None:  # lost to the end of the file: until the file after it
                for g in same[j + 1:]:
                    sp = col.file_span.get(str(g.path))
                    if sp:
                        b = sp[0]
                        break
        if a is None or b is None or b < a:
            continue
        out.append((ts_to_epoch(a, utc), ts_to_epoch(b, utc),
                    f"{Path(p.path).name}: {p.message}"))
    return out
