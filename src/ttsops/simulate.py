"""``ttsops simulate logs``: realistic service logs, fast, with known injected faults.

Every record goes through the real event API (``events.get_logger(...).info(...)``,
``events.context(...)``, ``exc=`` for tracebacks and ``where``) into the real
``logsink.LogSink`` (rotation, block gzip, embedded index); the synthesis records are
made by the service's own builders (``pipeline.records``: the same names and fields as
the service writes, ``lang``/``voice``/``format``/``engine`` on ``synthesis_complete``
included). Only the clock is simulated: ``ClockSink`` stamps each item with the
simulated time, so a month of traffic takes minutes, not a month.

Requests arrive uniformly at random over ``duration``; each one's records (start, the
five stage times, audio metrics, complete, access record, web page events) are
scheduled at their simulated times and written in time order, interleaved with the
other requests in flight, as the real service writes them.

Scenarios and the service they imitate: ``simulate_scenarios``; the records besides
requests: ``simulate_background``. What was injected is written to a ground-truth JSON
file (``simulate_truth``) for tests and demos.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import events
from .events import Item
from .logformat.record import STAGES
from .logindex import check_block_bytes
from .logsink import LogSink
from .pipeline import records
from .simulate_background import cache_report, schedule_model_load
from .simulate_faults import fault
from .simulate_scenarios import (
    CACHE_PATH,
    CLIENTS,
    FORMATS,
    INCIDENT,
    SAFARI_NOT_ALLOWED,
    SCENARIOS,
    TEXTS,
    VOICES,
    WINDOWS,
)
from .simulate_truth import Truth, truth_doc

__all__ = ["INCIDENT", "SCENARIOS", "ClockSink", "SimConfig", "Simulator", "generate"]


class ClockSink:
    """Stamps every item with the simulated time and counts what was emitted."""

    def __init__(self, inner: events.Sink) -> None:
        self.inner = inner
        self.now = 0.0
        self.levels: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()  # code -> records at ERROR/WARNING level
        self.items = 0

    def submit(self, item: Item) -> None:
        _t, logger, level, event, fields, tb = item
        self.items += 1
        self.levels[level] += 1
        self.events[event] += 1
        if level in ("ERROR", "WARNING"):
            code = fields.get("error_code") or fields.get("warning_code")
            if code:
                self.codes[f"{level}:{code}"] += 1
        self.inner.submit((self.now, logger, level, event, fields, tb))


@dataclass
class SimConfig:
    requests: int = 2000
    start: float = 1718150400.0  # 2024-06-12 00:00:00 UTC
    duration_s: float = 86400.0
    seed: int = 0
    scenarios: tuple[str, ...] = ()
    fmt: str = "text"
    max_bytes: int = 4 << 20
    block_bytes: int = 256 << 10
    keep: int = 100_000
    engine: str = "indextts2"
    model: str = "/app/checkpoints"
    cache_interval_s: float = 300.0


@dataclass
class _Req:
    """One request as drawn: who sent what (the rest is planned from it)."""

    i: int
    ta: float  # arrival (epoch s)
    t0: float  # arrival on a whole millisecond
    sid: str
    rid: str
    client: str
    ctx: dict[str, Any]  # request_id, trace_id, id: the context of its records
    web: bool
    ua: str | None
    voice: str
    lang: str
    fmt: str
    pattern: bool  # the failing pattern of the `failures` scenario
    text_len: int
    text: str
    req_voice: str  # the voice asked for ("alice": unknown)
    bad_voice: bool
    cache_hit: bool


class Simulator:
    def __init__(self, cfg: SimConfig, sink: ClockSink) -> None:
        self.cfg = cfg
        self.sink = sink
        self.rng = random.Random(cfg.seed)
        self.heap: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = 0
        self.truth = Truth()
        self.sc = set(cfg.scenarios)
        self.win = {k: (cfg.start + a * cfg.duration_s, cfg.start + b * cfg.duration_s)
                    for k, (a, b) in WINDOWS.items()}
        self.engine_ready_at = 0.0
        self.id_mask = self.rng.getrandbits(32)
        self.log_p = events.get_logger("ttsops.pipeline")
        self.log_s = events.get_logger("ttsops.server")
        self.log_c = events.get_logger("ttsops.cache")
        self.log_w = events.get_logger("ttsops.workers")
        self.log_u = events.get_logger("ttsops.webui")
        self.injected: dict[str, Any] = {}
        self.audio_anomalies: list[str] = []
        self.webui_errors: list[str] = []
        self.first: dict[str, float] = {}
        self.where: dict[str, str] = {}
        self.disk_full_failed = 0
        self.cache_write_failed = 0
        self.pattern_fail = 0
        self.window_complete: Counter[str] = Counter()
        self.engine_not_ready = 0
        self.max_usage = 0.0

    # --- scheduling -----------------------------------------------------------------
    def at(self, t: float, fn: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, fn))

    def run_until(self, t: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= t:
            when, _s, fn = heapq.heappop(heap)
            self.sink.now = when
            fn()

    def active(self, name: str, t: float) -> bool:
        if name not in self.sc and not (name in ("disk_creep",) and "disk_full" in self.sc):
            return False
        a, b = self.win[name]
        return a <= t < b

    def mark(self, key: str, t: float) -> None:
        self.first.setdefault(key, t)

    # --- the run --------------------------------------------------------------------
    def run(self) -> None:
        cfg = self.cfg
        end = cfg.start + cfg.duration_s
        # the engine loads at start-up
        self.at(cfg.start, lambda: self.log_w.info(
            "engine_load", engine=cfg.engine, model=cfg.model, duration_ms=41873.0,
            status="ready"))
        t = cfg.start + 1.0
        while t < end:  # cache health reports
            self.at(t, cache_report(self, t))
            t += cfg.cache_interval_s
        if "model_load" in self.sc:
            schedule_model_load(self)
        arrivals = sorted(self.rng.uniform(cfg.start + 60.0, end - 60.0)
                          for _ in range(cfg.requests))
        for i, ta in enumerate(arrivals):
            self.run_until(ta)
            self._request(i, ta)
        self.run_until(math.inf)

    def _ms(self, t: float) -> float:
        """Times on whole milliseconds (+0.5 ms so the formatter's truncation is exact)."""
        return (math.floor(t * 1000.0) + 0.5) / 1000.0

    # --- one request ----------------------------------------------------------------
    def _request(self, i: int, ta: float) -> None:
        r = self._draw(i, ta)
        if r is None:
            return
        stages, qms, fail = self._plan(r)
        t_start = r.t0 + 0.001
        self.truth.started_ids += 1
        self.at(t_start, self._start_emit(r))
        elapsed = 0.0
        order = [s for s in STAGES if s in stages]
        last_stage = "text_normalize"
        for s in order:
            if s == "llm_prompt_gen":
                elapsed += qms
            elapsed = round(elapsed + stages[s], 1)
            last_stage = s
            self.truth.stage_values.setdefault(s, []).append(stages[s])
            self.at(t_start + elapsed / 1000.0, self._stage_emit(r.ctx, s, stages[s], elapsed))
        if fail is not None and fail[1] not in order:
            last_stage = fail[1]
        overhead = round(self.rng.uniform(0.5, 3.0), 1)
        total = round(elapsed + overhead, 1)
        t_end = t_start + total / 1000.0
        status = "failed" if fail else "success"
        self.truth.e2e.append(total)
        self.truth.queue.append(qms)
        self.truth.complete[status] += 1
        if self.active("failures", t_end):
            self.window_complete[status] += 1
        t_done = t_start + elapsed / 1000.0 + 0.0002
        if fail:
            http_status = self._failure(r, fail, t_done)
        else:
            http_status = 200
            self._success_records(r.ctx, t_done, r.voice, r.lang, r.text_len, r.ta, r.sid,
                                  r.cache_hit, r.fmt)
        self._finish(r, fail, status, total, qms, last_stage, t_end, http_status)

    def _draw(self, i: int, ta: float) -> _Req | None:
        """One request's client, voice, language, format and text (None: refused with
        429 QUEUE_FULL before any synthesis, its records scheduled)."""
        rng = self.rng
        sid = f"ts_{((i * 0x9E3779B1) ^ self.id_mask) & 0xFFFFFFFF:08x}"
        rid = f"{rng.getrandbits(128):032x}"
        tid = f"{rng.getrandbits(128):032x}" if rng.random() < 0.3 else None
        client = rng.choice(CLIENTS)
        web = rng.random() < 0.4
        ua = rng.choices(("Chrome/126", "Safari/17", "Firefox/127"), (60, 30, 10))[0] \
            if web else None
        voice = rng.choices(list(VOICES), [w for w, _ in VOICES.values()])[0]
        lang = "zh" if rng.random() < 0.6 else "en"
        fmt = rng.choices([f for f, _ in FORMATS], [w for _, w in FORMATS])[0]
        t0 = self._ms(ta)

        # capacity: a full queue answers 429 before any synthesis starts
        if self.active("queue", ta) and rng.random() < 0.03:
            def queue_full() -> None:
                with events.context(request_id=rid, trace_id=tid):
                    self.log_s.warning("queue_full", warning_code="QUEUE_FULL", depth=32,
                                       retry_after_s=2)
                    self.log_s.info("http_request", method="POST", path="/v1/audio/speech",
                                    status=429, duration_ms=1.2, request_id=rid, client=client)
            self.at(t0, queue_full)
            return None

        pattern = self.active("failures", ta) and rng.random() < 0.13
        if pattern:
            text_len = 2048
        elif rng.random() < 0.004:
            text_len = 0
        else:
            text_len = max(2, min(1990, int(rng.lognormvariate(3.7, 0.8))))
        corpus = TEXTS[lang]
        text = ""
        while len(text) < max(text_len, 1):
            text += rng.choice(corpus)
        text = text[:text_len] if text_len else "\u200b\u200b"
        bad_voice = not pattern and text_len > 0 and rng.random() < 0.003
        cache_hit = (not pattern and text_len > 0 and not bad_voice and rng.random() < 0.25
                     and not self.active("disk_full", ta))
        return _Req(i, ta, t0, sid, rid, client, {"request_id": rid, "trace_id": tid,
                                                   "id": sid},
                    web, ua, voice, lang, fmt, pattern, text_len, text,
                    "alice" if bad_voice else voice, bad_voice, cache_hit)

    def _plan(self, r: _Req) -> tuple[dict[str, float], float,
                                      tuple[str, str, str] | None]:
        """The request's stage times (ms), queue wait (ms) and failure (code, stage,
        fault site), if any."""
        rng, cfg, ta, text_len = self.rng, self.cfg, r.ta, r.text_len
        stages: dict[str, float] = {}
        tn = round(rng.uniform(1.0, 6.0) + text_len * 0.002, 1)
        stages["text_normalize"] = tn
        qms = 0.0
        fail: tuple[str, str, str] | None = None  # code, stage, fault site
        if text_len == 0:
            fail = ("TEXT_EMPTY", "text_normalize", "ttsops.pipeline.text:clean")
        elif r.bad_voice:
            fail = ("VOICE_UNKNOWN", "text_normalize", "ttsops.pipeline.voices:resolve")
        elif cfg.start <= ta < self.engine_ready_at and "model_load" in self.sc \
                and ta >= self.win["model_load"][0]:
            fail = ("ENGINE_NOT_READY", "text_normalize", "ttsops.workers:submit")
        if fail is None and not r.cache_hit:
            qms = round(max(0.0, rng.gauss(2400.0, 400.0)), 1) if self.active("queue", ta) \
                else round(rng.uniform(0.0, 25.0), 1)
            inf_scale = 4.0 if self.active("slow_stage", ta) else 1.0
            stages["llm_prompt_gen"] = round(rng.gauss(25.0, 4.0) + text_len * 0.01, 1)
            stages["llm_inference"] = round(
                max(50.0, rng.gauss(520.0, 60.0) + text_len * 1.2) * inf_scale, 1)
            stages["llm_postproc"] = round(rng.gauss(40.0, 6.0), 1)
            stages["audio_render"] = round(rng.gauss(30.0, 5.0) + (12.0 if r.fmt == "mp3"
                                                                   else 0), 1)
            if r.pattern:
                fail = ("SCIPY_FFT_INVALID", "llm_postproc",
                        "ttsops.pipeline.postprocess:postprocess")
                del stages["audio_render"]
            elif self.active("disk_full", ta) and rng.random() < 0.5:
                fail = ("DISK_FULL", "audio_render", "ttsops.pipeline.encode:encode")
        return stages, qms, fail

    def _start_emit(self, r: _Req) -> Callable[[], None]:
        rng, cfg = self.rng, self.cfg

        def start() -> None:
            with events.context(**r.ctx):
                if r.text_len and rng.random() < 0.02:
                    records.warning("text_sanitized", r.sid, "TEXT_SANITIZED",
                                    fallback_used=False, removed=rng.randint(1, 4),
                                    what="control characters")
                records.start(r.sid, text=r.text[:32], text_len=r.text_len, lang=r.lang,
                              voice=r.req_voice, fmt=r.fmt, engine=cfg.engine,
                              cache_hit=r.cache_hit)
        return start

    def _failure(self, r: _Req, fail: tuple[str, str, str], t_done: float) -> int:
        """Count a failed synthesis and schedule its record; its HTTP status."""
        code, stage, site = fail
        self.truth.failed_by_code[code] += 1
        self.truth.failed_by_code_text_len[(code, str(r.text_len))] += 1
        self.mark(f"error:{code}", t_done)
        if code == "SCIPY_FFT_INVALID":
            self.pattern_fail += 1
        if code == "DISK_FULL":
            self.disk_full_failed += 1
        if code == "ENGINE_NOT_READY":
            self.engine_not_ready += 1
        args: tuple[Any, ...] = {
            "TEXT_EMPTY": (r.text,), "VOICE_UNKNOWN": (r.req_voice, set(VOICES)),
            "ENGINE_NOT_READY": (r.sid, False), "SCIPY_FFT_INVALID": (22050 * 30, 37),
            "DISK_FULL": (CACHE_PATH, 81920, r.fmt)}[code]

        def failed() -> None:
            exc = fault(site, *args)
            self.where.setdefault(code, events.where(exc))
            extra = {"path": CACHE_PATH} if code == "DISK_FULL" else {}
            with events.context(**r.ctx):
                records.failed(r.sid, code, str(exc), exc, stage, **extra)
        self.at(t_done, failed)
        return {"TEXT_EMPTY": 400, "VOICE_UNKNOWN": 400, "ENGINE_NOT_READY": 503,
                "SCIPY_FFT_INVALID": 500, "DISK_FULL": 507}[code]

    def _finish(self, r: _Req, fail: tuple[str, str, str] | None, status: str, total: float,
                qms: float, last_stage: str, t_end: float, http_status: int) -> None:
        """``synthesis_complete``, the access record and the page's playback report."""
        text_len, lang, fmt, cfg = r.text_len, r.lang, r.fmt, self.cfg
        audio_kb = 0 if fail else max(1, int(text_len * (9 if fmt != "wav" else 40) / 4))
        audio_s = 0.0 if fail else round(text_len * (0.22 if lang == "zh" else 0.065), 2)
        rtf = round(total / 1000.0 / audio_s, 4) if audio_s else 0.0
        cache_saved = (not fail and not r.cache_hit
                       and not self.active("disk_full", r.ta))

        def complete() -> None:
            with events.context(**r.ctx):  # as the service writes it (runner: _labels)
                records.complete(r.sid, status=status, duration_ms=total, queue_ms=qms,
                                 text_len=text_len, audio_size_kb=audio_kb,
                                 rtf=None if fail else rtf, cache_hit=r.cache_hit,
                                 cache_saved=cache_saved, model_stage=last_stage,
                                 error_code=fail[0] if fail else None, lang=lang,
                                 voice=r.req_voice, format=fmt, engine=cfg.engine)
        self.at(t_end, complete)
        t_http = t_end + 0.002

        def http() -> None:
            with events.context(**r.ctx):
                self.log_s.info("http_request", method="POST", path="/v1/audio/speech",
                                status=http_status, duration_ms=round(total + 2.1, 1),
                                id=r.sid, request_id=r.rid, client=r.client)
        self.at(t_http, http)
        if r.web and not fail:
            self._webui(r.ctx, t_http, r.ua or "", r.ta, r.sid, fmt)

    def _stage_emit(self, ctx: dict[str, Any], stage: str, ms: float,
                    elapsed: float) -> Callable[[], None]:
        def emit() -> None:
            with events.context(**ctx):
                records.stage_time(ctx["id"], stage, ms, elapsed)
        return emit

    def _success_records(self, ctx: dict[str, Any], t_done: float, voice: str, lang: str,
                         text_len: int, ta: float, sid: str, cache_hit: bool,
                         fmt: str) -> None:
        rng = self.rng
        if cache_hit:
            return
        centroid = rng.gauss(VOICES[voice][1], VOICES[voice][1] * 0.05)
        if self.active("audio", ta) and voice == "nova":
            centroid = rng.gauss(1350.0, 60.0)
            self.audio_anomalies.append(sid)
        metrics = dict(duration_ms=round(text_len * (220 if lang == "zh" else 65) *
                                         rng.uniform(0.9, 1.1), 1),
                       rms=round(rng.gauss(0.12, 0.01), 4), peak=round(rng.gauss(0.8, 0.04), 3),
                       spectral_centroid=round(centroid, 1),
                       silence_ratio=round(rng.gauss(0.12, 0.02), 3), clipped_ratio=0.0)

        def audio() -> None:
            with events.context(**ctx):
                records.audio_metrics(sid, metrics)
        self.at(t_done, audio)
        if self.active("disk_full", ta):
            def cache_fail() -> None:
                exc = fault("ttsops.cache:put", f"{CACHE_PATH}/{sid}.{fmt}", 81920)
                self.cache_write_failed += 1
                self.mark("cache_write_failed", t_done + 0.0001)
                with events.context(**ctx):
                    self.log_c.log("WARNING", "cache_write_failed", exc=exc,
                                   warning_code="CACHE_WRITE_FAILED", path=CACHE_PATH,
                                   error=str(exc))
            self.at(t_done + 0.0001, cache_fail)

    def _webui(self, ctx: dict[str, Any], t_http: float, ua: str, ta: float,
               sid: str, fmt: str) -> None:
        rng = self.rng
        client_ms = round(rng.uniform(250.0, 900.0), 1)
        t = t_http + client_ms / 1000.0 + 0.05
        if self.active("webui", ta) and ua.startswith("Safari") and rng.random() < 0.8:
            self.webui_errors.append(sid)

            def err() -> None:
                with events.context(**ctx):
                    self.log_u.warning("webui_event", warning_code="WEBUI_PLAYBACK_FAILED",
                                       kind="error", detail=SAFARI_NOT_ALLOWED, format=fmt,
                                       ua=ua, fetch_ms=client_ms, verified=True)
            self.at(t, err)
            return
        kind = "stall" if rng.random() < 0.01 else "play"

        def play() -> None:
            with events.context(**ctx):
                self.log_u.log("INFO" if kind == "play" else "WARNING", "webui_event",
                               kind=kind, detail="ok" if kind == "play" else "waiting for data",
                               format=fmt, ua=ua, fetch_ms=client_ms,
                               play_ms=round(client_ms + 40.0, 1), verified=True)
        self.at(t, play)

    def truth_doc(self) -> dict[str, Any]:
        """The ground truth: what was injected, where, and what was written."""
        return truth_doc(self)


def generate(outdir: str | Path, cfg: SimConfig, truth_path: str | Path | None = None,
             ) -> dict[str, Any]:
    """Write simulated logs into ``outdir`` through the real sink; return the truth.
    ValueError (nothing written) for a block size the block writer refuses."""
    check_block_bytes(cfg.block_bytes)
    out = Path(outdir)
    sink = LogSink(out, fmt=cfg.fmt, max_bytes=cfg.max_bytes, backup_count=cfg.keep,
                   block_bytes=cfg.block_bytes)
    clock = ClockSink(sink)
    prev = events.set_sink(clock, "DEBUG")
    sim = Simulator(cfg, clock)
    orig_submit = clock.submit
    pending = [0]

    def throttled(item: Item) -> None:  # bound the writer's queue (memory)
        orig_submit(item)
        pending[0] += 1
        if pending[0] >= 20_000:
            pending[0] = 0
            sink.flush(60)
    clock.submit = throttled  # type: ignore[method-assign]  # wraps this one sink only
    try:
        sim.run()
    finally:
        events.set_sink(prev)
        sink.close()
    doc = sim.truth_doc()
    if truth_path is not None:
        Path(truth_path).write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    return doc
