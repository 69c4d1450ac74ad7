"""The error-code registry and the one exception root that carries a code.

Every failure in ttsops has exactly one code from ``REGISTRY``. The same code appears
in the HTTP error body (OpenAI shape), in the log line (``error_code=`` or
``warning_code=``), in metric labels and in ``ttsops logs`` output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorSpec:
    code: str
    level: str  # ERROR or WARNING: how the event is logged
    status: int  # HTTP status when it ends a request (warnings: status if it ever does)
    message: str  # one line, for humans and for the HTTP body
    hint: str  # runbook: what to check first
    type: str = "server_error"  # OpenAI error "type"


_SPECS = [
    # --- the caller's input ---------------------------------------------------------
    ErrorSpec("TEXT_EMPTY", "ERROR", 400, "Input text is empty after cleaning",
              "The client sent empty or whitespace/control-only text; fix the caller.",
              "invalid_request_error"),
    ErrorSpec("TEXT_TOO_LONG", "ERROR", 400, "Input text is longer than the limit",
              "Split the text client-side or raise TTSOPS_MAX_INPUT_CHARS.",
              "invalid_request_error"),
    ErrorSpec("TEXT_INVALID", "ERROR", 400, "Input is not valid UTF-8 text",
              "The client sent bytes that are not UTF-8; check its encoding.",
              "invalid_request_error"),
    ErrorSpec("VOICE_UNKNOWN", "ERROR", 400, "Unknown voice",
              "GET /v1/audio/voices lists the voices; or allow fallback.",
              "invalid_request_error"),
    ErrorSpec("LANG_UNSUPPORTED", "ERROR", 400, "Unsupported language",
              "The engine speaks the languages listed by GET /v1/audio/voices; omit lang "
              "to detect it from the text.", "invalid_request_error"),
    ErrorSpec("MODEL_UNKNOWN", "ERROR", 400, "Unknown model",
              "GET /v1/models lists the accepted model names.", "invalid_request_error"),
    ErrorSpec("FORMAT_UNSUPPORTED", "ERROR", 400, "Unsupported response format",
              "Use mp3, opus, aac, flac, wav or pcm.",
              "invalid_request_error"),
    ErrorSpec("SPEED_OUT_OF_RANGE", "ERROR", 400, "Speed must be between 0.25 and 4.0",
              "Fix the caller's speed parameter.", "invalid_request_error"),
    ErrorSpec("INVALID_REQUEST", "ERROR", 400, "The request is malformed",
              "Check the JSON body against the OpenAPI schema at /openapi.json.",
              "invalid_request_error"),
    ErrorSpec("UNAUTHORIZED", "WARNING", 401, "Missing or invalid API key",
              "Send 'Authorization: Bearer <key>' with a key from TTSOPS_API_KEYS.",
              "authentication_error"),
    ErrorSpec("NOT_FOUND", "WARNING", 404, "No such resource",
              "Check the URL path.", "invalid_request_error"),
    ErrorSpec("METHOD_NOT_ALLOWED", "WARNING", 405, "Method not allowed for this path",
              "Check the HTTP method against the OpenAPI schema at /openapi.json.",
              "invalid_request_error"),
    ErrorSpec("BODY_TOO_LARGE", "ERROR", 413, "Request body is too large",
              "Raise TTSOPS_MAX_BODY_BYTES or send less.", "invalid_request_error"),
    ErrorSpec("AUDIO_TOO_LONG", "ERROR", 400, "The audio for this input would be longer "
              "than the limit", "Split the text, or raise TTSOPS_MAX_AUDIO_S; numbers and "
              "symbols are read out in words and make audio longer than the text looks.",
              "invalid_request_error"),
    ErrorSpec("REQUEST_TIMEOUT", "WARNING", 408, "The request did not arrive in time",
              "The client sent its headers or body too slowly (TTSOPS_HEADER_TIMEOUT_S, "
              "TTSOPS_BODY_TIMEOUT_S); the connection was closed.", "invalid_request_error"),
    ErrorSpec("WEBUI_EVENT_UNVERIFIED", "WARNING", 403, "The playback report names a "
              "synthesis without its token", "Reports must carry the X-Synthesis-Token the "
              "synthesis was answered with; the key changes when the server restarts unless "
              "TTSOPS_WEBUI_EVENT_KEY is set.", "permission_error"),
    ErrorSpec("CLIENT_CLOSED", "WARNING", 499, "The client went away; its synthesis was "
              "cancelled", "Nobody was left to answer; many at once point to a client "
              "timeout shorter than the synthesis time.", "invalid_request_error"),
    ErrorSpec("RATE_LIMITED", "WARNING", 429, "Too many requests from this client",
              "Back off per Retry-After, or raise TTSOPS_RATE_LIMIT_PER_MINUTE.",
              "rate_limit_error"),
    # --- capacity --------------------------------------------------------------------
    ErrorSpec("QUEUE_FULL", "WARNING", 429, "The synthesis queue is full",
              "Queue wait is the bottleneck: add workers or lower load; see queue_ms.",
              "rate_limit_error"),
    ErrorSpec("SYNTHESIS_TIMEOUT", "ERROR", 504, "Synthesis took longer than the limit",
              "Check stage_time of the id for the slow stage; the worker was replaced.",
              "server_error"),
    # --- engine and model ------------------------------------------------------------
    ErrorSpec("MODEL_LOAD_FAILED", "ERROR", 503, "The TTS model failed to load",
              "Read the traceback of model_load_failed: path, files, memory, device.",
              "server_error"),
    ErrorSpec("MODEL_LOAD_TIMEOUT", "ERROR", 503, "The TTS model took too long to load",
              "Check disk and device; raise TTSOPS_MODEL_LOAD_TIMEOUT_S if it is slow.",
              "server_error"),
    ErrorSpec("ENGINE_NOT_READY", "ERROR", 503, "No engine is ready yet",
              "The engine is still loading or failed to load; see /readyz and engine_load.",
              "server_error"),
    ErrorSpec("SHUTTING_DOWN", "ERROR", 503, "The server is shutting down",
              "Retry on another replica; in-flight work longer than TTSOPS_SHUTDOWN_GRACE_S "
              "is cut at SIGTERM (raise it, and the orchestrator's grace period with it).",
              "server_error"),
    ErrorSpec("ENGINE_CRASHED", "ERROR", 503, "The engine worker died during synthesis",
              "A native crash or kill; see worker_died and the input of that id.",
              "server_error"),
    ErrorSpec("ENGINE_FAILED", "ERROR", 500, "The engine raised an error",
              "See synthesis_failed for the traceback and where.", "server_error"),
    ErrorSpec("AUDIO_SILENT", "ERROR", 422, "The voice produced only silence for this input",
              "The text has nothing this voice can speak (symbols, another script): read "
              "the id's text; if every request does this, the engine is broken.",
              "invalid_request_error"),
    ErrorSpec("MODEL_WARNING", "WARNING", 500, "The model warned during synthesis",
              "Read model_warning's message; e.g. max_mel_tokens exceeded cuts audio short: "
              "lower TTSOPS_INDEXTTS_MAX_TEXT_TOKENS.", "server_error"),
    # --- audio post-processing and encoding -------------------------------------------
    ErrorSpec("SCIPY_FFT_INVALID", "ERROR", 500,
              "Audio contains NaN/Inf values; refused to post-process",
              "The engine produced invalid samples; check the input text and engine.",
              "server_error"),
    ErrorSpec("AUDIO_ENCODE_FAILED", "ERROR", 500, "Encoding the audio failed",
              "Check libsndfile's format support and the traceback.", "server_error"),
    # --- storage ----------------------------------------------------------------------
    ErrorSpec("CACHE_WRITE_FAILED", "WARNING", 500,
              "Writing to the audio cache failed; audio served uncached",
              "Check free space and permissions of TTSOPS_CACHE_DIR.", "server_error"),
    ErrorSpec("CACHE_CORRUPT", "WARNING", 500, "A cache entry failed its checksum",
              "The entry was recomputed; check the disk if this repeats.", "server_error"),
    ErrorSpec("CACHE_DIR_USAGE_HIGH", "WARNING", 507, "The cache disk is nearly full",
              "Free space or lower TTSOPS_CACHE_MAX_MB before writes fail.", "server_error"),
    ErrorSpec("DISK_FULL", "ERROR", 507, "No space left on device",
              "Free space; look for cache_dir_usage warnings before this.", "server_error"),
    ErrorSpec("LOG_WRITE_FAILED", "WARNING", 500, "Writing the log failed; records held",
              "Check free space and permissions of TTSOPS_LOG_DIR.", "server_error"),
    ErrorSpec("LOG_SHIP_FAILED", "WARNING", 503,
              "Shipping rotated log files to ClickHouse failed; retried with back-off",
              "Check TTSOPS_LOG_SHIP_URL and the server; nothing is lost (shipped later).",
              "server_error"),
    # --- input cleaning and fallbacks (warnings) --------------------------------------
    ErrorSpec("TEXT_SANITIZED", "WARNING", 400,
              "Control or invisible characters were removed from the input",
              "Harmless alone; many at once point to a client that mangles text.",
              "invalid_request_error"),
    ErrorSpec("VOICE_FALLBACK", "WARNING", 400, "Unknown voice replaced by the default",
              "The client asks for a voice this engine lacks.", "invalid_request_error"),
    ErrorSpec("WEBUI_PLAYBACK_FAILED", "WARNING", 500, "The web page could not play audio",
              "See webui_event detail: codec, autoplay policy, network.", "server_error"),
    ErrorSpec("INTERNAL_ERROR", "ERROR", 500, "Internal error",
              "A bug: the traceback in synthesis_failed or http_error says where.",
              "server_error"),
]

REGISTRY: dict[str, ErrorSpec] = {s.code: s for s in _SPECS}


def spec(code: str) -> ErrorSpec:
    """The registry entry for ``code``; unknown codes map to INTERNAL_ERROR's spec."""
    return REGISTRY.get(code) or REGISTRY["INTERNAL_ERROR"]


class TTSError(Exception):
    """The one exception root: every ttsops failure carries a registry code."""

    def __init__(self, code: str, detail: str | None = None, *, param: str | None = None,
                 **context: Any) -> None:
        if code not in REGISTRY:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.spec = REGISTRY[code]
        self.detail = detail
        self.param = param
        self.context = context
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return self.spec.status

    @property
    def message(self) -> str:
        return f"{self.spec.message}: {self.detail}" if self.detail else self.spec.message

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI error body: ``{"error": {message, type, param, code}}``."""
        return {"error": {"message": self.message, "type": self.spec.type,
                          "param": self.param, "code": self.code}}
