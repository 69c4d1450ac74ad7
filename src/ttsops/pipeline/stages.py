"""The five stages as lists of small functions (structlog-style processors).

``FRONT_STEPS`` make up text_normalize: each takes (request, state, context) and fills in
or checks one thing. ``BACK_STAGES`` are the four engine/audio stages: each takes
(context, state) and moves the synthesis one stage on. The runner times them, writes the
records and turns exceptions into error codes; the functions here only do the work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from .. import limits
from ..errors import TTSError
from . import audio as audio_mod
from . import encode as enc
from . import metrics as metrics_mod
from . import sentences
from . import text as text_mod
from .normalize import language as lang_mod
from .normalize import scripts as scripts_mod
from .types import Job, SynthesisRequest

if TYPE_CHECKING:
    from ..config import Settings
    from ..engines.base import Engine, EngineInfo, TakesOptions


class StageContext(Protocol):
    """What a stage may use: the engine, its description, the settings and the voices.
    ``Pipeline`` is one; a stage never sees the runner itself (records, cache, memo)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def info(self) -> EngineInfo: ...

    def voice_names(self) -> list[str]: ...

    def default_voice(self) -> str: ...


# --- text_normalize -------------------------------------------------------------------
@dataclass
class FrontState:
    text: str = ""
    segments: list[str] = field(default_factory=list)
    segment_langs: list[str] = field(default_factory=list)  # the language of each segment
    runs: list[tuple[str, str]] = field(default_factory=list)  # (lang, text), in order
    lang: str | None = None  # what the records say: "zh", or "ru+zh" (main first)
    voice: str = ""
    fmt: str = ""
    speed: float = 1.0
    sample_rate: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    # (event, warning_code, fields) written after synthesis_start
    warnings: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


def check_format(req: SynthesisRequest, st: FrontState, p: StageContext) -> None:
    st.fmt = enc.check_format(req.format)


def check_speed(req: SynthesisRequest, st: FrontState, p: StageContext) -> None:
    try:
        speed = float(req.speed)
    except (TypeError, ValueError) as e:
        raise TTSError("SPEED_OUT_OF_RANGE", f"got {req.speed!r}", param="speed") from e
    st.speed = audio_mod.check_speed(speed)


def check_length(req: SynthesisRequest, st: FrontState, p: StageContext) -> None:
    limit = p.settings.max_input_chars
    if not isinstance(req.text, str):
        raise TTSError("TEXT_INVALID", f"input is {type(req.text).__name__}, not text",
                       param="input")
    if len(req.text) > limit:
        raise TTSError("TEXT_TOO_LONG", f"{len(req.text)} characters, limit {limit}",
                       param="input")


def sanitize(req: SynthesisRequest, st: FrontState, p: StageContext) -> None:
    c = text_mod.clean(req.text)
    st.text, _emoji = scripts_mod.drop_emoji(c.text)  # the emoji rule: never read out
    if c.removed:
        st.warnings.append(("text_sanitized", "TEXT_SANITIZED",
                            {"removed": c.removed, "kinds": "+".join(c.kinds)}))


def require_speech(req: SynthesisRequest, st: FrontState, p: StageContext) -> None:
    if not st.text:
        why = "nothing left after cleaning" if req.text else None
        if req.text and scripts_mod.EMOJI.search(req.text):
            why = "only emoji and spaces (emoji are not read)"
        raise TTSError("TEXT_EMPTY", why, param="input")
    if not text_mod.speakable(st.text):
        raise TTSError("TEXT_EMPTY", "only punctuation and spaces", param="input")


def pick_language(req: SynthesisRequest, st: FrontState, p: StageContext) -> None:
    """Language runs (normalize.language); every run must be one the engine speaks."""
    supported = p.info.languages
    st.runs = lang_mod.runs(st.text, req.lang, supported)
    param = "lang" if lang_mod.resolve(req.lang) else "input"
    for code, part in st.runs:
        if code not in supported:
            where = "" if param == "lang" else f" in {part.strip()[:24]!r}"
            raise TTSError("LANG_UNSUPPORTED",
                           f"{lang_mod.name(code)}{where}: engine {p.info.name!r} has no "
                           f"voice for it (GET /v1/audio/voices lists its languages)",
                           param=param)
        why = p.engine.unspeakable(part, code)
        if why:
            raise TTSError("LANG_UNSUPPORTED", f"{lang_mod.name(code)}: {why}", param=param)
    st.lang = lang_mod.label(st.runs)


