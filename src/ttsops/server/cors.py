"""CORS for browser apps on other origins (``TTSOPS_CORS_ORIGINS``): Starlette's
``CORSMiddleware`` in two places around the service layer: outside it for the headers of
every response (errors the service layer answers itself included), inside it to answer
preflights, so that they are logged and counted like every request. Off by default (no
origin is allowed, ``OPTIONS`` answers 405)."""

from __future__ import annotations

from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

# what a browser app may read from a response besides the CORS-safelisted headers
EXPOSED = ["X-Synthesis-ID", "X-Request-ID", "X-Cache-Hit", "X-Sample-Rate",
           "X-Audio-Duration-Ms", "X-Audio-Metrics", "Server-Timing", "Retry-After"]
MAX_AGE_S = 600  # how long a browser may keep a preflight's answer


def origins(setting: str) -> list[str]:
    """``TTSOPS_CORS_ORIGINS``: empty (none), ``*`` (any), or a comma list of origins."""
    return [o.strip().rstrip("/") for o in setting.split(",") if o.strip()]


def options(setting: str, request_id_header: str) -> dict[str, Any] | None:
    """The ``CORSMiddleware`` options for the setting, or None when CORS is off."""
    allowed = origins(setting)
    if not allowed:
        return None
    return {"allow_origins": ["*"] if "*" in allowed else allowed,
            "allow_methods": ["GET", "HEAD", "POST", "OPTIONS"],
            "allow_headers": ["Authorization", "Content-Type", request_id_header,
                              "traceparent"],
            "expose_headers": [*EXPOSED, request_id_header] if request_id_header not in
            EXPOSED else EXPOSED,
            "allow_credentials": False,  # bearer tokens travel in a header, not cookies
            "max_age": MAX_AGE_S}


def is_preflight(scope: Scope) -> bool:
    return scope["type"] == "http" and scope["method"] == "OPTIONS" and any(
        k == b"access-control-request-method" for k, _ in scope["headers"])


class CORSOuter:
    """Outside the service layer: Starlette's CORS headers on every response, the
    service's own errors (401, 429, 413) included, so that a browser app can read them.
    Preflights go on inward, to be logged and answered by ``CORSPreflight``."""

    def __init__(self, app: ASGIApp, **opts: Any) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, **opts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_preflight(scope):
            await self.app(scope, receive, send)
        else:
            await self.cors(scope, receive, send)


class CORSPreflight:
    """Inside the service layer: answers preflights (Starlette's answer), after the
    service layer has given them a request id; its http_request record logs them."""

    def __init__(self, app: ASGIApp, **opts: Any) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, **opts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_preflight(scope):
            await self.cors(scope, receive, send)  # never calls the app for a preflight
        else:
            await self.app(scope, receive, send)
