"""Vectorised reading (Polars) for aggregations that must read nearly every line.

``logs stages`` over a month of logs needs the ``stage_time`` and ``synthesis_complete``
records (and ``synthesis_start`` for ``--by`` fields) -- most of the file. Parsing them one
by one in Python costs tens of microseconds a line; here the decompressed bytes (read
ahead on several threads, ``parallel``) go to Polars in batches of ``BATCH_BYTES``, which
finds, checks and splits the lines in Rust on every core.

Exactness: a line is taken by Polars only when it matches a strict form of the grammar
(``SIMPLE``: a text record of one of the three events whose needed fields are bare ASCII
values); every other line that mentions one of the events (JSON lines, foreign lines,
quoted or non-ASCII values in a needed field) is parsed by ``fastparse`` as before. The
records are then joined into syntheses exactly as ``assemble.Assembler`` joins them (a
``synthesis_complete`` closes the records of its id before it; the last ``stage_time`` of
a stage wins; records after the last complete of an id wait for the next batch).
Property tests check the rows against the record parser and the batch-by-batch join
against the Assembler, for any split of the records into batches.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ...logformat import dialects
from ...logformat.fastparse import parse_line
from ...logformat.heads import LEVEL_ALT, RUST_BARE, RUST_HEAD, RUST_QUOTED, RUST_TS
from ...logformat.timestamps import norm_ts
from .parallel import default_workers
from .scan import Query, Scan, common_prefix, may_hold_window
from .sources import Snapshot

EVENTS = ("synthesis_start", "stage_time", "synthesis_complete")
KIND = {"synthesis_start": 0, "stage_time": 1, "synthesis_complete": 2}
BATCH_BYTES = 16 << 20
_KV = rf"[a-z_][a-z0-9_]*=(?:{RUST_BARE}|{RUST_QUOTED})"
SIMPLE = (rf"^{RUST_TS} - [^ ]+ - (?:{LEVEL_ALT}) - "
          rf"(?:synthesis_start|stage_time|synthesis_complete): {_KV}(?:, {_KV})*$")
_NUM = r"^([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
# The layout ttsops itself writes, validated and split by one regex per event. A line
# that matches gives exactly what the grammar gives (values of a safe alphabet end at
# ", " or the end of the line; the strict and the lenient field parser agree on them);
# anything else goes the general way below.
_V = r"[A-Za-z0-9_.:/+-]+"
_N = r"[0-9]+(?:\.[0-9]+)?"
_HEAD = RUST_HEAD
_CTX = rf"(?:request_id={_V}, )?(?:trace_id={_V}, )?id=({_V})"
_END = r"(?:, [a-z_][a-z0-9_]*=|$)"  # the next field, as the lenient parser sees one
# (no synthesis_start: this layout is used without --by, where starts are not needed).
# (kind, pattern, elapsed_ms): ttsops' own stage_time has elapsed_ms right after
# duration_ms; the same layout without it is taken only from lines that hold no
# "elapsed_ms=" at all (any other line goes the general way). Two patterns without
# optional parts: Polars' regex engine is twice as slow with one.
CANON: tuple[tuple[int, str, bool | None], ...] = (
    (1, rf"{_HEAD}stage_time: {_CTX}, stage=({_V}), duration_ms=({_N}), "
        rf"elapsed_ms={_N}{_END}", True),
    (1, rf"{_HEAD}stage_time: {_CTX}, stage=({_V}), duration_ms=({_N}){_END}", False),
    (2, rf"{_HEAD}synthesis_complete: {_CTX}, status={_V}, duration_ms=({_N}), "
        rf"queue_ms=({_N}){_END}", None),
)


def available() -> bool:
    try:
        import polars  # noqa: F401
    except ImportError:
        return False
    return True


def wanted(read_bytes: int) -> bool:
    """Use the vectorised path? ``TTSOPS_LOGS_VECTOR``: always, never, or auto (when
    Polars is installed and the read is large enough to pay for importing it)."""
    from ...knobs import value

    mode = value("logs_vector")
    if mode == "never" or not available():
        return False
    return mode == "always" or read_bytes >= (4 << 20)


def _columns(by: list[str]) -> list[str]:
    return ["seq", "kind", "id", "ts", "stage", "v", "q", "el",
            *[f"by_{i}" for i in range(len(by))]]


def _python_rows(lines: list[tuple[int, str]], by: list[str], since: str | None,
                 until: str | None) -> list[tuple[Any, ...]]:
    """Rows of the lines Polars leaves alone, parsed record by record (``synthesis_start``
    only when there are ``by`` fields: it contributes nothing else to the join)."""
    out = []
    for seq, line in lines:
        rec = parse_line(line.rstrip("\r\n"))
        if rec is None or rec.event not in KIND:
            continue
        sid = rec.fields.get("id")
        if not sid:
            continue
        ts = rec.ts if rec.ts[10:11] == " " else norm_ts(rec.ts)  # (parse normalises JSON)
        if (since is not None and ts < since) or (until is not None and ts >= until):
            continue
        k = KIND[rec.event]
        if k == 0 and not by:
            continue
        stage, v, q, el = None, None, None, None
        if k == 1:
            stage, v = rec.fields.get("stage"), rec.num("duration_ms")
            if not stage or v is None:
                continue
            el = rec.num("elapsed_ms") is not None
        elif k == 2:
            v, q = rec.num("duration_ms"), rec.num("queue_ms")
        out.append((seq, k, sid, ts, stage, v, q, el, *[rec.fields.get(f) for f in by]))
    return out


def batch_rows(data: bytes, base: int, by: list[str], since: str | None,
               until: str | None) -> Any:
    """The rows (``_columns(by)``, in no particular order: ``seq`` orders the lines, from
    ``base`` on) of the three events in ``data`` (whole lines). Without ``by`` fields the
    ``synthesis_start`` records are left out: the join takes nothing else from them, and
    they are a fifth of the lines."""
    import polars as pl

    schema = {"seq": pl.Int64, "kind": pl.Int8, "id": pl.Utf8, "ts": pl.Utf8,
              "stage": pl.Utf8, "v": pl.Float64, "q": pl.Float64, "el": pl.Boolean,
              **{f"by_{i}": pl.Utf8 for i in range(len(by))}}
    if b"\r" in data or b"\x01" in data:  # line ends or separators Polars reads otherwise
        text = data.decode("utf-8", "replace").split("\n")
        rows = _python_rows([(base + i, ln) for i, ln in enumerate(text)], by, since, until)
        return pl.DataFrame(rows, schema=schema, orient="row")
    df = pl.read_csv(data, has_header=False, separator="\x01", quote_char=None,
                     new_columns=["line"], schema={"line": pl.Utf8}, encoding="utf8-lossy",
                     truncate_ragged_lines=True)
    line = pl.col("line")
    events = list(EVENTS if by else EVENTS[1:])
    cand = (df.lazy().with_row_index("row")
            .filter(line.str.contains_any(events)).collect())
    frames = []
    # the canonical layout (no --by: by-fields can sit anywhere): one regex per event
    # checks it, then each value is the text after its key (first occurrence: in a
    # checked line that is the canonical one)
    if not by:
        done: list[Any] = []
        of_kind: dict[int, Any] = {}
        taken: dict[int, int] = {}
        for k, pat, el in CANON:
            name = EVENTS[k]
            if k not in of_kind:
                of_kind[k] = cand.filter(line.str.contains(f" - {name}: ", literal=True))
                taken[k] = 0
            mine = of_kind[k]
            if taken[k] == mine.height:  # every line of this event taken already
                continue
            if el is False:
                mine = mine.filter(~line.str.contains("elapsed_ms=", literal=True))
            # one regex pass checks the layout and captures the values (groups: ts, id,
            # then stage and duration, or duration and queue wait)
            g = line.str.extract_groups(pat)
            ok = mine.with_columns(g=g).filter(pl.col("g").struct.field("1").is_not_null())
            taken[k] += ok.height
            if ok.height == 0:
                continue
            done.append(ok.get_column("row"))
            grp = pl.col("g").struct.field
            cols: dict[str, pl.Expr] = {"id": grp("2"), "ts": grp("1")}
            if k == 1:
                cols["stage"] = grp("3")
                cols["v"] = grp("4").cast(pl.Float64)
                cols["el"] = pl.lit(el, pl.Boolean)
            if k == 2:
                cols["v"] = grp("3").cast(pl.Float64)
                cols["q"] = grp("4").cast(pl.Float64)
            hit = ok.with_columns(**cols)
            if since is not None:
                hit = hit.filter(pl.col("ts") >= since)
            if until is not None:
                hit = hit.filter(pl.col("ts") < until)
            frames.append(hit.select(
                (pl.col("row") + base).cast(pl.Int64).alias("seq"),
                pl.lit(k, pl.Int8).alias("kind"), "id", "ts",
                (pl.col("stage") if k == 1 else pl.lit(None, pl.Utf8)).alias("stage"),
                (pl.col("v") if k else pl.lit(None, pl.Float64)).alias("v"),
                (pl.col("q") if k == 2 else pl.lit(None, pl.Float64)).alias("q"),
                (pl.col("el") if k == 1 else pl.lit(None, pl.Boolean)).alias("el")))
        if done:
            cand = cand.filter(~pl.col("row").is_in(pl.concat(done).implode()))
    if cand.height:
        frames.extend(_general_rows(cand, base, by, since, until, schema,
                                    b"elapsed_ms=" in data))
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat([f.cast(schema) for f in frames],
                     how="vertical_relaxed")


def _general_rows(cand: Any, base: int, by: list[str], since: str | None, until: str | None,
                  schema: dict[str, Any], has_elapsed: bool = True) -> list[Any]:
    """Rows of the candidate lines (``row``, ``line``) not in the canonical layout: lines of
    the strict grammar split by Polars, any other line parsed record by record."""
    import polars as pl

    line = pl.col("line")
    cand = cand.lazy().with_columns(simple=line.str.contains(SIMPLE))
    body = line.str.splitn(": ", 2).struct.field("field_1")
    ev = line.str.extract(r"^.{23} - [^ ]+ - [A-Z]+ - ([a-z_]+): ", 1)

    def field(name: str) -> pl.Expr:
        if name == "elapsed_ms" and not has_elapsed:  # in no line of the batch
            return pl.lit(None, pl.Utf8)
        return pl.col("body").str.extract(rf"(?:^|, ){name}=([^,]*)", 1)

    needed = ["id", "stage", "duration_ms", "queue_ms", "elapsed_ms", *by]
    simple = (cand.filter(pl.col("simple"))
              .with_columns(ts=line.str.slice(0, 23), ev=ev, body=body)
              .with_columns(**{f"f_{i}": field(n) for i, n in enumerate(needed)}))
    if since is not None:
        simple = simple.filter(pl.col("ts") >= since)
    if until is not None:
        simple = simple.filter(pl.col("ts") < until)
    # a needed value that is quoted or not plain ASCII goes to the record-by-record parser
    odd = pl.any_horizontal([pl.col(f"f_{i}").str.contains(r'^"|[^\x00-\x7f]')
                             .fill_null(False) for i in range(len(needed))])
    simple = simple.with_columns(odd=odd)
    kind = (pl.when(pl.col("ev") == "synthesis_start").then(0)
            .when(pl.col("ev") == "stage_time").then(1).otherwise(2).cast(pl.Int8))
    num_v = pl.col("f_2").str.extract(_NUM, 1).cast(pl.Float64, strict=False)
    num_q = pl.col("f_3").str.extract(_NUM, 1).cast(pl.Float64, strict=False)
    num_el = pl.col("f_4").str.extract(_NUM, 1).cast(pl.Float64, strict=False)
    simple = simple.collect()
    good = (simple.lazy().filter(~pl.col("odd"))
            .with_columns(kind=kind)
            .filter(pl.col("f_0").is_not_null() & (pl.col("f_0") != ""))
            .select((pl.col("row") + base).cast(pl.Int64).alias("seq"), "kind",
                    pl.col("f_0").alias("id"), "ts",
                    pl.when(pl.col("kind") == 1).then(pl.col("f_1")).alias("stage"),
                    pl.when(pl.col("kind") != 0).then(num_v).alias("v"),
                    pl.when(pl.col("kind") == 2).then(num_q).alias("q"),
                    pl.when(pl.col("kind") == 1).then(num_el.is_not_null()).alias("el"),
                    *[pl.col(f"f_{i + 5}").alias(f"by_{i}") for i in range(len(by))])
            # a stage_time without a stage or a number is ignored, as the Assembler does
            .filter((pl.col("kind") != 1) | (pl.col("stage").is_not_null()
                                              & (pl.col("stage") != "")
                                              & pl.col("v").is_not_null())))
    if not by:  # synthesis_start only matters for by fields
        good = good.filter(pl.col("kind") != 0)
    rest = cand.filter(~pl.col("simple")).select("row", "line").collect().rows()
    rest += simple.filter(pl.col("odd")).select("row", "line").rows()
    frames = [good.collect()]
    if rest:
        rest.sort()
        frames.append(pl.DataFrame(_python_rows([(base + r, ln) for r, ln in rest], by,
                                                since, until), schema=schema, orient="row"))
    return frames


class StageJoin:
    """Joins rows into syntheses batch by batch and hands their values to a collector
    with ``add_values(key, component, numpy array)``, ``add_count(key, n)`` and
    ``offer_slow(e2e, id, worst)``."""

    def __init__(self, by: list[str], since: str | None, collector: Any,
                 slowest: int = 5, stage_time: str | None = None) -> None:
        self.by = by
        self.since = since
        self.col = collector
        self.slowest = slowest
        self.carry: Any = None
        self.mode = stage_time or dialects.stage_time_mode()

    def feed(self, rows: Any) -> None:
        import polars as pl

        r = rows if self.carry is None else pl.concat([self.carry, rows])
        if r.height == 0:
            return
        if not self.by and self._feed_single(r):
            return
        r = r.sort("seq")
        isc = (pl.col("kind") == 2).cast(pl.Int32)
        r = r.with_columns(seg=(isc.cum_sum().over("id") - isc),
                           ncomp=isc.sum().over("id"))
        self.carry = r.filter((pl.col("kind") != 2) & (pl.col("seg") == pl.col("ncomp"))) \
            .drop("seg", "ncomp")
        done = r.filter(pl.col("seg") < pl.col("ncomp"))
        comp = done.filter(pl.col("kind") == 2)
        if self.since is not None:
            comp = comp.filter(pl.col("ts") >= self.since)
        if comp.height == 0:
            return
        nby = len(self.by)
        starts = (done.filter(pl.col("kind") == 0).group_by("id", "seg")
                  .agg(*[pl.col(f"by_{i}").last().alias(f"sby_{i}") for i in range(nby)]))
        syn = comp.select("id", "seg", "seq", "v", "q", *[f"by_{i}" for i in range(nby)])
        if nby:
            syn = syn.join(starts, on=["id", "seg"], how="left")
            # s.get(f): the complete record's field if it has it, else the start's
            syn = syn.with_columns(**{
                f"k_{i}": pl.coalesce(pl.col(f"by_{i}"), pl.col(f"sby_{i}"))
                .fill_null("(none)").replace("", "(none)") for i in range(nby)})
        keys = [f"k_{i}" for i in range(nby)]
        stages = (done.filter(pl.col("kind") == 1)
                  .join(syn.select("id", "seg", *keys), on=["id", "seg"], how="semi")
                  .sort("seq")
                  .group_by("id", "seg", "stage", maintain_order=True)
                  .agg(pl.col("v").last(), pl.col("seq").first().alias("first"),
                       pl.col("el").any()))
        stages = self._per_stage(stages, syn)
        if nby:
            stages = stages.join(syn.select("id", "seg", *keys), on=["id", "seg"])
        self._emit(syn, stages, keys)

    def _feed_single(self, r: Any) -> bool:
        """The usual case, joined more cheaply: no ``by`` fields (no starts among the
        rows) and no id completing twice in ``r``. A stage record then belongs to the
        complete of its id when it comes before it, and waits for the next batch
        otherwise -- what the general path's segments give when each id has at most one.
        False (nothing done) when some id completes twice."""
        import polars as pl

        comp = r.filter(pl.col("kind") == 2)
        ids = comp.get_column("id")
        if ids.n_unique() != comp.height:
            return False
        cseq = comp.select("id", pl.col("seq").alias("cseq"))
        st = r.filter(pl.col("kind") == 1).join(cseq, on="id", how="left")
        closed = pl.col("cseq").is_not_null() & (pl.col("seq") < pl.col("cseq"))
        self.carry = st.filter(~closed).drop("cseq")
        if self.since is not None:
            comp = comp.filter(pl.col("ts") >= self.since)
        if comp.height == 0:
            return True
        done = st.filter(closed)
        if self.since is not None:
            done = done.join(comp.select("id"), on="id", how="semi")
        done = done.select("id", "stage", "v", "seq", "el")
        # the last record of a stage wins (in the order of its first, as a dict keeps it)
        if done.select(pl.struct("id", "stage").n_unique()).item() != done.height:
            done = (done.sort("seq").group_by("id", "stage", maintain_order=True)
                    .agg(pl.col("v").last(), pl.col("seq").first(), pl.col("el").any()))
        syn = comp.select("id", pl.lit(0).alias("seg"), "seq", "v", "q")
        stages = done.select("id", pl.lit(0).alias("seg"), "stage", "v",
                             pl.col("seq").alias("first"), "el")
        self._emit(syn, self._per_stage(stages, syn), [])
        return True

    def _per_stage(self, stages: Any, syn: Any) -> Any:
        """``stages`` (id, seg, stage, v, first, el) with cumulative values turned into
        per-stage ones, decided per synthesis exactly as ``dialects.is_cumulative``
        decides for the Assembler; columns id, seg, stage, v, first. The decisions are
        counted (``add_stage_modes`` of the collector, when it has one)."""
        import polars as pl

        g = ["id", "seg"]
        if stages.height == 0:
            return stages.select("id", "seg", "stage", "v", "first")
        if self.mode == "auto" and stages.get_column("el").all():
            # ttsops' own records (elapsed_ms on every one): nothing to decide or convert
            return stages.select("id", "seg", "stage", "v", "first")
        v = pl.col("v")
        # each synthesis's stages in the order written: what depends on the order is
        # computed before the join (which need not keep it)
        s = stages.sort("first").with_columns(
            prev=v.shift(1).over(g), n=pl.len().over(g), last=v.last().over(g),
            elany=pl.col("el").fill_null(False).any().over(g))
        prev, n = pl.col("prev"), pl.col("n")
        decided = pl.lit(True)  # counted as a decision (``assemble.read_stages``)
        if self.mode != "auto":
            cum = pl.lit(self.mode == "cumulative")
        else:
            decided = ~pl.col("elany")
            s = s.join(syn.select("id", "seg", pl.col("v").alias("e2e")), on=g, how="left")
            e2e = pl.col("e2e")
            mono = (prev.is_null() | (v >= prev)).all().over(g)
            cum = (decided & (n >= 2) & mono
                   & (e2e.is_null()
                      | (pl.col("last") <= e2e + n.cast(pl.Float64) + 0.01 * e2e)))
        s = s.with_columns(cum=cum, decided=decided)
        if hasattr(self.col, "add_stage_modes"):
            firsts = s.filter((pl.col("n") >= 2) & pl.col("decided")).unique(g)
            nc = int(firsts.get_column("cum").sum())
            self.col.add_stage_modes(nc, firsts.height - nc)
        return s.select("id", "seg", "stage",
                        pl.when(pl.col("cum")).then(v - prev.fill_null(0.0)).otherwise(v)
                        .alias("v"), "first")

    def _emit(self, syn: Any, stages: Any, keys: list[str]) -> None:
        import polars as pl

        groups = syn.group_by(keys, maintain_order=False) if keys else [((), syn)]
        for gk, g in groups:
            key = tuple(gk) if keys else ()
            self.col.add_count(key, g.height)
            q = g.get_column("q").drop_nulls()
            if len(q):
                self.col.add_values(key, "queue_wait", q.to_numpy())
            e = g.get_column("v").drop_nulls()
            if len(e):
                self.col.add_values(key, "end_to_end", e.to_numpy())
        sgroups = stages.group_by([*keys, "stage"]) if keys else stages.group_by("stage")
        for gk, g in sgroups:
            gk = tuple(gk)
            key, stage = gk[:-1], gk[-1]
            self.col.add_values(tuple(key), stage, g.get_column("v").to_numpy())
        if self.slowest:
            # every synthesis that ties with the n-th slowest too: the collector's heap
            # orders ties by id and largest component, as it does record by record
            top = (syn.filter(pl.col("v").is_not_null())
                   .sort(["v", "id"], descending=True))
            if top.height > self.slowest:
                nth = top.row(self.slowest - 1, named=True)
                top = top.filter((pl.col("v") > nth["v"]) | ((pl.col("v") == nth["v"])
                                                             & (pl.col("id") >= nth["id"])))
            if top.height:
                st = (stages.join(top.select("id", "seg"), on=["id", "seg"], how="semi")
                      .sort("first"))
                per: dict[tuple[str, int], dict[str, float]] = {}
                for sid, seg, stage, v, _first, *_ in st.iter_rows():
                    per.setdefault((sid, seg), {})[stage] = v
                for d in top.iter_rows(named=True):
                    comps = dict(per.get((d["id"], d["seg"]), {}))
                    if d["q"]:
                        comps["queue_wait"] = d["q"]
                    worst = max(comps, key=lambda c: comps[c]) if comps else "-"
                    self.col.offer_slow(d["v"], d["id"], worst)


def collect_stages(snap: Snapshot, start: str | None, since: str | None, until: str | None,
                   by: list[str], collector: Any, *, slowest: int = 5,
                   use_index: bool = True,
                   progress: Callable[[int], None] | None = None,
                   stage_time: str | None = None) -> Scan:
    """Feed ``collector`` the syntheses completed in [since, until) (records read from
    ``start``, a margin before ``since`` for their starts)."""
    scan = Scan(snap, Query(start, until, needles=EVENTS, use_index=use_index,
                            tracebacks=False),
                progress=progress)
    prefix = common_prefix(start, until)
    join = StageJoin(by, since, collector, slowest, stage_time)
    # batches are turned into rows on several threads (Polars releases the GIL: one
    # batch's regexes run on one core) and joined in order here
    workers = default_workers()
    pending: deque[Future[Any]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="ttsops-vector") as pool:

        def submit(data: bytes, base: int) -> None:
            pending.append(pool.submit(batch_rows, data, base, by, start, until))
            while len(pending) > workers:  # bounded: memory stays ~ workers batches
                join.feed(pending.popleft().result())

        base = 0
        for stream in scan.streams():
            buf: list[bytes] = []
            size = 0
            for _f, chunk in scan.chunks(stream):
                if not may_hold_window(chunk, prefix):
                    continue
                buf.append(chunk)
                size += len(chunk)
                if size >= BATCH_BYTES:
                    data = b"".join(buf)
                    submit(data, base)
                    base += len(data) + 1  # more than its lines: seq stays increasing
                    buf, size = [], 0
            if buf:
                data = b"".join(buf)
                submit(data, base)
                base += len(data) + 1
            base += 1 << 50  # streams (a host each): ranges apart while a host has < 1 PiB
        while pending:
            join.feed(pending.popleft().result())
    return scan




# --- from sidecars (parsed records kept in Parquet: sidecar.frames) ----------------------