def read_numbers(req: SynthesisRequest, st: FrontState, p: StageContext) -> None:
    if any(code == "zh" for code, _ in st.runs):
        st.runs = [(code, text_mod.read_numbers_zh(part) if code == "zh" else part)
                   for code, part in st.runs]
        st.text = "".join(part for _, part in st.runs)


def pick_voice(req: SynthesisRequest, st: FrontState, p: StageContext) -> None:
    names = p.voice_names()
    want = (req.voice or "").strip().lower()
    if want in names:
        st.voice = want
        return
    allow = p.settings.voice_fallback if req.allow_fallback is None else req.allow_fallback
    if not allow:
        raise TTSError("VOICE_UNKNOWN", f"{req.voice!r}; known: {', '.join(names)}",
                       param="voice")
    st.voice = p.default_voice()
    st.warnings.append(("voice_fallback", "VOICE_FALLBACK",
                        {"requested": req.voice, "voice": st.voice, "fallback_used": True}))


def segment(req: SynthesisRequest, st: FrontState, p: StageContext) -> None:
    """Each language run split into sentence segments: a segment has one language."""
    st.segments, st.segment_langs = [], []
    for code, part in st.runs or [(st.lang or "", st.text)]:
        if not part.strip(" \n"):
            continue
        segs = text_mod.split_sentences(part.strip(" \n"), p.settings.segment_max_chars)
        st.segments += segs
        st.segment_langs += [code] * len(segs)
    if not st.segments:  # e.g. symbols that Chinese reading drops ("¤" with lang=zh)
        raise TTSError("TEXT_EMPTY", "nothing left to speak after normalisation (only "
                       "symbols the voice does not read)", param="input")


def check_audio_length(req: SynthesisRequest, st: FrontState, p: StageContext) -> None:
    """AUDIO_TOO_LONG before any synthesis when the text clearly exceeds max_audio_s."""
    limits.check_estimate(st.text, st.speed, getattr(p.settings, "max_audio_s", 0))


def pick_rate(req: SynthesisRequest, st: FrontState, p: StageContext) -> None:
    st.sample_rate = enc.output_rate(st.fmt, p.info.sample_rate, req.sample_rate)


def check_options(req: SynthesisRequest, st: FrontState, p: StageContext) -> None:
    st.options = p.engine.check_options(req.options)


FrontStep = Callable[[SynthesisRequest, FrontState, StageContext], None]
FRONT_STEPS: list[FrontStep] = [check_format, check_speed, check_length, sanitize,
                                require_speech, pick_language, read_numbers, pick_voice,
                                segment, check_audio_length, pick_rate, check_options]


# --- llm_prompt_gen .. audio_render ---------------------------------------------------
@dataclass
class BackState:
    job: Job
    prepared: list[Any] = field(default_factory=list)
    raw: list[np.ndarray] = field(default_factory=list)
    samples: np.ndarray | None = None  # float32 at ``rate`` after post-processing
    rate: int = 0
    clipped: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    pcm: np.ndarray | None = None  # s16 after post-processing
    data: bytes = b""


def engine_speed(p: StageContext, speed: float) -> tuple[float, float]:
    native = p.info.extra.get("native_speed")
    return audio_mod.split_speed(speed, tuple(native) if native else None)


def segment_lang(job: Job, i: int) -> str:
    """The language of segment ``i`` (jobs made before languages per segment: job.lang)."""
    langs = getattr(job, "segment_langs", None)
    return langs[i] if langs and i < len(langs) else job.lang


def prepare_one(p: StageContext, job: Job, seg: str, lang: str | None = None) -> Any:
    lang = lang or job.lang
    if job.options:  # only an engine that takes options let them through check_options
        return cast("TakesOptions", p.engine).prepare(seg, lang, job.voice,
                                                       options=job.options)
    return p.engine.prepare(seg, lang, job.voice)


def infer_one(p: StageContext, job: Job, prepared: Any, lang: str | None = None) -> np.ndarray:
    speed, residual = engine_speed(p, job.request.speed)
    out = np.asarray(p.engine.infer(prepared, lang or job.lang, job.voice, speed))
    limits.after_segment(p, job, out, residual)  # AUDIO_TOO_LONG, or cancelled
    return out


