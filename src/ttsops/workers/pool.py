"""``WorkerPool``: N engine processes behind a bounded wait queue, as the event loop sees
it (``run``, ``stream``, ``cancel``, ``status``, ``reload``). The queue is ``queue.py``,
the processes' lives ``lifecycle.py``, each worker's serving thread ``serving.py``."""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
import os
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from .. import events
from ..errors import TTSError
from ..pipeline.types import STAGES
from .lifecycle import Lifecycle
from .protocol import CANCEL_SLOTS, Mode
from .queue import WaitQueue
from .runner import DEFAULT_RUNNER
from .serving import Serving
from .state import Item, Worker, WorkerState, finish, resolve

if TYPE_CHECKING:
    from ..config import Settings
    from ..engines.base import EngineInfo, VoiceInfo
    from ..logsink import ItemQueue


def default_worker_count(settings: Settings) -> int:
    """``settings.workers``, or one per core (one per GPU for GPU-only engines)."""
    if settings.workers:
        return int(settings.workers)
    if settings.engine == "indextts2":
        try:
            import torch

            return max(1, int(torch.cuda.device_count()))
        except Exception:
            return 1
    return max(1, os.cpu_count() or 1)


class WorkerPool:
    """N engine processes, a bounded wait queue, timeouts and restarts.

    Each worker process has a serving thread in this process that takes the next waiting
    synthesis as soon as its worker is free, so a busy worker never waits for the event
    loop between two jobs. The event loop only submits and awaits."""

    def __init__(self, settings: Settings, *, workers: int | None = None,
                 runner: str = DEFAULT_RUNNER, log_queue: ItemQueue | None = None,
                 on_restart: Callable[[str], None] | None = None,
                 on_load: Callable[[str, str], None] | None = None) -> None:
        self.settings = settings
        self.size = workers or default_worker_count(settings)
        self.queue_size = settings.queue_size
        self.timeout = settings.request_timeout_s
        self.ctx = mp.get_context("spawn")
        self.workers = [Worker(i, cancels=self.ctx.RawArray("q", [-1] * CANCEL_SLOTS))
                        for i in range(self.size)]
        self.stopping = threading.Event()
        self.queue = WaitQueue(self.stopping)
        self.life = Lifecycle(settings, self.workers, self.ctx, runner, self.stopping,
                              on_restart=on_restart, on_load=on_load)
        self.life.log_queue = log_queue
        self._items: dict[str, Item] = {}  # by synthesis id, until answered (cancel)
        self._threads: list[threading.Thread] = []

    # what the workers' loads told (see Lifecycle)
    @property
    def info(self) -> EngineInfo | None:
        return self.life.info

    @property
    def voices(self) -> list[VoiceInfo]:
        return self.life.voices

    @property
    def ever_ready(self) -> bool:
        return self.life.ever_ready

    @property
    def last_load_error(self) -> tuple[str, str] | None:
        return self.life.last_load_error

    @property
    def restarts(self) -> int:
        return self.life.restarts

    @property
    def waiting(self) -> int:
        """Syntheses submitted and not yet taken by a worker."""
        return self.queue.waiting

    # --- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        if self.life.log_queue is None:
            from .. import logsink

            sink = logsink.active()
            self.life.log_queue = sink.mp_queue(self.ctx) if sink is not None \
                else self.ctx.Queue()
        for w in self.workers:
            self.life.spawn(w, reason=None)
            serving = Serving(w, self.queue, self.life, self.timeout)
            t = threading.Thread(target=serving.serve, daemon=True,
                                 name=f"ttsops-pool-{w.index}")
            t.start()
            self._threads.append(t)

    async def stop(self, timeout: float = 5.0) -> None:
        for item in self.queue.close():
            finish(item, None, TTSError("ENGINE_NOT_READY", "the server is stopping"))
        await asyncio.to_thread(self._stop_processes, timeout)

    def _stop_processes(self, timeout: float) -> None:
        self.life.stop_processes(timeout)
        for t in self._threads:  # each ends once its worker is gone
            t.join(timeout)

    def reload(self) -> bool:
        """Load the engine afresh in every worker (SIGHUP); see ``Lifecycle.reload``."""
        return self.life.reload()

    # --- status ----------------------------------------------------------------------
    @property
    def ready_count(self) -> int:
        return sum(1 for w in self.workers if w.state in (WorkerState.READY,
                                                          WorkerState.BUSY))

    @property
    def ready(self) -> bool:
        return self.ready_count > 0

    def status(self) -> dict[str, Any]:
        return {
            "workers": self.size, "ready": self.ready_count, "queue_depth": self.waiting,
            "queue_size": self.queue_size, "restarts": self.restarts,
            "states": [w.state.value for w in self.workers],
            "last_load_error": self.last_load_error[0] if self.last_load_error else None,
        }

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers if w.pid is not None]

    def retry_after(self) -> float:
        ready = max(1, self.ready_count)
        return max(1.0, math.ceil((self.waiting + 1) * self.queue.ewma_s / ready))

    # --- running a job (event loop side) ---------------------------------------------
    async def run(self, job: Any, then: Callable[[Any, float], Any] | None = None
                  ) -> tuple[Any, float]:
        """Run the engine half of ``job`` on a worker: (``RenderedAudio``, queue_ms).
        With ``then``, the answer is ``then(RenderedAudio, queue_ms)``, called on the
        worker's serving thread (with the request's log context) as soon as the worker
        answers: e.g. ``finish``, without a hop through the event loop and a thread pool."""
        item = self._submit(Mode.BACK, job, None)
        item.then = then
        queue_ms = await self._wait_start(item)
        try:
            return await item.done, queue_ms
        except TTSError as e:
            e.context["queue_ms"] = queue_ms
            raise

    async def stream(self, job: Any) -> AsyncIterator[tuple[str, Any]]:
        """Stream ``job`` on a worker: yields ("queued", queue_ms) once, then
        ("chunk", StreamChunk) as the worker sends them."""
        q: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def on_part(chunk: Any) -> None:  # serving thread
            loop.call_soon_threadsafe(q.put_nowait, chunk)

        item = self._submit(Mode.STREAM, job, on_part)
        queue_ms = await self._wait_start(item)
        yield "queued", queue_ms
        # parts are queued before the answer resolves ``done`` (both via call_soon_threadsafe)
        item.done.add_done_callback(lambda _f: q.put_nowait(None))
        while True:
            chunk = await q.get()
            if chunk is not None:
                yield "chunk", chunk
                continue
            exc = item.done.exception()
            if exc is not None:
                if isinstance(exc, TTSError):
                    exc.context["queue_ms"] = queue_ms
                raise exc
            return

    def _submit(self, mode: Mode, job: Any, on_part: Callable[[Any], None] | None) -> Item:
        self._admit()
        loop = asyncio.get_running_loop()
        ctx = {k: v for k in ("request_id", "trace_id", "id")
               if (v := events.current(k)) is not None}
        item = Item(mode, job, ctx, loop, loop.create_future(), loop.create_future(),
                    on_part)
        self.queue.put(item)
        jid = getattr(job, "id", None)
        if jid:
            self._items[jid] = item
            item.done.add_done_callback(lambda _f: self._forget(jid, item))
        return item

    def _admit(self) -> None:
        """Raise the error a new synthesis gets when it cannot wait for a worker."""
        if self.stopping.is_set():
            raise TTSError("ENGINE_NOT_READY", "the server is stopping", retry_after=5,
                           stage=STAGES[0])
        if not self.ready:
            if self.last_load_error is not None:
                code, msg = self.last_load_error
                raise TTSError(code, msg, retry_after=30, stage=STAGES[0])
            if not self.ever_ready:
                raise TTSError("ENGINE_NOT_READY", "the engine is still loading",
                               retry_after=5, stage=STAGES[0])
        if self.waiting >= self.queue_size:
            raise TTSError("QUEUE_FULL", f"{self.waiting} syntheses waiting",
                           retry_after=self.retry_after(), stage=STAGES[0])

    def _forget(self, jid: str, item: Item) -> None:
        if self._items.get(jid) is item:
            del self._items[jid]

    def cancel(self, job_id: str, error: TTSError) -> bool:
        """(event loop) Stop the synthesis ``job_id``: out of the queue if it waits, or
        told to stop at its next segment if a worker runs it. Its caller gets ``error``
        at once (the worker's late answer is dropped). False if it is not here (done)."""
        item = self._items.get(job_id)
        if item is None or not self.queue.cancel(item):
            return False
        error.context.setdefault("stage", item.stage)
        resolve(item.started, None, error)
        resolve(item.done, None, error)
        return True

    def cancel_all(self, error: Callable[[], TTSError]) -> int:
        """(event loop) ``cancel`` every synthesis waiting or running (shutdown)."""
        return sum(self.cancel(jid, error()) for jid in list(self._items))

    async def _wait_start(self, item: Item) -> float:
        """queue_ms once a worker took the item; SYNTHESIS_TIMEOUT if none did in time."""
        if item.started.done():
            return item.started.result()
        timer = item.loop.call_later(self.timeout, self._expire, item)
        try:
            return await asyncio.shield(item.started)
        finally:
            timer.cancel()

    def _expire(self, item: Item) -> None:
        """(event loop) The item waited ``timeout`` for a worker: answer SYNTHESIS_TIMEOUT
        unless it started at the last moment."""
        if self.queue.expire(item):
            resolve(item.started, None, TTSError(
                "SYNTHESIS_TIMEOUT", f"waited {self.timeout:g} s for a worker",
                queue_ms=round(self.timeout * 1000.0, 1), stage=STAGES[0]))
