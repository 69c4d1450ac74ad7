"""The app factory: settings in, a FastAPI app out.

    app = create_app(settings)        # uvicorn.run(app) or `ttsops serve`

At start-up (lifespan) it starts the log writer (unless one is running), the engine worker
pool and the cache reporter; at shut-down it lets running syntheses finish, stops the
workers and flushes the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from .. import __version__, logsink
from ..config import Settings, get_settings
from ..events import get_logger
from ..workers import DEFAULT_RUNNER, WorkerPool
from . import cors, errors_http, routes_health, routes_openai, webui
from .fastpath import CacheHitFastPath
from .metrics import Metrics
from .middleware import ServiceMiddleware
from .synthesis import SynthesisService
from .tokens import SynthesisTokens

log = get_logger("ttsops.server")


def default_pipeline(settings: Settings) -> Any:
    """The main-process half of the pipeline (front, finish, fail) with the audio cache;
    the engine is only described here, it is loaded in the workers."""
    from ..pipeline.runner import Pipeline

    return Pipeline(settings=settings, load=False)


def _warm_text(languages: Any) -> None:
    from ..pipeline.normalize import warm

    with contextlib.suppress(Exception):  # a failure shows again, with its code, in use
        warm(languages)


class ServiceApp(FastAPI):
    """FastAPI with the service's edge (``edge``: CORS, ``ServiceMiddleware``, the cache-hit
    fast path; outermost first) around FastAPI's own stack instead of inside it.

    FastAPI puts its server-error, telemetry and body-limit layers around every user
    middleware (each wraps every message sent) and asks on every request whether
    OpenTelemetry is configured: a share of every cache hit. Here an HTTP request enters the edge
    directly; FastAPI's layers (errors, exception handlers, routing) are inside it, for the
    routes. Unhandled exceptions still become a 500 ``INTERNAL_ERROR`` in the OpenAI shape
    (``errors_http.install`` gives ``ServerErrorMiddleware`` that answer; the service layer
    then writes the ``http_error`` record). FastAPI's native OpenTelemetry hook, should a
    provider be configured (this service configures none), is honoured: it is looked up
    once, at the first request, and then every request takes FastAPI's own way in."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.edge: list[tuple[type, dict[str, Any]]] = []
        self._otel: bool | None = None

    def build_middleware_stack(self) -> Any:
        stack = super().build_middleware_stack()
        for cls, opts in reversed(self.edge):
            stack = cls(stack, **opts)
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._otel is None:
                tel = getattr(self, "_native_telemetry", None)
                self._otel = bool(tel is not None and tel.enabled())
            if not self._otel:  # what Starlette.__call__ does, without FastAPI's checks
                if self.root_path:
                    scope["root_path"] = self.root_path
                scope["app"] = self
                if self.middleware_stack is None:
                    self.middleware_stack = self.build_middleware_stack()
                await self.middleware_stack(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, workers: int | None = None,
               runner: str = DEFAULT_RUNNER, pipeline: Any = None,
               manage_log: bool = True) -> FastAPI:
    s = settings or get_settings()
    metrics = Metrics()
    pool = WorkerPool(s, workers=workers, runner=runner,
                      on_restart=lambda reason: metrics.worker_restarts.labels(reason).inc(),
                      on_load=lambda engine, status: metrics.engine_loads.labels(
                          engine, status).inc())
    state: dict[str, Any] = {"owns_log": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_log and logsink.active() is None:
            logsink.setup(s)
            state["owns_log"] = True
        pipe = pipeline if pipeline is not None else default_pipeline(s)
        app.state.service = SynthesisService(pipe, pool, metrics)
        cache = getattr(pipe, "cache", None)
        if cache is not None:
            _cache_gauges(metrics, cache)
        log.info("server_start", version=__version__, engine=s.engine, workers=pool.size,
                 queue_size=s.queue_size, timeout_s=s.request_timeout_s,
                 auth=bool(s.api_keys), rate_limit_per_minute=s.rate_limit_per_minute)
        await pool.start()
        # the text front's grammar and language detectors load beside the first requests
        # (a request that needs them first waits for them): those the engine's languages
        # can use (an engine without Chinese never reads Chinese numbers)
        languages = getattr(getattr(pipe, "info", None), "languages", None)
        asyncio.get_running_loop().run_in_executor(None, _warm_text, languages)
        hup = _reload_on_sighup(pool)
        reporter = None
        if cache is not None:
            from ..cache_health import CacheHealthReporter

            reporter = CacheHealthReporter.from_settings(s, cache).start()
        shipper = None
        if s.log_ship_url:  # TTSOPS_LOG_SHIP_URL: rotated files to ClickHouse (fleet/live)
            from ..fleet.live import LiveShipper

            shipper = LiveShipper(s.log_ship_url, s.log_dir, s.log_ship_interval_s).start()
        try:
            yield
        finally:
            log.info("server_stop", engine=s.engine)
            if hup:
                with contextlib.suppress(Exception):
                    asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            if reporter is not None:
                with contextlib.suppress(Exception):
                    reporter.stop()
            if shipper is not None:
                with contextlib.suppress(Exception):
                    shipper.stop()
            await app.state.service.drain(s.shutdown_grace_s)
            await pool.stop()
            if state["owns_log"]:
                logsink.shutdown()
            elif logsink.active() is not None:
                # uvicorn re-raises SIGTERM/SIGINT after shutdown (the process ends by
                # the signal, atexit does not run): write everything out now, including
                # what the stopped workers sent last
                await asyncio.sleep(0.1)
                sink = logsink.active()
                if sink is not None:
                    sink.flush()

    # no /docs or /redoc: FastAPI's pages load Swagger UI / ReDoc from a CDN, and this
    # service loads nothing from outside; the schema itself stays at /openapi.json
    app = ServiceApp(title="ttsops", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Text to speech with observability built in: an "
                              "OpenAI-compatible speech API, a web page, Prometheus "
                              "metrics, and logs that answer what happened to request X.")
    app.state.settings = s
    app.state.metrics = metrics
    app.state.pool = pool
    _pool_gauges(metrics, pool)
    errors_http.install(app)
    app.include_router(routes_openai.router)
    app.include_router(routes_health.router)
    app.include_router(webui.router)
    app.mount("/static", StaticFiles(directory=webui.STATIC_DIR), name="static")
    app.state.tokens = SynthesisTokens(s.webui_event_key)
    # the edge, outermost first, around FastAPI's own stack (see ServiceApp)
    cors_opts = cors.options(s.cors_origins, s.request_id_header)
    if cors_opts is not None:  # CORS headers on every response, the service's errors too
        app.edge.append((cors.CORSOuter, cors_opts))
    app.edge.append((ServiceMiddleware, dict(
        request_id_header=s.request_id_header, api_keys=s.api_keys,
        max_body_bytes=s.max_body_bytes, rate_limit_per_minute=s.rate_limit_per_minute,
        metrics=metrics, trusted_proxies=s.trusted_proxies,
        webui_events_per_minute=s.webui_events_per_minute, body_timeout_s=s.body_timeout_s,
        tokens=app.state.tokens)))
    if cors_opts is not None:  # preflights answered inside ServiceMiddleware (logged)
        app.edge.append((cors.CORSPreflight, cors_opts))
    # innermost: cache hits answered without FastAPI's routing (inside ServiceMiddleware)
    app.edge.append((CacheHitFastPath, {}))
    return app


def _pool_gauges(metrics: Metrics, pool: WorkerPool) -> None:
    """The worker pool's state as gauges, read at each scrape."""
    metrics.gauge("ttsops_queue_depth", "Syntheses waiting for a worker.", lambda: pool.waiting)
    metrics.gauge("ttsops_queue_capacity", "Syntheses that may wait before QUEUE_FULL.",
                  lambda: pool.queue_size)
    metrics.gauge("ttsops_workers", "Engine worker processes configured.", lambda: pool.size)
    metrics.gauge("ttsops_workers_ready", "Engine workers loaded and alive.",
                  lambda: pool.ready_count)
    metrics.gauge("ttsops_workers_busy", "Engine workers running a synthesis.",
                  lambda: sum(1 for w in pool.workers if w.state == "busy"))
    metrics.gauge("ttsops_ready", "1 when at least one engine worker is ready.",
                  lambda: 1.0 if pool.ready else 0.0)


def _reload_on_sighup(pool: WorkerPool) -> bool:
    """``kill -HUP <server pid>`` reloads the engine in every worker (see
    ``WorkerPool.reload``: one at a time, the old worker serves until the new one is
    ready, a failed load keeps the old ones). False where signals cannot be handled
    (not the main thread, e.g. an app run by a test client)."""

    def on_hup() -> None:
        started = pool.reload()
        log.warning("reload_requested", signal="SIGHUP",
                    action="reloading the engine" if started else "ignored: a reload is "
                                                                  "already running")

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_hup)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True


def _cache_gauges(metrics: Metrics, cache: Any) -> None:
    """Cache gauges, read at scrape time from the cache itself."""
    metrics.gauge("ttsops_cache_used_bytes", "Bytes held by the audio cache.",
                  lambda: cache.usage()[0])
    metrics.gauge("ttsops_cache_entries", "Entries in the audio cache.",
                  lambda: cache.usage()[1])
    metrics.gauge("ttsops_cache_budget_bytes", "Audio cache size budget.", lambda: cache.budget)
    metrics.gauge("ttsops_cache_usage_ratio", "Audio cache bytes / budget.",
                  lambda: cache.usage()[0] / cache.budget if cache.budget else None)
    metrics.counter("ttsops_cache_write_failures", "Cache writes that failed "
                    "(CACHE_WRITE_FAILED; audio still served).", lambda: cache.write_failures)
    metrics.counter("ttsops_cache_corrupt_entries", "Cache entries that failed their "
                    "checksum and were recomputed.", lambda: cache.corrupt)
