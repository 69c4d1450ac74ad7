"""``/healthz`` (the process answers), ``/readyz`` (an engine worker is ready) and
``/metrics`` (Prometheus text exposition)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .. import __version__
from .errors_http import error_body

router = APIRouter()
_STARTED = time.time()


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "version": __version__,
            "uptime_s": round(time.time() - _STARTED, 1)}


@router.get("/readyz", summary="Readiness: at least one engine worker is ready",
            responses={503: {"description": "No engine ready (loading, or the load "
                                            "failed: see model_load_failed in the log)"}})
async def readyz(request: Request) -> JSONResponse:
    pool = request.app.state.pool
    status = pool.status()
    info = pool.info
    body: dict[str, Any] = {"status": "ready" if pool.ready else "not_ready", **status,
                            "engine": getattr(info, "name", request.app.state.settings.engine),
                            "engine_version": getattr(info, "version", None)}
    if pool.ready:
        return JSONResponse(body)
    code = status["last_load_error"] or "ENGINE_NOT_READY"
    detail = pool.last_load_error[1] if pool.last_load_error else "the engine is still loading"
    request.scope["ttsops"]["error_code"] = code
    return JSONResponse({**body, **error_body(code, detail)}, status_code=503,
                        headers={"Retry-After": "5"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    return Response(m.render(), media_type=m.content_type)
