"""``logs check``'s joins by synthesis id over sidecar frames, by Polars, a file's frame
at a time (``Checker.frame_ids``), with what is still open carried from one file to the
next as a small frame:

* ``split_ids``: the file each id was last seen in (``Checker._split_id`` record by
  record, its ``id_file``), an id's first record of a file judged against it;
* the syntheses: the records of one id up to its ``synthesis_complete`` joined as the
  ``Assembler`` joins them (the last start, failed, complete; per stage the last time,
  in the order the stages first came; a complete without records before it stands
  alone), then the items judged on joined syntheses (``Checker.synthesis``) and the
  stage_time reading counted (``read_stages``); what never completed is ``pending``.
  (Joined over batches of files, ``BATCH`` records: fewer, larger Polars passes.)

Each gives the counts and examples, in the same order, that the record path gives. The
record path's bounds (``id_file`` keeps 200,000 open ids, the Assembler 500,000 open
syntheses, the oldest dropped first) are kept exactly: a file that could reach one is
judged record by record (``split_ids``) or the whole check is redone record by record
(``Overflow``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import polars as pl

from ...errors import REGISTRY
from ...logformat.dialects import stage_time_mode
from ...logformat.record import STAGES
from ..reading.sources import LogFile
from ..reading.vector_frames import num_expr

if TYPE_CHECKING:
    from .check import Checker

START, STAGE, AUDIO, FAILED, COMPLETE = range(5)
# the events whose id joins a synthesis (``check.SYNTHESIS_EVENTS``)
_KIND = {"synthesis_start": START, "stage_time": STAGE, "audio_metrics": AUDIO,
         "synthesis_failed": FAILED, "synthesis_complete": COMPLETE}
_CLIENT = [c for c, spec in REGISTRY.items() if spec.status < 500]
_JOIN = {"pos": pl.Int64, "id": pl.Utf8, "ts": pl.Utf8, "kind": pl.Int8, "stage": pl.Utf8,
         "ms": pl.Float64, "el": pl.Float64, "status": pl.Utf8, "code": pl.Utf8,
         "hit": pl.Utf8, "where": pl.Boolean, "tb": pl.Boolean}
BATCH = 120_000  # records of syntheses joined at once (files read before the join)
_OPEN = {"id": pl.Utf8, "no": pl.Int64, "last": pl.Int64}


class Overflow(Exception):
    """More syntheses open at once than the Assembler keeps: judge record by record."""


class FrameIds:
    """The state of the joins by id between files (see the module)."""

    def __init__(self) -> None:
        self.base = 0  # records before this file (their positions)
        self.open = pl.DataFrame(schema=_OPEN)  # split_ids: open id -> its last file no
        self.carry = pl.DataFrame(schema=_JOIN)  # the records of open syntheses
        self.batch: list[Any] = []  # the records of the files read since the last join
        self.batched = 0

    def feed(self, chk: Checker, f: LogFile, df: Any, no: int) -> None:
        """The records of file ``f`` (number ``no`` of its stream), its frame ``df``."""
        ev = pl.col("event")
        # the records of the events that join a synthesis, with an id
        joins = ev.is_in(list(_KIND)) & (pl.col("k_id").fill_null("") != "")
        d = (df.lazy().with_row_index("pos", offset=self.base)
             .select("pos", "ts", "event", "k_id", "k_stage", "k_duration_ms", "k_elapsed_ms",
                     "k_status", "k_error_code", "k_cache_hit", tb=pl.col("tb").is_not_null(),
                     # synthesis_failed's ``where`` (null on the other events)
                     failed=pl.when(ev == "synthesis_failed").then(pl.col("k_where")))
             .filter(joins)
             .with_columns(pl.col("pos").cast(pl.Int64),
                           kind=ev.replace_strict(_KIND, default=None,
                                                  return_dtype=pl.Int8))
             .collect())
        if d.height:
            self.split_ids(chk, f, d, no)
            self.batch.append(_rows(d))
            self.batched += d.height
            if self.batched >= BATCH:
                self.join(chk)
        self.base += df.height

    # --- ids split across files -----------------------------------------------------

    def split_ids(self, chk: Checker, f: LogFile, d: Any, no: int) -> None:
        ids = d.select("pos", "ts", id="k_id", comp=pl.col("kind") == COMPLETE,
                       first=pl.col("k_id").is_first_distinct(),
                       last=pl.col("k_id").is_last_distinct())
        n_ids = ids.select(pl.col("first").sum()).item()
        if self.open.height + n_ids > chk.ID_FILE_MAX:
            self._split_by_records(chk, f, ids, no)
            return
        # an id's first record of the file meets the carried file number; a later one
        # meets this file's number unless the record before it completed the synthesis
        firsts = ids.filter("first").join(self.open.select("id", prev="no"), on="id",
                                          how="left", maintain_order="left")
        comp = pl.col("comp")
        split = chk.items["split_ids"]
        split.checked += firsts.get_column("prev").null_count() + ids.select(
            comp.sum() - (comp & pl.col("last")).sum()).item()
        bad = firsts.filter(no > pl.col("prev") + 1)
        split.fail_many(bad.height, [
            f"{s}: records in {no - p - 1} file(s) apart (the last at {t} in {f.name})"
            for s, p, t in bad.head(3).select("id", "prev", "ts").iter_rows()])
        last = ids.filter("last")
        self.open = pl.concat([
            self.open.join(last, on="id", how="anti"),
            last.filter(~comp).select("id", no=pl.lit(no, pl.Int64), last="pos")])

    def _split_by_records(self, chk: Checker, f: LogFile, ids: Any, no: int) -> None:
        """Near ``id_file``'s bound: its least recently used ids are dropped one by one,
        as the record path drops them."""
        key = f"{f.stream}\x00"
        id_file: OrderedDict[str, int] = OrderedDict(
            (key + s, n) for s, n in self.open.sort("last").select("id", "no").iter_rows())
        split = chk.items["split_ids"]
        for sv, comp, t in ids.select("id", "comp", "ts").iter_rows():  # (in order)
            k = key + sv
            prev = id_file.get(k)
            if prev is None:
                split.checked += 1
            elif no > prev + 1:
                split.fail(f"{sv}: records in {no - prev - 1} file(s) apart "
                           f"(the last at {t} in {f.name})")
            if comp:
                id_file.pop(k, None)
                continue
            id_file[k] = no
            id_file.move_to_end(k)
            if len(id_file) > chk.ID_FILE_MAX:
                id_file.popitem(last=False)
        rows = [(k[len(key):], n) for k, n in id_file.items()]
        self.open = pl.DataFrame({"id": [r[0] for r in rows], "no": [r[1] for r in rows],
                                  "last": range(self.base - len(rows), self.base)},
                                 schema=_OPEN)

    # --- the syntheses --------------------------------------------------------------

    def join(self, chk: Checker) -> None:
        """Join the records read since the last join with the open syntheses; judge those
        that completed."""
        kind = pl.col("kind")
        both = pl.concat([self.carry, *self.batch])
        self.batch, self.batched = [], 0
        c = kind == COMPLETE
        # a synthesis: an id's records up to its complete, named by the complete's
        # position ``g`` (null: not completed yet)
        both = both.with_columns(g=pl.when(c).then(pl.col("pos")).backward_fill().over("id"))
        # the syntheses open at once are at most those opened before the last file's end
        opened = both.select((kind != COMPLETE).sum()).item()
        if opened > chk.asm.max_pending and both.filter(kind != COMPLETE).select(
                pl.col("g").n_unique() + pl.col("id").filter(pl.col("g").is_null())
                .n_unique()).item() > chk.asm.max_pending:
            raise Overflow
        self.carry = both.filter(pl.col("g").is_null()).drop("g")
        judge(chk, both.filter(pl.col("g").is_not_null()))

    def flush(self, chk: Checker) -> None:
        """Join what is batched (raises ``Overflow`` as ``join``)."""
        if self.batch:
            self.join(chk)

    def pending(self, chk: Checker) -> list[tuple[str, str | None]]:
        """The syntheses never completed, oldest first: (id, the time of its start or
        None)."""
        self.flush(chk)
        if not self.carry.height:
            return []
        s = pl.col("kind") == START
        return (self.carry.group_by("id", maintain_order=True)
                .agg(pl.col("ts").filter(s).last()).rows())


def _rows(d: Any) -> Any:
    """The records that join syntheses (``d``: of the events, with an id), as joined:
    numbers read, synthesis_failed's ``where`` (its column ``k_where``)."""
    kind = pl.col("kind")
    return (d.lazy().select("pos", "ts", "kind", "tb", id="k_id", stage="k_stage",
                            ms=_num(d, "k_duration_ms"), el=_num(d, "k_elapsed_ms"),
                            status="k_status", code="k_error_code", hit="k_cache_hit",
                            where=pl.col("failed").fill_null("") != "")
            # a stage_time joins only with a stage and a time
            .filter((kind != STAGE) | ((pl.col("stage").fill_null("") != "")
                                       & pl.col("ms").is_not_null()))
            .select(pl.col(c).cast(t) for c, t in _JOIN.items())
            .collect())


