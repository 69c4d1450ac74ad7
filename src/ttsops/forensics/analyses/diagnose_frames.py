"""``diagnose``'s collecting pass (``diagnose_collect.collect``) over sidecar frames: a
file's records at a time, counted and joined by Polars instead of one ``Record`` at a
time. The answer is the record path's, on the same records:

* the window's counts (records, first and last, levels, events, codes, syntheses started
  and completed) by group-bys over the frame;
* the syntheses joined by ``synth_frames`` and fed to the latency buckets, the failure
  patterns and the audio collector a frame of them at a time (``diagnose_synth_frames``);
* the few records whose every detail matters -- warnings and errors (top codes, the
  precursors of bursts, cache warnings), cache gauges, web page reports, model loads,
  workers, the log's own trouble -- made ``Record`` s and fed one by one, in order;
* failures answered with 2xx: the ``http_request`` records after a failed synthesis of
  their id; the web page reports' synthesis status: replayed in order (only when there
  are reports).

Used where the record path would read every record from sidecars anyway: no ``since``
(no look-back), one stream, every file with a sidecar (``sidecar.covered``), UTC, the
audio collector by voice. ``collect`` returns None otherwise, and the caller reads
records. Where no ``tap_frame`` wants the frames, each file's part is read from its
companion table instead (``diagnose_parts``: what the file gives once; the syntheses
open across files joined again), made from its frame where there is none yet. Not kept
(nothing reads them from a diagnosis): the cache buckets of
``synthesis_complete`` records and the ids of the recent syntheses (``recent``) when no
web page report needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...logline import STAGES, Record
from ..reading.scan import Query, Scan
from ..reading.sources import LogFile, Snapshot
from .audio import METRICS, AudioStats
from .diagnose_collect import (
    DIMENSIONS,
    RECENT_IDS,
    TEXT_LEN_BUCKETS,
    Collected,
    verified_webui_error,
)
from .diagnose_pieces import FIELDS, hot_used, pieces
from .diagnose_synth_frames import (
    compact,
    feed_audio,
    feed_latency,
    feed_patterns,
    usable,
)

if TYPE_CHECKING:
    from .diagnose_parts import Part, PartJoin

BATCH_ROWS = 40_000  # records fed at once (a file of the month; small files together)
SYN_ROWS = 100_000  # syntheses fed to their collectors at once


def _concat(frames: list[Any]) -> Any:
    import polars as pl

    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")


def _count(counter: Any, rows: list[tuple[Any, int]]) -> None:
    for k, n in rows:
        counter[k] += n


@dataclass
class Prepared:
    """What ``FramePass.apply`` feeds its collectors of one batch: the parts computed
    from the batch alone (``prepare``, done where the batch is read)."""

    height: int
    groups: Any  # ``_window_plans``' group-by and span
    span: Any
    rows: dict[int, Any]  # ``synth_frames.rows_of`` the batch
    sparse: list[tuple[int, Record]]  # (seq, record) of the warnings, errors, rare events
    comp: tuple[float, float] | None  # the span of the completes' times (epochs)
    http: Any  # (seq, id) of the http_request records answered 2xx


def prepare(df: Any, base: int) -> Prepared:
    """The parts of a batch (``df``, its first record at ``base``) that depend on it
    alone, from one Polars call (Polars shares the common scans and runs the parts side
    by side)."""
    from ..reading import sidecar

    groups, span, sp, comp, http, rows = pieces(df, base)
    sparse = [(base + r, rec) for r, rec in zip(sp.get_column("_r").to_list(),
                                                  sidecar.records_of(sp), strict=True)]
    return Prepared(df.height, groups, span, rows, sparse, comp, http)


class FramePass:
    """Feeds a ``Collected`` the records of sidecar frames, a batch (a few files) at a
    time: ``feed``, or ``apply`` of what ``prepare`` made of the batch elsewhere."""

    def __init__(self, col: Collected) -> None:
        from ..reading.synth_frames import SynthJoin

        self.col = col
        self.join = SynthJoin(FIELDS, METRICS, STAGES)
        self.base = 0
        self.webui: list[tuple[int, Record]] = []  # verified web page error reports
        self.done: list[Any] = []  # (seq, id, status) of every synthesis, for their replay
        self.failed_seq: Any = None  # id -> seq of its first failed synthesis
        self.syn: list[Any] = []  # syntheses not yet fed to their collectors
        self.syn_rows = 0
        self.parts: list[tuple[Part, int]] = []  # parts applied, syntheses not joined yet

    def feed(self, df: Any) -> None:
        """A batch of records (after those fed before)."""
        base = self.base
        self.base += df.height + 1
        if df.height:
            self.apply(prepare(df, base))

    def apply(self, p: Prepared) -> None:
        """A batch's ``prepare`` d parts to the collectors, in order."""
        self._window(p.height, p.groups, p.span)
        syn = self.join.feed(p.rows)
        for seq, rec in p.sparse:
            self._sparse(seq, rec)
        self._cache_span(p.comp)
        self._syntheses(syn)
        self._failed_2xx(p.http)

    def apply_part(self, part: Part, base: int) -> None:
        """A file's ``diagnose_parts.Part`` (its first record at ``base``) to the
        collectors, as ``apply`` feeds a batch's; its syntheses wait for
        ``apply_parts``."""
        import polars as pl

        from ..reading import sidecar

        if not part.height:
            return
        self._window(part.height, part.groups, pl.DataFrame({"lo": [part.lo],
                                                             "hi": [part.hi]}))
        sp = part.sparse
        for r, rec in zip(sp.get_column("_r").to_list(), sidecar.records_of(sp),
                          strict=True):
            self._sparse(base + r, rec)
        self._cache_span(part.comp)
        self.parts.append((part, base))

    def apply_parts(self, join: PartJoin) -> None:
        """The syntheses of the parts applied since the last call (joined at once), and
        their 2xx ``http_request`` rows."""
        import polars as pl

        if not self.parts:
            return
        group, self.parts = self.parts, []
        self._syntheses(join.feed(group))
        https = [p.http.with_columns(pl.col("seq") + base) for p, base in group
                 if p.http.height]
        if https:
            self._failed_2xx(_concat(https))

    def _window(self, records: int, groups: Any, span: Any) -> None:
        """``WindowCounts.feed`` of every record of a batch, from ``_window_plans``."""
        win = self.col.win
        win.records += records
        lo, hi = span.row(0)
        if win.first is None or lo < win.first:
            win.first = lo
        if win.last is None or hi > win.last:
            win.last = hi
        for level, event, code, wcode, status, n in groups.iter_rows():
            win.levels[level] += n
            win.events[event or "(no event)"] += n
            if level in ("ERROR", "CRITICAL"):
                win.error_codes[code or "(no code)"] += n
            elif level == "WARNING":
                win.warning_codes[wcode or code or "(no code)"] += n
            if event == "synthesis_start":
                win.started += n
            elif event == "synthesis_complete":
                st = "(none)" if status is None else status
                win.complete[st] += n
                if st == "failed":
                    win.failure_codes[code or "(no code)"] += n

    def _sparse(self, seq: int, rec: Record) -> None:
        """``Collected.feed_window`` of one warning, error or rare record (the window's
        counts and ``http_request`` apart), and the precursors' ``feed``."""
        col = self.col
        col.pre.feed(rec)
        col.feed_codes(rec)
        if verified_webui_error(rec):
            self.webui.append((seq, rec))
        else:
            col.feed_service(rec)

    def _cache_span(self, lohi: tuple[float, float] | None) -> None:
        """The span of the ``synthesis_complete`` records' times (``prepare``) that
        ``CacheStats.feed`` counts (the warnings and gauges were fed as records)."""
        c = self.col.cache
        if lohi is not None:
            lo, hi = lohi
            c.first_t = lo if c.first_t is None else min(c.first_t, lo)
            c.last_t = hi if c.last_t is None else max(c.last_t, hi)

    def _syntheses(self, syn: Any) -> None:
        import polars as pl

        if syn.height == 0:
            return
        self.syn.append(syn)
        self.syn_rows += syn.height
        if self.syn_rows >= SYN_ROWS:
            self._collect_syntheses()
        failed = syn.filter(pl.col("status") == "failed")
        # (kept until the end: copies, not views of this batch's buffers)
        # (the status, one of a few words, by its code: 4 bytes a synthesis, not 16)
        self.done.append(pl.DataFrame([syn.get_column("seq"), compact(syn.get_column("id")),
                                       syn.get_column("status").cast(pl.Categorical)]))
        if failed.height:
            f = failed.group_by("id").agg(fseq=pl.col("seq").min())
            f = f.with_columns(compact(f.get_column("id")))
            self.failed_seq = f if self.failed_seq is None else (
                pl.concat([self.failed_seq, f]).group_by("id").agg(pl.col("fseq").min()))

    def _collect_syntheses(self) -> None:
        """Feed the collectors of syntheses those held so far, in order, at once (fewer,
        larger Polars operations; nothing reads these collectors before ``finish``)."""
        import polars as pl

        if not self.syn:
            return
        col = self.col
        syn = _concat(self.syn)
        self.syn, self.syn_rows = [], 0
        feed_latency(col.lat, syn)
        feed_patterns(col.pats, syn, DIMENSIONS, TEXT_LEN_BUCKETS.label)
        feed_audio(col.audio, syn)
        col.failed_ids.update(syn.filter(pl.col("status") == "failed").get_column("id")
                              .to_list())

    def _failed_2xx(self, h: Any) -> None:
        """The ``http_request`` records answered 2xx (``h``: seq, id) for an id whose
        synthesis had failed before them, in order."""
        import polars as pl

        if self.failed_seq is None:
            return
        got = (h.join(self.failed_seq, on="id", how="inner")
               .filter(pl.col("seq") > pl.col("fseq")).sort("seq"))
        self.col.failed_2xx.extend(got.get_column("id").to_list())

    def finish(self) -> bool:
        """The web page reports, replayed in order with the syntheses; False when the
        join's answer may differ from the Assembler's (too many in flight)."""
        if self.join.overflow:
            return False
        self._collect_syntheses()
        if self.webui:
            self._replay()
        return True

    def _replay(self) -> None:
        import polars as pl

        col = self.col
        web = self.webui
        wi = 0
        rows = pl.concat(self.done).iter_rows() if self.done else iter(())
        for seq, sid, status in rows:
            while wi < len(web) and web[wi][0] < seq:
                col.feed_webui(web[wi][1])
                wi += 1
            st_s = status or "?"
            col.recent[sid] = st_s
            if len(col.recent) > RECENT_IDS:
                col.recent.popitem(last=False)
            if sid in col.webui_status and col.webui_status[sid] is None:
                col.webui_status[sid] = st_s
        for _seq, rec in web[wi:]:
            col.feed_webui(rec)


