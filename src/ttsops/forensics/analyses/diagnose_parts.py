"""``diagnose``'s frames' pass from what each file gives once (a ``Part``), kept beside its
sidecar as a companion table (``reading.companion``) so that a later run reads that
instead of the file's records:

* the window's counts (``FramePass._window_plans``' group-by and span), the warning,
  error and rare records (``SPARSE_*``: made ``Record`` s when fed), the span of the
  completes' times, the ``http_request`` rows answered 2xx;
* the syntheses joined within the file (``synth_frames.SynthJoin`` from no records
  before), the join's records still open at the file's end (``carry``), and every row of
  the join of the ids whose first record in the file is not a ``synthesis_start``
  (``head``: the ids a file before may have left open).

A run feeds the parts in order (``PartJoin``): where records of an id are open from the
files before and the file has records of that id, the syntheses of those ids in the
file are joined again from those open records and the file's rows of the ids (``head``,
or read from its sidecar when the id is not among them); every other synthesis is the
file's own. The answer is the frames' pass's (``diagnose_frames.FramePass.feed``) on the
same records: the join is the same per synthesis, the collectors are fed the same rows
in the same order.

A part is made from the file's frame (and written, when the frame is the whole file
read from a valid sidecar) and read instead of the frame where the sidecar is valid,
the companion was made by this code and the same ``--stage-time`` mode, and the query
window does not cut the file (no record at or after ``until``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...logline import STAGES
from .audio import METRICS
from .diagnose_frames import FIELDS, pieces

if TYPE_CHECKING:
    from ...logformat import ReadStats
    from ..reading.scan import Scan
    from ..reading.sources import LogFile

NAME = "diagnose"
KINDS = (0, 1, 2, 3, 4)  # synth_frames' START ... FAILED
OPEN_KINDS = (0, 1, 3, 4)  # the kinds the join carries (not the completes)


def tag(mode: str) -> str:
    """What a companion was made by: this module's format, the join's fields, metrics and
    stages, and the ``--stage-time`` mode."""
    h = hashlib.sha256(repr((FIELDS, METRICS, STAGES)).encode()).hexdigest()[:12]
    return f"diagnose-parts-1|{h}|{mode}"


class TooMany(Exception):
    """More syntheses in flight than the join may count without looking closer: the
    caller takes the frames' pass (which decides exactly)."""


@dataclass
class Part:
    """What one file's records give, its rows numbered from 0 (``seq``)."""

    height: int
    groups: Any
    lo: str | None  # the smallest and largest time of the records
    hi: str | None
    sparse: Any  # _r and the record columns
    comp: tuple[float, float] | None
    http: Any  # seq, id
    syn: Any
    carry: dict[int, Any]
    head: dict[int, Any]
    heights: int  # the join's rows
    # (not kept) the rows of ids not in ``head``, on demand: ids -> kind -> rows
    rows_of: Callable[[list[str]], dict[int, Any]] | None = field(default=None, repr=False)

    def tables(self) -> dict[str, Any]:
        return {"groups": self.groups, "sparse": self.sparse, "http": self.http,
                "syn": self.syn, **{f"carry{k}": v for k, v in self.carry.items()},
                **{f"head{k}": v for k, v in self.head.items()}}

    def values(self) -> dict[str, Any]:
        return {"height": self.height, "lo": self.lo, "hi": self.hi,
                "comp": None if self.comp is None else list(self.comp),
                "heights": self.heights}

    @classmethod
    def of(cls, tables: dict[str, Any], values: dict[str, Any]) -> Part:
        comp = values["comp"]
        return cls(int(values["height"]), tables["groups"], values["lo"], values["hi"],
                   tables["sparse"], None if comp is None else (float(comp[0]),
                                                                 float(comp[1])),
                   tables["http"], tables["syn"],
                   {k: tables[f"carry{k}"] for k in OPEN_KINDS},
                   {k: tables[f"head{k}"] for k in KINDS}, int(values["heights"]))


def make(df: Any, mode: str) -> Part:
    """The part of a file's frame (``diagnose_frames``' columns)."""
    import polars as pl

    from ..reading.sidecar import RECORD_COLUMNS
    from ..reading.synth_frames import SynthJoin

    groups, span, sp, comp, http, rows = pieces(df, 0)
    join = SynthJoin(FIELDS, METRICS, STAGES, mode)
    syn = join.feed(rows)
    firsts = (pl.concat([rows[k].select("seq", "id", pl.lit(k, dtype=pl.Int8).alias("k"))
                         for k in KINDS]).sort("seq")
              .group_by("id").agg(pl.col("k").first()))
    head_ids = firsts.filter(pl.col("k") != 0).get_column("id")
    lo, hi = span.row(0) if df.height else (None, None)
    if df.height and df.get_column("ts").null_count():
        hi = None  # (a window would drop those records: the frame is read then)
    part = Part(df.height, groups, lo, hi, sp.select("_r", *RECORD_COLUMNS), comp, http, syn,
                {k: join.carry.get(k, rows[k].clear()) for k in OPEN_KINDS},
                {k: rows[k].filter(pl.col("id").is_in(head_ids.implode())) for k in KINDS},
                sum(f.height for f in rows.values()))
    part.rows_of = lambda ids: _rows_of(df, ids)
    return part


