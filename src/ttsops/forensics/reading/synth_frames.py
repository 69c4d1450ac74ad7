"""Syntheses from sidecar frames: ``assemble.Assembler``'s join done by Polars.

One row per synthesis that completes (a ``synthesis_complete`` with an id), in the order
of the completes: its id, time (the complete's), status, end-to-end and queue wait, the
fields ``Synthesis.get`` gives (the complete's value where it has the field, else the
start's), the failure's ``where``, the audio metrics and each stage's time -- what
``Synthesis`` gives for the same records, joined by the same rules:

* a complete closes the records of its id before it (since the id's previous complete):
  the last ``synthesis_start``, ``audio_metrics`` and ``synthesis_failed`` win, the last
  ``stage_time`` of a stage wins (stages in the order of their first record); records
  after an id's last complete of a batch wait for the next batch (ids split across
  files are joined);
* a ``stage_time`` without a stage or a number is ignored;
* stage times are made per-stage where a synthesis's values are cumulative
  (``dialects.is_cumulative``, or ``--stage-time``), decided per synthesis.

The Assembler forgets the oldest of more than ``max_pending`` syntheses in flight; the
join counts them instead and sets ``overflow`` when that many were ever pending at once
(then its answers may differ: the caller reads records instead).

Columns of a batch's syntheses (``SynthJoin.feed``): ``id``, ``seq`` (the complete's
position in the records), ``ts``, ``status``, ``e2e``, ``queue``, one column per field
asked for (``error_code``, ``cache_hit``, ``voice`` ...: strings or null), ``where``,
``audio_ts`` (null: no ``audio_metrics``) and ``m_<metric>`` (its number; null where
absent or not a number), ``st_<stage>`` (null: no such stage).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...logformat import dialects
from .vector_frames import num_expr

EVENTS = ("synthesis_start", "stage_time", "synthesis_complete", "audio_metrics",
          "synthesis_failed")
KIND = {e: i for i, e in enumerate(EVENTS)}
START, STAGE, COMPLETE, AUDIO, FAILED = range(5)
# the fields every synthesis row carries (whatever else is asked)
BASE_FIELDS = ("error_code", "cache_hit")


def frame_columns() -> list[str]:
    """The sidecar frame columns ``rows`` reads."""
    return ["ts", "event", "fields", "k_id", "k_stage", "k_duration_ms", "k_queue_ms",
            "k_elapsed_ms", "k_status", "k_error_code", "k_cache_hit"]


def rows(df: Any, base: int, fields: Sequence[str], metrics: Sequence[str]) -> Any:
    """The records of a sidecar frame (``frame_columns``, in order) that the join reads,
    one row each: ``seq`` (``base`` + the row), ``kind``, ``id``, ``ts``, ``stage``,
    ``v`` (duration), ``q`` (queue), ``el`` (has elapsed_ms), ``status``, ``f_<field>``
    (starts and completes), ``where`` (failures), ``m_<metric>`` (audio)."""
    import polars as pl

    hot = {"error_code": "k_error_code", "cache_hit": "k_cache_hit", "status": "k_status"}
    decoded = [f for f in fields if f not in hot]
    wanted = [*decoded, "where", *metrics]
    k = pl.col("kind")
    r = (df.lazy().with_row_index("row").filter(pl.col("event").is_in(list(EVENTS)))
         .with_columns(kind=pl.col("event").replace_strict(KIND, return_dtype=pl.Int8),
                       id=pl.col("k_id"))
         .filter(pl.col("id").is_not_null() & (pl.col("id") != "")))
    # the other fields from the JSON, decoded once a record (not for stage records)
    dec = pl.when(k != STAGE).then(pl.col("fields")).str.json_decode(
        pl.Struct({n: pl.Utf8 for n in dict.fromkeys(wanted)}))
    r = r.with_columns(_d=dec)
    d = pl.col("_d").struct
    sf = (k == START) | (k == COMPLETE)
    nums = {"v": pl.when((k == STAGE) | (k == COMPLETE)).then(pl.col("k_duration_ms")),
            "q": pl.when(k == COMPLETE).then(pl.col("k_queue_ms")),
            "el": pl.when(k == STAGE).then(pl.col("k_elapsed_ms")),
            **{f"m_{m}": pl.when(k == AUDIO).then(d.field(m)) for m in metrics}}
    r = r.with_columns(
        stage=pl.when(k == STAGE).then(pl.col("k_stage")),
        status=pl.when(k == COMPLETE).then(pl.col("k_status")),
        where=pl.when(k == FAILED).then(d.field("where")),
        **{f"f_{f}": pl.when(sf).then(pl.col(hot[f]) if f in hot else d.field(f))
           for f in dict.fromkeys([*BASE_FIELDS, *fields])}, **nums)
    keep = [c for c in r.collect_schema().names()
            if c not in ("row", "event", "fields", "_d") and not c.startswith("k_")]
    out = r.select((pl.col("row") + base).cast(pl.Int64).alias("seq"),
                   *[c for c in keep if c != "seq"]).collect()
    out = out.with_columns(**{c: numbers(out.get_column(c)) for c in nums})
    out = out.with_columns(el=pl.when(pl.col("kind") == STAGE)
                           .then(pl.col("el").is_not_null()))
    # a stage_time without a stage or a number is ignored, as the Assembler does
    return out.filter((pl.col("kind") != STAGE)
                      | (pl.col("stage").is_not_null() & (pl.col("stage") != "")
                         & pl.col("v").is_not_null()))


def numbers(raw: Any) -> Any:
    """``Record.num`` of each string of ``raw`` (``num_expr``), the usual values (what
    Polars casts to a finite float) cast at once, the others read by ``num_expr``."""
    import polars as pl

    c = raw.cast(pl.Float64, strict=False)
    bad = raw.is_not_null() & (c.is_null() | ~c.is_finite().fill_null(False))
    if not bad.any():
        return c
    idx = bad.arg_true()
    fixed = pl.DataFrame({"v": raw.gather(idx)}).select(num_expr(pl.col("v"))).to_series()
    return c.scatter(idx, fixed)


class SynthJoin:
    """Joins ``rows`` batch by batch (in order) into syntheses (``feed``)."""

    def __init__(self, fields: Sequence[str], metrics: Sequence[str], stages: Sequence[str],
                 stage_time: str | None = None, max_pending: int = 200_000) -> None:
        self.fields = list(dict.fromkeys([*BASE_FIELDS, *fields]))
        self.metrics = list(metrics)
        self.stages = list(stages)
        self.mode = stage_time or dialects.stage_time_mode()
        self.max_pending = max_pending
        self.carry: Any = None
        self.pending = 0  # syntheses in flight after the last batch
        self.peak = 0  # the most ever in flight at once
        self.overflow = False  # more than max_pending: the Assembler would have dropped some

    def feed(self, batch: Any) -> Any:
        """The syntheses that ``batch`` (rows after those fed before) completes."""
        import polars as pl

        r = batch if self.carry is None else pl.concat([self.carry, batch], how="vertical")
        first_new = batch.get_column("seq").min() if batch.height else None
        isc = (pl.col("kind") == COMPLETE).cast(pl.Int32)
        r = r.with_columns(seg=(isc.cum_sum().over("id") - isc),
                           ncomp=isc.sum().over("id"))
        self.carry = r.filter((pl.col("kind") != COMPLETE) & (pl.col("seg") == pl.col("ncomp"))
                              ).drop("seg", "ncomp")
        done = r.filter(pl.col("seg") < pl.col("ncomp"))
        self._count_pending(r, first_new)
        return self._join(done)

    def _count_pending(self, r: Any, first_new: int | None) -> None:
        """The Assembler's syntheses in flight through ``r``: an entry is made by the
        first record of an id's segment that is not its complete, and ends with it."""
        import polars as pl

        if first_new is None:
            return
        if self.pending + r.height <= self.max_pending:  # no more entries than records
            self.peak = max(self.peak, self.pending)
            self.pending = self.carry.select(pl.col("id").n_unique()).item() \
                if self.carry.height else 0
            return
        g = ["id", "seg"]
        ent = (r.filter(pl.col("kind") != COMPLETE).group_by(g).agg(c=pl.col("seq").min())
               .join(r.filter(pl.col("kind") == COMPLETE).select(*g, e=pl.col("seq")),
                     on=g, how="left"))
        ev = pl.concat([
            ent.filter(pl.col("c") >= first_new).select(t=pl.col("c"), d=pl.lit(1)),
            ent.filter(pl.col("e").is_not_null()).select(t=pl.col("e"), d=pl.lit(-1)),
        ]).sort("t")
        if ev.height:
            top = ev.select(pl.col("d").cum_sum().max()).item()
            self.peak = max(self.peak, self.pending + max(0, int(top)))
        self.pending = self.carry.select(pl.col("id").n_unique()).item() \
            if self.carry.height else 0
        if self.peak > self.max_pending:
            self.overflow = True

    def _join(self, done: Any) -> Any:
        import polars as pl

        g = ["id", "seg"]
        kind = pl.col("kind")
        fcols = [f"f_{f}" for f in self.fields]
        syn = done.filter(kind == COMPLETE).select(
            *g, "seq", "ts", "status", pl.col("v").alias("e2e"), pl.col("q").alias("queue"),
            *fcols)
        starts = (done.filter(kind == START).group_by(g)
                  .agg(*[pl.col(c).last().alias(f"s{c}") for c in fcols]))
        audio = (done.filter(kind == AUDIO).group_by(g)
                 .agg(pl.col("ts").last().alias("audio_ts"),
                      *[pl.col(f"m_{m}").last() for m in self.metrics]))
        failed = done.filter(kind == FAILED).group_by(g).agg(pl.col("where").last())
        st = done.filter(kind == STAGE).select(*g, "stage", "v", "seq", "el")
        if st.select(pl.struct(*g, "stage").n_unique()).item() != st.height:
            # the last record of a stage wins, in the order of its first
            st = (st.group_by(*g, "stage", maintain_order=True)
                  .agg(pl.col("v").last(), pl.col("seq").first(), pl.col("el").any()))
        st = per_stage(st.rename({"seq": "first"}), syn.select(*g, pl.col("e2e")), self.mode)
        out = (syn.join(starts, on=g, how="left").join(audio, on=g, how="left")
               .join(failed, on=g, how="left"))
        st = st.filter(pl.col("stage").is_in(self.stages))
        if st.height:
            wide = st.pivot(on="stage", index=g, values="v")
            out = out.join(wide.rename({n: f"st_{n}" for n in wide.columns if n not in g}),
                           on=g, how="left")
        out = out.with_columns(**{f"st_{n}": pl.lit(None, dtype=pl.Float64)
                                  for n in self.stages if f"st_{n}" not in out.columns})
        # Synthesis.get: the complete's field where it has one, else the start's
        out = out.with_columns(**{f: pl.coalesce(pl.col(f"f_{f}"), pl.col(f"sf_{f}"))
                                  for f in self.fields})
        return (out.sort("seq")
                .select("id", "seq", "ts", "status", "e2e", "queue", *self.fields, "where",
                        "audio_ts", *[f"m_{m}" for m in self.metrics],
                        *[f"st_{s}" for s in self.stages]))


