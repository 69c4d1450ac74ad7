"""``ttsops serve``: the HTTP service under uvicorn, its own log writer, engine workers.

Shutdown (SIGTERM or SIGINT): the listening socket is closed at once and idle
connections with it; syntheses in flight get ``TTSOPS_SHUTDOWN_GRACE_S`` to finish and
be answered; whatever still runs then is cut and answered 503 ``SHUTTING_DOWN`` (a stream
already under way is cut off); the workers stop, the log is flushed and the process
exits with status 0. Forwarded headers are not uvicorn's business here
(``proxy_headers`` off): the middleware honours them from ``TTSOPS_TRUSTED_PROXIES`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
from collections.abc import Iterator
from typing import Any

import click

_UNCOMPLETED = "ASGI callable returned without completing response"
# idle keep-alive connections are closed after this long: longer than clients' own idle
# expiry (httpx: 5 s), so that the client closes first and never sends a request into a
# connection the server is closing at that moment
KEEP_ALIVE_S = 30
# after the grace period, the cut syntheses' 503 answers and records need a moment
CUT_MARGIN_S = 5.0
_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def tune_malloc(threshold: int = 1024 * 1024) -> bool:
    """Make glibc serve every allocation above ``threshold`` with its own mmap, returned
    to the system when freed. By default the threshold grows with the largest block
    freed (up to 32 MB), after which audio buffers of a burst come from the heap and the
    process keeps their memory (issue 15: 218 MB held after ten long answers).
    1 MB, not 256 kB: a cache hit's answer of 5-20 s of wav (230 kB-1 MB) would
    otherwise get fresh mappings on every request (0.05 ms of a 0.33 ms hit, measured
    under wrk); long answers (MBs) still come from, and go back to, their own mmap."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc
        return False


class _DropCutStreams(logging.Filter):
    """A streamed response cut on purpose after a failure is already explained by our own
    records (synthesis_failed, http_request stream_aborted=true); uvicorn's generic error
    line for it would only add an unexplained ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _UNCOMPLETED not in record.getMessage()


@click.command()
@click.option("--host", default=None, help="Address to bind (TTSOPS_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (TTSOPS_PORT, default 8000).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Engine worker processes (TTSOPS_WORKERS; 0: one per core).")
@click.option("--engine", default=None, help="Engine: espeak, fake, piper, indextts2 "
                                             "(TTSOPS_ENGINE).")
@click.option("--log-dir", type=click.Path(file_okay=False), default=None,
              help="Log directory (TTSOPS_LOG_DIR).")
def serve(host: str | None, port: int | None, workers: int | None, engine: str | None,
          log_dir: str | None) -> None:
    """Run the HTTP service: OpenAI-compatible speech API, web page, /metrics."""
    import uvicorn

    from .. import events, logsink
    from ..engines.registry import engine_names
    from ..workers import default_worker_count
    from .app import create_app
    from .clientaddr import ClientAddress
    from .protocol import with_header_timeout

    overrides: dict[str, Any] = {k: v for k, v in {
        "host": host, "port": port, "workers": workers, "engine": engine,
        "log_dir": log_dir}.items() if v is not None}
    settings = _settings(overrides)
    if settings.engine.strip().lower() not in engine_names():
        raise click.ClickException(f"unknown engine {settings.engine!r}; known: "
                               f"{', '.join(engine_names())} (--engine or TTSOPS_ENGINE)")
    try:
        sink = logsink.setup(settings)
    except (OSError, RuntimeError) as e:  # unwritable directory, another server's log
        raise click.ClickException(f"cannot write the log in {settings.log_dir}: {e}") from e
    events.install_stdlib_bridge()
    logging.getLogger("uvicorn.error").addFilter(_DropCutStreams())
    banner = (f"ttsops: serving http://{settings.host}:{settings.port}/ "
              f"(engine {settings.engine}, {default_worker_count(settings)} workers); "
              f"log {sink.dir / logsink.LIVE}")

    app = create_app(settings)
    grace = settings.shutdown_grace_s
    clients = ClientAddress(settings.trusted_proxies)

    class Server(uvicorn.Server):
        """Says that it serves once it listens: a taken port fails before the banner.
        A signal starts the shutdown grace period (``SynthesisService.begin_shutdown``)
        and, once everything is answered, the process exits normally (uvicorn would
        re-raise the signal: no atexit, semaphores of the log queue left behind)."""

        loop: asyncio.AbstractEventLoop | None = None

        async def startup(self, sockets: Any = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().startup(sockets)
            if self.started:
                click.echo(banner, err=True)

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            service = getattr(app.state, "service", None)
            if service is not None and self.loop is not None:
                self.loop.call_soon_threadsafe(service.begin_shutdown, grace)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    self._captured_signals.clear()  # exit normally, do not re-raise

    tune_malloc()
    try:
        server = Server(uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None,
            access_log=False, server_header=False,
            timeout_graceful_shutdown=int(grace + CUT_MARGIN_S + 0.999),
            timeout_keep_alive=KEEP_ALIVE_S, lifespan="on", proxy_headers=False,
            http=with_header_timeout(settings.header_timeout_s, settings.request_id_header,
                                     lambda peer: clients.resolve(peer, []))))
        server.run()
        if not server.started:  # what uvicorn.run does: the lifespan's start-up failed
            raise SystemExit(3)
    except SystemExit as e:
        if e.code not in (0, None):  # e.g. the port is taken: say so on the terminal too
            sink.flush()
            click.echo(f"ttsops serve: failed to start: {_last_error(sink.dir)}", err=True)
        raise
    finally:
        logsink.shutdown()


def _settings(overrides: dict[str, Any]) -> Any:
    """The settings, or one line per bad value naming its environment variable."""
    from pydantic import ValidationError

    from ..config import Settings

    try:
        return Settings(**overrides)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            field = str(err["loc"][0]) if err.get("loc") else "?"
            given = err.get("input")
            lines.append(f"TTSOPS_{field.upper()}={given!r}: {err['msg']}")
        raise click.ClickException("invalid setting: " + "; ".join(lines)) from None


def _last_error(log_dir: Any) -> str:
    from ..logline import iter_records

    last = "see the log"
    try:
        with open(log_dir / "app.log", encoding="utf-8", errors="replace") as fh:
            for rec in iter_records(fh):
                if rec.level == "ERROR":
                    last = rec.get("msg") or rec.get("message") or rec.event
    except OSError:
        pass
    return last
