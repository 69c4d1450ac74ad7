"""Per-synthesis limits, checked between segments in whichever process synthesises.

* ``TTSOPS_MAX_AUDIO_S``: ``estimate_min_s`` is a lower bound of the audio a text makes
  (no engine reads faster than ``CJK_PER_S`` CJK characters or ``OTHER_PER_S`` other
  characters a second at speed 1), checked before synthesis (text_normalize); the audio
  actually produced is counted after each segment (``after_segment``) and the synthesis
  stops with ``AUDIO_TOO_LONG`` once past the limit.
* cancellation: a worker sets a probe for the job it runs (``set_probe``); when the
  client has gone or the server is cutting work at shutdown the probe says so and the
  synthesis stops at the next segment boundary with ``SynthesisCancelled`` (not logged
  as a failure by the worker: the main process, which decided it, records the outcome).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import TTSError

if TYPE_CHECKING:
    import numpy as np

    from .pipeline.stages import StageContext
    from .pipeline.types import Job

CJK_PER_S = 8.0  # eSpeak NG reads about 4-5 a second; no voice reads 8
OTHER_PER_S = 50.0  # eSpeak NG: 16 (prose) to 40 ("aaaa...") a second

_probe: Callable[[], bool] | None = None


class SynthesisCancelled(TTSError):
    """The synthesis was stopped on purpose (client gone, server stopping)."""

    def __init__(self) -> None:
        super().__init__("CLIENT_CLOSED", "cancelled")


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF or \
        0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FFFF


def estimate_min_s(text: str, speed: float = 1.0) -> float:
    """Seconds of audio ``text`` makes at least (normalised text: numbers in words)."""
    cjk = sum(1 for ch in text if _is_cjk(ch))
    other = sum(1 for ch in text if not ch.isspace()) - cjk
    return (cjk / CJK_PER_S + other / OTHER_PER_S) / max(speed, 0.25)


def check_estimate(text: str, speed: float, limit_s: float) -> None:
    if limit_s and limit_s > 0:
        est = estimate_min_s(text, speed)
        if est > limit_s:
            raise TTSError("AUDIO_TOO_LONG", f"this text makes at least {est:.0f} s of audio; "
                           f"the limit is {limit_s:g} s (TTSOPS_MAX_AUDIO_S)", param="input")


def set_probe(probe: Callable[[], bool] | None) -> None:
    """The worker's cancellation check for the job it is about to run (None: none)."""
    global _probe
    _probe = probe


def after_segment(p: StageContext, job: Job, raw: np.ndarray,
                  residual_speed: float = 1.0) -> None:
    """After the engine produced ``raw`` (samples at the engine's rate) for one segment:
    stop if cancelled, or if the audio so far is past ``max_audio_s``."""
    if _probe is not None and _probe():
        raise SynthesisCancelled()
    limit = getattr(p.settings, "max_audio_s", 0) or 0
    if limit <= 0:
        return
    rate = getattr(p.info, "sample_rate", 0) or 1
    produced = job.audio_s + getattr(raw, "size", 0) / rate / max(residual_speed, 1e-6)
    job.audio_s = produced
    if produced > limit:
        raise TTSError("AUDIO_TOO_LONG", f"more than {limit:g} s of audio after "
                       f"{produced:.0f} s produced (TTSOPS_MAX_AUDIO_S)", param="input")