def per_stage(stages: Any, syn: Any, mode: str) -> Any:
    """``stages`` (id, seg, stage, v, first, el) with cumulative values made per-stage,
    decided per synthesis as ``assemble.read_stages`` decides (``syn``: id, seg, e2e);
    columns id, seg, stage, v."""
    import polars as pl

    g = ["id", "seg"]
    if stages.height == 0 or (mode == "auto" and stages.get_column("el").all()):
        return stages.select(*g, "stage", "v")
    v = pl.col("v")
    s = stages if stages.get_column("first").is_sorted() else stages.sort("first")
    s = s.with_columns(
        prev=v.shift(1).over(g), n=pl.len().over(g), last=v.last().over(g),
        elany=pl.col("el").fill_null(False).any().over(g))
    prev, n = pl.col("prev"), pl.col("n")
    if mode != "auto":
        cum = (n >= 2) & pl.lit(mode == "cumulative")
    else:
        s = s.join(syn, on=g, how="left")
        e2e = pl.col("e2e")
        mono = (prev.is_null() | (v >= prev)).all().over(g)
        cum = (~pl.col("elany") & (n >= 2) & mono
               & (e2e.is_null() | (pl.col("last") <= e2e + n.cast(pl.Float64) + 0.01 * e2e)))
    return s.select(*g, "stage", pl.when(cum).then(v - prev.fill_null(0.0)).otherwise(v)
                    .alias("v"))


def syntheses(frames: Any, fields: Sequence[str], metrics: Sequence[str],
              stages: Sequence[str], stage_time: str | None = None) -> Any:
    """Every synthesis of ``frames`` (an iterable of sidecar frames, in order), one
    frame, and the join (for ``overflow``)."""
    import polars as pl

    join = SynthJoin(fields, metrics, stages, stage_time)
    parts = []
    base = 0
    for df in frames:
        parts.append(join.feed(rows(df, base, fields, metrics)))
        base += df.height + 1
    out = pl.concat(parts) if parts else None
    return out, join
