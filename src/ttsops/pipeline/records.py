"""The synthesis records of docs/DESIGN.md §2 (Events), written in one place so that their
names and fields cannot drift between the main process and the workers."""

from __future__ import annotations

import hashlib
from typing import Any

from ..events import get_logger

log = get_logger("ttsops.pipeline")


def text_field(raw: str, mode: str, preview_chars: int) -> str | None:
    """The input text as ``settings.log_text`` allows: a preview (escaped by the log
    grammar), a hash, or nothing."""
    if mode == "none":
        return None
    if mode == "hash":
        return "sha256:" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    if len(raw) <= preview_chars:
        return raw
    return raw[:preview_chars] + "…"


def start(sid: str, *, text: str | None, text_len: int, lang: str | None, voice: str,
          fmt: str, engine: str, cache_hit: bool, **extra: Any) -> None:
    log.info("synthesis_start", id=sid, text=text, text_len=text_len, lang=lang, voice=voice,
             format=fmt, engine=engine, cache_hit=cache_hit, **extra)


def stage_time(sid: str, stage: str, duration_ms: float, elapsed_ms: float,
               status: str | None = None, **extra: Any) -> None:
    log.info("stage_time", id=sid, stage=stage, duration_ms=round(duration_ms, 2),
             elapsed_ms=round(elapsed_ms, 2), status=status, **extra)


def warning(event: str, sid: str, code: str, **fields: Any) -> None:
    log.warning(event, id=sid, warning_code=code, **fields)


def audio_metrics(sid: str, metrics: dict[str, float], **extra: Any) -> None:
    log.info("audio_metrics", id=sid, **metrics, **extra)


def failed(sid: str, code: str, message: str, exc: BaseException | None, stage: str,
           **extra: Any) -> None:
    cause = exc.__cause__ if exc is not None else None
    log.error("synthesis_failed", exc=exc, id=sid, error_code=code, message=message,
              stage=stage, cause=type(cause).__name__ if cause is not None else None, **extra)


def complete(sid: str, *, status: str, duration_ms: float, queue_ms: float, text_len: int,
             audio_size_kb: float, rtf: float | None, cache_hit: bool, cache_saved: bool,
             model_stage: str, error_code: str | None = None, **extra: Any) -> None:
    log.info("synthesis_complete", id=sid, status=status, duration_ms=round(duration_ms, 1),
             queue_ms=round(queue_ms, 1), text_len=text_len, audio_size_kb=audio_size_kb,
             rtf=None if rtf is None else round(rtf, 4), cache_hit=cache_hit,
             cache_saved=cache_saved, model_stage=model_stage, error_code=error_code, **extra)
