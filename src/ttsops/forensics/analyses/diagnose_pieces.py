"""The parts of a batch of sidecar records that ``diagnose``'s frames' pass computes from
the batch alone (``pieces``), for ``diagnose_frames`` (fed at once) and
``diagnose_parts`` (kept per file): the window's group-by and span, the warning, error
and rare records, the span of the completes' times, the ``http_request`` rows answered
2xx, and the join's rows (``synth_frames.rows_of``).
"""

from __future__ import annotations

from typing import Any

from .audio import METRICS
from .diagnose_collect import DIMENSIONS, LOG_TROUBLE
from .diagnose_synth_frames import CANON, epochs

SPARSE_LEVELS = ("WARNING", "ERROR", "CRITICAL")
SPARSE_EVENTS = ("cache_health", "cache_dir_usage", "webui_event", "model_load_failed",
                 "engine_load", "worker_died", "worker_killed", *LOG_TROUBLE)
HOT_USED = ("k_id", "k_stage", "k_duration_ms", "k_queue_ms", "k_elapsed_ms", "k_status",
            "k_error_code", "k_warning_code", "k_cache_hit", "k_where")
FIELDS = tuple(d for d in DIMENSIONS if d != "cache_hit")


def hot_used() -> tuple[str, ...]:
    """The columns the pass reads: ``HOT_USED`` and the fields and audio metrics of the
    syntheses that the sidecar keeps as columns of their own."""
    from ..reading.sidecar import HOT

    return (*HOT_USED, *(f"k_{f}" for f in (*FIELDS, *METRICS) if f in HOT))


def window_plans(lf: Any) -> list[Any]:
    """``FramePass._window``'s group-by over the columns the counts read (each only where it
    counts; its groups in order of first appearance, so each counter's keys come in
    the order the records give them) and the span of the times."""
    import polars as pl

    lv, ev = pl.col("level"), pl.col("event")
    ec = pl.col("k_error_code")
    comp = ev == "synthesis_complete"
    g = lf.group_by(
        lv.alias("l"), ev.alias("e"),
        pl.when(lv.is_in(["ERROR", "CRITICAL", "WARNING"]) | comp).then(ec).alias("c"),
        pl.when(lv == "WARNING").then(pl.col("k_warning_code")).alias("w"),
        pl.when(comp).then(pl.col("k_status")).alias("s"),
        maintain_order=True).agg(pl.len().alias("n"))
    span = lf.select(pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi"))
    return [g, span]


def pieces(df: Any, base: int) -> tuple[Any, Any, Any, tuple[float, float] | None, Any,
                                        dict[int, Any]]:
    """``prepare`` 's parts of a batch as frames: the window's group-by and span, the
    sparse records (``_r``: the row in ``df``, and the frame's columns), the span of the
    completes' times, the 2xx ``http_request`` rows (seq, id) and the join's rows
    (``synth_frames.rows_of``), from one Polars call."""
    import polars as pl

    from ..reading import synth_frames

    lf = df.lazy()
    ev = pl.col("event")
    mask = pl.col("level").is_in(SPARSE_LEVELS) | ev.is_in(SPARSE_EVENTS)
    rp = synth_frames.row_plans(df, base, FIELDS, METRICS)
    plans = [*window_plans(lf),
             lf.with_row_index("_r").filter(mask),
             lf.filter(ev == "synthesis_complete").select(
                 n=pl.len(), ok=pl.col("ts").str.contains(CANON).all(),
                 lo=pl.col("ts").min(), hi=pl.col("ts").max()),
             lf.with_row_index("_r")
             .filter((ev == "http_request")
                     & pl.col("k_status").fill_null("").str.starts_with("2"))
             .select((pl.col("_r") + base).cast(pl.Int64).alias("seq"),
                     pl.col("k_id").alias("id")),
             *rp.values()]
    groups, span, sp, comp, http, *got = pl.collect_all(plans)
    n, ok, lo, hi = comp.row(0)
    comp_ts = None if n == 0 else pl.Series([lo, hi], dtype=pl.Utf8) if ok else \
        df.filter(ev == "synthesis_complete").get_column("ts")
    return (groups, span, sp, None if comp_ts is None else span_of(comp_ts), http,
            synth_frames.rows_of(dict(zip(rp, got, strict=True))))


def span_of(ts: Any) -> tuple[float, float] | None:
    """The smallest and largest epoch of the times ``ts`` (as ``CacheStats.feed`` reads
    them), None when there are none."""
    import polars as pl

    if len(ts) and ts.str.contains(CANON).all():  # (text order is time order then)
        ts = pl.Series([ts.min(), ts.max()], dtype=pl.Utf8)
    t = epochs(ts, True)
    return (float(t.min()), float(t.max())) if len(t) else None