def _num(d: Any, col: str) -> Any:
    """``Record.num`` of a column (``num_expr``): whole numbers parsed at once, the other
    values (units, fractions, white space; and -0) by ``num_expr``."""
    v = d.get_column(col)
    fast = v.str.to_integer(strict=False)
    out = fast.cast(pl.Float64)
    other = (fast.is_null() & v.is_not_null()) | ((fast == 0) & v.str.starts_with("-"))
    idx = other.arg_true()
    if len(idx):
        slow = v.gather(idx).to_frame("v").select(num_expr(pl.col("v"))).to_series()
        out = out.scatter(idx, slow)
    return out


def judge(chk: Checker, done: Any) -> None:
    """The items judged on joined syntheses (``Checker.synthesis``), and the stage_time
    readings (``read_stages``), for the completed syntheses of ``done`` (its rows)."""
    if not done.height:
        return
    k = pl.col("kind")
    last = pl.lit(True)
    starts = done.filter(k == START).group_by("g").agg(
        start=last, s_code=pl.col("code").last(), s_hit=pl.col("hit").last())
    failed = done.filter(k == FAILED).group_by("g").agg(
        failed=last, where=pl.col("where").last(), tb=pl.col("tb").last())
    stages = _stages(done.filter(k == STAGE))
    syn = (done.filter(k == COMPLETE)
           .select("pos", "id", "ts", "status", g="pos", e2e="ms", c_code="code", c_hit="hit")
           .join(starts, on="g", how="left", maintain_order="left")
           .join(failed, on="g", how="left", maintain_order="left")
           .join(stages, on="g", how="left", maintain_order="left")
           .with_columns(code=pl.coalesce("c_code", "s_code"),
                         hit=pl.coalesce("c_hit", "s_hit"),
                         start=pl.col("start").fill_null(False),
                         failed=pl.col("failed").fill_null(False),
                         hasel=pl.col("hasel").fill_null(False),
                         n=pl.col("n").fill_null(0)))
    _stage_modes(chk, syn)
    _items(chk, syn)


