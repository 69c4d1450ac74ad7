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

Scenarios (several may be combined; ``incident`` = the four symptoms + disk):

* ``webui``      -- symptom 1: the web page reports playback errors (Safari autoplay)
* ``failures``   -- symptom 2: a client's 2048-char texts fail with SCIPY_FFT_INVALID
                    in llm_postproc; the failure rate in that hour rises to ~15%
* ``queue``      -- symptom 3: latency 0.8 s -> 3.2 s from queue wait, stages unchanged
* ``model_load`` -- symptom 4: at 03:00 the model fails to load (traceback); requests
                    fail with ENGINE_NOT_READY until a reload succeeds
* ``disk_full``  -- cache-disk usage creeps up with cache_dir_usage WARNINGs for hours,
                    then DISK_FULL errors and CACHE_WRITE_FAILED warnings
* ``audio``      -- muffled audio (low spectral centroid) for one voice for a while
* ``slow_stage`` -- llm_inference four times slower for a while

What was injected is written to a ground-truth JSON file for tests and demos.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from . import events
from .events import Item
from .forensics.timeargs import duration_s, parse_time, ts_to_epoch
from .logformat.record import STAGES
from .logformat.timestamps import TsFormatter
from .logindex import MIN_BLOCK_BYTES, check_block_bytes
from .logsink import LogSink
from .pipeline import records
from .simulate_faults import fault

SCENARIOS = ("webui", "failures", "queue", "model_load", "disk_full", "audio", "slow_stage")
INCIDENT = ("webui", "failures", "queue", "model_load", "disk_full", "audio")

# Where each scenario sits, as fractions of the simulated duration (start, end). With
# the default --start midnight and --duration 1d: model load 03:00, disk 06:00-10:05,
# failures 14:00-15:00 (the seed's afternoon), queue 16:48-17:45, ...
WINDOWS = {
    "model_load": (0.125, 0.145),
    "disk_creep": (0.25, 0.40),
    "disk_full": (0.40, 0.42),
    "failures": (14 / 24, 15 / 24),
    "queue": (0.70, 0.74),
    "audio": (0.78, 0.82),
    "webui": (0.85, 0.90),
    "slow_stage": (0.92, 0.95),
}

VOICES = {  # voice -> (weight, spectral centroid baseline Hz)
    "alloy": (30, 2300.0), "echo": (15, 1950.0), "fable": (10, 2450.0),
    "onyx": (15, 1550.0), "nova": (20, 2750.0), "shimmer": (10, 2950.0),
}
TEXTS = {
    "zh": ["今天天气真好，我们去公园散步吧。", "欢迎使用语音合成服务。", "请在听到提示音后留言。",
           "您的订单已经发货，预计明天送达。", "第三章：夜色渐深，城市的灯火一盏盏亮起。"],
    "en": ["The quick brown fox jumps over the lazy dog. ", "Your package has shipped, "
           "and should arrive tomorrow. ", "Welcome back! Here is today's summary. ",
           "Chapter three: the night grew darker, and the lights came on one by one. "],
}
FORMATS = (("mp3", 70), ("wav", 10), ("opus", 10), ("flac", 5), ("pcm", 5))
CLIENTS = ("10.0.3.17", "10.0.3.22", "10.0.7.5", "10.0.9.41", "192.168.1.20")
CACHE_PATH = "/app/cache"
CACHE_TOTAL_MB = 20480
WARN_PERCENT = 90.0
SAFARI_NOT_ALLOWED = ("NotAllowedError: play() failed because the user didn't interact "
                      "with the document first.")


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
class Truth:
    """What the generator injected and emitted (the ground truth file)."""

    data: dict[str, Any] = field(default_factory=dict)
    stage_values: dict[str, list[float]] = field(default_factory=dict)
    e2e: list[float] = field(default_factory=list)
    queue: list[float] = field(default_factory=list)
    started_ids: int = 0
    complete: Counter[str] = field(default_factory=Counter)
    failed_by_code: Counter[str] = field(default_factory=Counter)
    failed_by_code_text_len: Counter[tuple[str, str]] = field(default_factory=Counter)


_fmt_ts = TsFormatter(utc=True)


def _ts(t: float) -> str:
    """A simulated time exactly as the sink writes it."""
    return _fmt_ts(t)


