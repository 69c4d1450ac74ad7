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

import math
from collections.abc import Sequence
from typing import Any

from ...logformat import dialects
from ...logformat.record import to_number
from .frame_ops import frame, nulls, pick, split, where
from .vector_frames import num_expr

EVENTS = ("synthesis_start", "stage_time", "synthesis_complete", "audio_metrics",
          "synthesis_failed")
KIND = {e: i for i, e in enumerate(EVENTS)}
START, STAGE, COMPLETE, AUDIO, FAILED = range(5)
# the fields every synthesis row carries (whatever else is asked)
BASE_FIELDS = ("error_code", "cache_hit")


def frame_columns(names: Sequence[str] = ()) -> list[str]:
    """The sidecar frame columns ``rows`` reads, with the columns of their own of the
    fields and metrics ``names`` where the sidecar keeps them (``sidecar.HOT``)."""
    from .sidecar import HOT

    return ["ts", "event", "fields", "k_id", "k_stage", "k_duration_ms", "k_queue_ms",
            "k_elapsed_ms", "k_status", "k_error_code", "k_cache_hit", "k_where",
            *(f"k_{n}" for n in dict.fromkeys(names) if n in HOT and n not in
              ("error_code", "cache_hit", "where"))]


def rows(df: Any, base: int, fields: Sequence[str], metrics: Sequence[str]) -> dict[int, Any]:
    """``rows_of`` the collected ``row_plans``."""
    import polars as pl

    plans = row_plans(df, base, fields, metrics)
    return rows_of(dict(zip(plans, pl.collect_all(list(plans.values())), strict=True)))


def row_plans(df: Any, base: int, fields: Sequence[str], metrics: Sequence[str],
              ) -> dict[int, Any]:
    """The records of a sidecar frame (``frame_columns``, in order) that the join reads,
    a frame per kind (``START`` ...), each in order: ``seq`` (``base`` + the row), ``id``
    and what the join takes from that kind: starts ``f_<field>``; stages ``stage``, ``v``
    (duration), ``el`` (has elapsed_ms); completes ``ts``, ``status``, ``v``, ``q``
    (queue), ``f_<field>``; audio ``ts``, ``m_<metric>``; failures ``where``. A field is
    read from its ``k_<field>`` column where the frame has one (the same string), else
    decoded from the JSON of the records of that kind only."""
    import polars as pl

    cols = set(df.columns)
    flist = list(dict.fromkeys([*BASE_FIELDS, *fields]))
    mlist = list(dict.fromkeys(metrics))
    r = (df.lazy().with_row_index("row")
         .filter(pl.col("event").is_in(list(EVENTS)) & pl.col("k_id").is_not_null()
                 & (pl.col("k_id") != ""))
         .with_columns((pl.col("row") + base).cast(pl.Int64).alias("seq"),
                       pl.col("k_id").alias("id")))
    ev = pl.col("event")

    def field_cols(names: list[str], prefix: str) -> list[Any]:
        """Expressions of ``names``: their hot columns, or decoded from the JSON."""
        dec = [n for n in names if f"k_{n}" not in cols]
        out = [pl.col(f"k_{n}").alias(f"{prefix}{n}") for n in names if n not in dec]
        if dec:
            d = pl.col("fields").str.json_decode(pl.Struct({n: pl.Utf8 for n in dec}))
            out += [d.struct.field(n).alias(f"{prefix}{n}") for n in dec]
        return out

    # a narrow frame per kind, from one plan (Polars computes the common part once)
    plans = {
        START: r.filter(ev == "synthesis_start").select("seq", "id", *field_cols(flist, "f_")),
        STAGE: r.filter(ev == "stage_time").select("seq", "id", pl.col("k_stage").alias("stage"),
                                                   "k_duration_ms", "k_elapsed_ms"),
        COMPLETE: r.filter(ev == "synthesis_complete").select(
            "seq", "id", "ts", pl.col("k_status").alias("status"), "k_duration_ms",
            "k_queue_ms", *field_cols(flist, "f_")),
        AUDIO: r.filter(ev == "audio_metrics").select("seq", "id", "ts",
                                                      *field_cols(mlist, "m_")),
        FAILED: r.filter(ev == "synthesis_failed").select("seq", "id",
                                                          *field_cols(["where"], "")),
    }
    return plans


def rows_of(got: dict[int, Any]) -> dict[int, Any]:
    """``rows`` from the collected ``row_plans`` (by their columns, ``frame_ops``: a
    batch's frames are mostly small, where each frame operation's fixed cost counts)."""
    out: dict[int, Any] = {START: got[START]}
    sg = got[STAGE]
    stage, v = sg.get_column("stage"), numbers(sg.get_column("k_duration_ms")).alias("v")
    sg = frame([sg.get_column("seq"), sg.get_column("id"), stage, v,
                numbers(sg.get_column("k_elapsed_ms")).is_not_null().alias("el")])
    # a stage_time without a stage or a number is ignored, as the Assembler does
    # (a null stage compares null: ``where`` keeps no row of a null)
    out[STAGE] = where(sg, (stage != "") & v.is_not_null())
    co = got[COMPLETE]
    out[COMPLETE] = frame([*(c for c in co.get_columns()
                             if c.name not in ("k_duration_ms", "k_queue_ms")),
                           numbers(co.get_column("k_duration_ms")).alias("v"),
                           numbers(co.get_column("k_queue_ms")).alias("q")])
    out[AUDIO] = frame([numbers(c) if c.name.startswith("m_") else c
                        for c in got[AUDIO].get_columns()])
    out[FAILED] = got[FAILED]
    return out


