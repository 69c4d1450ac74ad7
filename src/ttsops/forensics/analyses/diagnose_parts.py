"""``diagnose``'s frames' pass from what each file gives once (a ``Part``), kept beside its
sidecar as a companion table (``reading.companion``) so that a later run reads that
instead of the file's records:

* the window's counts (``diagnose_pieces.window_plans``' group-by and span), the warning,
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...logline import STAGES
from .audio import METRICS
from .diagnose_pieces import FIELDS, pieces

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
    return f"diagnose-parts-2|{h}|{mode}"


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
    carry: Mapping[int, Any]
    head: Mapping[int, Any]
    heights: int  # the join's rows
    opened: dict[str, int]  # id -> its records in ``carry``
    head_ids: frozenset[str]
    # (not kept) the rows of ids not in ``head``, on demand: ids -> kind -> rows
    rows_of: Callable[[list[str]], dict[int, Any]] | None = field(default=None, repr=False)

    def tables(self) -> dict[str, Any]:
        return {"groups": self.groups, "sparse": self.sparse, "http": self.http,
                "syn": self.syn, **{f"carry{k}": v for k, v in self.carry.items()},
                **{f"head{k}": v for k, v in self.head.items()}}

    def values(self) -> dict[str, Any]:
        return {"height": self.height, "lo": self.lo, "hi": self.hi,
                "comp": None if self.comp is None else list(self.comp),
                "heights": self.heights, "opened": self.opened,
                "head_ids": sorted(self.head_ids)}

    @classmethod
    def of(cls, tables: Mapping[str, Any], values: dict[str, Any]) -> Part:
        """A part from its companion's tables (the open records' read when asked for)."""
        comp = values["comp"]
        return cls(int(values["height"]), tables["groups"], values["lo"], values["hi"],
                   tables["sparse"], None if comp is None else (float(comp[0]),
                                                                 float(comp[1])),
                   tables["http"], tables["syn"], _Kinds(tables, "carry", OPEN_KINDS),
                   _Kinds(tables, "head", KINDS), int(values["heights"]),
                   {str(k): int(v) for k, v in values["opened"].items()},
                   frozenset(str(x) for x in values["head_ids"]))


class _Kinds(Mapping[int, Any]):
    """A part's frames by kind, from its companion's tables ``<prefix><kind>``."""

    def __init__(self, tables: Mapping[str, Any], prefix: str, kinds: tuple[int, ...]) -> None:
        self.tables = tables
        self.prefix = prefix
        self.kinds = kinds
        for k in kinds:
            if f"{prefix}{k}" not in tables:
                raise KeyError(f"{prefix}{k}")

    def __getitem__(self, k: int) -> Any:
        if k not in self.kinds:
            raise KeyError(k)
        return self.tables[f"{self.prefix}{k}"]

    def __iter__(self) -> Iterator[int]:
        return iter(self.kinds)

    def __len__(self) -> int:
        return len(self.kinds)


def make(df: Any, mode: str) -> Part:
    """The part of a file's frame (``diagnose_frames``' columns)."""
    import polars as pl

    from ..reading.frame_ops import frame, pick, repeat, where
    from ..reading.sidecar import RECORD_COLUMNS
    from ..reading.synth_frames import SynthJoin

    groups, span, sp, comp, http, rows = pieces(df, 0)
    join = SynthJoin(FIELDS, METRICS, STAGES, mode)
    syn = join.feed(rows)
    # (the kind of each id's first row: one plan over the rows' columns)
    head_ids = (pl.concat([frame([rows[k].get_column("seq"), rows[k].get_column("id"),
                                  repeat("k", k, pl.Int8, rows[k].height)])
                           for k in KINDS]).lazy().sort("seq")
                .group_by("id").agg(pl.col("k").first())
                .filter(pl.col("k") != 0).collect().get_column("id"))
    lo, hi = span.row(0) if df.height else (None, None)
    if df.height and df.get_column("ts").null_count():
        hi = None  # (a window would drop those records: the frame is read then)
    carry = {k: join.carry.get(k, rows[k].clear()) for k in OPEN_KINDS}
    opened: dict[str, int] = {}
    for f in carry.values():
        for x in f.get_column("id").to_list():
            opened[x] = opened.get(x, 0) + 1
    heads = head_ids.implode()
    head = {k: where(rows[k], _among(rows[k], heads)) if head_ids.len() else rows[k].clear()
            for k in KINDS}
    part = Part(df.height, groups, lo, hi, pick(sp, "_r", *RECORD_COLUMNS), comp, http, syn,
                carry, head,
                sum(f.height for f in rows.values()), opened,
                frozenset(head_ids.to_list()))
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

        from ..reading.companion import Damaged

        try:
            df = pl.scan_parquet(p).select(columns).collect()
        except Exception as e:  # (the sidecar cannot be read now: the pass runs without)
            raise Damaged(str(p)) from e
        return _rows_of(df, ids)
    return rows_of


class PartJoin:
    """``synth_frames.SynthJoin`` over parts: ``feed`` the parts of a few files (in order,
    after those before).

    Which ids are open at a file's start is followed in Python (``opened``: id -> its
    records not closed yet); for each file, the ids open before it that have records in
    it (``present``) get all their rows of the file (``head``, or read) instead of the
    file's own records still open at its end. One ``SynthJoin`` over the records open
    before the group, those open rows and those of the ids present, joins every
    synthesis that takes records from before its file; the others are the files' own."""

    def __init__(self, mode: str, max_pending: int = 200_000) -> None:
        self.mode = mode
        self.max_pending = max_pending
        self.carry: dict[int, Any] = {}  # the join's records open (seq from the start)
        self.opened: dict[str, int] = {}  # their ids, and how many each

    def feed(self, group: list[tuple[Part, int]]) -> Any:
        """The syntheses the parts (each with the ``seq`` of its first record) complete,
        in order."""
        import numpy as np
        import polars as pl

        from ..reading.frame_ops import where
        from ..reading.synth_frames import SynthJoin

        syns: list[Any] = []
        bases: list[Any] = []
        rows: dict[int, list[Any]] = {k: [] for k in KINDS}
        opened = self.opened
        for part, base in group:
            # (SynthJoin's count of the syntheses in flight, where it needs no closer look)
            if len(opened) + part.heights + sum(opened.values()) > self.max_pending:
                raise TooMany
            syns.append(part.syn)
            bases.append(np.full(part.syn.height, base, dtype=np.int64))
            present: list[str] = []
            done: set[str] = set()
            if opened:
                ids = list(opened)
                done = set(part.syn.get_column("id").filter(
                    part.syn.get_column("id").is_in(ids)).to_list())
                present = [x for x in ids if x in done or x in part.opened]
            among = pl.Series(present, dtype=pl.Utf8).implode()  # (once for every kind)
            for k in OPEN_KINDS if part.opened else ():
                c = part.carry[k]
                if c.height:  # (the ids present: all their rows of the file, below)
                    rows[k].append(_moved(where(c, ~_among(c, among)) if present else c,
                                          base))
            if present:
                if part.head_ids.issuperset(present):
                    got = {k: where(part.head[k], _among(part.head[k], among))
                           for k in KINDS}
                elif part.rows_of is not None:
                    got = part.rows_of(present)
                else:  # (cannot happen: every part can read its rows)
                    raise TooMany
                for k in KINDS:
                    if got[k].height:
                        rows[k].append(_moved(got[k], base))
            now = {x: n for x, n in opened.items() if x not in present}
            for x, n in part.opened.items():
                now[x] = n + (opened[x] if x in present and x not in done else 0)
            opened = now
        self.opened = opened
        syn = pl.concat(syns, how="vertical_relaxed") if len(syns) > 1 else syns[0]
        syn = syn.with_columns(pl.col("seq") + pl.Series(np.concatenate(bases)))
        if not any(rows[k] for k in KINDS) and not any(
                f.height for f in self.carry.values()):
            return syn
        j = SynthJoin(FIELDS, METRICS, STAGES, self.mode, max_pending=self.max_pending)
        j.carry = self.carry
        empty = {k: group[0][0].head[k].clear() for k in KINDS}
        batch = {k: (pl.concat(v, how="vertical_relaxed").sort("seq") if v else empty[k])
                 for k, v in rows.items()}
        again = j.feed(batch)
        self.carry = j.carry
        if again.height:
            syn = pl.concat([syn.filter(~pl.col("seq").is_in(again.get_column("seq")
                                                              .implode())), again],
                            how="vertical_relaxed").sort("seq")
        return syn