def _pct(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "p99": values[0]}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(q[49], 3), "p95": round(q[94], 3), "p99": round(q[98], 3)}


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
            self.at(t, self._cache_report(t))
            t += cfg.cache_interval_s
        if "model_load" in self.sc:
            self._schedule_model_load()
        arrivals = sorted(self.rng.uniform(cfg.start + 60.0, end - 60.0)
                          for _ in range(cfg.requests))
        for i, ta in enumerate(arrivals):
            self.run_until(ta)
            self._request(i, ta)
        self.run_until(math.inf)

    def _ms(self, t: float) -> float:
        """Times on whole milliseconds (+0.5 ms so the formatter's truncation is exact)."""
        return (math.floor(t * 1000.0) + 0.5) / 1000.0

    # --- background -----------------------------------------------------------------
    def _usage(self, t: float) -> float:
        base = 62.0 + 4.0 * math.sin((t - self.cfg.start) / 86400.0 * 2 * math.pi)
        if "disk_full" not in self.sc:
            return base
        (c0, c1), (f0, f1) = self.win["disk_creep"], self.win["disk_full"]
        if c0 <= t < c1:
            return base + (100.0 - base) * ((t - c0) / (c1 - c0)) ** 1.5
        if f0 <= t < f1:
            return 100.0
        if t >= f1:
            return base - 8.0
        return base

    def _cache_report(self, t: float) -> Callable[[], None]:
        def emit() -> None:
            usage = round(min(self._usage(t), 100.0), 1)
            used = round(CACHE_TOTAL_MB * usage / 100.0)
            self.max_usage = max(self.max_usage, usage)
            high = usage > WARN_PERCENT
            self.log_c.log("WARNING" if high else "INFO", "cache_health", path=CACHE_PATH,
                           used=f"{used}MB", total=f"{CACHE_TOTAL_MB}MB", usage=f"{usage}%")
            if high:
                self.mark("cache_dir_usage", t)
                self.log_c.warning("cache_dir_usage", warning_code="CACHE_DIR_USAGE_HIGH",
                                   path=CACHE_PATH, used_percent=usage,
                                   threshold=WARN_PERCENT,
                                   action="evict" if usage >= 95.0 else "warn")
        return emit

    def _schedule_model_load(self) -> None:
        cfg = self.cfg
        a, b = self.win["model_load"]
        self.engine_ready_at = b

        def failed() -> None:
            exc = fault("ttsops.engines.indextts2:load", cfg.model)
            self.where["MODEL_LOAD_FAILED"] = events.where(exc)
            self.log_w.error("model_load_failed", exc=exc, engine=cfg.engine, model=cfg.model,
                             duration_ms=183412.0, error_code="MODEL_LOAD_FAILED",
                             message=str(exc))

        def ready() -> None:
            self.log_w.info("engine_load", engine=cfg.engine, model=cfg.model,
                            duration_ms=52310.0, status="ready")
        self.at(a, failed)
        self.at(b, ready)
        self.injected["model_load"] = {"ts": _ts(a), "recovered": _ts(b),
                                       "engine": cfg.engine, "model": cfg.model,
                                       "error_code": "MODEL_LOAD_FAILED"}

    # --- one request ----------------------------------------------------------------
    def _request(self, i: int, ta: float) -> None:
        rng = self.rng
        cfg = self.cfg
        sid = f"ts_{((i * 0x9E3779B1) ^ self.id_mask) & 0xFFFFFFFF:08x}"
        rid = f"{rng.getrandbits(128):032x}"
        tid = f"{rng.getrandbits(128):032x}" if rng.random() < 0.3 else None
        ctx = {"request_id": rid, "trace_id": tid, "id": sid}
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
            return

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
        preview = text[:32]
        bad_voice = not pattern and text_len > 0 and rng.random() < 0.003
        req_voice = "alice" if bad_voice else voice
        cache_hit = (not pattern and text_len > 0 and not bad_voice and rng.random() < 0.25
                     and not self.active("disk_full", ta))

        stages: dict[str, float] = {}
        tn = round(rng.uniform(1.0, 6.0) + text_len * 0.002, 1)
        stages["text_normalize"] = tn
        qms = 0.0
        fail: tuple[str, str, str] | None = None  # code, stage, fault site
        if text_len == 0:
            fail = ("TEXT_EMPTY", "text_normalize", "ttsops.pipeline.text:clean")
        elif bad_voice:
            fail = ("VOICE_UNKNOWN", "text_normalize", "ttsops.pipeline.voices:resolve")
        elif cfg.start <= ta < self.engine_ready_at and "model_load" in self.sc \
                and ta >= self.win["model_load"][0]:
            fail = ("ENGINE_NOT_READY", "text_normalize", "ttsops.workers:submit")
        if fail is None and not cache_hit:
            qms = round(max(0.0, rng.gauss(2400.0, 400.0)), 1) if self.active("queue", ta) \
                else round(rng.uniform(0.0, 25.0), 1)
            inf_scale = 4.0 if self.active("slow_stage", ta) else 1.0
            stages["llm_prompt_gen"] = round(rng.gauss(25.0, 4.0) + text_len * 0.01, 1)
            stages["llm_inference"] = round(
                max(50.0, rng.gauss(520.0, 60.0) + text_len * 1.2) * inf_scale, 1)
            stages["llm_postproc"] = round(rng.gauss(40.0, 6.0), 1)
            stages["audio_render"] = round(rng.gauss(30.0, 5.0) + (12.0 if fmt == "mp3" else 0),
                                           1)
            if pattern:
                fail = ("SCIPY_FFT_INVALID", "llm_postproc",
                        "ttsops.pipeline.postprocess:postprocess")
                del stages["audio_render"]
            elif self.active("disk_full", ta) and rng.random() < 0.5:
                fail = ("DISK_FULL", "audio_render", "ttsops.pipeline.encode:encode")

        # --- schedule the records ----------------------------------------------------
        log_s = self.log_s
        t_start = t0 + 0.001
        self.truth.started_ids += 1

        def start() -> None:
            with events.context(**ctx):
                if text_len and rng.random() < 0.02:
                    records.warning("text_sanitized", sid, "TEXT_SANITIZED",
                                    fallback_used=False, removed=rng.randint(1, 4),
                                    what="control characters")
                records.start(sid, text=preview, text_len=text_len, lang=lang, voice=req_voice,
                              fmt=fmt, engine=cfg.engine, cache_hit=cache_hit)
        self.at(t_start, start)
        elapsed = 0.0
        order = [s for s in STAGES if s in stages]
        last_stage = "text_normalize"
        for s in order:
            if s == "llm_prompt_gen":
                elapsed += qms
            elapsed = round(elapsed + stages[s], 1)
            last_stage = s
            self.truth.stage_values.setdefault(s, []).append(stages[s])
            self.at(t_start + elapsed / 1000.0, self._stage_emit(ctx, s, stages[s], elapsed))
        if fail is not None and fail[1] not in order:
            last_stage = fail[1]
        overhead = round(rng.uniform(0.5, 3.0), 1)
        total = round(elapsed + overhead, 1)
        t_end = t_start + total / 1000.0
        status = "failed" if fail else "success"
        self.truth.e2e.append(total)
        self.truth.queue.append(qms)
        self.truth.complete[status] += 1
        if self.active("failures", t_end):
            self.window_complete[status] += 1
        http_status = 200
        if fail:
            code, stage, site = fail
            http_status = {"TEXT_EMPTY": 400, "VOICE_UNKNOWN": 400, "ENGINE_NOT_READY": 503,
                           "SCIPY_FFT_INVALID": 500, "DISK_FULL": 507}[code]
            self.truth.failed_by_code[code] += 1
            self.truth.failed_by_code_text_len[(code, str(text_len))] += 1
            self.mark(f"error:{code}", t_start + elapsed / 1000.0 + 0.0002)
            if code == "SCIPY_FFT_INVALID":
                self.pattern_fail += 1
            if code == "DISK_FULL":
                self.disk_full_failed += 1
            if code == "ENGINE_NOT_READY":
                self.engine_not_ready += 1
            args: tuple[Any, ...] = {
                "TEXT_EMPTY": (text,), "VOICE_UNKNOWN": (req_voice, set(VOICES)),
                "ENGINE_NOT_READY": (sid, False), "SCIPY_FFT_INVALID": (22050 * 30, 37),
                "DISK_FULL": (CACHE_PATH, 81920, fmt)}[code]

            def failed() -> None:
                exc = fault(site, *args)
                self.where.setdefault(code, events.where(exc))
                extra = {"path": CACHE_PATH} if code == "DISK_FULL" else {}
                with events.context(**ctx):
                    records.failed(sid, code, str(exc), exc, stage, **extra)
            self.at(t_start + elapsed / 1000.0 + 0.0002, failed)
        else:
            self._success_records(ctx, t_start + elapsed / 1000.0 + 0.0002, voice, lang,
                                  text_len, ta, sid, cache_hit, fmt)
        audio_kb = 0 if fail else max(1, int(text_len * (9 if fmt != "wav" else 40) / 4))
        audio_s = 0.0 if fail else round(text_len * (0.22 if lang == "zh" else 0.065), 2)
        rtf = round(total / 1000.0 / audio_s, 4) if audio_s else 0.0
        cache_saved = (not fail and not cache_hit
                       and not self.active("disk_full", ta))

        def complete() -> None:
            with events.context(**ctx):  # as the service writes it (runner: _labels)
                records.complete(sid, status=status, duration_ms=total, queue_ms=qms,
                                 text_len=text_len, audio_size_kb=audio_kb,
                                 rtf=None if fail else rtf, cache_hit=cache_hit,
                                 cache_saved=cache_saved, model_stage=last_stage,
                                 error_code=fail[0] if fail else None, lang=lang,
                                 voice=req_voice, format=fmt, engine=cfg.engine)
        self.at(t_end, complete)
        t_http = t_end + 0.002

        def http() -> None:
            with events.context(**ctx):
                log_s.info("http_request", method="POST", path="/v1/audio/speech",
                           status=http_status, duration_ms=round(total + 2.1, 1), id=sid,
                           request_id=rid, client=client)
        self.at(t_http, http)
        if web and not fail:
            self._webui(ctx, t_http, ua or "", ta, sid, fmt)

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

    # --- ground truth ---------------------------------------------------------------
    def truth_doc(self) -> dict[str, Any]:
        cfg, tr, sink = self.cfg, self.truth, self.sink
        doc: dict[str, Any] = {
            "start": _ts(cfg.start), "end": _ts(cfg.start + cfg.duration_s),
            "requests": cfg.requests, "seed": cfg.seed, "scenarios": sorted(self.sc),
            "format": cfg.fmt, "engine": cfg.engine,
            "windows": {k: [_ts(a), _ts(b)] for k, (a, b) in self.win.items()
                        if k in self.sc or (k == "disk_creep" and "disk_full" in self.sc)},
            "records": sink.items, "levels": dict(sink.levels), "events": dict(sink.events),
            "codes": dict(sink.codes), "syntheses": tr.started_ids,
            "complete": dict(tr.complete), "failed_by_code": dict(tr.failed_by_code),
            "failed_by_code_text_len": [[c, tl, n] for (c, tl), n in
                                        sorted(tr.failed_by_code_text_len.items())],
            "where": self.where,
            "stages": {s: _pct(v) | {"n": len(v)} for s, v in tr.stage_values.items()},
            "e2e": _pct(tr.e2e) | {"n": len(tr.e2e)},
            "queue_wait": _pct(tr.queue) | {"n": len(tr.queue)},
            "injected": dict(self.injected),
        }
        inj = doc["injected"]
        if "failures" in self.sc:
            a, b = self.win["failures"]
            inj["failing_pattern"] = {"error_code": "SCIPY_FFT_INVALID", "field": "text_len",
                                      "value": "2048", "count": self.pattern_fail,
                                      "stage": "llm_postproc",
                                      "where": self.where.get("SCIPY_FFT_INVALID"),
                                      "window": [_ts(a), _ts(b)],
                                      "window_complete": dict(self.window_complete)}
        if "queue" in self.sc:
            inj["slow"] = {"component": "queue_wait", "window": doc["windows"]["queue"]}
        if "slow_stage" in self.sc:
            inj["slow_stage"] = {"component": "llm_inference",
                                 "window": doc["windows"]["slow_stage"]}
        if "disk_full" in self.sc:
            inj["precursor"] = {
                "error_code": "DISK_FULL", "burst_start": _ts(
                    self.first.get("error:DISK_FULL", 0.0)) if "error:DISK_FULL" in self.first
                else None,
                "warning_code": "CACHE_DIR_USAGE_HIGH", "event": "cache_dir_usage",
                "path": CACHE_PATH,
                "first_warning": _ts(self.first["cache_dir_usage"])
                if "cache_dir_usage" in self.first else None,
                "disk_full_failures": self.disk_full_failed,
                "cache_write_failed": self.cache_write_failed,
                "max_usage": self.max_usage}
        if "model_load" in self.sc:
            inj["model_load"]["failed_requests"] = self.engine_not_ready
            inj["model_load"]["where"] = self.where.get("MODEL_LOAD_FAILED")
        if "audio" in self.sc:
            inj["audio"] = {"voice": "nova", "metric": "spectral_centroid",
                            "ids": sorted(self.audio_anomalies)}
        if "webui" in self.sc:
            inj["webui"] = {"errors": len(self.webui_errors), "ua": "Safari/17",
                            "detail": SAFARI_NOT_ALLOWED, "ids": sorted(self.webui_errors)}
        return doc


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
    clock.submit = throttled  # type: ignore[method-assign]
    try:
        sim.run()
    finally:
        events.set_sink(prev)
        sink.close()
    doc = sim.truth_doc()
    if truth_path is not None:
        Path(truth_path).write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    return doc


