"""The service's half of a synthesis: ``front`` here, the engine half on a worker, then
``finish`` or ``fail`` here - exactly once per synthesis, even when the client has gone.

``synthesize`` returns a whole ``SynthesisResult``; ``stream`` yields the audio as the
worker produces it (segment by segment). Cache hits are answered by ``front`` without a
worker. Every outcome is counted in the metrics and kept in a small in-memory table of
recent syntheses (``GET /v1/syntheses/{id}``).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
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
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def put(self, sid: str | None, summary: dict[str, Any]) -> None:
        if not sid:
            return
        self.items[sid] = summary
        self.items.move_to_end(sid)
        while len(self.items) > self.size:
            self.items.popitem(last=False)

    def get(self, sid: str) -> dict[str, Any] | None:
        return self.items.get(sid)


def summary_of(result: SynthesisResult, request_id: str | None) -> dict[str, Any]:
    return {"id": result.id, "object": "audio.synthesis", "status": "success",
            "request_id": request_id, "format": result.format, "voice": result.voice,
            "lang": result.lang, "cache_hit": result.cache_hit, "cache_saved": result.cache_saved,
            "sample_rate": result.sample_rate, "audio_bytes": len(result.audio),
            "audio_duration_ms": round(result.duration_ms, 1),
            "total_ms": round(result.total_ms, 1), "queue_ms": round(result.queue_ms, 1),
            "stages": {k: round(v, 2) for k, v in result.stages.items()},
            "metrics": {k: round(v, 4) for k, v in result.metrics.items()},
            "warnings": list(result.warnings), "error": None}


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

    # --- helpers ---------------------------------------------------------------------
    def _front(self, req: SynthesisRequest, request_id: str | None) -> Any:
        t0 = time.perf_counter()
        try:
            return self.pipeline.front(req)
        except TTSError as err:  # bad input: front() logged it (synthesis_failed/complete)
            if self.metrics is not None:
                self.metrics.observe_failure(err.code, time.perf_counter() - t0)
            self.recent.put(err.context.get("id"), failure_summary(err.context.get("id"), err,
                                                                    request_id))
            raise

    def _succeeded(self, result: SynthesisResult, request_id: str | None) -> None:
        if self.metrics is not None:
            self.metrics.observe_synthesis(result)
        self.recent.put(result.id, summary_of(result, request_id))

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

    # --- whole responses -----------------------------------------------------------
    async def synthesize(self, req: SynthesisRequest,
                         request_id: str | None = None) -> SynthesisResult:
        out = self._front(req, request_id)
        if isinstance(out, SynthesisResult):  # cache hit, already logged by front()
            self._succeeded(out, request_id)
            return out
        # the rest runs to the end (finish or fail) even if the client goes away
        return await asyncio.shield(self._spawn(self._complete(out, request_id)))

    async def _complete(self, job: Any, request_id: str | None) -> SynthesisResult:
        queue_ms: float | None = None

        def finish(audio: Any, waited: float) -> SynthesisResult:
            # on the worker's serving thread, as soon as the worker answers (cache write
            # and records off the event loop, without a thread-pool hop)
            nonlocal queue_ms
            queue_ms = waited
            return self.pipeline.finish(job, audio, queue_ms=waited)  # type: ignore[no-any-return]

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
        out = self._front(req, request_id)
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
        """Wait for syntheses still finishing (shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