def _among(df: Any, ids: Any) -> Any:
    """Whether each row's ``id`` is one of ``ids`` (a Series of them, imploded: built
    once for every kind) (a boolean Series)."""
    return df.get_column("id").is_in(ids)


def _moved(df: Any, base: int) -> Any:
    """``df`` with ``base`` added to its ``seq``."""
    from ..reading.frame_ops import frame

    return frame([c + base if c.name == "seq" else c for c in df.get_columns()])


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
        if self.until is not None and str(info["hi"]) >= self.until:
            return None  # (the window cuts the file: its lines are read)
        tv = companion.load(p, key, NAME, self.tag, stats.records)
        if tv is None:
            self.missing[str(f.path)] = (p, key, stats.records)
            return None
        try:
            part = Part.of(*tv)
        except Exception:  # (tables or values not as this code writes them)
            self.missing[str(f.path)] = (p, key, stats.records)
            return None
        if self.until is not None and part.height and (part.hi is None
                                                         or part.hi >= self.until):
            return None  # (the frame, cut by the window, is read)
        part.rows_of = _sidecar_rows(p, self.columns)
        return part, stats, str(info["lo"]), str(info["hi"])

    def part_of(self, f: LogFile, df: Any) -> Part:
        from ..reading import companion

        part = make(df, self.mode)
        miss = self.missing.pop(str(f.path), None)
        if miss is not None and miss[2] == df.height:  # the whole file, from its sidecar
            p, key, rows = miss
            # (its rows read again where wanted: the frame is not kept until then)
            part.rows_of = _sidecar_rows(p, self.columns)
            if self.write:
                companion.save(p, key, NAME, self.tag, rows, part.tables(), part.values())
        return part