@click.group()
def simulate_group() -> None:
    """Generate realistic ttsops logs with known faults (tests, demos, benchmarks)."""


@simulate_group.command("logs")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--requests", "-n", type=int, default=2000, show_default=True,
              help="Number of requests.")
@click.option("--scenario", "-s", multiple=True,
              type=click.Choice([*SCENARIOS, "incident", "baseline"]),
              help="Fault scenario (repeatable); incident = the four symptoms + disk_full "
                   "+ audio. Default: baseline (no faults).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--start", default="2024-06-12 00:00:00", show_default=True,
              help="Simulated start time (UTC).")
@click.option("--duration", default="1d", show_default=True, help="Simulated span, e.g. 6h, 30d.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--max-bytes", type=int, default=4 << 20, show_default=True,
              help="Rotate app.log at this size.")
@click.option("--block-bytes", type=click.IntRange(min=MIN_BLOCK_BYTES), default=256 << 10,
              show_default=True, help="Uncompressed size of each gzip member / index block "
                                      f"(at least {MIN_BLOCK_BYTES}).")
@click.option("--keep", type=int, default=100_000, show_default=True,
              help="Rotated files to keep.")
@click.option("--truth", type=click.Path(dir_okay=False),
              help="Ground-truth JSON file [default: OUTDIR/../<OUTDIR name>.truth.json].")
