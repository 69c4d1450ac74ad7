"""Logs written the tutorial's way, by plain stdlib ``logging`` (not by ttsops): the
formatter ``%(asctime)s - %(name)s - %(levelname)s - %(message)s``, a
``RotatingFileHandler`` whose namer/rotator gzip each rotated file whole (the logging
cookbook's recipe), and the tutorial's messages (cumulative ``stage_time``,
``synthesis_failed`` with a code then free text, ``cache_health`` only above 85%).

The time of each record is set by a filter on the handler (``Clock``), so a test can
write a day in a second; ``multi_writer`` runs real processes, each with its own
rotating handler on one file, as gunicorn workers configured the tutorial's way do.
"""

from __future__ import annotations

import gzip
import logging
import logging.handlers
import multiprocessing
import os
import random
import shutil
import time
from pathlib import Path

FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
STAGES = ("text_normalize", "llm_prompt_gen", "llm_inference", "llm_postproc", "audio_render")


def gz_namer(name: str) -> str:
    return name + ".gz"


def gz_rotator(source: str, dest: str) -> None:
    with open(source, "rb") as s, gzip.open(dest, "wb") as d:
        shutil.copyfileobj(s, d)
    os.remove(source)


class Clock(logging.Filter):
    """Stamps every record with ``self.t`` (epoch seconds) instead of the wall clock."""

    def __init__(self, t: float) -> None:
        super().__init__()
        self.t = t

    def filter(self, record: logging.LogRecord) -> bool:
        record.created = self.t
        record.msecs = int(self.t * 1000) % 1000
        return True


def handler(path: Path, *, max_bytes: int = 0, backups: int = 50, gz: bool = True,
            clock: Clock | None = None, utc: bool = True,
            offset_h: float | None = None) -> logging.Handler:
    """``offset_h``: asctime in a fixed zone (local time of a server at UTC+offset)."""
    h = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups)
    if gz:
        h.namer = gz_namer
        h.rotator = gz_rotator
    fmt = logging.Formatter(FORMAT)
    fmt.converter = time.gmtime if utc else time.localtime
    if offset_h is not None:
        fmt.converter = lambda t: time.gmtime((t or 0) + offset_h * 3600)
    h.setFormatter(fmt)
    if clock is not None:
        h.addFilter(clock)
    return h


def logger_for(h: logging.Handler, name: str = "app.tts_engine") -> logging.Logger:
    lg = logging.getLogger(f"{name}.{id(h)}")
    lg.handlers[:] = [h]
    lg.setLevel(logging.INFO)
    lg.propagate = False
    # the records show the tutorial's logger name, not the unique one used here
    lg.name = name
    return lg


def synthesis(lg: logging.Logger, clock: Clock | None, sid: str, *, fail: str | None = None,
              stage_ms: tuple[int, ...] = (12, 30, 400, 40, 35), text_len: int = 86,
              complete: bool = True, step: float = 0.0) -> None:
    """One request the tutorial's way: start, cumulative stage_time, complete."""
    def tick(ms: float) -> None:
        if clock is not None:
            clock.t += ms / 1000.0
        elif step:
            time.sleep(step)
    lg.info(f"synthesis_start: id={sid}, text_len={text_len} chars, lang=zh, voice=alloy, "
            "cache_hit=false")
    total = 0
    for st, ms in zip(STAGES, stage_ms, strict=False):
        tick(ms)
        total += ms
        if fail is not None and st == "audio_render":
            lg.error(f"synthesis_failed: id={sid}, error_code={fail}, where=audio_render")
            if complete:
                lg.info(f"synthesis_complete: id={sid}, status=failed, duration_ms={total}, "
                        f"error_code={fail}")
            return
        lg.info(f"stage_time: stage={st}, id={sid}, duration_ms={total}")
    if complete:
        lg.info(f"synthesis_complete: id={sid}, status=success, duration_ms={total}, "
                "audio_size_kb=124, cache_saved=true, model_stage=audio_render")