def numbers(raw: Any, few: int | None = None) -> Any:
    """``Record.num`` of each string of ``raw`` (``num_expr``), the usual values (what
    Polars casts to a finite float) cast at once, the others read by ``num_expr``, or
    by ``to_number`` one by one where they are at most ``few`` (default ``FEW``)."""
    import numpy as np
    import polars as pl

    c = raw.cast(pl.Float64, strict=False)
    # (every text a finite number: as many nulls as before the cast, none infinite or NaN,
    # so their sum is finite; a finite sum that overflows only takes the longer way)
    if c.null_count() == raw.null_count() and math.isfinite(c.sum()):
        return c
    # the texts that are not null but cast to null (NaN here), infinite or NaN
    bad = np.flatnonzero(raw.is_not_null().to_numpy() & ~np.isfinite(c.to_numpy()))
    if not bad.size:
        return c
    # (``num_expr`` is ``to_number``; a plan of it costs ~1 ms)
    if bad.size <= (FEW if few is None else few):
        fixed = pl.Series([to_number(v) for v in raw.gather(bad).to_list()],
                          dtype=pl.Float64)
    else:
        fixed = pl.DataFrame({"v": raw.gather(bad)}).select(num_expr(pl.col("v"))).to_series()
    return c.scatter(bad, fixed)


FEW = 1000  # ``numbers``: at most this many texts read again one by one