def logs_cmd(outdir: str, requests: int, scenario: tuple[str, ...], seed: int, start: str,
             duration: str, fmt: str, max_bytes: int, block_bytes: int, keep: int,
             truth: str | None) -> None:
    """Write simulated service logs into OUTDIR (app.log + rotated app.log.N.gz)."""
    from .forensics.timeargs import TimeArgError

    names: set[str] = set()
    for s in scenario:
        names.update(INCIDENT if s == "incident" else () if s == "baseline" else (s,))
    try:
        t0 = ts_to_epoch(parse_time(start))
        dur = duration_s(duration)
    except TimeArgError as e:
        raise click.BadParameter(str(e)) from None
    if requests < 0 or dur <= 120:
        raise click.BadParameter("need --requests >= 0 and --duration > 2m")
    out = Path(outdir)
    if (out / "app.log").exists() or any(out.glob("app.log.*.gz")):
        raise click.ClickException(f"{out} already holds logs; choose an empty directory")
    truth_path = Path(truth) if truth else out.parent / f"{out.name}.truth.json"
    cfg = SimConfig(requests=requests, start=t0, duration_s=dur, seed=seed,
                    scenarios=tuple(sorted(names)), fmt=fmt, max_bytes=max_bytes,
                    block_bytes=block_bytes, keep=keep)
    began = time.monotonic()
    doc = generate(out, cfg, truth_path)
    took = time.monotonic() - began
    files = len(list(out.glob("app.log.*.gz")))
    click.echo(f"wrote {doc['records']} records ({doc['syntheses']} syntheses) from "
               f"{doc['start']} to {doc['end']} into {out} ({files} rotated files + app.log) "
               f"in {took:.1f}s; scenarios: {', '.join(doc['scenarios']) or 'baseline'}")
    click.echo(f"ground truth: {truth_path}")


simulate = simulate_group  # the name registered in ttsops.cli.SUBCOMMANDS
