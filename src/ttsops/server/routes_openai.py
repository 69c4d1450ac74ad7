"""The OpenAI-compatible routes: ``POST /v1/audio/speech``, ``GET /v1/models``,
``GET /v1/audio/voices``, and ``GET /v1/syntheses/{id}`` (what the service measured)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..errors import TTSError
from ..events import get_logger
from ..pipeline.types import CONTENT_TYPES, SPEED_MAX, SPEED_MIN, SynthesisRequest, SynthesisResult
from . import ids
from .bodies import ChunkedBody, client_gone
from .errors_http import StreamAborted

log = get_logger("ttsops.server")

OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15")
SSE_TYPE = "text/event-stream"


# --- schema ------------------------------------------------------------------------------

class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str = Field(description="Error code from the registry (`ttsops errors`).")


class ErrorResponse(BaseModel):
    error: ErrorDetail


VoiceName = Annotated[str, StringConstraints(max_length=128)]


class VoiceRef(BaseModel):
    id: str = Field(max_length=128)


class SpeechRequest(BaseModel):
    """OpenAI's speech request, plus ``lang`` and ``allow_fallback``."""

    # strict: JSON types as the schema says them (no "speed": true or "1.0")
    model_config = ConfigDict(extra="ignore", strict=True)

    model: str = Field(min_length=1, max_length=128,
                       description="tts-1, tts-1-hd, gpt-4o-mini-tts or the engine's name "
                                   "(GET /v1/models).")
    input: str = Field(description="The text (at most TTSOPS_MAX_INPUT_CHARS characters, "
                                   "4096 by default).")
    voice: VoiceName | VoiceRef = Field(description="A voice of GET /v1/audio/voices "
                                                    "(OpenAI names map to engine voices).")
    instructions: str | None = Field(None, max_length=4096, description="Accepted, ignored.")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=SPEED_MIN, le=SPEED_MAX)
    stream_format: Literal["audio", "sse"] | None = Field(
        None, description="audio: the file streamed as each sentence is ready; sse: "
                          "speech.audio.delta / speech.audio.done events. Absent: one "
                          "response with Content-Length.")
    timestamps: bool = Field(False, description="With stream_format sse: a "
                                                "speech.audio.word event (word, start_ms, "
                                                "end_ms, char) for each word after the delta "
                                                "that carries its audio.")
    lang: str | None = Field(None, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$",
                             description="Language (zh, en, ...); detected when absent.")
    allow_fallback: bool | None = Field(None, description="Unknown voice: use the default "
                                                          "voice with a WARNING instead of 400.")
    options: dict[str, Any] | None = Field(
        None, max_length=16, description="Engine options, e.g. IndexTTS-2's emotion, "
                                         "emo_vector, emo_alpha; engines without options "
                                         "refuse them (400 INVALID_REQUEST).")


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": desc} for status, desc in (
        (400, "Invalid request (TEXT_EMPTY, TEXT_TOO_LONG, VOICE_UNKNOWN, MODEL_UNKNOWN, "
              "FORMAT_UNSUPPORTED, SPEED_OUT_OF_RANGE, LANG_UNSUPPORTED, INVALID_REQUEST)"),
        (401, "UNAUTHORIZED"), (413, "BODY_TOO_LARGE"), (429, "QUEUE_FULL, RATE_LIMITED"),
        (500, "ENGINE_FAILED, SCIPY_FFT_INVALID, AUDIO_ENCODE_FAILED, INTERNAL_ERROR"),
        (503, "ENGINE_NOT_READY, MODEL_LOAD_FAILED, ENGINE_CRASHED"),
        (504, "SYNTHESIS_TIMEOUT"))
}

router = APIRouter(prefix="/v1")


# --- helpers ---------------------------------------------------------------------------

def accepted_models(engine: str) -> list[str]:
    return [*OPENAI_MODELS, "ttsops", engine, f"ttsops-{engine}"]


def server_timing(result: SynthesisResult) -> str:
    if len(result.stages) == 1:  # a cache hit (text_normalize only): one format, no list
        ((stage, ms),) = result.stages.items()
        return (f"queue;dur={result.queue_ms:.1f}, {stage};dur={ms:.1f}, "
                f"total;dur={result.total_ms:.1f}")
    parts = [f"queue;dur={result.queue_ms:.1f}"]
    parts += [f"{stage};dur={ms:.1f}" for stage, ms in result.stages.items()]
    parts.append(f"total;dur={result.total_ms:.1f}")
    return ", ".join(parts)


_AUDIO_METRICS: dict[tuple[Any, ...], str] = {}  # the same clip's metrics, formatted once


