"""What goes into a synthesis and what comes out: the contract between the pipeline,
the worker processes and the HTTP server.

The server runs a synthesis in three parts so that cache hits never touch a worker:

    front = pipeline.front(req)        # main process: text_normalize, cache lookup,
                                       #   synthesis_start; returns a Job or a cached result
    audio = pipeline.back(job)         # worker process: llm_prompt_gen .. audio_render
    result = pipeline.finish(job, audio, queue_ms=...)  # main process: cache write,
                                       #   audio_metrics, synthesis_complete
    pipeline.fail(job, error, queue_ms=...)   # main process: synthesis_failed/complete

``pipeline.run(req)`` does all three in one process (``ttsops synth``, tests).
All of these objects are picklable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STAGES = ("text_normalize", "llm_prompt_gen", "llm_inference", "llm_postproc", "audio_render")
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",  # Ogg Opus, as OpenAI returns it
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",  # raw s16le mono at the response's sample rate
}


@dataclass
class SynthesisRequest:
    text: str
    voice: str = "alloy"
    lang: str | None = None  # None: detected from the text
    speed: float = 1.0
    format: str = "mp3"
    sample_rate: int | None = None  # None: the engine's own rate (24000 for pcm)
    model: str = "tts-1"
    allow_fallback: bool | None = None  # None: settings.voice_fallback
    id: str | None = None  # synthesis id "ts_<8 hex>"; generated when None
    options: dict[str, Any] = field(default_factory=dict)  # engine-specific extras


@dataclass
class Job:
    """A request after text_normalize, ready for a worker."""

    id: str
    request: SynthesisRequest
    text: str  # cleaned, normalised text
    segments: list[str]  # sentences, synthesised one by one
    lang: str
    voice: str  # resolved (after any fallback)
    cache_key: str | None
    started: float  # time.time() at synthesis_start
    stages: dict[str, float] = field(default_factory=dict)  # stage -> ms, so far
    warnings: list[str] = field(default_factory=list)  # warning codes raised so far


@dataclass
class RenderedAudio:
    """What a worker sends back: the encoded bytes and what was measured."""

    audio: bytes
    sample_rate: int
    duration_ms: float  # of the audio
    metrics: dict[str, float]  # rms, peak, spectral_centroid, silence_ratio, clipped_ratio
    stages: dict[str, float]  # stage -> ms, for the stages run in the worker


@dataclass
class SynthesisResult:
    id: str
    audio: bytes
    format: str
    content_type: str
    sample_rate: int
    duration_ms: float  # of the audio
    total_ms: float  # end to end, queue included
    queue_ms: float
    stages: dict[str, float]
    metrics: dict[str, float]
    cache_hit: bool
    cache_saved: bool
    voice: str
    lang: str
    warnings: list[str] = field(default_factory=list)
