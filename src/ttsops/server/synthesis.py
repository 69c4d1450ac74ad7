"""The service's half of a synthesis: ``front`` here, the engine half on a worker, then
``finish`` or ``fail`` here - exactly once per synthesis, even when the client has gone.

``synthesize`` returns a whole ``SynthesisResult``; ``stream`` yields the audio as the
worker produces it (segment by segment). Cache hits are answered by ``front`` without a
worker. Every outcome is counted in the metrics and kept in a small in-memory table of
recent syntheses (``GET /v1/syntheses/{id}``).

A client that hangs up cancels its synthesis (``cancel``: out of the queue, or stopped
by its worker at the next segment; recorded once, ``status=cancelled``,
``CLIENT_CLOSED``). At shutdown (``begin_shutdown``) new syntheses are refused with 503
``SHUTTING_DOWN``; those in flight get ``TTSOPS_SHUTDOWN_GRACE_S`` to finish, then are
cut with the same code (``cut``), each outcome recorded once.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import TTSError
from ..events import get_logger
from ..pipeline.types import SynthesisRequest, SynthesisResult

log = get_logger("ttsops.server")
CACHED_CHUNK = 64 * 1024


class RecentSyntheses:
    """The last ``size`` syntheses' summaries, by id (bounded memory)."""

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        # a summary, or (its builder, arguments): built when asked for, not per request
        self.items: OrderedDict[str, Any] = OrderedDict()

    def put(self, sid: str | None, summary: Any) -> None:
        if not sid:
            return
        self.items[sid] = summary
        self.items.move_to_end(sid)
        while len(self.items) > self.size:
            self.items.popitem(last=False)

    def get(self, sid: str) -> dict[str, Any] | None:
        item = self.items.get(sid)
        if isinstance(item, tuple):
            item = self.items[sid] = item[0](*item[1])
        return item


def summary_of(result: SynthesisResult, request_id: str | None) -> dict[str, Any]:
    return _summary(*_summary_args(result, request_id))


def _summary_args(result: SynthesisResult, request_id: str | None) -> tuple[Any, ...]:
    """The result's fields without its audio (which a summary must not keep alive)."""
    return (result.id, request_id, result.format, result.voice, result.lang,
            result.cache_hit, result.cache_saved, result.sample_rate, len(result.audio),
            result.duration_ms, result.total_ms, result.queue_ms, result.stages,
            result.metrics, result.warnings)


def _summary(sid: str, request_id: str | None, fmt: str, voice: str, lang: str,
             cache_hit: bool, cache_saved: bool, sample_rate: int, audio_bytes: int,
             duration_ms: float, total_ms: float, queue_ms: float, stages: dict[str, float],
             metrics: dict[str, float], warnings: list[str]) -> dict[str, Any]:
    return {"id": sid, "object": "audio.synthesis", "status": "success",
            "request_id": request_id, "format": fmt, "voice": voice, "lang": lang,
            "cache_hit": cache_hit, "cache_saved": cache_saved, "sample_rate": sample_rate,
            "audio_bytes": audio_bytes, "audio_duration_ms": round(duration_ms, 1),
            "total_ms": round(total_ms, 1), "queue_ms": round(queue_ms, 1),
            "stages": {k: round(v, 2) for k, v in stages.items()},
            "metrics": {k: round(v, 4) for k, v in metrics.items()},
            "warnings": list(warnings), "error": None}


def failure_summary(sid: str | None, err: TTSError, request_id: str | None) -> dict[str, Any]:
    return {"id": sid, "object": "audio.synthesis", "status": "failed",
            "request_id": request_id, **err.to_openai()}


