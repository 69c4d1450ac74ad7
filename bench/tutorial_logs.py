"""Tutorial-style TTS service logs, written by plain stdlib ``logging`` (not by ttsops),
with a ground-truth file: the independent input for ttsops' forensics acceptance tests
(issue 14) and for benchmarks.

    python bench/tutorial_logs.py OUTDIR --size small|day|month [--seed N] [--days N]
        [--start 2024-06-12] [--writers N] [--names gz|plain|dateext|dateext-plain]
        [--json stdlib|structlog] [--tz +08:00] [--max-bytes N] [--jobs N]

This module imports nothing from ttsops (stdlib only; tests/bench/test_tutorial_logs.py
checks it). It writes the way the tutorial's users write (seed
``000_f48c940d7bb43ec5.txt``, sections 2-4 and 6):

* ``logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s")``, default
  asctime (``2024-06-12 14:22:38,415``), UTC unless ``--tz`` (then local time at that
  offset, no offset in the line, as ``time.localtime`` would give);
* a ``logging.handlers.RotatingFileHandler`` on ``app.log`` whose ``namer`` adds ``.gz``
  and whose ``rotator`` gzips the rotated file whole and removes it (the logging
  cookbook's recipe), so the rotated files are ``app.log.1.gz`` (newest) ... ;
* the tutorial's own message code, via module loggers (``app.tts_engine``, ``app.cache``,
  ``app.webui``, ``app.server``) and, where the tutorial calls ``logging.info(...)``
  directly, the root logger (``root``): ``stage_time`` (**cumulative**:
  ``duration_ms={int((time.time()-start_time)*1000)}``), ``cache_health`` (only when usage
  > 85%), ``total_duration_ms=...`` (a standalone line at the end of ``synthesize()``),
  ``synthesis_failed: id=..., error_code=CODE, <free text from TTS_ERROR_CODES>``,
  ``audio_metrics``;
* one component (``app.webui`` and ``app.server``) renames levels with a logger Filter:
  ``WARNING`` -> ``WARN``, ``CRITICAL`` -> ``FATAL``; the root logger's
  ``logging.critical`` writes ``CRITICAL``;
* tracebacks from real exceptions (``exc_info=True``), raised in code compiled under the
  file name ``/app/app/tts_engine.py``, one of them chained;
* lines that are not records (a library's ``print`` captured into the log -- jieba's
  start-up chatter, ffmpeg's stderr, tqdm --, a line truncated by a killed worker): they
  pass through the same handler by a Formatter subclass that writes the bare message for
  the logger ``py.stdout``.

Only the clock is simulated: a record factory (``logging.setLogRecordFactory``) stamps
``created``/``msecs`` from a simulated clock in integer milliseconds, so a day takes
seconds. Everything is deterministic for a seed (gzip headers carry the simulated
rotation time), except what ``--writers`` really does.

Incidents (on the *incident day*: the only day, or day index 10 of a longer run):

* the burst: the cache disk fills (``cache_health`` from 85%, ``cache_dir_usage``
  warnings from 90%, ``CACHE_WRITE_FAILED`` warnings from 97%), then 09:40-10:00 every
  cache miss fails with ``DISK_FULL`` (half with a traceback; clients retry), then the
  cache is cleaned (61%): no ``cache_health`` record afterwards, so the last one is
  ~14 h old at the end of the day;
* background on every day: ``TEXT_EMPTY`` and ``VOICE_UNKNOWN`` ~4 per hour each (client
  errors; not a burst), rare ``MODEL_LOAD_TIMEOUT`` (text_len=512), ``SCIPY_FFT_INVALID``
  at other lengths and ``FFMPEG_TRANSCODE_FAILED`` (not a ttsops registry code);
* slow stage: ``llm_inference`` 4x slower for requests started 20:00-21:00;
* the failing length: every ``text_len=2048 chars`` request fails with
  ``SCIPY_FFT_INVALID`` in ``llm_postproc`` (every day), with an unstructured
  ``scipy.fft failed on input len=1024, exc=RuntimeWarning: ...`` ERROR record before it
  (naming the id in about half of them);
* ids that start and never complete: a worker killed at 15:30 (a ``FATAL``
  ``worker_exit`` record, a truncated line, 9 ids in flight) and 3 scattered per day;
* a model load failure at 03:00 (``failed to load model`` print, a CRITICAL
  ``model_load_failed`` with a chained traceback, a reload).

Variants: ``--writers N`` runs N real processes (fork), each with its own
RotatingFileHandler on the same ``app.log`` (gunicorn workers): lines are lost into
unlinked files and rotated files can be byte-identical; processes advance their clocks
in lock-step windows (``--sync-ms``). ``--names dateext``: a WatchedFileHandler and a
simulated logrotate (``daily``, ``dateext``, ``compress``) at each midnight:
``app.log-20240613.gz`` holds 2024-06-12 (logrotate names by the day it ran);
``dateext-plain`` leaves them uncompressed; ``plain``: RotatingFileHandler without
namer/rotator (``app.log.1`` uncompressed). ``--json stdlib``: one JSON object per line
with ``asctime name levelname message`` (+ ``exc_info``), python-json-logger style;
``--json structlog``: ``event level logger timestamp`` (+ ``exception``), ISO timestamps
with ``Z`` or the ``--tz`` offset, lower-case levels; both ``ensure_ascii`` as their
libraries default. ``--jobs N`` (month): days are written by N processes, each day into
its own directory with its own handler, then renamed into one sequence (with numbered
names, each day's last file is therefore shorter than ``--max-bytes``).

Truth file (``OUTDIR/../<OUTDIR name>.truth.json`` unless ``--truth``), schema
``tutorial-logs-truth/1``. Times are given as written in the log (``*_ts``, the log's
clock) and as UTC ISO (``*_utc``); hours are keys ``"YYYY-MM-DD HH"`` in the log's clock.

* ``generator``: size, seed, days, start, incident_day, names, json, tz, writers,
  max_bytes, jobs, elapsed_s;
* ``dialect``: format (``text``/``json-stdlib``/``json-structlog``), line_format,
  timestamp_example, tz, ``stage_time: "cumulative"``, ``code_followed_by_free_text``,
  ``unit_suffixes`` ({field: unit}), ``level_aliases`` ({alias: canonical}),
  ``alias_loggers``, ``standalone_lines`` (``total_duration_ms``),
  ``cache_health_only_above``, ``unstructured_error_prefixes``;
* ``time_range``: first_ts, last_ts, first_utc, last_utc;
* ``files``: [{name, bytes, text_bytes, lines, sha256 (of the text), first_ts, last_ts}]
  in time order (read back), ``n_files``, ``text_bytes``;
* ``records`` (log records emitted, including the non-record lines), ``log_records``
  (without them), ``physical_lines``, ``tracebacks``, ``traceback_lines`` (lines after a
  record's first line), ``malformed_lines`` (lines that belong to no record),
  ``malformed_examples``;
* ``levels`` (as written: ``WARN``/``FATAL`` apart), ``levels_canonical``, ``loggers``,
  ``events`` (the word before ``:``; ``total_duration_ms`` for the standalone line,
  ``(unstructured)`` for free-text records);
* ``error_codes``: ERROR/CRITICAL records carrying ``error_code=``; ``warning_codes``:
  WARNING records carrying ``error_code=``/``warning_code=``; ``failed_by_code``:
  ``synthesis_complete status=failed`` by code; ``errors_without_code`` {event: n} (ERROR
  and CRITICAL records with no code; ``(unstructured)`` for free text);
  ``unstructured_errors`` {named_id, no_id};
* ``requests``: started, completed, success, failed, cache_hits, never_completed,
  audio_metrics; ``never_completed_ids`` (sorted, every one);
* ``stages``: order, ``value`` (how the truth is computed: the difference of consecutive
  logged cumulative values of one id), ``percentile`` (linear interpolation, numpy's
  default), ``overall`` {stage: {n, p50, p95, p99, mean, share}}, ``per_hour`` {hour:
  {stage: {n, p50, p95, p99}}}, ``e2e`` (``duration_ms`` of completed cache misses:
  {n, p50, p95, p99, mean}), share = mean(stage) / mean(e2e) over those; ``populations``
  {completed, success: {overall, per_hour}}: the same over the ids that completed /
  succeeded only (a reader may defensibly count either);
* ``incidents``: ``burst`` {code, start_ts, end_ts, start_utc, end_utc, errors,
  errors_in_window, first_error_ts, last_error_ts, precursors: [{event, code, count,
  first_ts, last_ts}] (before the burst)}, ``background`` [{code,
  per_hour, count}], ``slow_stage`` {stage, factor, hour, start_ts, end_ts, p50_in_hour,
  p50_overall}, ``failing_length`` {field, value, unit, code, stage, requests, failed},
  ``audio`` {voice, metric, start_ts, end_ts, ids} (muffled: low spectral_centroid),
  ``worker_kill`` {ts, ids}, ``model_load`` {ts, recovered_ts}, ``cache`` {
  last_cache_health_ts, last_usage, max_usage, end_ts, age_at_end_s};
* ``sample_traces``: {id: {kind, records (records whose first line names the id, what
  grep finds), events, first_ts, stage_time_cumulative, stage_time_per_stage, status,
  error_code, text_len, tracebacks {event: {lines, last}}}};
* ``tail``: the last records of ``app.log`` [{ts, level, logger, event, traceback_lines}]
  (the one before the last carries a traceback);
* ``writers`` (``--writers`` only): n, per_process [{writer, records, levels}],
  ``survived`` (read back, byte-identical files once): records, levels, error_codes,
  ``lost_records``, ``duplicate_files`` [[names]], ``records_in_several_files``.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import hashlib
import json
import linecache
import logging
import logging.handlers
import math
import multiprocessing
import os
import random
import re
import shutil
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MIN_MS = 60_000
STAGES = ("text_normalize", "llm_prompt_gen", "llm_inference", "llm_postproc", "audio_render")
FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
RAW_LOGGER = "py.stdout"
ALIAS_LOGGERS = ("app.webui", "app.server")
ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL"}
LEVEL_NAMES = {logging.INFO: "INFO", logging.WARNING: "WARNING", logging.ERROR: "ERROR",
               logging.CRITICAL: "CRITICAL"}
CACHE_PATH = "/app/cache"
CACHE_TOTAL_MB = 40960

# the tutorial's table (section 4.3), with the codes its users added
TTS_ERROR_CODES: dict[str, dict[str, str]] = {
    "MODEL_LOAD_FAILED": {"level": "ERROR", "msg": "Failed to load LLM weights"},
    "SCIPY_FFT_INVALID": {"level": "ERROR", "msg": "Invalid input to scipy.fft"},
    "CACHE_WRITE_FAILED": {"level": "WARNING", "msg": "Failed to write audio to cache"},
    "DISK_FULL": {"level": "ERROR", "msg": "No space left on device"},
    "TEXT_EMPTY": {"level": "ERROR", "msg": "Input text is empty"},
    "VOICE_UNKNOWN": {"level": "ERROR", "msg": "Unknown voice, check the voice list"},
    "MODEL_LOAD_TIMEOUT": {"level": "ERROR", "msg": "Model load timed out after 30s"},
    "FFMPEG_TRANSCODE_FAILED": {"level": "ERROR", "msg": "FFmpeg transcode crashed: exit 1"},
}
BACKGROUND = (("TEXT_EMPTY", 4.0), ("VOICE_UNKNOWN", 4.0))
FAIL_LEN, FAIL_CODE, FAIL_STAGE = 2048, "SCIPY_FFT_INVALID", 3
BURST_CODE = "DISK_FULL"
SLOW_STAGE, SLOW_FACTOR = 2, 4.0

SIZES = {  # base requests per day, default days, default start (local date), max_bytes
    "small": (1200, 1, "2024-06-12", 256 << 10),
    "day": (40_800, 1, "2024-06-12", 5 << 20),
    "month": (37_500, 30, "2024-06-01", 5 << 20),
}
# incident times of day (ms from local midnight)
CREEP_START = 4 * HOUR_MS
BURST_START = 9 * HOUR_MS + 40 * MIN_MS
BURST_END = 10 * HOUR_MS
MODEL_LOAD_AT = 3 * HOUR_MS
KILL_AT = 15 * HOUR_MS + 30 * MIN_MS
SLOW_START, SLOW_END = 20 * HOUR_MS, 21 * HOUR_MS
MUFFLED_VOICE, MUFFLED_START, MUFFLED_END = "nova", 12 * HOUR_MS, 13 * HOUR_MS
KILLED_IN_FLIGHT = 9

VOICES = (("alloy", 30, 2300.0), ("echo", 15, 1950.0), ("fable", 10, 2450.0),
          ("onyx", 15, 1550.0), ("nova", 20, 2750.0), ("shimmer", 10, 2950.0))
TEXTS = {
    "zh": ["今天天气真好，我们去公园散步吧。", "欢迎使用语音合成服务。", "请在听到提示音后留言。",
           "您的订单已经发货，预计明天送达。", "第三章：夜色渐深，城市的灯火一盏盏亮起。"],
    "en": ["Your package has shipped, and should arrive tomorrow. ",
           "Welcome back! Here is today's summary. ",
           "Chapter three: the night grew darker, and the lights came on. ",
           'He said "hello", then left. ', "The quick brown fox jumps over the lazy dog. "],
}
JIEBA = ["Building prefix dict from the default dictionary ...",
         "Loading model from cache /tmp/jieba.cache",
         "Loading model cost 0.612 seconds.",
         "Prefix dict has been built successfully."]
TQDM = "Loading checkpoint shards: 100%|██████████| 4/4 [00:03<00:00,  1.21it/s]"
FFMPEG = "[mp3 @ 0x55d5c8a4e040] Invalid audio stream. Exactly one MP3 audio stream is required."

# --- the service's code that raises (tracebacks name /app/app/tts_engine.py) -------------

APP_FILE = "/app/app/tts_engine.py"
_APP_BODY = '''\
def save_audio(path, audio):
    with open_cache_file(path) as f:
        f.write(audio)


def open_cache_file(path):
    raise OSError(28, "No space left on device", path)


def render_and_save(path):
    audio = b"RIFF"
    save_audio(path, audio)


def postprocess(n):
    spectrum = rfft_checked(n)
    return spectrum


def rfft_checked(n):
    raise ValueError(f"Invalid input to scipy.fft: array of len={n} contains NaN")


def load_weights(path):
    try:
        open_checkpoint(path)
    except FileNotFoundError as e:
        raise RuntimeError("Error(s) in loading state_dict for UnifiedVoice:\\n\\t"
                           "Missing key(s) in state_dict: \\"gpt.wte.weight\\".") from e


def open_checkpoint(path):
    raise FileNotFoundError(2, "No such file or directory", path + "/gpt.pth")


def transcode(path):
    raise RuntimeError("ffmpeg exited with status 1: " + path)


def drain(executor):
    raise RuntimeError("cannot schedule new futures after interpreter shutdown")


def synthesize_and_log(kind, arg, log, level, msg):
    try:
        if kind == 1:
            render_and_save(arg)
        elif kind == 2:
            postprocess(arg)
        elif kind == 3:
            load_weights(arg)
        elif kind == 4:
            transcode(arg)
        else:
            drain(arg)
    except Exception:
        log(level, msg, exc_info=True)
'''
# the functions sit where a real module would have them (rfft near line 387, as in 3.2)
APP_SOURCE = "".join(f"# app/tts_engine.py line {i}\n" for i in range(1, 367)) + _APP_BODY
EXC_DISK, EXC_FFT, EXC_MODEL, EXC_FFMPEG, EXC_SHUTDOWN = 1, 2, 3, 4, 5
EXC_ARGS: dict[int, Any] = {1: "/app/cache/3f/3fa2c1d9e8b7.wav", 2: 1024,
                            3: "/app/checkpoints", 4: "/tmp/out.mp3", 5: "pool"}


def _load_app() -> dict[str, Any]:
    lines = APP_SOURCE.splitlines(True)
    linecache.cache[APP_FILE] = (len(APP_SOURCE), None, lines, APP_FILE)
    ns: dict[str, Any] = {"__name__": "app.tts_engine"}
    exec(compile(APP_SOURCE, APP_FILE, "exec"), ns)
    return ns


# --- configuration ----------------------------------------------------------------------


@dataclass
class Config:
    size: str = "small"
    seed: int = 0
    days: int = 1
    start: str = "2024-06-12"
    names: str = "gz"
    json: str | None = None
    tz: str | None = None
    writers: int = 1
    max_bytes: int = 5 << 20
    jobs: int = 1
    sync_ms: int = 1000
    base_per_day: int = 1200

    @property
    def tz_offset_s(self) -> int:
        return parse_tz(self.tz)

    @property
    def start_ms(self) -> int:
        """UTC ms of the local midnight that starts the run."""
        st = time.strptime(self.start, "%Y-%m-%d")
        return (int(_timegm(st)) - self.tz_offset_s) * 1000

    @property
    def incident_day(self) -> int:
        return min(10, self.days - 1)

    def day_start(self, d: int) -> int:
        return self.start_ms + d * DAY_MS


def _timegm(st: time.struct_time) -> float:
    import calendar
    return calendar.timegm(st)


def parse_tz(tz: str | None) -> int:
    if not tz or tz in ("Z", "UTC", "+00:00"):
        return 0
    m = re.fullmatch(r"([+-])(\d\d):?(\d\d)", tz)
    if not m:
        raise ValueError(f"--tz must look like +08:00, not {tz!r}")
    s = int(m.group(2)) * 3600 + int(m.group(3)) * 60
    return s if m.group(1) == "+" else -s


def fmt_ts(ms: int, off_s: int = 0) -> str:
    """The log's own timestamp for UTC ms (asctime at that offset)."""
    st = time.gmtime(ms // 1000 + off_s)
    return time.strftime("%Y-%m-%d %H:%M:%S", st) + f",{ms % 1000:03d}"


def iso_utc(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def hour_key(ms: int, off_s: int) -> str:
    return time.strftime("%Y-%m-%d %H", time.gmtime(ms // 1000 + off_s))


# --- the plan: requests and background records -------------------------------------------
# A record is a tuple (t_ms, seq, logger, level, msg, exc, event, code):
#   exc: 0, or EXC_* (raise that exception and log with exc_info=True; msg then gets
#   the traceback); logger RAW_LOGGER: a line that is not a record.


@dataclass(slots=True)
class Req:
    rid: str
    t0: int
    lang: str
    voice: str
    text: str
    text_len: int
    writer: int = 0
    hit: bool = False
    stages: tuple[int, ...] = ()  # cumulative ms at the end of each stage
    outcome: str = "ok"  # ok | fail | never
    code: str = ""
    fail_stage: int = -1  # stage index of the failure; the last stage logged for never
    exc: int = 0
    unstructured: int = 0  # 0 none, 1 with the id, 2 without
    save_ms: int = 2
    cache_saved: bool = True
    cache_write_failed: bool = False
    warning: str = ""  # TEXT_SANITIZED | VOICE_FALLBACK
    kb: int = 0
    rms: float = 0.0
    centroid: float = 0.0
    muffled: bool = False


@dataclass
class DayPlan:
    day: int
    reqs: list[Req]
    background: list[tuple]
    facts: dict[str, Any] = field(default_factory=dict)


_MASK = 0xFFFFFFFF


def make_id(seed: int, day: int, idx: int) -> str:
    """A unique 8-hex id for (day, idx): a keyed bijection of 32 bits."""
    x = ((day & 0xFFF) << 20) | (idx & 0xFFFFF)
    k = (seed * 0x9E3779B1 + 0x7F4A7C15) & _MASK
    for r in range(3):
        x = (x ^ k ^ (r * 0x85EBCA6B)) & _MASK
        x = (x * 0x2C1B3C6D + 0x297A2D39) & _MASK  # odd multiplier: invertible mod 2^32
        x ^= x >> 15
    return f"ts_{x:08x}"


def _weights_by_hour() -> list[float]:
    return [0.25 + 1.0 * math.exp(-(((h + 0.5) - 14.5) / 5.0) ** 2) for h in range(24)]


def _lognorm(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _text(rng: random.Random, lang: str, n: int) -> str:
    base = rng.choice(TEXTS[lang])
    if n <= 0:
        return ""
    s = (base * (n // len(base) + 1))[:n]
    return s[:20]


def cache_usage(cfg: Config, d: int, tod: int) -> float:
    """Cache disk usage (%) at time of day ``tod`` (ms) of day ``d``."""
    if d != cfg.incident_day:
        return 62.0 + 8.0 * tod / DAY_MS + 3.0 * ((d * 7919) % 10) / 10.0
    if tod < CREEP_START:
        return 72.0 + 6.0 * tod / CREEP_START
    if tod < BURST_START:
        return 78.0 + 21.6 * (tod - CREEP_START) / (BURST_START - CREEP_START)
    if tod < BURST_END:
        return 99.8
    return 61.0 + 7.0 * (tod - BURST_END) / (DAY_MS - BURST_END)


def _stage_durations(rng: random.Random, n: int, slow: bool) -> list[float]:
    d = [max(1.0, _lognorm(rng, 6.0 + 0.01 * n, 0.35)),
         max(1.0, _lognorm(rng, 15.0, 0.3)),
         max(20.0, _lognorm(rng, 240.0 + 1.1 * min(n, 600), 0.3)),
         max(2.0, _lognorm(rng, 40.0, 0.35)),
         max(2.0, _lognorm(rng, 35.0, 0.3))]
    if slow:
        d[SLOW_STAGE] *= SLOW_FACTOR
    return d


def _cumulative(d: list[float]) -> tuple[int, ...]:
    out, acc, prev = [], 0.0, 0
    for x in d:
        acc += x
        c = max(prev + 1, round(acc))
        out.append(c)
        prev = c
    return tuple(out)


def plan_day(cfg: Config, d: int) -> DayPlan:
    rng = random.Random(f"tutorial-logs:{cfg.seed}:{d}")
    day0 = cfg.day_start(d)
    incident = d == cfg.incident_day
    voices = [v for v, _w, _c in VOICES]
    vweights = [w for _v, w, _c in VOICES]
    centroid = {v: c for v, _w, c in VOICES}
    hw = _weights_by_hour()
    reqs: list[Req] = []
    idx = 0

    def new(t: int, lang: str | None = None, n: int | None = None) -> Req:
        nonlocal idx
        lang = lang or ("zh" if rng.random() < 0.7 else "en")
        if n is None:
            n = max(2, min(1800, round(_lognorm(rng, 90.0 if lang == "zh" else 160.0, 0.8))))
        r = Req(make_id(cfg.seed, d, idx), t, lang, rng.choices(voices, vweights)[0],
                _text(rng, lang, n), n, writer=idx % max(1, cfg.writers))
        idx += 1
        return r

    def miss(r: Req, slow_ok: bool = True) -> None:
        tod = r.t0 - day0
        slow = incident and slow_ok and SLOW_START <= tod < SLOW_END
        r.stages = _cumulative(_stage_durations(rng, r.text_len, slow))
        r.save_ms = rng.randint(1, 6)
        r.kb = max(1, round(r.text_len * rng.uniform(1.3, 1.6)))
        r.rms = max(0.002, rng.gauss(0.024, 0.004))
        r.centroid = rng.gauss(centroid[r.voice], 90.0)
        if (incident and r.voice == MUFFLED_VOICE
                and MUFFLED_START <= tod < MUFFLED_END):  # a bad resample: muffled audio
            r.centroid = rng.gauss(1150.0, 60.0)
            r.muffled = True

    def fail(r: Req, code: str, stage: int, exc: int = 0, unstructured: int = 0) -> None:
        r.outcome, r.code, r.fail_stage, r.exc, r.unstructured = (
            "fail", code, stage, exc, unstructured)

    # base traffic, by hour of day
    n_base = cfg.base_per_day
    hours = rng.choices(range(24), hw, k=n_base)
    times = sorted(day0 + h * HOUR_MS + rng.randrange(HOUR_MS) for h in hours)
    for t in times:
        r = new(t)
        tod = t - day0
        burst = incident and BURST_START <= tod < BURST_END
        r.hit = rng.random() < 0.33
        if rng.random() < 0.008:  # the client that always sends 2048 chars
            r.text_len, r.text, r.hit = FAIL_LEN, _text(rng, r.lang, FAIL_LEN), False
        if r.hit:
            r.save_ms = rng.randint(3, 15)
            r.kb = max(1, round(r.text_len * rng.uniform(1.3, 1.6)))
            reqs.append(r)
            continue
        miss(r)
        if r.text_len == FAIL_LEN:
            fail(r, FAIL_CODE, FAIL_STAGE, EXC_FFT if rng.random() < 0.3 else 0,
                 1 if rng.random() < 0.5 else 2)
        elif burst:
            fail(r, BURST_CODE, 4, EXC_DISK if rng.random() < 0.5 else 0)
            reqs.append(r)
            t_retry = t
            for _ in range(2):  # clients retry a 507 after 1-3 s
                if rng.random() >= 0.7:
                    break
                t_retry += r.stages[3] + rng.randint(1000, 3000)
                if t_retry - day0 >= BURST_END:
                    break
                rr = new(t_retry, r.lang, r.text_len)
                miss(rr)
                fail(rr, BURST_CODE, 4, EXC_DISK if rng.random() < 0.5 else 0)
                reqs.append(rr)
            continue
        else:
            r.warning = ("TEXT_SANITIZED" if rng.random() < 0.003 else
                         "VOICE_FALLBACK" if rng.random() < 0.003 else "")
            use = cache_usage(cfg, d, tod)
            if use >= 97.0 and rng.random() < 0.3:
                r.cache_write_failed, r.cache_saved = True, False
        reqs.append(r)

    # background client errors: Poisson, ~per_hour each, all day
    for code, per_hour in BACKGROUND:
        t = day0
        while True:
            t += round(rng.expovariate(per_hour / HOUR_MS))
            if t >= day0 + DAY_MS - 5000:
                break
            r = new(t, n=0 if code == "TEXT_EMPTY" and rng.random() < 0.5 else None)
            if code == "TEXT_EMPTY":
                r.text_len = r.text_len if r.text_len == 0 else 1
                r.text = "" if r.text_len == 0 else " "
            else:
                r.voice = rng.choice(["alloy2", "narrator", "zh_female_1", "default "])
            r.stages = (rng.randint(1, 3),)
            fail(r, code, 0)
            reqs.append(r)

    def scattered(k: int) -> list[int]:
        return sorted(day0 + rng.randrange(HOUR_MS, DAY_MS - HOUR_MS) for _ in range(k))

    for t in scattered(3):  # rare MODEL_LOAD_TIMEOUT at text_len=512 (the tutorial's 3)
        r = new(t, n=512)
        miss(r)
        fail(r, "MODEL_LOAD_TIMEOUT", 2)
        reqs.append(r)
    for t in scattered(3):  # SCIPY_FFT_INVALID at other lengths, rarely
        r = new(t)
        miss(r)
        fail(r, FAIL_CODE, FAIL_STAGE, 0, 2)
        reqs.append(r)
    ffmpeg_lines = []
    for t in scattered(4):  # a code that is not in ttsops' registry, with ffmpeg's stderr
        r = new(t)
        miss(r)
        fail(r, "FFMPEG_TRANSCODE_FAILED", 4, EXC_FFMPEG if rng.random() < 0.5 else 0)
        reqs.append(r)
        ffmpeg_lines.append(r)
    for t in scattered(3):  # started, never completed (client gone, worker stuck)
        r = new(t)
        miss(r)
        r.outcome, r.fail_stage = "never", rng.randrange(0, 4)
        reqs.append(r)

    bg: list[tuple] = []
    facts: dict[str, Any] = {}
    seq = [0]

    def rec(t: int, logger: str, level: int, msg: str, exc: int = 0, event: str = "",
            code: str = "") -> None:
        bg.append((t, seq[0], logger, level, msg, exc, event, code))
        seq[0] += 1

    for r in ffmpeg_lines:
        rec(r.t0 + r.stages[3] + 1, RAW_LOGGER, logging.INFO, FFMPEG)

    if d == 0:  # the service starts
        t = day0 + 200
        rec(t, "app.server", logging.INFO,
            "server_start: workers=3, bind=0.0.0.0:7860, version=1.4.2", event="server_start")
        for i, line in enumerate(JIEBA):
            rec(t + 300 + i * 200, RAW_LOGGER, logging.INFO, line)
        rec(t + 1500, RAW_LOGGER, logging.INFO, TQDM)
        rec(t + 4800, "app.tts_engine", logging.INFO,
            "model_loaded: path=/app/checkpoints, load_ms=4512, device=cpu", event="model_loaded")

    # the cache thread (tutorial 4.4), every 5 minutes
    last_health: int | None = None
    usages = []
    for k in range(288):
        t = day0 + k * 300_000 + rng.randrange(0, 2000) + 500
        pct = cache_usage(cfg, d, t - day0) + rng.uniform(-0.15, 0.15)
        pct = min(pct, 99.9)
        usages.append(pct)
        used = int(CACHE_TOTAL_MB * pct / 100)
        if pct > 85:
            rec(t, "root", logging.WARNING,
                f"cache_health: path={CACHE_PATH}, used={used}MB, total={CACHE_TOTAL_MB}MB, "
                f"usage={pct:.1f}%", event="cache_health")
            last_health = t
            facts.setdefault("health_first", t)
            facts["last_usage"] = round(pct, 1)
        if pct > 90.0:
            rec(t + 3, "app.cache", logging.WARNING,
                f"cache_dir_usage: path={CACHE_PATH}, used_percent={pct:.1f}, threshold=90.0, "
                f"action=warn", event="cache_dir_usage")
    facts["last_health"] = last_health
    facts["max_usage"] = round(max(usages), 1)

    # the web page and its component's level names
    t = day0
    while True:
        t += round(rng.expovariate(30 / HOUR_MS))
        if t >= day0 + DAY_MS - 1000:
            break
        rec(t, "app.webui", logging.INFO,
            f"page_load: path=/, client=10.0.{rng.randrange(1, 9)}.{rng.randrange(2, 250)}",
            event="page_load")
    t = day0
    while True:
        t += round(rng.expovariate(2 / HOUR_MS))
        if t >= day0 + DAY_MS - 1000:
            break
        rec(t, "app.webui", logging.WARNING,
            "playback_error: warning_code=WEBUI_PLAYBACK_FAILED, detail=\"NotAllowedError: "
            "play() failed because the user didn't interact with the document first.\"",
            event="playback_error", code="WEBUI_PLAYBACK_FAILED")

    if incident:
        t = day0 + MODEL_LOAD_AT
        rec(t, RAW_LOGGER, logging.INFO, "ERROR: failed to load model")
        rec(t + 1, "root", logging.ERROR,  # the table's level for this code
            f"model_load_failed: path=/app/checkpoints, error_code=MODEL_LOAD_FAILED, "
            f"{TTS_ERROR_CODES['MODEL_LOAD_FAILED']['msg']}", EXC_MODEL,
            "model_load_failed", "MODEL_LOAD_FAILED")
        rec(t + 2500, RAW_LOGGER, logging.INFO, TQDM)
        rec(t + 6200, "app.tts_engine", logging.INFO,
            "model_loaded: path=/app/checkpoints, load_ms=6199, device=cpu, retry=1",
            event="model_loaded")
        facts["model_load"] = (t + 1, t + 6200)
        # the cache thread gives up when the disk is full (logging.critical, no code)
        rec(day0 + BURST_START + 1000, "root", logging.CRITICAL,
            f"cache_disk_full: path={CACHE_PATH}, usage=99.8%, action=none",
            event="cache_disk_full")

        # a worker is killed with requests in flight: they never complete
        tk = day0 + KILL_AT
        killed = []
        for j in range(KILLED_IN_FLIGHT):
            r = new(tk - 4000 + j * 430, n=rng.randrange(900, 1800))
            miss(r, slow_ok=False)
            r.outcome = "never"
            done = [i for i, c in enumerate(r.stages) if r.t0 + c < tk]
            r.fail_stage = (done[-1] + 1) if done else 0  # stages < fail_stage are logged
            r.writer = 0
            reqs.append(r)
            killed.append(r.rid)
        head = fmt_ts(tk - 1, cfg.tz_offset_s)
        rec(tk - 1, RAW_LOGGER, logging.INFO,
            f'{{"asctime": "{head}", "name": "app.tts_en' if cfg.json else
            head + " - app.tts_en")
        rec(tk + 40, "app.server", logging.CRITICAL,
            f"worker_exit: pid=31337, signal=SIGKILL, reason=oom, in_flight={len(killed)}",
            event="worker_exit")
        for i, line in enumerate(JIEBA):
            rec(tk + 900 + i * 150, RAW_LOGGER, logging.INFO, line)
        rec(tk + 1700, "app.server", logging.INFO, "worker_boot: pid=31502", event="worker_boot")
        facts["worker_kill"] = (tk + 40, killed)

    if d == cfg.days - 1:  # the run ends with a deploy, just after midnight
        rec(day0 + DAY_MS + 1400, "app.server", logging.ERROR,
            "worker_shutdown: pid=31502, exc=RuntimeError", EXC_SHUTDOWN, "worker_shutdown")
        rec(day0 + DAY_MS + 1500, "app.server", logging.INFO,
            "server_stop: signal=SIGTERM, reason=deploy", event="server_stop")
    reqs.sort(key=lambda r: r.t0)
    return DayPlan(d, reqs, bg, facts)


def _len_str(n: int) -> str:
    return f"{n} char" if n == 1 else f"{n} chars"


def request_records(r: Req, seq0: int) -> list[tuple]:
    """The records of one request, as the tutorial's synthesize() writes them."""
    out: list[tuple] = []
    seq = seq0
    rid = r.rid
    tl = _len_str(r.text_len)

    def add(t: int, logger: str, level: int, msg: str, exc: int = 0, event: str = "",
            code: str = "") -> None:
        nonlocal seq
        out.append((t, seq, logger, level, msg, exc, event, code))
        seq += 1

    t0 = r.t0
    add(t0, "app.tts_engine", logging.INFO,
        f'synthesis_start: id={rid}, text="{r.text}", lang={r.lang}, voice={r.voice}, '
        f"text_len={tl}", event="synthesis_start")
    if r.warning == "TEXT_SANITIZED":
        add(t0, "app.tts_engine", logging.WARNING,
            f"text_warning: id={rid}, warning_code=TEXT_SANITIZED, fallback_used=false, "
            f"removed=2", event="text_warning", code="TEXT_SANITIZED")
    elif r.warning == "VOICE_FALLBACK":
        add(t0, "app.tts_engine", logging.WARNING,
            f"voice_warning: id={rid}, warning_code=VOICE_FALLBACK, fallback_used=true, "
            f"requested={r.voice}_v2", event="voice_warning", code="VOICE_FALLBACK")
    if r.hit:
        t = t0 + r.save_ms
        dur = t - t0
        add(t, "app.tts_engine", logging.INFO,
            f"synthesis_complete: id={rid}, status=success, duration_ms={dur}, text_len={tl}, "
            f"audio_size_kb={r.kb}, cache_hit=true, cache_saved=false, model_stage=cache_lookup",
            event="synthesis_complete")
        add(t, "root", logging.INFO, f"total_duration_ms={dur}", event="total_duration_ms")
        return out
    if r.outcome == "fail":
        k = r.fail_stage
        for i in range(k):
            add(t0 + r.stages[i], "root", logging.INFO,
                f"stage_time: stage={STAGES[i]}, id={rid}, duration_ms={r.stages[i]}",
                event="stage_time")
        prev = r.stages[k - 1] if k > 0 else 0
        tf = t0 + (r.stages[k] if k < len(r.stages) else prev + 1)
        if r.unstructured:
            named = f" for id={rid}" if r.unstructured == 1 else ""
            add(tf, "app.tts_engine", logging.ERROR,
                f"scipy.fft failed{named} on input len={r.text_len // 2}, "
                f"exc=RuntimeWarning: invalid value encountered in true_divide",
                event="(unstructured)")
        msg = (f"synthesis_failed: id={rid}, error_code={r.code}, "
               f"{TTS_ERROR_CODES[r.code]['msg']}")
        add(tf, "root", logging.ERROR, msg, r.exc, "synthesis_failed", r.code)
        add(tf + 1, "app.tts_engine", logging.INFO,
            f"synthesis_complete: id={rid}, status=failed, duration_ms={tf + 1 - t0}, "
            f"text_len={tl}, audio_size_kb=0, cache_hit=false, cache_saved=false, "
            f"model_stage={STAGES[k]}, error_code={r.code}", event="synthesis_complete")
        return out
    if r.outcome == "never":
        for i in range(r.fail_stage):
            add(t0 + r.stages[i], "root", logging.INFO,
                f"stage_time: stage={STAGES[i]}, id={rid}, duration_ms={r.stages[i]}",
                event="stage_time")
        return out
    for i, c in enumerate(r.stages):
        add(t0 + c, "root", logging.INFO,
            f"stage_time: stage={STAGES[i]}, id={rid}, duration_ms={c}", event="stage_time")
    t = t0 + r.stages[-1] + r.save_ms
    if r.cache_write_failed:
        add(t - 1, "app.cache", logging.WARNING,
            f"cache_write_failed: id={rid}, error_code=CACHE_WRITE_FAILED, "
            f"{TTS_ERROR_CODES['CACHE_WRITE_FAILED']['msg']}", event="cache_write_failed",
            code="CACHE_WRITE_FAILED")
    add(t, "root", logging.INFO,
        f"audio_metrics: id={rid}, rms={r.rms:.3f}, spectral_centroid={r.centroid:.0f}",
        event="audio_metrics")
    dur = t - t0
    add(t, "app.tts_engine", logging.INFO,
        f"synthesis_complete: id={rid}, status=success, duration_ms={dur}, text_len={tl}, "
        f"audio_size_kb={r.kb}, cache_hit=false, cache_saved={str(r.cache_saved).lower()}, "
        f"model_stage=audio_render", event="synthesis_complete")
    add(t, "root", logging.INFO, f"total_duration_ms={dur}", event="total_duration_ms")
    return out


def day_records(plan: DayPlan, lo: int | None, hi: int | None,
                reqs: list[Req] | None = None) -> list[tuple]:
    """Records of the plan with lo <= t < hi, time-ordered (ties: creation order)."""
    out: list[tuple] = []
    seq = (plan.day + 1) << 32
    for r in plan.reqs if reqs is None else reqs:
        rs = request_records(r, seq)
        seq += 64
        out.extend(rs)
    out.extend(plan.background if reqs is None else ())
    if lo is not None or hi is not None:
        lo_ = -1 if lo is None else lo
        hi_ = 1 << 62 if hi is None else hi
        out = [x for x in out if lo_ <= x[0] < hi_]
    out.sort(key=lambda x: (x[0], x[1]))
    return out


# --- writing through stdlib logging ------------------------------------------------------

_NOW = [0]


def _install_clock() -> None:
    base = logging.getLogRecordFactory()
    if getattr(base, "_tutorial_clock", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        rec = base(*args, **kwargs)
        t = _NOW[0]
        rec.created = t / 1000.0
        rec.msecs = t % 1000
        rec.relativeCreated = 0.0
        return rec

    factory._tutorial_clock = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class _AliasFilter(logging.Filter):
    """One component's level names (a port from another language): WARN, FATAL."""

    def filter(self, record: logging.LogRecord) -> bool:
        alias = ALIASES.get(record.levelname)
        if alias:
            record.levelname = alias
        return True


class _Counting:
    """Mixin: counts the physical lines of tracebacks a formatter writes."""

    tracebacks = 0
    traceback_lines = 0

    def _count(self, record: logging.LogRecord, text: str) -> str:
        # RotatingFileHandler formats each record twice (shouldRollover, then emit)
        if record.exc_info and not getattr(record, "_tl_counted", False):
            record._tl_counted = True  # type: ignore[attr-defined]
            type(self).tracebacks += 1
            type(self).traceback_lines += text.count("\n")
        return text


class TextFormatter(logging.Formatter, _Counting):
    def format(self, record: logging.LogRecord) -> str:
        if record.name == RAW_LOGGER:
            return record.msg
        return self._count(record, super().format(record))


class StdlibJsonFormatter(logging.Formatter, _Counting):
    """python-json-logger's shape: asctime, name, levelname, message (+ exc_info)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == RAW_LOGGER:
            return record.msg
        d = {"asctime": self.formatTime(record), "name": record.name,
             "levelname": record.levelname, "message": record.getMessage()}
        if record.exc_info:
            d["exc_info"] = self.formatException(record.exc_info)
            self._count(record, "")
        return json.dumps(d)


class StructlogJsonFormatter(logging.Formatter, _Counting):
    """structlog's JSONRenderer shape: event, level, logger, timestamp (+ exception)."""

    def __init__(self, off_s: int) -> None:
        super().__init__()
        self.off_s = off_s
        h, m = divmod(abs(off_s) // 60, 60)
        self.suffix = "Z" if off_s == 0 else f"{'+' if off_s > 0 else '-'}{h:02d}:{m:02d}"

    def format(self, record: logging.LogRecord) -> str:
        if record.name == RAW_LOGGER:
            return record.msg
        ms = round(record.created * 1000)
        st = time.gmtime(ms // 1000 + self.off_s)
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", st) + f".{ms % 1000:03d}000{self.suffix}"
        d = {"event": record.getMessage(), "level": record.levelname.lower(),
             "logger": record.name, "timestamp": ts}
        if record.exc_info:
            d["exception"] = self.formatException(record.exc_info)
            self._count(record, "")
        return json.dumps(d)


def make_formatter(cfg: Config) -> logging.Formatter:
    off = cfg.tz_offset_s
    if cfg.json == "stdlib":
        f: logging.Formatter = StdlibJsonFormatter()
    elif cfg.json == "structlog":
        return StructlogJsonFormatter(off)
    else:
        f = TextFormatter(FORMAT)
    f.converter = (lambda s: time.gmtime(s + off)) if off else time.gmtime  # type: ignore
    return f


def _gz_rotator(mtime_s: list[int]):
    def rotator(source: str, dest: str) -> None:
        # the cookbook's recipe: gzip the rotated file whole, remove the source
        with open(source, "rb") as f_in, open(dest, "wb") as raw, \
                gzip.GzipFile(os.path.basename(dest)[:-3], "wb", fileobj=raw,
                              mtime=mtime_s[0]) as f_out:
            shutil.copyfileobj(f_in, f_out)
        os.remove(source)
        os.utime(dest, (mtime_s[0], mtime_s[0]))
    return rotator


class _Rotation:
    """mtime of a rotation = the simulated time of the record that triggered it."""

    def __init__(self) -> None:
        self.mtime = [0]


def make_handler(cfg: Config, directory: Path, rot: _Rotation) -> logging.Handler:
    path = str(directory / "app.log")
    if cfg.names in ("dateext", "dateext-plain"):
        h: logging.Handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    else:
        # enough backups to keep every file (doRollover stats each of them per rotation)
        keep = 2 * cfg.days * cfg.base_per_day * 1000 // cfg.max_bytes + 20
        h = logging.handlers.RotatingFileHandler(path, maxBytes=cfg.max_bytes,
                                                 backupCount=keep, encoding="utf-8")
        if cfg.names == "gz":
            h.namer = lambda name: name + ".gz"  # type: ignore[attr-defined]
            h.rotator = _gz_rotator(rot.mtime)  # type: ignore[attr-defined]
    h.setFormatter(make_formatter(cfg))
    return h


def logrotate_dateext(directory: Path, run_ms: int, compress: bool) -> str:
    """logrotate ``daily dateext [compress]`` at ``run_ms``: app.log -> app.log-YYYYMMDD."""
    src = directory / "app.log"
    name = "app.log-" + time.strftime("%Y%m%d", time.gmtime(run_ms // 1000))
    dst = directory / name
    os.rename(src, dst)
    if compress:
        gz = directory / (name + ".gz")
        with open(dst, "rb") as f_in, open(gz, "wb") as raw, \
                gzip.GzipFile(name, "wb", fileobj=raw, mtime=run_ms // 1000) as f_out:
            shutil.copyfileobj(f_in, f_out)
        os.remove(dst)
        dst = gz
    os.utime(dst, (run_ms // 1000, run_ms // 1000))
    return dst.name


def _setup_logging(cfg: Config, directory: Path, rot: _Rotation) -> logging.Handler:
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    _install_clock()
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.setLevel(logging.INFO)
    handler = make_handler(cfg, directory, rot)
    root.addHandler(handler)
    for name in ALIAS_LOGGERS:
        lg = logging.getLogger(name)
        if not any(isinstance(f, _AliasFilter) for f in lg.filters):
            lg.addFilter(_AliasFilter())
    _Counting.tracebacks = 0
    _Counting.traceback_lines = 0
    for cls in (TextFormatter, StdlibJsonFormatter, StructlogJsonFormatter):
        cls.tracebacks = 0
        cls.traceback_lines = 0
    return handler


def emit(records: list[tuple], cfg: Config, directory: Path, handler: logging.Handler,
         rot: _Rotation, off_s: int, midnight: list[int] | None = None,
         barrier: Any = None, windows: list[int] | None = None) -> None:
    """Write records through logging, in order. ``midnight``: logrotate run times (dateext).
    ``barrier``/``windows``: advance in lock-step with other writer processes."""
    app = _load_app()
    fail_and_log = app["synthesize_and_log"]
    loggers = {n: logging.getLogger(n) for n in
               ("app.tts_engine", "app.cache", "app.webui", "app.server", RAW_LOGGER)}
    loggers["root"] = logging.getLogger()
    now = _NOW
    mid = midnight if midnight is not None else []  # consumed: runs once across calls
    wi = 0
    w_ms = cfg.sync_ms
    for t, _seq, lname, level, msg, exc, _ev, _code in records:
        if barrier is not None and windows is not None:
            w = t // w_ms
            while wi < len(windows) and windows[wi] < w:
                barrier.wait()
                wi += 1
        while mid and t >= mid[0]:
            logrotate_dateext(directory, mid.pop(0), cfg.names == "dateext")
        now[0] = t
        rot.mtime[0] = t // 1000
        lg = loggers[lname]
        if exc:
            fail_and_log(exc, EXC_ARGS[exc], lg.log, level, msg)
        else:
            lg.log(level, msg)
    if barrier is not None and windows is not None:
        while wi < len(windows):
            barrier.wait()
            wi += 1


# --- counting what was emitted ------------------------------------------------------------

_CODE_RE = re.compile(r"(?:error_code|warning_code)=([A-Z][A-Z0-9_]*)")


def level_written(lname: str, level: int) -> str:
    name = LEVEL_NAMES[level]
    return ALIASES.get(name, name) if lname in ALIAS_LOGGERS else name


def count_records(records: list[tuple]) -> dict[str, Any]:
    levels: Counter[str] = Counter()
    loggers: Counter[str] = Counter()
    events: Counter[str] = Counter()
    errs: Counter[str] = Counter()
    warns: Counter[str] = Counter()
    unstructured: Counter[str] = Counter()
    errs_nocode: Counter[str] = Counter()
    raw = 0
    malformed_examples: list[str] = []
    for _t, _s, lname, level, msg, _exc, ev, code in records:
        if lname == RAW_LOGGER:
            raw += 1
            if len(malformed_examples) < 8 and msg not in malformed_examples:
                malformed_examples.append(msg)
            continue
        levels[level_written(lname, level)] += 1
        loggers[lname] += 1
        events[ev] += 1
        if ev == "(unstructured)":
            unstructured["named_id" if "id=ts_" in msg else "no_id"] += 1
        if code:
            if level >= logging.ERROR:
                errs[code] += 1
            elif level == logging.WARNING:
                warns[code] += 1
        elif level >= logging.ERROR:
            errs_nocode[ev] += 1
    return {"levels": levels, "loggers": loggers, "events": events, "error_codes": errs,
            "warning_codes": warns, "raw": raw, "malformed_examples": malformed_examples,
            "unstructured": unstructured, "errors_without_code": errs_nocode,
            "records": len(records)}


class Hist:
    """Exact percentiles of integer values (numpy's default linear interpolation)."""

    def __init__(self) -> None:
        self.c: Counter[int] = Counter()

    def add(self, v: int) -> None:
        self.c[v] += 1

    def merge(self, other: Hist) -> None:
        self.c.update(other.c)

    def summary(self, mean: bool = False) -> dict[str, Any]:
        items = sorted(self.c.items())
        n = sum(c for _v, c in items)
        if n == 0:
            return {"n": 0}
        vals = [v for v, _c in items]
        cum = []
        acc = 0
        for _v, c in items:
            acc += c
            cum.append(acc)

        def at(rank: int) -> int:  # 0-based rank
            return vals[bisect.bisect_right(cum, rank)]

        out: dict[str, Any] = {"n": n}
        for q in (50, 95, 99):
            pos = q / 100 * (n - 1)
            lo = math.floor(pos)
            a, b = at(lo), at(min(n - 1, lo + 1))
            out[f"p{q}"] = round(a + (b - a) * (pos - lo), 3)
        if mean:
            out["mean"] = round(sum(v * c for v, c in items) / n, 3)
        return out


def request_stats(cfg: Config, plan: DayPlan) -> dict[str, Any]:
    off = cfg.tz_offset_s
    overall = {s: Hist() for s in STAGES}
    per_hour: dict[str, dict[str, Hist]] = defaultdict(lambda: {s: Hist() for s in STAGES})
    e2e = Hist()
    pops = {p: ({s: Hist() for s in STAGES},
                defaultdict(lambda: {s: Hist() for s in STAGES})) for p in POPULATIONS}
    req = Counter()
    failed_by_code: Counter[str] = Counter()
    never: list[str] = []
    muffled: list[str] = []
    fail_len = Counter()
    stage_sum = Counter()
    e2e_sum = 0
    for r in plan.reqs:
        req["started"] += 1
        if r.hit:
            req["completed"] += 1
            req["success"] += 1
            req["cache_hits"] += 1
            continue
        n_logged = (len(r.stages) if r.outcome == "ok" else r.fail_stage
                    if r.outcome in ("fail", "never") else 0)
        hk = hour_key(r.t0, off)
        prev = 0
        vals = []
        for i in range(n_logged):
            v = r.stages[i] - prev
            prev = r.stages[i]
            overall[STAGES[i]].add(v)
            per_hour[hk][STAGES[i]].add(v)
            vals.append(v)
        if r.outcome == "never":
            req["never_completed"] += 1
            never.append(r.rid)
            continue
        req["completed"] += 1
        _add_pop(pops["completed"], hk, vals)
        if r.text_len == FAIL_LEN:
            fail_len["requests"] += 1
            if r.outcome == "fail" and r.code == FAIL_CODE:
                fail_len["failed"] += 1
        if r.outcome == "fail":
            req["failed"] += 1
            failed_by_code[r.code] += 1
            continue
        req["success"] += 1
        _add_pop(pops["success"], hk, vals)
        req["audio_metrics"] += 1
        if r.muffled:
            muffled.append(r.rid)
        dur = r.stages[-1] + r.save_ms
        e2e.add(dur)
        e2e_sum += dur
        for i, v in enumerate(vals):
            stage_sum[STAGES[i]] += v
    return {"overall": overall, "per_hour": dict(per_hour), "e2e": e2e, "requests": req,
            "failed_by_code": failed_by_code, "never": never, "muffled": muffled,
            "fail_len": fail_len, "pops": {p: (o, dict(h)) for p, (o, h) in pops.items()},
            "stage_sum": stage_sum, "e2e_sum": e2e_sum}


POPULATIONS = ("completed", "success")


def _add_pop(pop: tuple[dict, dict], hk: str, vals: list[int]) -> None:
    for i, v in enumerate(vals):
        pop[0][STAGES[i]].add(v)
        pop[1][hk][STAGES[i]].add(v)


def _merge_hists(a: dict[str, Hist], b: dict[str, Hist]) -> None:
    for s in STAGES:
        a[s].merge(b[s])


def _merge_hourly(a: dict[str, dict[str, Hist]], b: dict[str, dict[str, Hist]]) -> None:
    for hk, hs in b.items():
        if hk in a:
            _merge_hists(a[hk], hs)
        else:
            a[hk] = hs


def merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out = parts[0]
    for p in parts[1:]:
        _merge_hists(out["overall"], p["overall"])
        _merge_hourly(out["per_hour"], p["per_hour"])
        for pop in POPULATIONS:
            _merge_hists(out["pops"][pop][0], p["pops"][pop][0])
            _merge_hourly(out["pops"][pop][1], p["pops"][pop][1])
        out["e2e"].merge(p["e2e"])
        for k in ("requests", "failed_by_code", "fail_len", "stage_sum"):
            out[k].update(p[k])
        out["never"].extend(p["never"])
        out["muffled"].extend(p["muffled"])
        out["e2e_sum"] += p["e2e_sum"]
    return out


def merge_counts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out = parts[0]
    for p in parts[1:]:
        for k in ("levels", "loggers", "events", "error_codes", "warning_codes",
                  "unstructured", "errors_without_code"):
            out[k].update(p[k])
        out["raw"] += p["raw"]
        out["records"] += p["records"]
        for m in p["malformed_examples"]:
            if len(out["malformed_examples"]) < 8 and m not in out["malformed_examples"]:
                out["malformed_examples"].append(m)
    return out


# --- reading back (files, and what survived several writers) ------------------------------

_HEAD_TS = re.compile(rb"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - ")
_JSON_TS = re.compile(rb'"(?:asctime|timestamp)": "([^"]+)"')


def open_text(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def log_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir()
                  if p.name == "app.log" or p.name.startswith(("app.log.", "app.log-")))


def read_back(directory: Path) -> list[dict[str, Any]]:
    """Every log file: name, sizes, lines, sha256 of its text, first and last timestamp."""
    out = []
    for p in log_files(directory):
        text = open_text(p)
        first = last = None
        tss = _HEAD_TS.findall(text[:200_000]) or _JSON_TS.findall(text[:200_000])
        if tss:
            first = tss[0].decode()
        tail = _HEAD_TS.findall(text[-200_000:]) or _JSON_TS.findall(text[-200_000:])
        if tail:
            last = tail[-1].decode()
        out.append({"name": p.name, "bytes": p.stat().st_size, "text_bytes": len(text),
                    "lines": text.count(b"\n"), "sha256": hashlib.sha256(text).hexdigest(),
                    "first_ts": first, "last_ts": last})
    out.sort(key=lambda f: (f["first_ts"] or "", f["name"]))
    return out


# --- the run --------------------------------------------------------------------------------


def _chunk_records(cfg: Config, d: int, plans: dict[int, DayPlan], last: bool) -> list[tuple]:
    """Records emitted while day d is the current day: its own (< next midnight, unless it
    is the last day) and the previous day's that spill past midnight."""
    lo, hi = cfg.day_start(d), (None if last else cfg.day_start(d + 1))
    recs = day_records(plans[d], None, hi)
    if d - 1 in plans:
        late = [r for r in plans[d - 1].reqs if r.t0 >= lo - 5 * MIN_MS]
        recs.extend(day_records(plans[d - 1], lo, None, late))
        recs.sort(key=lambda x: (x[0], x[1]))
    return recs


def _run_day_chunk(args: tuple[Config, int, str]) -> dict[str, Any]:
    """One day into its own directory (``--jobs``): its plan, the previous day's spill."""
    cfg, d, directory = args
    plans = {d: plan_day(cfg, d)}
    if d > 0:
        plans[d - 1] = plan_day(cfg, d - 1)
    last = d == cfg.days - 1
    recs = _chunk_records(cfg, d, plans, last)
    rot = _Rotation()
    dpath = Path(directory)
    dpath.mkdir(parents=True, exist_ok=True)
    handler = _setup_logging(cfg, dpath, rot)
    mids = ([cfg.day_start(d + 1)] if last and cfg.names in ("dateext", "dateext-plain")
            else None)
    emit(recs, cfg, dpath, handler, rot, cfg.tz_offset_s, midnight=mids)
    handler.close()
    logging.getLogger().removeHandler(handler)
    end_ms = recs[-1][0] if recs else cfg.day_start(d)
    fmt = handler.formatter
    return {"day": d, "counts": count_records(recs), "stats": request_stats(cfg, plans[d]),
            "facts": plans[d].facts, "first": recs[0][0] if recs else None, "last": end_ms,
            "tracebacks": type(fmt).tracebacks, "traceback_lines": type(fmt).traceback_lines,
            "tail": recs[-5:]}


def _assemble(cfg: Config, out: Path, chunk_dirs: list[Path], last_ms: list[int]) -> None:
    """Move each day's files into OUTDIR as one rotation sequence."""
    seq: list[Path] = []  # oldest first
    final: Path | None = None
    for i, cd in enumerate(chunk_dirs):
        last = i == len(chunk_dirs) - 1
        if cfg.names in ("dateext", "dateext-plain"):
            if not last:
                logrotate_dateext(cd, cfg.day_start(i + 1), cfg.names == "dateext")
            for p in cd.iterdir():
                os.rename(p, out / p.name)
            continue
        rotated = sorted((p for p in cd.iterdir() if p.name != "app.log"),
                         key=lambda p: -int(p.name.split(".")[2]))
        seq.extend(rotated)
        if not last:
            cur = cd / "app.log"
            if cfg.names == "gz":
                dst = cd / "app.log.0.gz"
                _gz_rotator([last_ms[i] // 1000])(str(cur), str(dst))
                seq.append(dst)
            else:
                seq.append(cur)
        else:
            final = cd / "app.log"
    ext = ".gz" if cfg.names == "gz" else ""
    for n, p in enumerate(reversed(seq), start=1):
        os.rename(p, out / f"app.log.{n}{ext}")
    if final is not None and final.exists():
        os.rename(final, out / "app.log")
    for cd in chunk_dirs:
        shutil.rmtree(cd, ignore_errors=True)


def pick_samples(plan: DayPlan) -> dict[str, Req]:
    """A few ids whose whole trace the truth spells out."""
    picks: dict[str, Req] = {}
    for r in plan.reqs:
        kind = None
        if r.outcome == "ok" and not r.hit and not r.warning and not r.cache_write_failed:
            kind = "success"
        elif r.outcome == "ok" and r.hit:
            kind = "cache_hit"
        elif r.outcome == "fail" and r.code == FAIL_CODE and r.unstructured == 1:
            kind = "failing_length_named"
        elif r.outcome == "fail" and r.code == BURST_CODE and r.exc:
            kind = "burst_with_traceback"
        elif r.outcome == "fail" and r.code == "TEXT_EMPTY":
            kind = "client_error"
        elif r.outcome == "never" and r.fail_stage >= 2:
            kind = "never_completed"
        if kind and kind not in picks and r.t0 - plan.reqs[0].t0 > HOUR_MS:
            picks[kind] = r
    return picks


def exc_lines(kind: int) -> list[str]:
    """The traceback lines a record of this exception kind carries (after its first line)."""
    app = _load_app()
    out: list[str] = []

    def log(_level: int, _msg: str, exc_info: bool) -> None:
        out.append(logging.Formatter().formatException(sys.exc_info()))

    app["synthesize_and_log"](kind, EXC_ARGS[kind], log, 0, "")
    return out[0].split("\n")


def sample_truth(r: Req, kind: str, cfg: Config) -> dict[str, Any]:
    recs = request_records(r, 0)
    named = [x for x in recs if r.rid in x[4]]
    tbs = {x[6]: {"lines": len(exc_lines(x[5])), "last": exc_lines(x[5])[-1]}
           for x in named if x[5]}
    cums = [int(x[4].rsplit("=", 1)[1]) for x in recs if x[6] == "stage_time"]
    per = [b - a for a, b in zip([0, *cums], cums, strict=False)]
    return {"kind": kind, "records": len(named), "events": [x[6] for x in named],
            "first_ts": fmt_ts(recs[0][0], cfg.tz_offset_s),
            "stage_time_cumulative": dict(zip(STAGES, cums, strict=False)),
            "stage_time_per_stage": dict(zip(STAGES, per, strict=False)),
            "status": {"ok": "success", "fail": "failed", "never": None}[r.outcome],
            "error_code": r.code or None, "text_len": r.text_len, "tracebacks": tbs}


def _writer_proc(cfg: Config, directory: str, recs: list[tuple], barrier: Any,
                 windows: list[int], q: Any, w: int) -> None:
    rot = _Rotation()
    handler = _setup_logging(cfg, Path(directory), rot)
    lines: Counter[str] = Counter()
    fmt = handler.formatter
    assert fmt is not None
    emit(recs, cfg, Path(directory), handler, rot, cfg.tz_offset_s, barrier=barrier,
         windows=windows)
    handler.close()
    # what this process emitted, as head lines (to judge what survived)
    for t, _s, lname, level, msg, _exc, _ev, _code in recs:
        lines[_head_line(cfg, t, lname, level, msg)] += 1
    q.put((w, dict(lines), type(fmt).tracebacks, type(fmt).traceback_lines))


def _head_line(cfg: Config, t: int, lname: str, level: int, msg: str) -> str:
    if lname == RAW_LOGGER:
        return msg
    lv = level_written(lname, level)
    if cfg.json:
        return json.dumps({"t": t, "l": lname, "v": lv, "m": msg})
    return f"{fmt_ts(t, cfg.tz_offset_s)} - {lname} - {lv} - {msg}"


def _survived(cfg: Config, out: Path) -> tuple[Counter[str], list[list[str]]]:
    """Head lines present in the files, byte-identical files counted once."""
    seen: dict[str, str] = {}
    dups: dict[str, list[str]] = defaultdict(list)
    present: Counter[str] = Counter()
    for p in log_files(out):
        text = open_text(p)
        h = hashlib.sha256(text).hexdigest()
        dups[h].append(p.name)
        if h in seen:
            continue
        seen[h] = p.name
        for line in text.decode("utf-8", "replace").split("\n"):
            if not line:
                continue
            if cfg.json:
                try:
                    o = json.loads(line)
                except ValueError:
                    present[line] += 1
                    continue
                if not isinstance(o, dict):
                    present[line] += 1
                    continue
                key = _json_key(cfg, o)
                if key:
                    present[key] += 1
            else:
                present[line] += 1
    return present, [sorted(v) for v in dups.values() if len(v) > 1]


def _json_key(cfg: Config, o: dict[str, Any]) -> str | None:
    ts = o.get("asctime") or o.get("timestamp")
    if not isinstance(ts, str):
        return None
    if "asctime" in o:
        st = time.strptime(ts[:19], "%Y-%m-%d %H:%M:%S")
        ms = int(ts[20:23])
        lv, name, msg = o.get("levelname"), o.get("name"), o.get("message")
    else:
        st = time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")
        ms = int(ts[20:23])
        lv, name, msg = str(o.get("level", "")).upper(), o.get("logger"), o.get("event")
    t = (int(_timegm(st)) - cfg.tz_offset_s) * 1000 + ms
    return json.dumps({"t": t, "l": name, "v": lv, "m": msg})


def run(cfg: Config, out: Path, truth_path: Path | None = None) -> dict[str, Any]:
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"error: {out} is not empty")
    off = cfg.tz_offset_s
    writers_info: dict[str, Any] | None = None
    if cfg.jobs > 1 and cfg.days > 1 and cfg.writers == 1:
        ctx = multiprocessing.get_context("fork")
        chunk_dirs = [out / f".day{d:03d}" for d in range(cfg.days)]
        with ctx.Pool(cfg.jobs) as pool:
            results = pool.map(_run_day_chunk,
                               [(cfg, d, str(chunk_dirs[d])) for d in range(cfg.days)],
                               chunksize=1)
        _assemble(cfg, out, chunk_dirs, [r["last"] for r in results])
        counts = merge_counts([r["counts"] for r in results])
        stats = merge_stats([r["stats"] for r in results])
        facts = {r["day"]: r["facts"] for r in results}
        first_ms = min(r["first"] for r in results if r["first"] is not None)
        last_ms = max(r["last"] for r in results)
        tracebacks = sum(r["tracebacks"] for r in results)
        tail_recs = results[-1]["tail"]
        tb_lines = sum(r["traceback_lines"] for r in results)
        inc_plan = plan_day(cfg, cfg.incident_day)
    else:
        mids = ([cfg.day_start(d) for d in range(1, cfg.days + 1)]
                if cfg.names in ("dateext", "dateext-plain") else None)
        stats_parts, count_parts, facts = [], [], {}
        all_recs: list[tuple] = []
        handler = None
        rot = _Rotation()
        if cfg.writers == 1:
            handler = _setup_logging(cfg, out, rot)
        prev: DayPlan | None = None
        inc_plan = None
        first_ms = last_ms = None
        for d in range(cfg.days):
            plan = plan_day(cfg, d)
            stats_parts.append(request_stats(cfg, plan))
            facts[d] = plan.facts
            if d == cfg.incident_day:
                inc_plan = plan
            plans = {d: plan} if prev is None else {d - 1: prev, d: plan}
            recs = _chunk_records(cfg, d, plans, d == cfg.days - 1)
            count_parts.append(count_records(recs))
            if recs:
                first_ms = recs[0][0] if first_ms is None else first_ms
                last_ms = recs[-1][0]
                tail_recs = recs[-5:]
            if handler is not None:
                emit(recs, cfg, out, handler, rot, off, midnight=mids)
            else:
                all_recs.extend(recs)
            prev = plan
        assert inc_plan is not None and first_ms is not None and last_ms is not None
        stats = merge_stats(stats_parts)
        counts = merge_counts(count_parts)
        if handler is not None:
            handler.close()
            logging.getLogger().removeHandler(handler)
            tracebacks = type(handler.formatter).tracebacks
            tb_lines = type(handler.formatter).traceback_lines
        else:
            writers_info, tracebacks, tb_lines = _run_writers(cfg, out, all_recs)
            del all_recs
    files = read_back(out)
    if cfg.writers == 1:
        _final_mtime(out, last_ms)
    fmt_truth = build_truth(cfg, counts, stats, facts, inc_plan, files, first_ms, last_ms,
                            tracebacks, tb_lines, writers_info,
                            tail_recs if cfg.writers == 1 else [])
    fmt_truth["generator"]["elapsed_s"] = round(time.perf_counter() - t_start, 2)
    path = truth_path or out.parent / f"{out.name}.truth.json"
    path.write_text(json.dumps(fmt_truth, indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return fmt_truth


def _final_mtime(out: Path, last_ms: int) -> None:
    p = out / "app.log"
    if p.exists():
        os.utime(p, (last_ms // 1000, last_ms // 1000))


def _run_writers(cfg: Config, out: Path, recs: list[tuple]
                 ) -> tuple[dict[str, Any], int, int]:
    ctx = multiprocessing.get_context("fork")
    n = cfg.writers
    rid_writer: dict[str, int] = {}
    for d in range(cfg.days):
        for r in plan_day(cfg, d).reqs:
            rid_writer[r.rid] = r.writer
    parts: list[list[tuple]] = [[] for _ in range(n)]
    id_re = re.compile(r"id=(ts_[0-9a-f]{8})")
    for x in recs:
        m = id_re.search(x[4]) if x[6] != "(unstructured)" or "id=" in x[4] else None
        w = rid_writer.get(m.group(1), 0) if m else 0
        if x[2] == RAW_LOGGER and x[4] in JIEBA:
            for k in range(n):  # every worker boots and prints
                parts[k].append(x)
            continue
        parts[w].append(x)
    windows = sorted({x[0] // cfg.sync_ms for x in recs})
    barrier = ctx.Barrier(n, timeout=120)
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer_proc, args=(cfg, str(out), parts[w], barrier, windows,
                                                    q, w)) for w in range(n)]
    for p in procs:
        p.start()
    results = [q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"error: writer process exited with {p.exitcode}")
    results.sort()
    emitted: Counter[str] = Counter()
    per_process = []
    for w, lines, _tb, _tbl in results:
        emitted.update(lines)
        c = count_records(parts[w])
        per_process.append({"writer": w, "records": len(parts[w]),
                            "levels": dict(c["levels"])})
    present, dups = _survived(cfg, out)
    survived_lines = Counter({k: min(v, present[k]) for k, v in emitted.items()
                              if present[k]})
    lv: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    for line, c in survived_lines.items():
        if cfg.json:
            o = json.loads(line) if line.startswith("{") else None
            if not o:
                continue
            lvl, msg = o["v"], o["m"]
        else:
            m = re.match(r"\S+ \S+ - \S+ - (\S+) - (.*)", line)
            if not m:
                continue
            lvl, msg = m.group(1), m.group(2)
        lv[lvl] += c
        cm = _CODE_RE.search(msg)
        if cm and lvl in ("ERROR", "CRITICAL", "FATAL"):
            codes[cm.group(1)] += c
    in_several = sum(1 for k, v in present.items() if k in emitted and v > emitted[k])
    info = {"n": n, "sync_ms": cfg.sync_ms, "per_process": per_process,
            "survived": {"records": sum(survived_lines.values()), "levels": dict(lv),
                         "error_codes": dict(codes)},
            "lost_records": sum(emitted.values()) - sum(survived_lines.values()),
            "duplicate_files": dups, "records_in_several_files": in_several}
    return info, sum(r[2] for r in results), sum(r[3] for r in results)


def _stage_summary(stats: dict[str, Any]) -> dict[str, Any]:
    e2e = stats["e2e"].summary(mean=True)
    mean_e2e = stats["e2e_sum"] / e2e["n"] if e2e["n"] else 0.0
    overall = {}
    for s in STAGES:
        d = stats["overall"][s].summary(mean=True)
        d["share"] = round(stats["stage_sum"][s] / e2e["n"] / mean_e2e, 4) if mean_e2e else None
        overall[s] = d
    per_hour = {hk: {s: hs[s].summary() for s in STAGES}
                for hk, hs in sorted(stats["per_hour"].items())}
    return {"order": list(STAGES),
            "value": "per-stage ms = this stage's logged cumulative duration_ms minus the "
                     "previous stage's of the same id (0 for the first)",
            "percentile": "linear interpolation (numpy default)",
            "population": "every stage_time record (successes, failures, never-completed)",
            "overall": overall, "per_hour": per_hour, "e2e": e2e,
            "populations": {  # the same, over the ids that completed / succeeded only
                p: {"overall": {s: o[s].summary() for s in STAGES},
                    "per_hour": {hk: {s: hs[s].summary() for s in STAGES}
                                 for hk, hs in sorted(h.items())}}
                for p, (o, h) in stats["pops"].items()}}


def build_truth(cfg: Config, counts: dict[str, Any], stats: dict[str, Any],
                facts: dict[int, dict[str, Any]], inc_plan: DayPlan, files: list[dict],
                first_ms: int, last_ms: int, tracebacks: int, tb_lines: int,
                writers_info: dict[str, Any] | None, tail_recs: list[tuple]
                ) -> dict[str, Any]:
    off = cfg.tz_offset_s
    day0 = cfg.day_start(cfg.incident_day)
    inc = facts.get(cfg.incident_day, {})
    stages = _stage_summary(stats)
    canon: Counter[str] = Counter()
    rev = {v: k for k, v in ALIASES.items()}
    for k, v in counts["levels"].items():
        canon[rev.get(k, k)] += v
    slow_hour = hour_key(day0 + SLOW_START, off)
    pre = []
    inc_recs = day_records(inc_plan, None, None)
    burst_ts = [x[0] for x in inc_recs if x[7] == BURST_CODE and x[3] >= logging.ERROR]
    in_window = [t for t in burst_ts if day0 + BURST_START <= t < day0 + BURST_END]
    for ev, code in (("cache_dir_usage", None), ("cache_health", None),
                     ("cache_write_failed", "CACHE_WRITE_FAILED")):
        ts = [x[0] for x in inc_recs if x[6] == ev and x[0] < day0 + BURST_START]
        if ts:
            pre.append({"event": ev, "code": code, "count": len(ts),
                        "first_ts": fmt_ts(ts[0], off), "last_ts": fmt_ts(ts[-1], off)})
    bg = [{"code": c, "per_hour": ph, "count": stats["failed_by_code"][c]}
          for c, ph in BACKGROUND]
    last_health = inc.get("last_health")
    kill = inc.get("worker_kill")
    ml = inc.get("model_load")
    samples = {r.rid: sample_truth(r, k, cfg) for k, r in pick_samples(inc_plan).items()}
    tail = [{"ts": fmt_ts(x[0], off), "level": level_written(x[2], x[3]), "logger": x[2],
             "event": x[6], "traceback_lines": len(exc_lines(x[5])) if x[5] else 0}
            for x in tail_recs if x[2] != RAW_LOGGER][-3:]
    n_lines_physical = counts["records"] + tb_lines
    line_format = {"text": FORMAT, "json-stdlib": '{"asctime", "name", "levelname", '
                   '"message"[, "exc_info"]}', "json-structlog": '{"event", "level", '
                   '"logger", "timestamp"[, "exception"]}'}
    fmt_name = "text" if not cfg.json else f"json-{cfg.json}"
    truth: dict[str, Any] = {
        "schema": "tutorial-logs-truth/1",
        "generator": {"size": cfg.size, "seed": cfg.seed, "days": cfg.days,
                      "start": cfg.start, "incident_day": cfg.incident_day,
                      "names": cfg.names, "json": cfg.json, "tz": cfg.tz or "+00:00",
                      "writers": cfg.writers, "max_bytes": cfg.max_bytes, "jobs": cfg.jobs},
        "dialect": {
            "format": fmt_name, "line_format": line_format[fmt_name],
            "timestamp_example": fmt_ts(first_ms, off), "tz": cfg.tz or "+00:00",
            "stage_time": "cumulative", "code_followed_by_free_text": True,
            "unit_suffixes": {"text_len": "chars"},
            "level_aliases": {"WARN": "WARNING", "FATAL": "CRITICAL"},
            "alias_loggers": list(ALIAS_LOGGERS),
            "standalone_lines": ["total_duration_ms"],
            "cache_health_only_above": 85.0,
            "unstructured_error_prefixes": ["scipy.fft failed"],
        },
        "time_range": {"first_ts": fmt_ts(first_ms, off), "last_ts": fmt_ts(last_ms, off),
                       "first_utc": iso_utc(first_ms), "last_utc": iso_utc(last_ms)},
        "files": files, "n_files": len(files),
        "text_bytes": sum(f["text_bytes"] for f in files),
        "records": counts["records"], "log_records": counts["records"] - counts["raw"],
        "physical_lines": n_lines_physical,
        "tracebacks": tracebacks, "traceback_lines": tb_lines,
        "malformed_lines": counts["raw"], "malformed_examples": counts["malformed_examples"],
        "levels": dict(sorted(counts["levels"].items())),
        "levels_canonical": dict(sorted(canon.items())),
        "loggers": dict(sorted(counts["loggers"].items())),
        "events": dict(sorted(counts["events"].items())),
        "error_codes": dict(counts["error_codes"].most_common()),
        "warning_codes": dict(counts["warning_codes"].most_common()),
        "failed_by_code": dict(stats["failed_by_code"].most_common()),
        "errors_without_code": dict(counts["errors_without_code"].most_common()),
        "unstructured_errors": {"named_id": counts["unstructured"]["named_id"],
                                "no_id": counts["unstructured"]["no_id"]},
        "requests": {k: stats["requests"][k] for k in
                     ("started", "completed", "success", "failed", "cache_hits",
                      "never_completed", "audio_metrics")},
        "never_completed_ids": sorted(stats["never"]),
        "stages": stages,
        "incidents": {
            "burst": {"code": BURST_CODE, "start_ts": fmt_ts(day0 + BURST_START, off),
                      "end_ts": fmt_ts(day0 + BURST_END, off),
                      "start_utc": iso_utc(day0 + BURST_START),
                      "end_utc": iso_utc(day0 + BURST_END), "errors": len(burst_ts),
                      "errors_in_window": len(in_window),
                      "first_error_ts": fmt_ts(burst_ts[0], off),
                      "last_error_ts": fmt_ts(burst_ts[-1], off), "precursors": pre},
            "background": bg,
            "slow_stage": {"stage": STAGES[SLOW_STAGE], "factor": SLOW_FACTOR,
                           "hour": slow_hour, "start_ts": fmt_ts(day0 + SLOW_START, off),
                           "end_ts": fmt_ts(day0 + SLOW_END, off),
                           "p50_in_hour": stages["per_hour"].get(slow_hour, {}).get(
                               STAGES[SLOW_STAGE], {}).get("p50"),
                           "p50_overall": stages["overall"][STAGES[SLOW_STAGE]]["p50"]},
            "failing_length": {"field": "text_len", "value": FAIL_LEN, "unit": "chars",
                               "code": FAIL_CODE, "stage": STAGES[FAIL_STAGE],
                               "requests": stats["fail_len"]["requests"],
                               "failed": stats["fail_len"]["failed"]},
            "audio": {"voice": MUFFLED_VOICE, "metric": "spectral_centroid",
                      "start_ts": fmt_ts(day0 + MUFFLED_START, off),
                      "end_ts": fmt_ts(day0 + MUFFLED_END, off),
                      "ids": sorted(stats["muffled"])},
            "worker_kill": ({"ts": fmt_ts(kill[0], off), "ids": sorted(kill[1])}
                            if kill else None),
            "model_load": ({"ts": fmt_ts(ml[0], off), "recovered_ts": fmt_ts(ml[1], off)}
                           if ml else None),
            "cache": {"last_cache_health_ts": fmt_ts(last_health, off) if last_health else None,
                      "last_usage": inc.get("last_usage"), "max_usage": inc.get("max_usage"),
                      "end_ts": fmt_ts(last_ms, off),
                      "age_at_end_s": round((last_ms - last_health) / 1000)
                      if last_health else None},
        },
        "sample_traces": samples,
        "tail": tail,
    }
    if writers_info is not None:
        truth["writers"] = writers_info
    return truth


def config_for(size: str, **kw: Any) -> Config:
    base, days, start, max_bytes = SIZES[size]
    cfg = Config(size=size, base_per_day=base, days=days, start=start, max_bytes=max_bytes)
    for k, v in kw.items():
        if v is not None:
            setattr(cfg, k, v)
    return cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--days", type=int)
    ap.add_argument("--start", help="first (local) date, YYYY-MM-DD")
    ap.add_argument("--writers", type=int, default=1,
                    help="processes, each with its own RotatingFileHandler on app.log")
    ap.add_argument("--names", choices=("gz", "plain", "dateext", "dateext-plain"),
                    default="gz")
    ap.add_argument("--json", choices=("stdlib", "structlog"))
    ap.add_argument("--tz", help="write local time at this offset, e.g. +08:00")
    ap.add_argument("--max-bytes", type=int,
                    help="rotate app.log at this size [small: 256 KiB; day, month: 5 MiB]")
    ap.add_argument("--jobs", type=int, default=0,
                    help="processes for a multi-day run (0: one per CPU)")
    ap.add_argument("--sync-ms", type=int, default=1000,
                    help="--writers: clock window the processes advance in lock-step")
    ap.add_argument("--truth", type=Path, help="truth file [OUTDIR/../OUTDIR.truth.json]")
    a = ap.parse_args(argv)
    try:
        parse_tz(a.tz)
        if a.start:
            time.strptime(a.start, "%Y-%m-%d")
    except ValueError as e:
        ap.error(str(e))
    if a.writers < 1 or (a.days is not None and a.days < 1) or (
            a.max_bytes is not None and a.max_bytes < 1024):
        ap.error("--writers and --days must be >= 1, --max-bytes >= 1024")
    if a.writers > 1 and a.names.startswith("dateext"):
        ap.error("--writers shares one RotatingFileHandler file; logrotate (--names dateext) "
                 "is one outside process: use --names gz or plain with --writers")
    jobs = a.jobs or os.cpu_count() or 1
    cfg = config_for(a.size, seed=a.seed, days=a.days, start=a.start, writers=a.writers,
                     names=a.names, json=a.json, tz=a.tz, max_bytes=a.max_bytes, jobs=jobs,
                     sync_ms=a.sync_ms)
    truth = run(cfg, a.outdir, a.truth)
    g = truth["generator"]
    print(f"{a.outdir}: {truth['n_files']} files, {truth['text_bytes'] / 1e6:.1f} MB of text, "
          f"{truth['records']} records, {truth['requests']['started']} requests, "
          f"{g['elapsed_s']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