def post_one(p: StageContext, job: Job, raw: np.ndarray, guarded: bool = False) -> np.ndarray:
    """NaN/Inf guard, residual time-stretch, resample, loudness: float32 at job rate."""
    x = raw if guarded else audio_mod.guard_finite(raw)
    _, residual = engine_speed(p, job.request.speed)
    sr = p.info.sample_rate
    if residual != 1.0:
        x = audio_mod.time_stretch(x, residual, sr)
    x = audio_mod.resample(x, sr, job.sample_rate or sr)
    x, _gain = audio_mod.normalize_loudness(x, job.sample_rate or sr,
                                            p.settings.audio_target_dbfs,
                                            p.settings.audio_peak_dbfs)
    return x


def prompt_gen(p: StageContext, st: BackState) -> None:
    st.prepared = [prepare_one(p, st.job, s, segment_lang(st.job, i))
                   for i, s in enumerate(st.job.segments)]


def inference(p: StageContext, st: BackState) -> None:
    st.raw = [infer_one(p, st.job, x, segment_lang(st.job, i))
              for i, x in enumerate(st.prepared)]
    err = produced_error(sum(r.size for r in st.raw),
                         not all(audio_mod.is_silent(r) for r in st.raw))
    if err is not None:
        raise err


def produced_error(samples: int, heard: bool) -> TTSError | None:
    """The test at the end of llm_inference: ENGINE_FAILED when the engine produced no
    samples at all, AUDIO_SILENT when every one of them is silent (``heard``: some are
    not). Returned, not raised, so that a failure's ``where`` is the stage itself."""
    if samples == 0:
        return TTSError("ENGINE_FAILED", "the engine produced no audio")
    if not heard:
        return TTSError("AUDIO_SILENT", silent_detail(samples))
    return None


def silent_detail(samples: int) -> str:
    return f"all {samples} samples the engine produced are silent"


def silence(ms: float, rate: int) -> np.ndarray:
    return np.zeros(max(0, round(ms * rate / 1000.0)), np.float32)


def postproc(p: StageContext, st: BackState) -> None:
    raw = [audio_mod.guard_finite(r) for r in st.raw]  # all segments checked first
    st.clipped = metrics_mod.clipped_ratio(np.concatenate(raw) if len(raw) > 1 else raw[0])
    if len(raw) > 1:  # the pause each segment ends with (the engine leaves none at the end)
        eng_speed, _ = engine_speed(p, st.job.request.speed)
        parts: list[np.ndarray] = []
        for seg, r in zip(st.job.segments, raw, strict=True):
            parts += [r, silence(sentences.pause_after(seg) / eng_speed, p.info.sample_rate)]
        joined = np.concatenate(parts[:-1])
    else:
        joined = raw[0]
    st.rate = st.job.sample_rate or p.info.sample_rate
    st.samples = np.concatenate([post_one(p, st.job, joined, guarded=True),
                                 silence(p.settings.audio_tail_silence_ms, st.rate)])
    st.metrics = metrics_mod.measure(st.samples, st.rate, st.clipped)
    st.pcm = audio_mod.to_int16(st.samples)


def render(p: StageContext, st: BackState) -> None:
    assert st.pcm is not None
    st.data = enc.encode(st.pcm, st.rate, st.job.request.format.lower())


BackStage = Callable[[StageContext, BackState], None]
BACK_STAGES: list[tuple[str, BackStage]] = [
    ("llm_prompt_gen", prompt_gen),
    ("llm_inference", inference),
    ("llm_postproc", postproc),
    ("audio_render", render),
]

# what an exception that is not a TTSError means, by the stage it came from
STAGE_ERROR = {
    "text_normalize": "INTERNAL_ERROR",
    "llm_prompt_gen": "ENGINE_FAILED",
    "llm_inference": "ENGINE_FAILED",
    "llm_postproc": "INTERNAL_ERROR",
    "audio_render": "AUDIO_ENCODE_FAILED",
}


def as_tts_error(stage: str, exc: BaseException) -> TTSError:
    if isinstance(exc, TTSError):
        return exc
    if isinstance(exc, MemoryError):
        return TTSError("INTERNAL_ERROR", "out of memory")
    return TTSError(STAGE_ERROR.get(stage, "INTERNAL_ERROR"),
                    f"{type(exc).__name__}: {exc}"[:300])
