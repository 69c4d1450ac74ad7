"""``logs diagnose``, step one: collecting. One pass over ``[since - lookback, until)``
feeds every collector (window counts, top codes, failure patterns in the inputs, latency
by time bucket, precursors of error bursts, audio, web page playback errors, failures
answered with 2xx, model loads, workers, the log itself, the cache disk) and returns
what they hold as data (:class:`Collected`); ``example_traces`` is the second,
index-pruned pass that fetches one example trace per finding. Nothing here judges or
renders (``diagnose_judge``, ``diagnose_render``).
"""

from __future__ import annotations

from array import array
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...logline import STAGES, Record
from ..reading.assemble import Assembler, Synthesis
from ..reading.filters import Buckets
from ..reading.scan import Query, Scan
from ..reading.sources import LogFile, Snapshot
from ..reading.timeargs import epoch_to_ts, shift, ts_to_epoch
from .audio import AudioStats
from .cache import BASE_S, CacheStats, span_of
from .precursors import Burst, Precursors, overlapping_bursts
from .stats import median
from .top import TopCodes
from .trace import find
from .window import WindowCounts

COMPONENTS = ("queue_wait", *STAGES)
DIMENSIONS = ("text_len", "voice", "lang", "format", "engine", "cache_hit", "model_stage")
TEXT_LEN_BUCKETS = Buckets("text_len", (0, 1, 64, 512, 2000, 4096))
RECENT_IDS = 200_000  # ids of completed syntheses remembered for the web page's reports
LOG_TROUBLE = ("log_write_recovered", "log_file_reopened", "log_rotate_failed")


class LatencyBuckets:
    """Per time bucket: end-to-end and component times of successful uncached syntheses."""

    def __init__(self, bucket_s: float, utc: bool = True) -> None:
        self.bucket_s = bucket_s
        self.utc = utc
        self.b: dict[float, dict[str, array[float]]] = defaultdict(
            lambda: defaultdict(lambda: array("d")))
        self.slowest: dict[float, tuple[float, str]] = {}

    def rebucket(self, bucket_s: float) -> None:
        """Merge into coarser buckets (a multiple of the current size, epoch-aligned):
        values in time order, the slowest the first largest as when fed directly."""
        if bucket_s == self.bucket_s:
            return
        merged: dict[float, dict[str, array[float]]] = defaultdict(
            lambda: defaultdict(lambda: array("d")))
        slowest: dict[float, tuple[float, str]] = {}
        for k in sorted(self.b):
            nk = k - k % bucket_s
            # (each bucket's values let go once merged: a month's are ~40 MB, which the
            # merge held twice at diagnose's peak)
            for comp, vals in self.b.pop(k).items():
                merged[nk][comp].extend(vals)
            if k in self.slowest and self.slowest[k][0] > slowest.get(nk, (0.0, ""))[0]:
                slowest[nk] = self.slowest[k]
        self.b, self.slowest, self.bucket_s = merged, slowest, bucket_s

    def feed(self, s: Synthesis) -> None:
        if s.status != "success" or s.get("cache_hit") == "true" or s.e2e is None:
            return
        t = ts_to_epoch(s.ts, self.utc)
        key = t - t % self.bucket_s
        d = self.b[key]
        d["e2e"].append(s.e2e)
        d["queue_wait"].append(s.queue or 0.0)
        for st in STAGES:
            d[st].append(s.stages.get(st, 0.0))
        if s.e2e > self.slowest.get(key, (0.0, ""))[0]:
            self.slowest[key] = (s.e2e, s.id)

    def slow_periods(self, since_t: float | None, factor: float = 1.5,
                     min_n: int = 5) -> list[dict[str, Any]]:
        keys = sorted(k for k, d in self.b.items() if len(d["e2e"]) >= min_n)
        if len(keys) < 3:
            return []
        all_e2e = _cat(self.b[k]["e2e"] for k in keys)
        base = median(all_e2e)
        slow = {k for k in keys if median(self.b[k]["e2e"]) > factor * base}
        normal = [k for k in keys if k not in slow]
        if not normal:
            return []
        base_e2e = median(_cat(self.b[k]["e2e"] for k in normal))
        base_comp = {c: median(_cat(self.b[k][c] for k in normal)) for c in COMPONENTS}
        periods: list[list[float]] = []
        for k in sorted(slow):
            if since_t is not None and k + self.bucket_s <= since_t:
                continue
            if periods and k - periods[-1][-1] <= 2 * self.bucket_s:
                periods[-1].append(k)
            else:
                periods.append([k])
        out = []
        for ks in periods:
            e2e = _cat(self.b[k]["e2e"] for k in ks)
            comp = {c: median(_cat(self.b[k][c] for k in ks)) for c in COMPONENTS}
            delta = {c: comp[c] - base_comp[c] for c in COMPONENTS}
            culprit = max(delta, key=lambda c: delta[c])
            ex = max((self.slowest[k] for k in ks), default=(0.0, ""))[1]
            out.append({"start": epoch_to_ts(ks[0], self.utc),
                        "end": epoch_to_ts(ks[-1] + self.bucket_s, self.utc),
                        "n": len(e2e), "p50_ms": median(e2e), "baseline_p50_ms": base_e2e,
                        "component": culprit, "component_p50_ms": comp[culprit],
                        "component_baseline_ms": base_comp[culprit],
                        "delta_ms": delta, "example": ex})
        return out

    def shares(self) -> dict[str, float]:
        tot = {c: 0.0 for c in COMPONENTS}
        e2e = 0.0
        for d in self.b.values():
            e2e += sum(d["e2e"])
            for c in COMPONENTS:
                tot[c] += sum(d[c])
        return {c: v / e2e for c, v in tot.items()} if e2e else {}