def _scan(snap: Snapshot, since: str | None, until: str | None, use_index: bool, utc: bool,
          progress: Callable[[int], None] | None = None) -> Scan | None:
    """The scan of the frames' pass, or None where it does not apply."""
    from ..reading import sidecar, vector

    if since is not None or not utc or not vector.available():
        return None
    scan = Scan(snap, Query(None, until, use_index=use_index), progress=progress)
    if len(scan.streams()) != 1 or not sidecar.covered(scan):
        return None
    return scan


def example_traces(col: Collected, examples: list[str]) -> dict[str, list[Record]] | None:
    """``diagnose_collect.example_traces`` from the sidecars: the records whose id or
    request_id is one of ``examples``, in time order (stable), picked by Polars; None
    where the frames' pass does not apply."""
    import polars as pl

    from ..reading import sidecar

    if not examples:
        return {}
    scan = _scan(col.snap, col.since, col.until, col.use_index, col.utc)
    if scan is None:
        return None
    want = list(examples)
    where = pl.col("k_id").is_in(want) | pl.col("k_request_id").is_in(want)
    cols = [*sidecar.RECORD_COLUMNS, "k_id", "k_request_id"]
    picked = _picked_at_once(scan, cols, where)
    if picked is not None:
        recs = sidecar.records_of(picked)
    else:
        recs = [r for _f, df in sidecar.frames(scan, cols, where)
                for r in sidecar.records_of(df)]
    recs.sort(key=lambda r: r.ts)
    traces: dict[str, list[Record]] = {}
    for rec in recs:
        for sid in examples:
            if rec.fields.get("id") == sid or rec.fields.get("request_id") == sid:
                traces.setdefault(sid, []).append(rec)
    return traces