def _stages(st: Any) -> Any:
    """Per synthesis (``g``) its stage times as ``Synthesis.stages`` holds them: the
    number of stages, which of ``STAGES`` it has, whether the times never decrease (in
    the order the stages first came), the last one, and whether any had elapsed_ms."""
    g, ms = pl.col("g"), pl.col("ms")
    out = (st.sort("g", maintain_order=True)
           .with_columns(down=(g == g.shift(1)) & (ms < ms.shift(1)))
           .group_by("g")
           .agg(n=pl.len(), hasel=pl.col("el").is_not_null().any(), up=~pl.col("down").any(),
                lastv=ms.last(), nu=pl.col("stage").n_unique(),
                **{f"has_{x}": (pl.col("stage") == x).any() for x in STAGES}))
    if out.select((pl.col("nu") < pl.col("n")).any()).item():
        # a stage written twice: its last time, where it first came
        return _stages(st.group_by("g", "stage")
                       .agg(pos=pl.col("pos").first(), ms=ms.last(), el=pl.col("el").max())
                       .sort("pos"))
    return out


def _stage_modes(chk: Checker, syn: Any) -> None:
    mode = chk.asm.stage_time or stage_time_mode()
    n = pl.col("n")
    if mode == "auto":
        e2e = pl.col("e2e")
        cum = (~pl.col("hasel") & pl.col("up")
               & (e2e.is_null() | (pl.col("lastv") <= e2e + 1.0 * n + 0.01 * e2e)))
        got = syn.filter(n >= 2).select(
            cumulative=cum.sum(), per=(~cum & ~pl.col("hasel")).sum()).row(0)
    else:
        many = syn.filter(n >= 2).height
        got = (many, 0) if mode == "cumulative" else (0, many)
    for name, count in zip(("cumulative", "per-stage"), got, strict=True):
        if count:
            chk.asm.stage_modes[name] += count


def _items(chk: Checker, syn: Any) -> None:
    it = chk.items
    it["complete_has_start"].checked += syn.height
    nostart = ~pl.col("start")
    if chk.since:
        nostart = nostart & ~(pl.col("ts") < chk.since_grace)
    bad = syn.filter(nostart)
    it["complete_has_start"].fail_many(bad.height, [
        f"{s} completed at {t} without a start"
        for s, t in bad.head(3).select("id", "ts").iter_rows()])
    failed = syn.filter(pl.col("status") == "failed")
    it["failure_code"].checked += failed.height
    it["failure_traceback"].checked += failed.height
    bad = failed.filter(pl.col("code").fill_null("") == "")
    it["failure_code"].fail_many(bad.height, [
        f"{s} at {t}" for s, t in bad.head(3).select("id", "ts").iter_rows()])
    client = pl.col("code").is_in(_CLIENT).fill_null(False)
    bad = failed.filter(~client & ~(pl.col("failed") & pl.col("where").fill_null(False)
                                    & pl.col("tb").fill_null(False)))
    it["failure_traceback"].fail_many(bad.height, [
        f"{s} at {t} ({c}): " + ("no synthesis_failed" if not f else "no where/traceback")
        for s, t, c, f in bad.head(3).select("id", "ts", "code", "failed").iter_rows()])
    ok = syn.filter((pl.col("status") == "success") & (pl.col("hit") == "false"))
    it["stage_times"].checked += ok.height
    have = [pl.col(f"has_{x}").fill_null(False) for x in STAGES]
    bad = ok.filter(~pl.all_horizontal(have))
    it["stage_times"].fail_many(bad.height, [
        f"{s} at {t}: no {', '.join(x for x, h in zip(STAGES, hs, strict=True) if not h)}"
        for s, t, *hs in bad.head(3).select("id", "ts", *have).iter_rows()])