def _cat(parts: Iterable[array[float]]) -> array[float]:
    """The values of ``parts`` in order, one array."""
    out = array("d")
    for p in parts:
        out.extend(p)
    return out


class FailurePatterns:
    """Failures per code against every value of a few input dimensions."""

    def __init__(self) -> None:
        self.total: dict[str, Counter[str]] = {d: Counter() for d in (*DIMENSIONS, "len_b")}
        self.fail: dict[str, Counter[tuple[str, str]]] = {d: Counter() for d in self.total}
        self.codes: Counter[str] = Counter()
        self.first: dict[str, str] = {}
        self.last: dict[str, str] = {}
        self.where: dict[str, Counter[str]] = defaultdict(Counter)
        self.stage: dict[str, Counter[str]] = defaultdict(Counter)
        self.example: dict[str, str] = {}
        self.n = 0

    def feed(self, s: Synthesis) -> None:
        self.n += 1
        vals = {d: s.get(d) or "(none)" for d in DIMENSIONS}
        vals["len_b"] = TEXT_LEN_BUCKETS.label(s.get("text_len"))
        for d, v in vals.items():
            self.total[d][v] += 1
        if s.status != "failed":
            return
        code = s.get("error_code") or "(no code)"
        self.codes[code] += 1
        self.first.setdefault(code, s.ts)
        self.last[code] = s.ts
        self.example.setdefault(code, s.id)
        if s.failed is not None and s.failed.fields.get("where"):
            self.where[code][s.failed.fields["where"]] += 1
        self.stage[code][s.get("model_stage") or "?"] += 1
        for d, v in vals.items():
            self.fail[d][(code, v)] += 1

    def pattern(self, code: str) -> dict[str, Any] | None:
        """The input value that best marks ``code``'s failures; ``model_stage`` (where
        they failed, not what was asked: some writers set it on failures only, where it
        marks them all) only when no input value does."""
        best = self._best(code, [d for d in (*DIMENSIONS, "len_b") if d != "model_stage"]) \
            or self._best(code, ["model_stage"])
        if best is None:
            return None
        _s, d, v, cov, prec = best
        return {"field": "text_len" if d == "len_b" else d, "value": v, "bucket": d == "len_b",
                "coverage": cov, "precision": prec, "total_with_value": self.total[d][v]}

    def _best(self, code: str, dims: list[str]) -> tuple[float, str, str, float, float] | None:
        n = self.codes[code]
        best: tuple[float, str, str, float, float] | None = None
        for d in dims:
            for (c, v), k in self.fail[d].items():
                if c != code:
                    continue
                coverage = k / n
                precision = k / self.total[d][v]
                score = coverage * precision
                if best is None or score > best[0] + 1e-9:
                    best = (score, d, v, coverage, precision)
        if best is None or best[3] < 0.5 or best[4] < 0.5:
            return None
        return best