def _rows_of(df: Any, ids: list[str]) -> dict[int, Any]:
    """The join's rows (``synth_frames.rows``) of the records of ``ids`` in the frame,
    numbered by their rows in it."""
    import polars as pl

    from ..reading.synth_frames import rows

    sub = df.with_row_index("_row").filter(pl.col("k_id").is_in(ids))
    at = sub.get_column("_row").cast(pl.Int64)
    got = rows(sub.drop("_row"), 0, FIELDS, METRICS)
    return {k: v.with_columns(seq=at.gather(v.get_column("seq"))) for k, v in got.items()}


def _sidecar_rows(p: Path, columns: list[str]) -> Callable[[list[str]], dict[int, Any]]:
    def rows_of(ids: list[str]) -> dict[int, Any]:
        import polars as pl

        df = pl.scan_parquet(p).select(columns).collect()
        return _rows_of(df, ids)
    return rows_of


class PartJoin:
    """``synth_frames.SynthJoin`` over parts: ``feed`` a file's part after those before."""

    def __init__(self, mode: str, max_pending: int = 200_000) -> None:
        self.mode = mode
        self.max_pending = max_pending
        self.carry: dict[int, Any] = {}
        self.pending = 0

    def feed(self, part: Part, base: int) -> Any:
        """The syntheses the file completes (``seq`` from ``base``)."""
        import polars as pl


        old = sum(f.height for f in self.carry.values())
        # (SynthJoin's count of the syntheses in flight, where it needs no closer look)
        if self.pending + part.heights + old > self.max_pending:
            raise TooMany
        seq = pl.col("seq") + base
        syn = part.syn.with_columns(seq) if base else part.syn
        carry = {k: (v.with_columns(seq) if base else v) for k, v in part.carry.items()}
        open_ids = [f.get_column("id") for f in self.carry.values() if f.height]
        if open_ids:
            ids = pl.concat(open_ids).unique()
            mine = pl.concat([part.syn.get_column("id"),
                              *[f.get_column("id") for f in part.carry.values()]])
            present = ids.filter(ids.is_in(mine.implode()))
            if present.len():
                syn, carry = self._again(part, base, present, syn, carry)
            else:
                carry = {k: pl.concat([self.carry[k], carry[k]], how="vertical_relaxed")
                         for k in OPEN_KINDS}
        self.carry = carry
        now = [f.get_column("id") for f in carry.values() if f.height]
        self.pending = pl.concat(now).n_unique() if now else 0
        return syn

    def _again(self, part: Part, base: int, present: Any, syn: Any,
               carry: dict[int, Any]) -> tuple[Any, dict[int, Any]]:
        """The syntheses and open records of the file with the ids ``present`` (open
        before, with records in the file) joined again from their open records."""
        import polars as pl

        from ..reading.synth_frames import SynthJoin

        head = part.head
        hid = pl.concat([head[k].get_column("id") for k in KINDS])
        if present.is_in(hid.implode()).all():
            rows = {k: head[k].filter(pl.col("id").is_in(present.implode())) for k in KINDS}
        else:
            if part.rows_of is None:
                raise TooMany  # (cannot happen: every part can read its rows)
            rows = part.rows_of(present.to_list())
        rows = {k: v.with_columns(pl.col("seq") + base) for k, v in rows.items()}
        j = SynthJoin(FIELDS, METRICS, STAGES, self.mode, max_pending=self.max_pending)
        inp = pl.col("id").is_in(present.implode())
        j.carry = {k: self.carry[k].filter(inp) for k in OPEN_KINDS}
        again = j.feed(rows)
        syn = pl.concat([syn.filter(~inp), again], how="vertical_relaxed").sort("seq")
        out = {}
        for k in OPEN_KINDS:
            parts = [self.carry[k].filter(~inp), carry[k].filter(~inp)]
            got = j.carry.get(k)
            if got is not None:
                parts.append(got)
            out[k] = pl.concat(parts, how="vertical_relaxed").sort("seq")
        return syn, out


class Parts:
    """The ``instead`` of ``sidecar.frames`` (a file's part from its companion) and the
    parts of the other files' frames (``part_of``), written where the frame is the whole
    file of a valid sidecar."""

    def __init__(self, scan: Scan, mode: str, columns: list[str], write: bool) -> None:
        self.until = scan.query.until
        self.mode = mode
        self.tag = tag(mode)
        self.columns = columns
        self.write = write
        self.missing: dict[str, tuple[Path, str, int]] = {}  # path -> sidecar, key, rows
        self.read = self.made = self.written = 0

    def instead(self, f: LogFile, p: Path, key: str,
                ) -> tuple[Part, ReadStats, str, str] | None:
        from ..reading import companion, sidecar

        try:
            got = sidecar.scan_checked(p, key, [])
        except Exception:
            return None
        if got is None:
            return None
        _lf, stats, info = got
        tv = companion.load(p, key, NAME, self.tag, stats.records)
        if tv is None:
            self.missing[str(f.path)] = (p, key, stats.records)
            return None
        part = Part.of(*tv)
        if self.until is not None and part.height and (part.hi is None
                                                         or part.hi >= self.until):
            return None  # (the frame, cut by the window, is read)
        part.rows_of = _sidecar_rows(p, self.columns)
        self.read += 1
        return part, stats, str(info["lo"]), str(info["hi"])

    def part_of(self, f: LogFile, df: Any) -> Part:
        from ..reading import companion

        part = make(df, self.mode)
        self.made += 1
        miss = self.missing.pop(str(f.path), None)
        if self.write and miss is not None and miss[2] == df.height:
            p, key, rows = miss
            if companion.save(p, key, NAME, self.tag, rows, part.tables(),
                              part.values()) is not None:
                self.written += 1
        return part