def _picked_at_once(scan: Scan, cols: list[str], where: Any) -> Any | None:
    """What ``sidecar.frames(scan, cols, where)`` gives, one frame, from one Polars scan
    of every file's sidecar (in the files' order: a few calls, not five a file), where
    every file has a valid one and the scan has no window; else None."""
    import polars as pl

    from ..reading import sidecar

    q = scan.query
    if q.since is not None or q.until is not None or not sidecar.applies(scan):
        return None
    paths: list[str] = []
    for stream in scan.streams():
        for f in scan.snap.stream_files(stream):
            key = sidecar.identity(f) if sidecar.eligible(f) else None
            if key is None:
                return None
            for d in sidecar.places_of(f):
                p = d / f"{key}.parquet"
                try:
                    # (as ``read_frame`` checks a sidecar: its metadata, then its rows)
                    got = sidecar.scan_checked(p, key, cols) if p.is_file() else None
                    if got is None or \
                            got[0].select(pl.len()).collect().item() != got[1].records:
                        continue
                except Exception:
                    continue
                paths.append(str(p))
                break
            else:
                return None
    if not paths:
        return None
    try:
        return pl.scan_parquet(paths).filter(where).select(cols).collect()
    except Exception:
        return None


def _batches(frames: Iterator[tuple[LogFile, Any]], own: list[str],
             ) -> Iterator[tuple[list[tuple[LogFile, Any]], Prepared | None]]:
    """The files' frames in batches of about ``BATCH_ROWS`` records (a few files at once:
    fewer, larger Polars operations), each with what ``prepare`` makes of its records
    (``own`` columns; None: no records)."""
    group: list[tuple[LogFile, Any]] = []
    rows = base = 0

    def done() -> tuple[list[tuple[LogFile, Any]], Prepared | None]:
        nonlocal base
        parts = [df if df.width == len(own) else df.select(own) for _f, df in group]
        df = _concat(parts)
        at = base
        base += df.height + 1
        return group, (prepare(df, at) if df.height else None)

    for f, df in frames:
        group.append((f, df))
        rows += df.height
        if rows >= BATCH_ROWS:
            yield done()
            group, rows = [], 0
    if group:
        yield done()


