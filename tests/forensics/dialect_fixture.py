"""A small log written the tutorial's way, by plain stdlib ``logging`` (nothing from
ttsops), with the truth of what it holds: the fixture of the dialect tests.

The tutorial's code (seed sections 2-4 and 6): the formatter
``%(asctime)s - %(name)s - %(levelname)s - %(message)s``; ``stage_time`` with
``duration_ms={int((now - start) * 1000)}`` (cumulative); ``synthesis_failed: id=...,
error_code=CODE, <free text>``; ``text_len=N chars``; ``cache_health`` with ``MB`` and
``%``; a standalone ``total_duration_ms=N`` line; unstructured ``ERROR: ...`` lines; and a
component whose levels say ``WARN`` and ``FATAL``. A clock in whole milliseconds makes
every value exact.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

STAGES = ("text_normalize", "llm_prompt_gen", "llm_inference", "llm_postproc", "audio_render")
MSG = {"SCIPY_FFT_INVALID": "Invalid input to scipy.fft", "DISK_FULL": "No space left on device",
       "TEXT_EMPTY": "Input text is empty"}
T0 = 1718150400.0  # 2024-06-12 00:00:00 UTC


class _Clock:
    def __init__(self) -> None:
        self.ms = 0

    def now(self) -> float:
        return T0 + self.ms / 1000.0


class _Alias(logging.Filter):
    """The component that writes WARN and FATAL."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelname = {"WARNING": "WARN", "CRITICAL": "FATAL"}.get(record.levelname,
                                                                        record.levelname)
        return True