class SynthesisService:
    def __init__(self, pipeline: Any, pool: Any, metrics: Any = None,
                 recent: RecentSyntheses | None = None) -> None:
        self.pipeline = pipeline
        self.pool = pool
        self.metrics = metrics
        self.recent = recent or RecentSyntheses()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stopping = False
        self._cut_timer: asyncio.TimerHandle | None = None
        self._front_pool: ThreadPoolExecutor | None = None  # made at the first front

    # --- cancellation and shutdown ---------------------------------------------------
    def cancel(self, sid: str | None, code: str = "CLIENT_CLOSED") -> bool:
        """Stop the synthesis ``sid`` (client gone: CLIENT_CLOSED; shutdown: SHUTTING_DOWN).
        Its awaiting caller gets the error and records the outcome once."""
        if not sid:
            return False
        cancel = getattr(self.pool, "cancel", None)
        return bool(cancel(sid, _stop_error(code))) if cancel is not None else False

    def begin_shutdown(self, grace_s: float) -> None:
        """(event loop) SIGTERM: refuse new syntheses now; cut those still running after
        ``grace_s``."""
        if self.stopping:
            return
        self.stopping = True
        n = len(getattr(self.pool, "_items", ()))
        log.warning("shutdown_begin", grace_s=grace_s, in_flight=n)
        self._cut_timer = asyncio.get_running_loop().call_later(grace_s, self.cut)

    def cut(self) -> int:
        """Cut every synthesis still in flight with 503 SHUTTING_DOWN."""
        cancel_all = getattr(self.pool, "cancel_all", None)
        n = cancel_all(lambda: _stop_error("SHUTTING_DOWN")) if cancel_all else 0
        if n:
            log.warning("shutdown_cut", syntheses=n, error_code="SHUTTING_DOWN")
        return int(n)

    def _refuse_if_stopping(self) -> None:
        if self.stopping:
            raise TTSError("SHUTTING_DOWN", "not taking new syntheses", retry_after=1)

    # --- helpers ---------------------------------------------------------------------
    async def _front(self, req: SynthesisRequest, request_id: str | None) -> Any:
        t0 = time.perf_counter()
        try:
            return await self._front_off_loop(req, request_id)
        except TTSError as err:  # bad input: front() logged it (synthesis_failed/complete)
            if self.metrics is not None:
                self.metrics.observe_failure(err.code, time.perf_counter() - t0)
            self.recent.put(err.context.get("id"), failure_summary(err.context.get("id"), err,
                                                                    request_id))
            raise

    async def _front_off_loop(self, req: SynthesisRequest, request_id: str | None) -> Any:
        """``pipeline.front(req)`` on the front thread, not on the event loop: reading a
        long Chinese text full of numbers takes a third of a second, and on the loop it
        stalled every other request (health checks and cache hits included). One thread,
        so texts are read one at a time as before (the grammar is not shared between
        threads); the request's log context goes with it. Should the request be
        cancelled meanwhile, the outcome is still recorded once (``_abandoned``)."""
        if self._front_pool is None:
            self._front_pool = ThreadPoolExecutor(1, thread_name_prefix="ttsops-front")
        fut = asyncio.get_running_loop().run_in_executor(
            self._front_pool, contextvars.copy_context().run, self.pipeline.front, req)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            fut.add_done_callback(lambda f: self._abandoned(f, request_id))
            raise

    def _abandoned(self, fut: asyncio.Future[Any], request_id: str | None) -> None:
        """(event loop) The front of a request cancelled while it ran: a cache hit is
        counted as served, a synthesis that was about to be queued is recorded as
        cancelled (``CLIENT_CLOSED``); a failure was recorded by ``front`` itself."""
        if fut.cancelled() or fut.exception() is not None:
            return
        out = fut.result()
        if isinstance(out, SynthesisResult):
            self._succeeded(out, request_id)
        else:
            self._failed(out, _stop_error("CLIENT_CLOSED"), None, request_id)

    def _succeeded(self, result: SynthesisResult, request_id: str | None) -> None:
        if self.metrics is not None:
            self.metrics.observe_synthesis(result)
        # summarised when asked for (GET /v1/syntheses/{id}), not on every request
        self.recent.put(result.id, (_summary, _summary_args(result, request_id)))

    def _failed(self, job: Any, exc: BaseException, queue_ms: float | None,
                request_id: str | None) -> TTSError:
        """``queue_ms`` None: the synthesis never got a worker (QUEUE_FULL, not ready)."""
        stage = getattr(exc, "stage", None) or None
        if stage is None and isinstance(exc, TTSError):  # decided by the pool (workers.py)
            stage = exc.context.get("stage")
        err = self.pipeline.fail(job, exc, queue_ms=queue_ms or 0.0, stage=stage)
        if not isinstance(err, TTSError):  # defensive: always answer with a registry code
            err = TTSError("INTERNAL_ERROR", str(exc)[:200])
        err.context.setdefault("id", job.id)
        if self.metrics is not None:
            self.metrics.observe_failure(err.code, time.time() - job.started, queue_ms)
        self.recent.put(job.id, failure_summary(job.id, err, request_id))
        return err

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def hit(self, req: SynthesisRequest, request_id: str | None = None
            ) -> SynthesisResult | None:
        """The cached result of a request seen before, recorded and counted as
        ``synthesize`` does for a hit; None (nothing written) when it is not one."""
        out = self.pipeline.front_hit(req) if hasattr(self.pipeline, "front_hit") else None
        if out is not None:
            self._succeeded(out, request_id)
        return out

    # --- whole responses -----------------------------------------------------------
    async def synthesize(self, req: SynthesisRequest, request_id: str | None = None,
                         gone: Callable[[], Awaitable[Any]] | None = None) -> SynthesisResult:
        """The whole result. ``gone()``: resolves when the client hangs up; the synthesis
        is then cancelled and ``CLIENT_CLOSED`` raised. Whatever happens to the caller,
        the outcome (finish, fail or cancel) is recorded exactly once."""
        self._refuse_if_stopping()
        out = await self._front(req, request_id)
        if isinstance(out, SynthesisResult):  # cache hit, already logged by front()
            self._succeeded(out, request_id)
            return out
        task = self._spawn(self._complete(out, request_id))
        if gone is None:
            return await asyncio.shield(task)
        watcher = asyncio.ensure_future(gone())
        try:
            await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():  # the client hung up first
                self.cancel(out.id, "CLIENT_CLOSED")
            return await asyncio.shield(task)
        finally:
            watcher.cancel()

    async def _complete(self, job: Any, request_id: str | None) -> SynthesisResult:
        queue_ms: float | None = None

        def finish(audio: Any, waited: float) -> SynthesisResult:
            # on the worker's serving thread, as soon as the worker answers (cache write
            # and records off the event loop, without a thread-pool hop)
            nonlocal queue_ms
            queue_ms = waited
            return self.pipeline.finish(job, audio, queue_ms=waited)

        try:
            result, queue_ms = await self.pool.run(job, then=finish)
        except Exception as exc:
            queue_ms = getattr(exc, "context", {}).get("queue_ms", queue_ms)
            raise self._failed(job, exc, queue_ms, request_id) from None
        self._succeeded(result, request_id)
        return result

    # --- streamed responses --------------------------------------------------------
    async def stream(self, req: SynthesisRequest,
                     request_id: str | None = None) -> AsyncIterator[tuple[str, Any]]:
        """Yields ("start", id) first, then ("audio", bytes) pieces (each followed by
        ("words", [word timing dicts]) when the engine reports them), then ("done",
        SynthesisResult). A failure before the first audio raises ``TTSError``; after it,
        the iterator yields ("error", TTSError) and ends."""
        self._refuse_if_stopping()
        out = await self._front(req, request_id)
        if isinstance(out, SynthesisResult):
            self._succeeded(out, request_id)
            yield "start", out.id
            for i in range(0, len(out.audio), CACHED_CHUNK):
                yield "audio", out.audio[i:i + CACHED_CHUNK]
            yield "done", out
            return
        job = out
        q: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._spawn(self._stream_job(job, q, request_id))
        yield "start", job.id
        sent = False
        while True:
            kind, value = await q.get()
            if kind == "error":
                if not sent:
                    raise value
                yield "error", value
                return
            if kind == "audio":
                sent = True
            yield kind, value
            if kind == "done":
                return

    async def _stream_job(self, job: Any, q: asyncio.Queue[tuple[str, Any]],
                          request_id: str | None) -> None:
        queue_ms: float | None = None
        rendered = None
        try:
            async for kind, value in self.pool.stream(job):
                if kind == "queued":
                    queue_ms = value
                    continue
                if value.data:
                    q.put_nowait(("audio", value.data))
                if value.words:
                    q.put_nowait(("words", value.words))
                if value.last:
                    rendered = value.rendered
            if rendered is None:
                raise TTSError("INTERNAL_ERROR", "the stream ended without its last chunk")
            result = await asyncio.to_thread(self.pipeline.finish, job, rendered,
                                             queue_ms=queue_ms or 0.0)
        except Exception as exc:
            queue_ms = getattr(exc, "context", {}).get("queue_ms", queue_ms)
            q.put_nowait(("error", self._failed(job, exc, queue_ms, request_id)))
            return
        self._succeeded(result, request_id)
        q.put_nowait(("done", result))

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for syntheses still finishing (shutdown); cut what is left after
        ``timeout``, then wait for their outcomes to be recorded."""
        if self._cut_timer is not None:
            self._cut_timer.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        if self._tasks:
            self.cut()
            await asyncio.wait(list(self._tasks), timeout=5.0)
        if self._front_pool is not None:
            pool, self._front_pool = self._front_pool, None
            pool.shutdown(wait=False)


def _stop_error(code: str) -> TTSError:
    if code == "SHUTTING_DOWN":
        return TTSError(code, "cut at the end of the shutdown grace period", retry_after=1)
    return TTSError(code, "the client closed the connection")
