"""Frame operations done column by column (``Series`` methods that Polars runs without
a query plan): the same rows as ``DataFrame.filter``, ``select`` or ``with_columns`` of
a constant, at a fraction of their fixed cost (~0.05-0.15 ms each, most of the time of
a small frame's operation). ``synth_frames`` joins many small batches (small logs, many
small files, a file's own part in ``diagnose_parts``): their cost is mostly such fixed
costs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def frame(columns: Sequence[Any]) -> Any:
    """A frame of the ``columns`` (Series of one height), in order."""
    import polars as pl

    return pl.DataFrame(list(columns))


def pick(df: Any, *names: str | tuple[str, str]) -> Any:
    """``df.select`` of the columns ``names`` (a name, or ``(name, alias)``)."""
    return frame([df.get_column(n) if isinstance(n, str) else
                  df.get_column(n[0]).alias(n[1]) for n in names])


def where(df: Any, mask: Any) -> Any:
    """The rows of ``df`` where the boolean Series ``mask`` is true (null: not kept)."""
    return frame([c.filter(mask) for c in df.get_columns()])


def split(df: Any, column: str) -> tuple[Any, Any]:
    """The rows of ``df`` where ``column`` (of integers) is not null, and the others, in
    order."""
    import numpy as np
    import polars as pl

    c = df.get_column(column)
    n = c.null_count()
    if n == 0:
        return df, df.clear()
    if n == df.height:
        return df.clear(), df
    null = pl.Series(np.isnan(c.cast(pl.Float64).to_numpy()))
    return where(df, ~null), where(df, null)


_ONE: dict[tuple[Any, Any], Any] = {}  # (value, dtype) -> a Series of it once


def repeat(name: str, value: Any, dtype: Any, n: int) -> Any:
    """A Series of ``value`` (a constant: None, a number or a string) ``n`` times."""
    import polars as pl

    one = _ONE.get((value, dtype))
    if one is None:
        one = _ONE[value, dtype] = pl.Series("", [value], dtype=dtype)
    return (one.new_from_index(0, n) if n else one.clear()).alias(name)


def nulls(name: str, dtype: Any, n: int) -> Any:
    """A Series of ``n`` nulls."""
    return repeat(name, None, dtype, n)