def write(out: Path, *, requests: int = 240, seed: int = 1, json_keys: str | None = None,
          gz_split: bool = True) -> dict[str, Any]:
    """Write ``out/app.log`` (and ``app.log.1.gz`` with its first half when ``gz_split``);
    return the truth. ``json_keys``: ``stdlib`` (asctime, name, levelname, message) or
    ``structlog`` (timestamp, level, event) instead of text."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    clock = _Clock()
    path = out / "app.log"
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")

    class Fmt(logging.Formatter):
        converter = __import__("time").gmtime

        def format(self, record: logging.LogRecord) -> str:
            if json_keys is None:
                return super().format(record)
            ts = self.formatTime(record)
            if json_keys == "stdlib":
                obj = {"asctime": ts, "name": record.name, "levelname": record.levelname,
                       "message": record.getMessage()}
            else:
                iso = ts[:10] + "T" + ts[11:19] + "." + ts[20:] + "Z"
                obj = {"event": record.getMessage(), "level": record.levelname.lower(),
                       "logger": record.name, "timestamp": iso}
            return json.dumps(obj, ensure_ascii=False)

    handler.setFormatter(Fmt("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    old_factory = logging.getLogRecordFactory()

    def factory(*a: Any, **k: Any) -> logging.LogRecord:
        rec = old_factory(*a, **k)
        rec.created = clock.now()
        rec.msecs = clock.ms % 1000
        return rec
    logging.setLogRecordFactory(factory)
    engine = logging.getLogger("app.tts_engine")
    cache = logging.getLogger("app.cache")
    web = logging.getLogger("app.webui")
    web.addFilter(_Alias())
    for lg in (engine, cache, web, logging.getLogger()):
        lg.handlers = [handler]
        lg.setLevel(logging.INFO)
        lg.propagate = False
    truth: dict[str, Any] = {"stages": {s: [] for s in STAGES}, "failed": {}, "ids": [],
                             "levels": {}, "unstructured": 0, "named": [], "errors": {},
                             "burst": None, "slow": {}}

    def count(level: str) -> None:
        truth["levels"][level] = truth["levels"].get(level, 0) + 1
    try:
        for i in range(requests):
            clock.ms = i * 60_000 + rng.randint(0, 50_000)  # one a minute: 4 hours
            if 120 <= i < 135:  # the outage: clients retry, one every 10 s
                clock.ms = 120 * 60_000 + (i - 120) * 10_000 + rng.randint(0, 5_000)
            sid = f"ts_{i * 2654435761 % (1 << 32):08x}"
            truth["ids"].append(sid)
            disk_full = 120 <= i < 135
            text_len = 2048 if i % 40 == 7 else 0 if i % 53 == 11 else rng.randint(5, 900)
            start = clock.ms
            engine.info(f"synthesis_start: id={sid}, text=\"今天天气真好\", lang=zh, "
                        f"voice=alloy, text_len={text_len} chars, cache_hit=false")
            count("INFO")
            code = "TEXT_EMPTY" if text_len == 0 else "SCIPY_FFT_INVALID" \
                if text_len == 2048 or i % 97 == 50 else "DISK_FULL" if disk_full else None
            if text_len == 2048:
                truth["len2048"] = truth.get("len2048", 0) + 1
            stop = {"TEXT_EMPTY": 1, "SCIPY_FFT_INVALID": 4, "DISK_FULL": 5, None: 5}[code]
            slow = 4 if 200 <= i < 220 else 1
            for k, stage in enumerate(STAGES[:stop]):
                d = {0: rng.randint(2, 9), 1: rng.randint(10, 30),
                     2: rng.randint(300, 600) * slow, 3: rng.randint(20, 60),
                     4: rng.randint(15, 50)}[k]
                clock.ms += d
                truth["stages"][stage].append(d)
                if slow > 1 and stage == "llm_inference":
                    truth["slow"][sid] = d
                engine.info(f"stage_time: stage={stage}, id={sid}, "
                            f"duration_ms={clock.ms - start}")  # int((now-start)*1000)
                count("INFO")
            if code is not None:
                clock.ms += 1
                if code == "SCIPY_FFT_INVALID":
                    named = i % 80 == 7
                    engine.error("ERROR: scipy.fft failed on input len=1024"
                                 + (f" for {sid}" if named else "")
                                 + ", exc=RuntimeWarning: invalid value encountered")
                    count("ERROR")
                    truth["unstructured"] += 1
                    if named:
                        truth["named"].append(sid)
                engine.error(f"synthesis_failed: id={sid}, error_code={code}, {MSG[code]}")
                count("ERROR")
                truth["failed"][code] = truth["failed"].get(code, 0) + 1
                truth["errors"][code] = truth["errors"].get(code, 0) + 1
                if code == "DISK_FULL" and truth["burst"] is None:
                    truth["burst"] = sid
            clock.ms += rng.randint(1, 5)
            total = clock.ms - start
            status = "failed" if code else "success"
            engine.info(f"synthesis_complete: id={sid}, status={status}, duration_ms={total}, "
                        f"text_len={text_len} chars, audio_size_kb={0 if code else 124}, "
                        "cache_saved=true"
                        + (f", error_code={code}" if code else "")
                        # some writers name the stage on failures only
                        + (", model_stage=llm_postproc" if code == "SCIPY_FFT_INVALID" else ""))
            count("INFO")
            logging.info(f"total_duration_ms={total}")
            count("INFO")
            if 80 <= i < 135:  # the cache fills before the burst (reported above 85%)
                used = 20500 + (i - 80) * 60
                cache.warning(f"cache_health: path=/app/cache, used={used}MB, "
                              f"total=24000MB, usage={used / 240:.1f}%")
                count("WARNING")
            if i % 30 == 5:
                web.warning(f"playback_error: id={sid}, detail=autoplay blocked")
                count("WARNING")
        clock.ms += 60_000
        web.critical("worker_exit: pid=4242, reason=killed")
        count("CRITICAL")
    finally:
        logging.setLogRecordFactory(old_factory)
        handler.close()
        for lg in (engine, cache, web, logging.getLogger()):
            lg.handlers = []
        web.filters = []
    if gz_split:  # the cookbook's rotation: the older half gzipped whole
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        half = len(lines) // 2
        with gzip.open(out / "app.log.1.gz", "wt", encoding="utf-8") as f:
            f.writelines(lines[:half])
        path.write_text("".join(lines[half:]), encoding="utf-8")
    return truth


def copy_plain(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
