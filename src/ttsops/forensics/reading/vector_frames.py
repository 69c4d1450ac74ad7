"""Vectorised reading of sidecar frames (Polars): a record field as an expression
(``field_expr``, ``num_expr``), and ``logs stages`` over the frames, a file at a time,
joined by ``vector.StageJoin`` exactly as ``vector.collect_stages`` joins the text.
"""

from __future__ import annotations

from typing import Any

from .scan import Scan
from .vector import EVENTS, KIND, StageJoin

# ``record.to_number``'s leading number, for values of printable ASCII (where Python's
# ``\s`` and ``\d`` and Rust's agree); any other value is read by ``to_number`` itself
_LEADING = r"^\s*([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"


def field_expr(name: str) -> Any:
    """A field's value (None when the record has no such field): its own column of the
    sidecar frame when it has one (``sidecar.HOT``: ``k_<name>``), else from the JSON."""
    import polars as pl

    from .sidecar import HOT

    if name in HOT:
        return pl.col(f"k_{name}")
    return pl.col("fields").str.json_path_match(f"$.{name}")


def frame_columns(names: list[str], *base: str) -> list[str]:
    """The sidecar frame columns ``field_expr`` needs for ``names`` (and ``base``)."""
    from .sidecar import HOT

    cols = list(base)
    for n in names:
        c = f"k_{n}" if n in HOT else "fields"
        if c not in cols:
            cols.append(c)
    return cols


def num_expr(value: Any) -> Any:
    """``Record.num`` of a string expression: the leading number, or None."""
    import polars as pl

    from ...logformat.record import to_number

    plain = value.str.contains(r"^[ -~]*$")
    fast = value.str.extract(_LEADING, 1).cast(pl.Float64, strict=False)
    slow = value.map_elements(to_number, return_dtype=pl.Float64, skip_nulls=True)
    return pl.when(value.is_null()).then(None).when(plain).then(fast).otherwise(slow)


def frame_rows(df: Any, base: int, by: list[str]) -> Any:
    """``batch_rows`` for the records of a sidecar frame (ts, event, fields; in order,
    already in the scan's window): the rows of the three events (``synthesis_start``
    only with ``by`` fields), as ``_python_rows`` makes them from the same records."""
    import polars as pl

    events = list(EVENTS if by else EVENTS[1:])
    r = (df.lazy().with_row_index("row").filter(pl.col("event").is_in(events))
         .with_columns(kind=pl.col("event").replace_strict(KIND, return_dtype=pl.Int8),
                       id=field_expr("id"))
         .filter(pl.col("id").is_not_null() & (pl.col("id") != "")))
    k = pl.col("kind")
    st = field_expr("stage")
    r = r.with_columns(
        stage=pl.when(k == 1).then(st),
        v=pl.when(k != 0).then(num_expr(field_expr("duration_ms"))),
        q=pl.when(k == 2).then(num_expr(field_expr("queue_ms"))),
        el=pl.when(k == 1).then(num_expr(field_expr("elapsed_ms")).is_not_null()),
        **{f"by_{i}": field_expr(f) for i, f in enumerate(by)})
    # a stage_time without a stage or a number is ignored, as the Assembler does
    r = r.filter((k != 1) | (pl.col("stage").is_not_null() & (pl.col("stage") != "")
                             & pl.col("v").is_not_null()))
    return r.select((pl.col("row") + base).cast(pl.Int64).alias("seq"), "kind", "id",
                    "ts", "stage", "v", "q", "el",
                    *[f"by_{i}" for i in range(len(by))]).collect()


def collect_stages_frames(scan: Scan, since: str | None, by: list[str], collector: Any, *,
                          slowest: int = 5, stage_time: str | None = None) -> Scan:
    """``collect_stages`` over ``sidecar.frames`` of ``scan`` (a scan of every record
    from a margin before ``since``): a file's rows at a time, joined in order."""
    from . import sidecar

    join = StageJoin(by, since, collector, slowest, stage_time)
    base = 0
    stream = None
    cols = frame_columns(["id", "stage", "duration_ms", "queue_ms", "elapsed_ms", *by],
                         "ts", "event")
    for f, df in sidecar.frames(scan, cols):
        if stream is not None and f.stream != stream:
            base += 1 << 50  # streams (a host each) apart, as ``collect_stages`` does
        stream = f.stream
        join.feed(frame_rows(df, base, by))
        base += df.height + 1
    return scan