def audio_metrics_header(duration_ms: float, metrics: dict[str, float]) -> str:
    key = (duration_ms, *metrics.items())
    text = _AUDIO_METRICS.get(key)
    if text is None:
        shown = {"duration_ms": round(duration_ms, 1),
                 **{k: round(v, 4) for k, v in metrics.items()}}
        text = ", ".join(f"{k}={v}" for k, v in shown.items())
        if len(_AUDIO_METRICS) >= 4096:  # bounded: cache hits repeat, others do not
            _AUDIO_METRICS.clear()
        _AUDIO_METRICS[key] = text
    return text


def result_headers(result: SynthesisResult) -> dict[str, str]:
    return {
        "X-Synthesis-ID": result.id,
        "X-Cache-Hit": "true" if result.cache_hit else "false",
        "X-Sample-Rate": str(result.sample_rate),
        "X-Audio-Duration-Ms": f"{result.duration_ms:.1f}",
        "Server-Timing": server_timing(result),
        "X-Audio-Metrics": audio_metrics_header(result.duration_ms, result.metrics),
    }


def result_raw_headers(result: SynthesisResult) -> list[tuple[bytes, bytes]]:
    """``result_headers`` as sent: lower-case names, latin-1 values, in the same order."""
    return [
        (b"x-synthesis-id", result.id.encode("latin-1")),
        (b"x-cache-hit", b"true" if result.cache_hit else b"false"),
        (b"x-sample-rate", str(result.sample_rate).encode("latin-1")),
        (b"x-audio-duration-ms", f"{result.duration_ms:.1f}".encode("latin-1")),
        (b"server-timing", server_timing(result).encode("latin-1")),
        (b"x-audio-metrics",
         audio_metrics_header(result.duration_ms, result.metrics).encode("latin-1")),
    ]


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _done_event(result: SynthesisResult, text_len: int, request_id: str) -> dict[str, Any]:
    # usage is counted in characters: engines here have no token billing
    return {"type": "speech.audio.done",
            "usage": {"input_tokens": text_len, "output_tokens": 0, "total_tokens": text_len},
            "id": result.id, "request_id": request_id, "format": result.format,
            "sample_rate": result.sample_rate, "duration_ms": round(result.duration_ms, 1),
            "total_ms": round(result.total_ms, 1), "queue_ms": round(result.queue_ms, 1),
            "cache_hit": result.cache_hit,
            "stages": {k: round(v, 2) for k, v in result.stages.items()},
            "metrics": {k: round(v, 4) for k, v in result.metrics.items()}}


def synthesis_request(body: SpeechRequest, engine: str) -> SynthesisRequest:
    """The synthesis a valid speech request asks for (MODEL_UNKNOWN, INVALID_REQUEST for
    what the schema cannot say); shared with the cache-hit fast path (fastpath.py)."""
    if body.model not in accepted_models(engine):
        raise TTSError("MODEL_UNKNOWN", f"{body.model[:64]!r} (GET /v1/models)", param="model")
    voice = body.voice.id if isinstance(body.voice, VoiceRef) else body.voice
    if body.timestamps and body.stream_format != "sse":
        raise TTSError("INVALID_REQUEST", "timestamps come as events: set stream_format "
                       "to \"sse\"", param="timestamps")
    return SynthesisRequest(text=body.input, voice=voice, lang=body.lang, speed=body.speed,
                            format=body.response_format, model=body.model,
                            allow_fallback=body.allow_fallback, id=ids.synthesis_id(),
                            options=dict(body.options or {}), timestamps=body.timestamps)


def speech_response(result: SynthesisResult) -> Response:
    """A whole answer, sent in pieces (``ChunkedBody``): the main process never copies a
    large clip into one more buffer at once."""
    return ChunkedBody.audio(result.audio, CONTENT_TYPES[result.format],
                             result_raw_headers(result))


# --- routes ----------------------------------------------------------------------------

@router.post("/audio/speech", response_class=Response, responses={
    200: {"description": "The audio (or an SSE stream)", "content": {
        **{ct: {"schema": {"type": "string", "format": "binary"}}
           for ct in sorted(set(CONTENT_TYPES.values()))},
        SSE_TYPE: {"schema": {"type": "string"}}}},
    **ERRORS}, summary="Create speech (OpenAI-compatible)")
async def create_speech(body: SpeechRequest, request: Request) -> Response:
    app = request.app
    state: dict[str, Any] = request.scope["ttsops"]
    req = synthesis_request(body, app.state.settings.engine)
    service = app.state.service
    rid = state["request_id"]
    if body.stream_format is None:
        try:  # a client that hangs up meanwhile cancels its synthesis (CLIENT_CLOSED)
            result = await service.synthesize(req, rid, gone=lambda: client_gone(request.receive))
        except TTSError as err:
            state["id"] = err.context.get("id")
            raise
        state["id"] = result.id
        if not result.cache_hit and await request.is_disconnected():
            state["client_gone"] = True  # finished, but nobody is left to receive it
        return speech_response(result)
    return await _stream(request, service, req, body.stream_format, state, len(body.input))


