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

Who writes which record (so that each appears exactly once):

* ``front(req)`` writes ``synthesis_start`` (with ``cache_hit``), any ``text_sanitized`` /
  ``voice_fallback`` WARNING and ``stage_time`` for ``text_normalize``.
  - cache hit: it also writes ``audio_metrics`` and ``synthesis_complete`` (``cache_hit=true``,
    ``model_stage=text_normalize``) and returns a ``SynthesisResult``: answer it directly.
  - bad input (TEXT_EMPTY, TEXT_TOO_LONG, TEXT_INVALID, VOICE_UNKNOWN, LANG_UNSUPPORTED,
    FORMAT_UNSUPPORTED, SPEED_OUT_OF_RANGE, INVALID_REQUEST): it writes ``synthesis_failed``
    and ``synthesis_complete status=failed`` itself and raises ``TTSError`` (with
    ``err.context["id"]`` = the synthesis id). Do NOT call ``fail()`` for it; answer with
    ``err.status`` / ``err.to_openai()``.
* ``back(job)`` / ``stream(job)`` write one ``stage_time`` per stage they reach (in the
  worker, through its ForwardSink; they bind ``id``, ``request_id`` and ``trace_id`` from the
  Job). On error they write ``synthesis_failed`` (with the live traceback) and raise
  ``SynthesisFailure`` (a picklable ``TTSError``, ``logged=True``).
* ``finish(job, audio, queue_ms)`` writes ``audio_metrics`` and ``synthesis_complete``
  (and ``cache_write_failed`` WARNING if the cache write fails: audio is still returned).
* ``fail(job, error, queue_ms, stage=None)`` writes ``synthesis_failed`` unless the error is a
  ``SynthesisFailure`` already logged where it happened, then ``synthesis_complete
  status=failed``; it returns the ``TTSError`` to answer with. Use it for everything that
  goes wrong after ``front()`` returned a Job: a ``SynthesisFailure`` from the worker,
  ``TTSError("ENGINE_CRASHED")`` / ``TTSError("SYNTHESIS_TIMEOUT")`` raised by the pool (pass
  ``stage=`` if the pool knows which stage the worker was in), any other exception.

``cache_saved`` means "this audio is in the cache when the synthesis ends": true after a
successful write and on a cache hit; false when the cache is disabled, the write failed
(``CACHE_WRITE_FAILED``) or the synthesis failed.

Streaming (``pipeline.stream(job)``, worker side): synthesises piece by piece (each
segment cut at sentence ends, long sentences at clause marks: ``sentences.py``) and yields
a ``StreamChunk`` as soon as each piece is encoded, through one continuous encoder for the
whole response (``wav`` starts with a header of unknown length 0xFFFFFFFF; ``pcm`` is raw
s16le). Chunks carry the timings of the words they hold when the engine reports them
(``words.py``). The last chunk has ``last=True`` and ``rendered`` set:
the complete, seekable file (what ``back()`` would have returned) to pass to ``finish()``.
Concatenating the ``data`` of all chunks gives a playable file of the requested format.
If it raises (``SynthesisFailure``) after chunks were sent, cut the response and call
``fail()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import TTSError
from ..logformat.record import STAGES as STAGES  # the log contract (forensics read it there)

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",  # Ogg Opus, as OpenAI returns it
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",  # raw s16le mono at the response's sample rate
}
# formats whose bytes are sent piece by piece by ``Pipeline.stream`` (all of them)
STREAMABLE_FORMATS = FORMATS
SPEED_MIN, SPEED_MAX = 0.25, 4.0


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
    id: str | None = None  # synthesis id "ts_<16 hex>"; generated when None
    options: dict[str, Any] = field(default_factory=dict)  # engine-specific extras
    timestamps: bool = False  # word timings wanted: synthesise even on a cache hit


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
    request_id: str | None = None  # bound again in the worker so its records carry it
    trace_id: str | None = None
    engine: str = ""  # engine name (for records)
    sample_rate: int = 0  # output rate; 0: the engine's own
    text_len: int = 0  # of the input as received
    options: dict[str, Any] = field(default_factory=dict)  # engine options, validated
    segment_langs: list[str] = field(default_factory=list)  # language of each segment
    audio_s: float = 0.0  # audio produced so far, in the worker (limits.after_segment)


@dataclass
class RenderedAudio:
    """What a worker sends back: the encoded bytes and what was measured."""

    audio: bytes
    sample_rate: int
    duration_ms: float  # of the audio
    metrics: dict[str, float]  # rms, peak, spectral_centroid, silence_ratio, clipped_ratio
    stages: dict[str, float]  # stage -> ms, for the stages run in the worker
    words: list[dict[str, Any]] | None = None  # word timings (stream() only; see words.py)


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
    words: list[dict[str, Any]] | None = None  # word timings, when the synthesis streamed


@dataclass
class StreamChunk:
    """One piece of a streamed synthesis (see the module docstring)."""

    data: bytes
    seq: int
    last: bool = False
    rendered: RenderedAudio | None = None  # on the last chunk: the complete file
    # the words whose audio this chunk carries: {"word", "start_ms", "end_ms", "char"}
    # (ms from the start of the whole audio, char: offset in the job's normalised text)
    words: list[dict[str, Any]] = field(default_factory=list)


class SynthesisFailure(TTSError):
    """A failure inside ``back()``/``stream()``: picklable (it crosses the worker
    boundary), remembers the stage it happened in and whether ``synthesis_failed`` was
    already written (with the live traceback, where it happened)."""

    def __init__(self, code: str, detail: str | None = None, *, param: str | None = None,
                 stage: str = "", stages: dict[str, float] | None = None, logged: bool = False,
                 exc_type: str = "", where: str = "", **context: Any) -> None:
        super().__init__(code, detail, param=param, **context)
        self.stage = stage
        self.stages = dict(stages or {})
        self.logged = logged
        self.exc_type = exc_type
        self.where = where

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_failure, (self.code, self.detail, self.param, self.stage,
                                   self.stages, self.logged, self.exc_type, self.where,
                                   self.context))


def _rebuild_failure(code: str, detail: str | None, param: str | None, stage: str,
                     stages: dict[str, float], logged: bool, exc_type: str, where: str,
                     context: dict[str, Any]) -> SynthesisFailure:
    return SynthesisFailure(code, detail, param=param, stage=stage, stages=stages,
                            logged=logged, exc_type=exc_type, where=where, **context)
