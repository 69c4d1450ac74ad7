"""The engine interface: small on purpose.

An engine turns prepared text into float32 mono samples at its own sample rate. The
pipeline owns everything around it (cleaning, timing, post-processing, encoding,
logging), so every engine reports the same five stages:

    text_normalize (pipeline) -> llm_prompt_gen (engine.prepare) ->
    llm_inference (engine.infer) -> llm_postproc (pipeline) -> audio_render (pipeline)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class VoiceInfo:
    name: str  # the name a request uses: "alloy", "nova", ... or an engine-native name
    languages: tuple[str, ...]  # e.g. ("en", "zh")
    description: str = ""
    gender: str | None = None


@dataclass
class EngineInfo:
    name: str
    version: str
    sample_rate: int
    languages: tuple[str, ...]
    concurrent_safe: bool = True  # False: one worker process per device
    device: str = "cpu"
    model: str = ""  # model path or id, for engine_load / model_load_failed records
    extra: dict[str, Any] = field(default_factory=dict)


class Engine(ABC):
    """Implementations: espeak (embedded default), fake (tests), piper, indextts2."""

    name: str = "base"

    @abstractmethod
    def load(self) -> EngineInfo:
        """Load the model. Raise ``TTSError("MODEL_LOAD_FAILED", ...)`` on failure."""

    @abstractmethod
    def voices(self) -> list[VoiceInfo]:
        """The voices this engine can speak with."""

    def check_options(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """Validate a request's engine options (main process, before queueing) and return
        them normalised. Engines without options refuse any."""
        if options:
            from ..errors import TTSError

            raise TTSError("INVALID_REQUEST", f"engine {self.name!r} takes no options "
                           f"(got {', '.join(sorted(map(str, options)))})", param="options")
        return {}

    def unspeakable(self, text: str, lang: str) -> str | None:
        """Why this engine cannot speak ``text`` in ``lang`` although it lists ``lang``
        (e.g. Japanese kanji for a kana-only voice); None when it can."""
        return None

    @abstractmethod
    def prepare(self, text: str, lang: str, voice: str) -> Any:
        """Stage llm_prompt_gen: cleaned text of one segment -> model input (phonemes,
        tokens...). Must be picklable. Engines that accept options (``check_options``)
        take them as a keyword argument ``options``."""

    @abstractmethod
    def infer(self, prepared: Any, lang: str, voice: str, speed: float) -> np.ndarray:
        """Stage llm_inference: model input -> float32 mono samples at ``info.sample_rate``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""


class TakesOptions(Protocol):
    """An engine that accepts request options (its ``check_options`` returns them): its
    ``prepare`` takes them as the keyword argument ``options``."""

    def prepare(self, text: str, lang: str, voice: str,
                options: dict[str, Any] | None = None) -> Any: ...
