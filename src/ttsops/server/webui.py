"""The web page at ``/`` and the endpoint it reports playback to.

The page (static/index.html + app.js + style.css + favicon.svg, no external resources)
synthesises through ``POST /v1/audio/speech`` as server-sent events (the audio plays as it
arrives where the browser's MediaSource takes the format - mp3, aac - and each word is
highlighted as it is spoken), shows the synthesis id, request id, status, stage timings
and audio metrics (from ``speech.audio.done``), keeps a history of the page's syntheses
(replay, download as ``ttsops-<id>.<format>``), and reports what the player did to
``POST /v1/webui/events``: each report becomes one ``webui_event`` record carrying the
synthesis id (INFO for play/ended/pause and for request_failed - a failed synthesis the
page showed, already logged by the server - WARNING for error
(``warning_code=WEBUI_PLAYBACK_FAILED``) and stall), so "the play button did nothing" is
in the server's log.

A report that names a synthesis (``id``) or request (``request_id``) must carry the
``X-Synthesis-Token`` that synthesis was answered with (``tokens.py``); without it the
report is refused (403 ``WEBUI_EVENT_UNVERIFIED``), so nobody can file reports about
another's synthesis. A report naming neither is kept with ``verified=false`` (it points
at nobody); ``ttsops logs diagnose`` counts only ``verified=true`` reports. The endpoint
has its own per-client rate limit (``TTSOPS_WEBUI_EVENTS_PER_MINUTE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ..errors import TTSError
from ..events import get_logger
from .routes_openai import ErrorResponse

log = get_logger("ttsops.webui")
STATIC_DIR = Path(__file__).with_name("static")
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@/+=-]{0,127}$"

# Content-Security-Policy of the page: nothing from outside, no inline script
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")

router = APIRouter()


class WebUIEvent(BaseModel):
    """What the page reports about its player."""

    model_config = ConfigDict(extra="ignore", strict=True)

    kind: Literal["play", "ended", "error", "stall", "pause", "request_failed"]
    id: str | None = Field(None, pattern=_ID, description="Synthesis id (X-Synthesis-ID).")
    request_id: str | None = Field(None, pattern=_ID,
                                   description="Request id of the synthesis request.")
    token: str | None = Field(None, pattern=r"^[0-9a-f]{1,64}$",
                              description="X-Synthesis-Token of the synthesis answer.")
    detail: str | None = Field(None, max_length=500, description="What happened, e.g. the "
                                                                  "MediaError or play() rejection.")
    format: str | None = Field(None, pattern=r"^[a-z0-9]{1,8}$")
    fetch_ms: float | None = Field(None, ge=0, le=1e8, description="Click to response headers.")
    download_ms: float | None = Field(None, ge=0, le=1e8, description="Headers to full body.")
    load_ms: float | None = Field(None, ge=0, le=1e8, description="Body to canplay.")
    play_ms: float | None = Field(None, ge=0, le=1e8, description="Click to playing.")
    position_s: float | None = Field(None, ge=0, le=1e7)
    audio_duration_s: float | None = Field(None, ge=0, le=1e7)


_TIMINGS = ("fetch_ms", "download_ms", "load_ms", "play_ms", "position_s", "audio_duration_s")


def _page() -> bytes:
    return (STATIC_DIR / "index.html").read_bytes()


@router.get("/", include_in_schema=False)
async def index() -> Response:
    return HTMLResponse(_page(), headers={"Content-Security-Policy": CSP,
                                          "X-Content-Type-Options": "nosniff",
                                          "Referrer-Policy": "no-referrer",
                                          "Cache-Control": "no-cache"})


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """The page's icon (also linked from the page as /static/favicon.svg): browsers ask
    for /favicon.ico on their own, and a 404 there was an error on every page load."""
    return Response((STATIC_DIR / "favicon.svg").read_bytes(), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400"})


@router.post("/v1/webui/events", status_code=204, response_class=Response,
             summary="Playback report of the web page (logged as webui_event)",
             responses={403: {"model": ErrorResponse, "description": "WEBUI_EVENT_UNVERIFIED"},
                        429: {"model": ErrorResponse, "description": "RATE_LIMITED"}})
async def webui_event(event: WebUIEvent, request: Request) -> Response:
    state: dict[str, Any] = request.scope.get("ttsops") or {}
    verified = False
    if event.id or event.request_id:
        tokens = request.app.state.tokens
        if not tokens.check(event.id, event.request_id, event.token):
            raise TTSError("WEBUI_EVENT_UNVERIFIED", "no token" if not event.token else
                           "the token does not match the synthesis and request ids")
        verified = True
    if event.id:
        state["id"] = event.id
    fields: dict[str, Any] = {"id": event.id, "kind": event.kind, "detail": event.detail,
                              "synthesis_request_id": event.request_id,
                              "format": event.format, "verified": verified}
    for name in _TIMINGS:
        value = getattr(event, name)
        if value is not None:
            fields[name] = round(value, 1)
    if event.kind == "error":
        log.warning("webui_event", warning_code="WEBUI_PLAYBACK_FAILED", **fields)
    elif event.kind == "stall":
        log.warning("webui_event", **fields)
    else:
        log.info("webui_event", **fields)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.webui_events.labels(event.kind).inc()
    return Response(status_code=204)