async def _stream(request: Request, service: Any, req: SynthesisRequest, mode: str,
                  state: dict[str, Any], text_len: int) -> Response:
    t0 = state.get("t0", time.perf_counter())
    rid = state["request_id"]
    it = service.stream(req, rid)
    try:
        _, sid = await it.__anext__()
        state["id"] = sid
        kind, first = await it.__anext__()  # the first audio, or a failure as an HTTP error
    except TTSError as err:
        state["id"] = err.context.get("id", state["id"])
        raise
    ttfa_ms = (time.perf_counter() - t0) * 1000.0
    state["extra"]["ttfa_ms"] = round(ttfa_ms, 1)
    log.info("stream_first_audio", id=sid, ttfa_ms=round(ttfa_ms, 1), stream_format=mode,
             format=req.format)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.first_audio.labels(mode).observe(ttfa_ms / 1000.0)

    async def audio_body() -> AsyncIterator[bytes]:
        k, v = kind, first
        ended = False
        try:
            while True:
                if k == "audio":
                    yield v
                elif k == "error":
                    ended = True
                    state["error_code"] = v.code
                    raise StreamAborted(v.code)
                elif k == "done":
                    ended = True
                    if await request.is_disconnected():  # sends after a hang-up vanish
                        state["client_gone"] = True
                    return
                k, v = await it.__anext__()
        finally:
            if not ended:  # cancelled: the client hung up mid-stream
                state["client_gone"] = True
                service.cancel(sid)  # stop its synthesis too

    timestamps = req.timestamps

    async def sse_body() -> AsyncIterator[bytes]:
        k, v = kind, first
        ended = False
        try:
            while True:
                if k == "audio":
                    yield _sse({"type": "speech.audio.delta",
                                "audio": base64.b64encode(v).decode("ascii")})
                elif k == "words":
                    if timestamps:
                        yield b"".join(_sse({"type": "speech.audio.word", **w}) for w in v)
                elif k == "error":
                    ended = True
                    state["error_code"] = v.code
                    yield _sse({"type": "error", **v.to_openai()})
                    return
                elif k == "done":
                    ended = True
                    yield _sse(_done_event(v, text_len, rid))
                    if await request.is_disconnected():
                        state["client_gone"] = True
                    return
                k, v = await it.__anext__()
        finally:
            if not ended:
                state["client_gone"] = True
                service.cancel(sid)

    headers = {"X-Synthesis-ID": sid, "Cache-Control": "no-store",
               "X-Accel-Buffering": "no"}
    if mode == "sse":
        return StreamingResponse(sse_body(), media_type=SSE_TYPE, headers=headers)
    return StreamingResponse(audio_body(), media_type=CONTENT_TYPES[req.format],
                             headers=headers)


@router.get("/models", summary="Accepted model names")
async def list_models(request: Request) -> dict[str, Any]:
    engine = request.app.state.settings.engine
    return {"object": "list", "data": [
        {"id": m, "object": "model", "created": 0, "owned_by": "ttsops"}
        for m in accepted_models(engine)]}


@router.get("/models/{model_id}", summary="One model", responses={404: ERRORS[400]})
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    if model_id not in accepted_models(request.app.state.settings.engine):
        raise TTSError("NOT_FOUND", f"model {model_id[:64]!r}", param="model")
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "ttsops"}


@router.get("/audio/voices", summary="Voices of the loaded engine",
            responses={503: ERRORS[503]})
async def list_voices(request: Request) -> dict[str, Any]:
    pool = request.app.state.pool
    if not pool.voices:
        raise TTSError("ENGINE_NOT_READY", "no engine has loaded yet")
    engine = getattr(pool.info, "name", request.app.state.settings.engine)
    return {"object": "list", "data": [
        {"id": v.name, "object": "audio.voice", "name": v.name,
         "languages": list(v.languages), "description": v.description, "gender": v.gender,
         "engine": engine} for v in pool.voices]}


@router.get("/syntheses/{synthesis_id}", summary="What was measured for a recent synthesis",
            responses={404: ERRORS[400]})
async def get_synthesis(synthesis_id: str, request: Request) -> dict[str, Any]:
    item = request.app.state.service.recent.get(synthesis_id)
    if item is None:
        raise TTSError("NOT_FOUND", "no recent synthesis with this id", param="synthesis_id")
    request.scope["ttsops"]["id"] = synthesis_id if item.get("id") else None
    return item
