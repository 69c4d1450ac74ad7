"""Every failure as an OpenAI-shaped JSON error: ``{"error": {message, type, param, code}}``.

The code comes from the registry (errors.py), so the same code is in the body, in the
log record and in the metric label. FastAPI's own failures (validation, 404, 405) are
mapped onto registry codes too, so no response of this service has another shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from ..errors import TTSError, spec
from ..events import get_logger

log = get_logger("ttsops.server")

# Retry-After (seconds) for codes where waiting helps
RETRY_AFTER = {"QUEUE_FULL": 1, "ENGINE_NOT_READY": 5, "MODEL_LOAD_FAILED": 30,
               "ENGINE_CRASHED": 1}

_STATUS_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "BODY_TOO_LARGE",
                 401: "UNAUTHORIZED", 429: "RATE_LIMITED"}

# validation failure of a request field -> registry code
_FIELD_CODES = {"input": "INVALID_REQUEST", "speed": "SPEED_OUT_OF_RANGE",
                "response_format": "FORMAT_UNSUPPORTED"}


class StreamAborted(Exception):
    """A streamed response failed after its first bytes: the connection is cut so that
    the client cannot take the truncated audio for a success."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def error_body(code: str, detail: str | None = None, param: str | None = None) -> dict[str, Any]:
    s = spec(code)
    message = f"{s.message}: {detail}" if detail else s.message
    return {"error": {"message": message, "type": s.type, "param": param, "code": s.code}}


def error_response(code: str, detail: str | None = None, param: str | None = None,
                   headers: Mapping[str, str] | None = None,
                   retry_after: float | None = None) -> JSONResponse:
    s = spec(code)
    hdrs = dict(headers or {})
    ra = retry_after if retry_after is not None else RETRY_AFTER.get(s.code)
    if ra is not None:
        hdrs["Retry-After"] = str(max(1, int(-(-ra // 1))))
    return JSONResponse(error_body(code, detail, param), status_code=s.status, headers=hdrs)


def note_error(request_scope: Mapping[str, Any], code: str) -> None:
    """Remember the error code of this request for the http_request record and metrics."""
    state = request_scope.get("ttsops")
    if isinstance(state, dict):
        state["error_code"] = code


_RANGE_ERRORS = ("greater_than_equal", "less_than_equal", "greater_than", "less_than")


def _json_type(error: Mapping[str, Any]) -> str:
    value = error.get("input")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"a string ({value[:20]!r})"
    names: dict[type, str] = {list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def validation_code(errors: Sequence[Any]) -> tuple[str, str | None, str]:
    """(code, param, detail) for the first pydantic error of a request."""
    if not errors:
        return "INVALID_REQUEST", None, "invalid request"
    first = errors[0]
    kind = first.get("type", "")
    if kind == "json_invalid":  # its loc is ("body", <character offset>), not a field
        why = str((first.get("ctx") or {}).get("error") or "").strip()
        pos = [x for x in first.get("loc", ()) if isinstance(x, int)]
        where = f" at character {pos[0]}" if pos else ""
        return "INVALID_REQUEST", None, \
            f"the body is not valid JSON{where}{': ' + why if why else ''}"[:300]
    loc = [str(x) for x in first.get("loc", ()) if x not in ("body",)]
    param = loc[0] if loc else None  # the request field, as OpenAI names it
    msg = str(first.get("msg", "invalid value"))
    if param is None:
        return "INVALID_REQUEST", None, "the body must be a JSON object"
    if kind in ("model_attributes_type", "dict_type"):
        return "INVALID_REQUEST", param, f"'{param}' must be a JSON object"
    top = loc[0] if loc else ""
    code = _FIELD_CODES.get(top, "INVALID_REQUEST")
    if top == "speed" and kind not in _RANGE_ERRORS:  # a wrong type, not a wrong number
        return "INVALID_REQUEST", "speed", \
            f"'speed' must be a JSON number from 0.25 to 4.0, got {_json_type(first)}"
    if kind == "missing":
        code = "INVALID_REQUEST"
        msg = f"'{param}' is required"
    elif code == "INVALID_REQUEST":
        msg = f"{param}: {msg}"
    return code, param, msg[:300]


def _schema_without_422(app: FastAPI) -> None:
    """FastAPI documents a 422 ``HTTPValidationError`` on every route that takes input;
    this service answers those failures with 400 and the OpenAI error shape instead, so
    the schema says that (clients and schema-driven tests believe the schema)."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = make()
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        comps.setdefault("ErrorResponse", {
            "title": "ErrorResponse", "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["message", "type", "code"],
                                     "properties": {"message": {"type": "string"},
                                                    "type": {"type": "string"},
                                                    "param": {"type": ["string", "null"]},
                                                    "code": {"type": "string"}}}}})
        for item in schema.get("paths", {}).values():
            for op in item.values():
                responses = op.get("responses", {})
                if responses.pop("422", None) is not None and "400" not in responses:
                    responses["400"] = {
                        "description": "Invalid request (INVALID_REQUEST and other 400 "
                                       "codes of the registry)",
                        "content": {"application/json": {"schema": {
                            "$ref": "#/components/schemas/ErrorResponse"}}}}
        comps.pop("HTTPValidationError", None)
        comps.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    # FastAPI documents replacing ``app.openapi`` to customise the schema; mypy treats
    # assigning to a method as an error
    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the OpenAI error shape."""
    _schema_without_422(app)

    @app.exception_handler(TTSError)
    async def _tts_error(request: Request, exc: TTSError) -> JSONResponse:
        note_error(request.scope, exc.code)
        ra = exc.context.get("retry_after")
        sid = exc.context.get("id")
        return error_response(exc.code, exc.detail, exc.param,
                              headers={"X-Synthesis-ID": str(sid)} if sid else None,
                              retry_after=float(ra) if ra is not None else None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        code, param, detail = validation_code(exc.errors())
        note_error(request.scope, code)
        log.warning("request_invalid", error_code=code, param=param, message=detail,
                    path=request.url.path[:200])
        return error_response(code, detail, param)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's ServerErrorMiddleware answers with this, then re-raises: the
        # service layer around it records the http_error (with the traceback)
        return error_response("INTERNAL_ERROR")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cause = exc.__cause__
        if isinstance(cause, TTSError):  # raised while FastAPI read the body
            return await _tts_error(request, cause)
        if isinstance(cause, UnicodeDecodeError):  # the JSON body is not UTF-8
            bad = cause.object[cause.start:cause.start + 1].hex()
            return await _tts_error(request, TTSError(
                "TEXT_INVALID", f"the body is not UTF-8 (byte 0x{bad} at offset "
                f"{cause.start})", param=None))
        code = _STATUS_CODES.get(exc.status_code)
        if code is None:
            code = "INVALID_REQUEST" if exc.status_code < 500 else "INTERNAL_ERROR"
        note_error(request.scope, code)
        detail = None if exc.status_code in (404, 405) else str(exc.detail)[:300]
        resp = error_response(code, detail)
        if exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        if spec(code).status != exc.status_code:
            resp.status_code = exc.status_code
        return resp