def collect(snap: Snapshot, since: str | None, until: str | None, *, lookback_s: float,
            use_index: bool = True, utc: bool = True,
            progress: Callable[[int], None] | None = None,
            tap_frame: Callable[[LogFile, Any], None] | None = None,
            frame_columns: Sequence[str] = (), audio: AudioStats | None = None,
            companions: bool = True) -> Collected | None:
    """The pass over the frames, or None where it does not apply (see the module).
    ``companions``: each file's part from its companion table (``diagnose_parts``) where
    no ``tap_frame`` wants the frames."""
    from ..reading import sidecar

    aud = AudioStats() if audio is None else audio
    scan = _scan(snap, since, until, use_index, utc, progress) if usable(aud) else None
    if scan is None:
        return None
    own = list(dict.fromkeys([*sidecar.RECORD_COLUMNS, *hot_used()]))
    if tap_frame is None and companions:
        col = _collect_parts(scan, aud, own, since, until, lookback_s, use_index, utc)
        if col is not None:
            return col
        aud.reset()
        scan = _scan(snap, since, until, use_index, utc, progress)
        if scan is None:
            return None
    col = Collected(snap, since, until, None, lookback_s, use_index, utc, aud)
    fp = FramePass(col)
    cols = list(dict.fromkeys([*own, *frame_columns]))
    for group, prepared in _batches(sidecar.frames(scan, cols), own):
        if tap_frame is not None:
            for f, df in group:
                tap_frame(f, df)
        if prepared is not None:
            fp.apply(prepared)
    if not fp.finish():  # the frames went to ``tap_frame``: read records for the rest
        from .diagnose_collect import collect as collect_records

        aud.reset()
        return collect_records(snap, since, until, lookback_s=lookback_s,
                               use_index=use_index, utc=utc, audio=aud)
    col.finish()
    return col


def _collect_parts(scan: Scan, aud: AudioStats, own: list[str], since: str | None,
                   until: str | None, lookback_s: float, use_index: bool, utc: bool,
                   ) -> Collected | None:
    """The frames' pass fed each file's ``diagnose_parts.Part`` (its companion where it
    has one, else made from its frame, and kept); None where the join would have to look
    closer (many syntheses in flight): the caller takes the batches' pass."""
    from ...logformat import dialects
    from ..reading import sidecar
    from ..reading.companion import Damaged
    from .diagnose_parts import Part, PartJoin, Parts, TooMany

    mode = dialects.stage_time_mode()
    parts = Parts(scan, mode, own, write=sidecar.mode() != "off")
    col = Collected(scan.snap, since, until, None, lookback_s, use_index, utc, aud)
    fp = FramePass(col)
    join = PartJoin(mode)
    base = waiting = 0
    try:
        for f, x in sidecar.frames(scan, own, instead=parts.instead):
            made = not isinstance(x, Part)
            part = parts.part_of(f, x) if made else x
            fp.apply_part(part, base)
            base += part.height + 1
            waiting += part.syn.height
            # (a part made from a frame may hold the frame's buffers: joined at once)
            if made or waiting >= SYN_ROWS // 2:
                fp.apply_parts(join)
                waiting = 0
        fp.apply_parts(join)
    except (TooMany, Damaged):
        return None
    fp.finish()
    col.finish()
    return col