def write_day(d: Path, *, start: float = 1718150400.0, requests: int = 400,
              every_s: float = 30.0, max_bytes: int = 40_000, gz: bool = True,
              utc: bool = True, offset_h: float | None = None, seed: int = 1,
              incomplete: frozenset[int] = frozenset(),
              tracebacks: frozenset[int] = frozenset()) -> list[str]:
    """``requests`` syntheses, one every ``every_s`` seconds, through one rotating
    handler; returns their ids in order. The ``incomplete`` ones (by number) never log
    their synthesis_complete; the ``tracebacks`` ones fail with an exception logged by
    ``logger.exception`` (a stdlib traceback: lines that are not records)."""
    d.mkdir(parents=True, exist_ok=True)
    clock = Clock(start)
    h = handler(d / "app.log", max_bytes=max_bytes, gz=gz, clock=clock, utc=utc,
                offset_h=offset_h)
    lg = logger_for(h)
    rnd = random.Random(seed)
    ids = []
    try:
        for i in range(requests):
            clock.t = start + i * every_s
            sid = f"ts_{rnd.getrandbits(32):08x}"
            ids.append(sid)
            if i in tracebacks:
                try:
                    raise ValueError(f"invalid value in fft for {sid}")
                except ValueError:
                    lg.exception(f"synthesis_failed: id={sid}, error_code=SCIPY_FFT_INVALID,"
                                 " where=audio_render")
                lg.info(f"synthesis_complete: id={sid}, status=failed, duration_ms=5, "
                        "error_code=SCIPY_FFT_INVALID")
                continue
            synthesis(lg, clock, sid, complete=i not in incomplete)
    finally:
        h.close()
    return ids


def _worker(path: str, wid: int, n: int, max_bytes: int, q: object) -> None:
    logging.raiseExceptions = False  # the races of rotation print "--- Logging error ---"
    h = handler(Path(path), max_bytes=max_bytes, backups=200)
    lg = logger_for(h)
    ids = []
    for i in range(n):
        sid = f"ts_{wid:02d}{i:06x}"
        ids.append(sid)
        synthesis(lg, None, sid, step=0.0005)
    h.close()
    q.put(ids)  # type: ignore[attr-defined]


def multi_writer(d: Path, *, writers: int = 3, per_writer: int = 600,
                 max_bytes: int = 30_000) -> list[str]:
    """``writers`` real processes, each with its own RotatingFileHandler (gzip rotator)
    on ``d/app.log``, as gunicorn workers configured the tutorial's way; the ids each
    wrote (the truth: what a single writer would have kept)."""
    d.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(d / "app.log"), w, per_writer, max_bytes,
                                                q)) for w in range(writers)]
    for p in procs:
        p.start()
    ids: list[str] = []
    for _ in procs:
        ids.extend(q.get(timeout=120))
    for p in procs:
        p.join(60)
    return ids


def shared_file_writers(d: Path, *, writers: int = 3, requests: int = 900,
                        every_s: float = 20.0, max_bytes: int = 40_000,
                        start: float = 1718150400.0) -> list[str]:
    """Deterministic stand-in for ``multi_writer``: ``writers`` RotatingFileHandlers
    (gzip rotator) on one ``app.log`` in this process, each with its own open file and
    clock, taking turns -- what gunicorn workers do, without the scheduling races. A
    writer's clock runs up to a second behind the others (records interleave out of
    order while they share a file)."""
    d.mkdir(parents=True, exist_ok=True)
    clocks = [Clock(start) for _ in range(writers)]
    hs = [handler(d / "app.log", max_bytes=max_bytes, backups=500, clock=c) for c in clocks]
    lgs = [logger_for(h) for h in hs]
    ids = []
    old = logging.raiseExceptions
    logging.raiseExceptions = False  # a rotation racing another's: as in production
    try:
        for i in range(requests):
            k = i % writers
            clocks[k].t = start + i * every_s - 0.35 * k
            sid = f"ts_{k:02d}{i:06x}"
            ids.append(sid)
            synthesis(lgs[k], clocks[k], sid, stage_ms=(12, 30, 300, 40, 35))
    finally:
        logging.raiseExceptions = old
        for h in hs:
            h.close()
    return ids