def verified_webui_error(rec: Record) -> bool:
    """A web page error report whose synthesis token the server checked (webui.py):
    anyone can post a report, nobody can post one for another's synthesis."""
    f = rec.fields
    return rec.event == "webui_event" and f.get("kind") == "error" and \
        f.get("verified") == "true"


@dataclass
class Collected:
    """What the pass found, for the judge and the renderer. ``base_*``: the look-back
    (before ``since``); everything else: the window."""

    snap: Snapshot
    since: str | None
    until: str | None
    start: str | None  # since - lookback: where the pass began
    lookback_s: float
    use_index: bool
    utc: bool
    audio: AudioStats
    win: WindowCounts = field(default_factory=lambda: WindowCounts(keep_ids=False))
    errs: TopCodes = field(default_factory=lambda: TopCodes("errors"))
    warns: TopCodes = field(default_factory=lambda: TopCodes("warnings"))
    pats: FailurePatterns = field(default_factory=FailurePatterns)
    failed_ids: set[str] = field(default_factory=set)
    failed_2xx: list[str] = field(default_factory=list)
    webui_err: Counter[tuple[str, str]] = field(default_factory=Counter)
    webui_ids: list[str] = field(default_factory=list)
    # id a report names -> its synthesis status
    webui_status: dict[str, str | None] = field(default_factory=dict)
    # id -> status, recent syntheses
    recent: OrderedDict[str, str] = field(default_factory=OrderedDict)
    webui_noid: int = 0
    base_codes: Counter[str] = field(default_factory=Counter)  # failures per code, look-back
    base_total: int = 0
    model_fail: list[Record] = field(default_factory=list)
    engine_ok: list[str] = field(default_factory=list)
    worker_deaths: list[Record] = field(default_factory=list)
    log_trouble: list[Record] = field(default_factory=list)
    bursts: list[Burst] = field(default_factory=list)

    def __post_init__(self) -> None:
        # buckets of BASE_S while reading, merged once the span is known from the records
        # themselves (so the answer never depends on how the files are compressed)
        self.lat = LatencyBuckets(BASE_S, self.utc)
        self.pre = Precursors(self.lookback_s, utc=self.utc, since=self.since)
        self.cache = CacheStats(interval_s=BASE_S, utc=self.utc)

    @property
    def total(self) -> int:
        """Syntheses completed in the window."""
        return sum(self.win.complete.values())

    @property
    def nfail(self) -> int:
        return self.win.complete.get("failed", 0)

    def feed_synthesis(self, s: Synthesis, in_win: bool) -> None:
        self.lat.feed(s)  # lookback too: the baseline
        st_s = s.status or "?"
        self.recent[s.id] = st_s
        if len(self.recent) > RECENT_IDS:
            self.recent.popitem(last=False)
        if s.id in self.webui_status and self.webui_status[s.id] is None:
            self.webui_status[s.id] = st_s
        if not in_win:
            self.base_total += 1
            if s.status == "failed":
                self.base_codes[s.get("error_code") or "(no code)"] += 1
        if in_win:
            self.pats.feed(s)
            self.audio.feed(s)
            if s.status == "failed":
                self.failed_ids.add(s.id)

    def feed_window(self, rec: Record) -> None:
        """A record of the window (not the look-back)."""
        self.win.feed(rec)
        self.feed_codes(rec)
        f = rec.fields
        if rec.event == "http_request" and f.get("id") in self.failed_ids:
            st = f.get("status", "")
            if st.startswith("2"):
                self.failed_2xx.append(f["id"])
        elif verified_webui_error(rec):
            self.feed_webui(rec)
        else:
            self.feed_service(rec)

    def feed_codes(self, rec: Record) -> None:
        """The collectors of error and warning codes and of the cache."""
        self.errs.feed(rec)
        self.warns.feed(rec)
        self.cache.feed(rec)

    def feed_webui(self, rec: Record) -> None:
        """A verified web page error report."""
        f = rec.fields
        self.webui_err[(f.get("detail") or "", f.get("ua") or "")] += 1
        wid = f.get("id") or ""
        if not wid:
            self.webui_noid += 1
        elif len(self.webui_status) < 100_000:
            self.webui_status.setdefault(wid, self.recent.get(wid))
        if len(self.webui_ids) < 1000 and wid:
            self.webui_ids.append(wid)

    def feed_service(self, rec: Record) -> None:
        """A record of the service's own life: model loads, workers, the log's trouble."""
        ev = rec.event
        if ev == "model_load_failed":
            self.model_fail.append(rec)
        elif ev == "engine_load":
            self.engine_ok.append(rec.ts)
        elif ev in ("worker_died", "worker_killed"):
            self.worker_deaths.append(rec)
        elif ev in LOG_TROUBLE:
            self.log_trouble.append(rec)

    def finish(self) -> None:
        """Merge the buckets to the span's size; the error bursts and their precursors
        (which may read further back, for a burst that began before the look-back)."""
        first = ts_to_epoch(self.win.first, self.utc) if self.win.first else None
        last = ts_to_epoch(self.win.last, self.utc) if self.win.last else None
        lo_t, hi_t = span_of(self.since, self.until, first, last, self.utc)
        span = (hi_t - lo_t) if lo_t is not None and hi_t is not None else 86400.0
        bucket_s = float(min(3600, max(300, int(span / 48) // 300 * 300)))
        self.lat.rebucket(bucket_s)
        self.cache.rebucket(bucket_s)
        self.bursts = overlapping_bursts(self.snap, self.since, self.until,
                                         lookback_s=self.lookback_s,
                                         use_index=self.use_index, utc=self.utc,
                                         col=self.pre)


def _frame_hits(scan: Scan, tap_frame: Callable[[LogFile, Any], None],
                columns: Sequence[str]) -> Iterator[tuple[Record, LogFile]]:
    """``scan.hits()`` from the sidecars' frames, each handed to ``tap_frame`` first."""
    from ..reading import sidecar

    cols = list(sidecar.RECORD_COLUMNS)
    cols += [c for c in columns if c not in cols]
    for f, df in sidecar.frames(scan, cols):
        tap_frame(f, df)
        for rec in sidecar.records_of(df):
            yield rec, f


def collect(snap: Snapshot, since: str | None, until: str | None, *, lookback_s: float,
            use_index: bool = True, utc: bool = True,
            tap: Callable[[Record, LogFile], None] | None = None,
            progress: Callable[[int], None] | None = None,
            tap_frame: Callable[[LogFile, Any], None] | None = None,
            frame_columns: Sequence[str] = (), audio: AudioStats | None = None) -> Collected:
    """The one pass (see ``diagnose.run`` for ``tap``, ``tap_frame`` and ``audio``)."""
    start = shift(since, -lookback_s) if since else None
    col = Collected(snap, since, until, start, lookback_s, use_index, utc,
                    AudioStats() if audio is None else audio)
    asm = Assembler()
    scan = Scan(snap, Query(start, until, use_index=use_index), progress=progress)
    hits: Iterable[tuple[Record, LogFile]] = scan.hits()
    if tap_frame is not None and since is None:
        from ..reading import sidecar, vector

        if len(scan.streams()) == 1 and vector.available() and sidecar.covered(scan):
            hits = _frame_hits(scan, tap_frame, frame_columns)
            tap = None
    for rec, lf in hits:
        in_win = since is None or rec.ts >= since
        if tap is not None and in_win:
            tap(rec, lf)
        col.pre.feed(rec)
        s = asm.feed(rec)
        if s is not None and s.complete is not None:
            col.feed_synthesis(s, in_win)
        if in_win:
            col.feed_window(rec)
    col.finish()
    return col


def example_traces(col: Collected, examples: list[str]) -> dict[str, list[Record]]:
    """The second pass: the records of each example id, index-pruned."""
    traces: dict[str, list[Record]] = {}
    if examples:
        hits, _ = find(col.snap, examples, col.start, col.until, col.use_index)
        for rec, _f in hits:
            for sid in examples:
                if rec.fields.get("id") == sid or rec.fields.get("request_id") == sid:
                    traces.setdefault(sid, []).append(rec)
    return traces