class SynthJoin:
    """Joins ``rows`` batch by batch (in order) into syntheses (``feed``).

    Each record is keyed by the complete that closes it: ``cseq``, the position of the
    first ``synthesis_complete`` of its id after it (an as-of join on the position, by
    id); the records of a synthesis are then grouped and joined on that one integer."""

    def __init__(self, fields: Sequence[str], metrics: Sequence[str], stages: Sequence[str],
                 stage_time: str | None = None, max_pending: int = 200_000) -> None:
        self.fields = list(dict.fromkeys([*BASE_FIELDS, *fields]))
        self.metrics = list(dict.fromkeys(metrics))
        self.stages = list(stages)
        self.mode = stage_time or dialects.stage_time_mode()
        self.max_pending = max_pending
        self.carry: dict[int, Any] = {}  # kind -> its records not closed yet
        self.pending = 0  # syntheses in flight after the last batch
        self.peak = 0  # the most ever in flight at once
        self.overflow = False  # more than max_pending: the Assembler would have dropped some

    def feed(self, batch: dict[int, Any]) -> Any:
        """The syntheses that ``batch`` (``rows`` after those fed before) completes."""
        import polars as pl

        comp = batch[COMPLETE]
        heights = sum(f.height for f in batch.values())
        first_new = min((f.get_column("seq").min() for f in batch.values() if f.height),
                        default=None)
        key = frame([comp.get_column("seq").alias("cseq").set_sorted(), comp.get_column("id")])
        done: dict[int, Any] = {}
        carry: dict[int, Any] = {}
        for kind in (START, STAGE, AUDIO, FAILED):
            x = batch[kind]
            old = self.carry.get(kind)
            if old is not None and old.height:
                x = pl.concat([old, x], how="vertical")
            if comp.height and x.height:
                x = x.join_asof(key, left_on="seq", right_on="cseq", by="id",
                                strategy="forward", check_sortedness=False)
                done[kind], open_ = split(x, "cseq")
                carry[kind] = frame(open_.get_columns()[:-1])  # (without cseq: the last)
            else:
                done[kind] = x.clear().hstack([nulls("cseq", pl.Int64, 0)])
                carry[kind] = x
        self._count_pending(done, carry, comp, heights, first_new)
        self.carry = carry
        return self._join(comp, done)

    def _count_pending(self, done: dict[int, Any], carry: dict[int, Any], comp: Any,
                       heights: int, first_new: int | None) -> None:
        """The Assembler's syntheses in flight through this batch: an entry is made by
        the first record of an id's segment that is not its complete, and ends with it."""
        import polars as pl

        if first_new is None:
            return
        ids = [f.get_column("id") for f in carry.values() if f.height]
        now = pl.concat(ids).n_unique() if ids else 0
        old = sum(f.height for f in self.carry.values())
        if self.pending + heights + old <= self.max_pending:  # no more entries than records
            self.peak = max(self.peak, self.pending)
            self.pending = now
            return
        parts = [f.select("id", "seq", "cseq") for f in done.values() if f.height]
        parts += [f.select("id", "seq", pl.lit(None, dtype=pl.Int64).alias("cseq"))
                  for f in carry.values() if f.height]
        if parts:
            ent = pl.concat(parts).group_by("id", "cseq").agg(c=pl.col("seq").min())
            ev = pl.concat([
                ent.filter(pl.col("c") >= first_new).select(t=pl.col("c"), d=pl.lit(1)),
                ent.filter(pl.col("cseq").is_not_null()).select(t=pl.col("cseq"),
                                                                d=pl.lit(-1)),
            ]).sort("t")
            if ev.height:
                top = ev.select(pl.col("d").cum_sum().max()).item()
                self.peak = max(self.peak, self.pending + max(0, int(top)))
        self.pending = now
        if self.peak > self.max_pending:
            self.overflow = True

    def _join(self, comp: Any, done: dict[int, Any]) -> Any:
        import polars as pl

        fcols = [f"f_{f}" for f in self.fields]
        out = pick(comp, "id", "seq", "ts", "status", ("v", "e2e"), ("q", "queue"), *fcols)

        def last(kind: int, *cols: tuple[str, str]) -> Any:
            """The last record's columns (``(column, alias)``) per synthesis (one row
            each)."""
            x = done[kind]
            if x.height and x.get_column("cseq").n_unique() != x.height:
                return x.group_by("cseq").agg(*[pl.col(c).last().alias(a) for c, a in cols])
            return pick(x, "cseq", *cols)

        parts = [
            last(START, *[(c, f"s{c}") for c in fcols]),
            last(AUDIO, ("ts", "audio_ts"), *[(f"m_{m}", f"m_{m}") for m in self.metrics]),
            last(FAILED, ("where", "where")),
        ]
        st = self._stages(done[STAGE], pick(out, ("seq", "cseq"), "e2e"))
        if st is not None:
            parts.append(st)
        for x in parts:
            if x.height:
                out = out.join(x.rename({"cseq": "seq"}), on="seq", how="left")
            else:
                out = out.hstack([nulls(c, t, out.height) for c, t in x.schema.items()
                                  if c != "cseq"])
        if not out.get_column("seq").is_sorted():
            out = out.sort("seq")
        have = set(out.columns)
        # Synthesis.get: the complete's field where it has one, else the start's
        return out.select("id", "seq", "ts", "status", "e2e", "queue",
                          *[pl.coalesce(pl.col(f"f_{f}"), pl.col(f"sf_{f}")).alias(f)
                            for f in self.fields], "where",
                          "audio_ts", *[f"m_{m}" for m in self.metrics],
                          *[f"st_{s}" if f"st_{s}" in have else
                            pl.lit(None, dtype=pl.Float64).alias(f"st_{s}")
                            for s in self.stages])

    def _stages(self, st: Any, syn: Any) -> Any:
        """The stage times per synthesis, wide (``cseq``, ``st_<stage>``); None: none."""
        import polars as pl

        if st.height == 0:
            return None
        g = ["cseq", "stage"]
        if st.select(pl.struct(*g).n_unique()).item() != st.height:
            # the last record of a stage wins, in the order of its first
            st = (st.group_by(*g, maintain_order=True)
                  .agg(pl.col("v").last(), pl.col("seq").first(), pl.col("el").any()))
        st = per_stage(st, syn, self.mode)
        st = st.filter(pl.col("stage").is_in(self.stages))
        if st.height == 0:
            return None
        wide = st.pivot(on="stage", index="cseq", values="v")
        return wide.rename({n: f"st_{n}" for n in wide.columns if n != "cseq"})


def per_stage(stages: Any, syn: Any, mode: str) -> Any:
    """``stages`` (cseq, stage, v, seq: its first record, el) with cumulative values made
    per-stage, decided per synthesis as ``assemble.read_stages`` decides (``syn``: cseq,
    e2e); columns cseq, stage, v."""
    import polars as pl

    if stages.height == 0 or (mode == "auto" and stages.get_column("el").all()):
        return stages.select("cseq", "stage", "v")
    v = pl.col("v")
    # a synthesis's stages together, in the order of their first records
    s = stages.sort("cseq", "seq")
    same = pl.col("cseq") == pl.col("cseq").shift(1)
    s = s.with_columns(prev=pl.when(same).then(v.shift(1)))
    g = s.group_by("cseq").agg(
        n=pl.len(), last=v.last(), elany=pl.col("el").fill_null(False).any(),
        mono=(pl.col("prev").is_null() | (v >= pl.col("prev"))).all())
    n = pl.col("n")
    if mode != "auto":
        g = g.with_columns(cum=(n >= 2) & pl.lit(mode == "cumulative"))
    else:
        g = g.join(syn, on="cseq", how="left")
        e2e = pl.col("e2e")
        g = g.with_columns(cum=(~pl.col("elany") & (n >= 2) & pl.col("mono")
                                & (e2e.is_null() | (pl.col("last") <= e2e + n.cast(pl.Float64)
                                                    + 0.01 * e2e))))
    s = s.join(g.select("cseq", "cum"), on="cseq", how="left")
    return s.select("cseq", "stage", pl.when(pl.col("cum")).then(v - pl.col("prev")
                                                                 .fill_null(0.0))
                    .otherwise(v).alias("v"))


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
