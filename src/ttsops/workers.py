"""Engine worker processes behind a bounded queue.

Each worker is a process started with the *spawn* context: it loads the engine once
(``engine_load`` with its duration, or ``model_load_failed`` with engine, model, error
code and traceback), then runs the engine half of the pipeline (``pipeline.back``) for
one job at a time, logging through the main process's writer (``ForwardSink``; during a
job, over the job's own connection, in order with its answer).

The main process keeps the queue: a synthesis waits for an idle worker (``queue_ms``);
while a worker runs one synthesis, the next waiting one is already handed to it, so that
it never waits for the main process between two jobs;
when ``queue_size`` syntheses already wait, the next one gets 429 ``QUEUE_FULL``. A job
that runs longer than ``request_timeout_s`` gets 504 ``SYNTHESIS_TIMEOUT`` and its worker
is killed and replaced; a worker that dies during a job (killed, native crash) fails
that job alone with 503 ``ENGINE_CRASHED`` and is restarted (``worker_died``,
``worker_restarted``). A worker that fails to load is retried with back-off; the pool is
ready while at least one worker is.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import multiprocessing as mp
import os
import select
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from . import events, limits
from .errors import TTSError
from .events import get_logger
from .pipeline.types import STAGES, SynthesisFailure

log = get_logger("ttsops.workers")

DEFAULT_RUNNER = "ttsops.workers:make_runner"
RETRY_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
PREFETCH_POLL_S = 0.005  # while a worker runs a job alone: how often to look for a next one
REPLY_BUFFER = 4 << 20  # worker's socket send buffer: an answer never waits for our reads
CANCEL_SLOTS = 8  # per worker: job seq numbers to stop (at most 2 jobs are in flight)


def resolve(target: str) -> Callable[..., Any]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def default_worker_count(settings: Any) -> int:
    """``settings.workers``, or one per core (one per GPU for GPU-only engines)."""
    if settings.workers:
        return int(settings.workers)
    if settings.engine == "indextts2":
        try:
            import torch  # type: ignore[import-not-found]

            return max(1, int(torch.cuda.device_count()))
        except Exception:
            return 1
    return max(1, os.cpu_count() or 1)


# --- the worker process side -------------------------------------------------------

class PipelineRunner:
    """The worker-side object: the configured engine and the engine half of the pipeline
    (``load() -> EngineInfo``, ``voices()``, ``back(job)``, ``stream(job)``, ``close()``).
    The worker logs ``engine_load`` / ``model_load_failed`` itself (with its index and
    pid), so the pipeline gets an engine that is already loaded."""

    def __init__(self, settings: Any) -> None:
        from .engines.registry import create_engine, describe

        self.settings = settings
        self.engine = create_engine(None, settings)
        self.engine_name = self.engine.name
        pre = describe(self.engine)
        self.model = pre.model if pre is not None else ""
        self.pipeline: Any = None

    def load(self) -> Any:
        from .pipeline.runner import Pipeline

        info = self.engine.load()
        pipeline = Pipeline(self.engine, self.settings, cache=None, load=False)
        pipeline.info, pipeline.loaded = info, True
        self.pipeline = pipeline
        return info

    def warm_up(self) -> None:
        """One unlogged synthesis per language, so that the first request does not pay
        for lazy imports and filter design (hundreds of ms in llm_postproc)."""
        from .pipeline.types import SynthesisRequest

        prev = events.set_sink(events.NullSink())
        try:
            for lang, text in (("en", "Warm up."), ("zh", "预热。")):
                if lang not in self.pipeline.info.languages:
                    continue
                with contextlib.suppress(Exception):
                    job = self.pipeline.front(SynthesisRequest(
                        text=text, lang=lang, format="mp3",
                        voice=self.pipeline.default_voice()))
                    if not hasattr(job, "segments"):
                        continue
                    for _ in self.pipeline.stream(job):
                        pass
        finally:
            events.set_sink(prev, self.settings.log_level)

    def voices(self) -> list[Any]:
        return list(self.engine.voices())

    def back(self, job: Any) -> Any:
        return self.pipeline.back(job)

    def stream(self, job: Any) -> Iterator[Any]:
        return self.pipeline.stream(job)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.engine.close()


def make_runner(settings: Any) -> PipelineRunner:
    return PipelineRunner(settings)


def _as_failure(exc: BaseException, job: Any) -> SynthesisFailure:
    """A picklable failure to send back. ``back``/``stream`` raise ``SynthesisFailure``
    already logged; anything else is logged here, with the live traceback."""
    if isinstance(exc, SynthesisFailure):
        return exc
    code = exc.code if isinstance(exc, TTSError) else "ENGINE_FAILED"
    detail = exc.detail if isinstance(exc, TTSError) else f"{type(exc).__name__}: {exc}"
    log.error("synthesis_failed", exc=exc, id=getattr(job, "id", None), error_code=code,
              message=str(detail)[:500])
    return SynthesisFailure(code, detail, param=getattr(exc, "param", None), logged=True,
                            exc_type=type(exc).__name__, where=events.where(exc))


def worker_main(index: int, settings: Any, conn: Connection, log_q: Any,
                runner_factory: str, cancels: Any = None) -> None:
    """Entry point of a worker process. ``cancels``: shared memory (no lock, no
    semaphore) where the main process writes the seq number of a job to stop; the job
    checks it between segments (``limits.after_segment``)."""
    from .logsink import ForwardSink

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    events.set_sink(ForwardSink(log_q), settings.log_level)
    _grow_send_buffer(conn)
    pid = os.getpid()
    t0 = time.perf_counter()
    engine_name = getattr(settings, "engine", "?")
    runner: Any = None
    model = ""
    try:
        runner = resolve(runner_factory)(settings)
        engine_name = getattr(runner, "engine_name", engine_name)
        info = runner.load()
        engine_name = getattr(info, "name", engine_name)
        model = getattr(info, "model", "") or ""
        voices = list(runner.voices())
    except BaseException as exc:
        ms = (time.perf_counter() - t0) * 1000.0
        code = exc.code if isinstance(exc, TTSError) else "MODEL_LOAD_FAILED"
        if code not in ("MODEL_LOAD_FAILED", "MODEL_LOAD_TIMEOUT"):
            code = "MODEL_LOAD_FAILED"
        ctx_model = getattr(exc, "context", {}).get("model") if isinstance(exc, TTSError) else None
        model = model or str(ctx_model or getattr(runner, "model", "") or "")
        log.error("model_load_failed", exc=exc, engine=engine_name, model=model or None,
                  duration_ms=round(ms, 1), error_code=code, worker=index, pid=pid,
                  message=str(exc)[:500])
        with contextlib.suppress(Exception):
            conn.send(("load_failed", code, f"{type(exc).__name__}: {exc}"[:500]))
        _flush_and_exit(log_q, 3)
        return
    ms = (time.perf_counter() - t0) * 1000.0
    t1 = time.perf_counter()
    warm = getattr(runner, "warm_up", None)
    if warm is not None:
        warm()
    log.info("engine_load", engine=engine_name, model=model or None, version=info.version,
             sample_rate=info.sample_rate, device=info.device, duration_ms=round(ms, 1),
             warmup_ms=round((time.perf_counter() - t1) * 1000.0, 1), worker=index, pid=pid)
    conn.send(("ready", {"info": info, "voices": voices, "pid": pid, "load_ms": ms}))
    forward = events.get_sink()
    job_sink = _JobSink(conn)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        if msg is None:
            break
        _, mode, job, ctx, seq = msg
        if cancels is not None:
            limits.set_probe(lambda s=seq: cancels[s % CANCEL_SLOTS] == s)
        events.set_sink(job_sink, settings.log_level)
        try:
            with events.context(**ctx):
                try:
                    if mode == "stream":
                        for chunk in runner.stream(job):
                            conn.send(("part", chunk))
                        reply: tuple[Any, ...] = ("ok", None)
                    else:
                        reply = ("ok", runner.back(job))
                except Exception as exc:
                    reply = ("err", _as_failure(exc, job))
                try:
                    conn.send(reply)
                except Exception as exc:  # e.g. a result that does not pickle
                    conn.send(("err", _as_failure(exc, job)))
        finally:
            limits.set_probe(None)
            events.set_sink(forward, settings.log_level)
    with contextlib.suppress(Exception):
        runner.close()
    _flush_and_exit(log_q, 0)


class _Readable:
    """``conn.poll(timeout)`` without building a selector on every call (the serving
    thread polls once per message: the answer and each record of a job)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.poller: Any = None
        with contextlib.suppress(AttributeError, OSError, ValueError):
            p = select.poll()
            p.register(conn.fileno(), select.POLLIN | select.POLLPRI)
            self.poller = p

    def __call__(self, timeout: float) -> bool:
        if self.poller is None:
            return bool(self.conn.poll(max(0.0, timeout)))
        # POLLHUP/POLLERR count as readable: recv() then raises EOFError / OSError
        return bool(self.poller.poll(max(0, math.ceil(timeout * 1000.0))))


class _JobSink:
    """A worker's sink while it runs a job: records go to the main process over the job's
    own connection, in order with the job's answer. No queue feeder thread competes with
    the engine for the worker's GIL, the main process needs no thread to receive them,
    and a record sent before a crash is still read (it is in the socket)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def submit(self, item: events.Item) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(("log", item))


def _grow_send_buffer(conn: Connection) -> None:
    """Let an answer (a few hundred KB of audio) go into the socket at once, so that the
    worker goes on to its next job without waiting for the main process to read it.
    Capped by the kernel (net.core.wmem_max); best effort."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        s = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < REPLY_BUFFER:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, REPLY_BUFFER)
        finally:
            s.close()


def _flush_and_exit(log_q: Any, code: int) -> None:
    with contextlib.suppress(Exception):
        log_q.close()
        log_q.join_thread()  # records reach the writer before the process ends
    os._exit(code)


# --- the main process side --------------------------------------------------------

@dataclass
class Worker:
    index: int
    proc: Any = None
    conn: Connection | None = None
    pid: int | None = None
    state: str = "starting"  # starting, ready, busy, restarting, failed, stopped
    started: float = 0.0
    jobs: int = 0
    load_failures: int = 0
    current: str | None = None  # id of the job in flight
    cancels: Any = None  # shared array: seq numbers of jobs to stop (see worker_main)
    swap: Any = None  # (process, conn, ready payload) of a reloaded engine to take over
    info: Any = None
    voices: list[Any] = field(default_factory=list)


@dataclass
class _Item:
    """A synthesis waiting for, or running on, a worker."""

    mode: str  # "back" or "stream"
    job: Any
    ctx: dict[str, str]
    loop: asyncio.AbstractEventLoop
    started: asyncio.Future[float]  # resolved with queue_ms when a worker takes it
    done: asyncio.Future[Any]  # the worker's answer
    on_part: Callable[[Any], None] | None = None
    then: Callable[[Any, float], Any] | None = None  # run on the answer (serving thread)
    enqueued: float = field(default_factory=time.perf_counter)
    state: str = "waiting"  # waiting, prefetched (sent behind a running job), running, expired
    queue_ms: float = 0.0
    # the stage it is in, for a failure decided here (model_stage of a crash, a timeout):
    # text_normalize until a worker takes it, then the stage after the last one timed
    stage: str = STAGES[0]
    seq: int = 0  # tells the worker which job to stop (cancel)
    worker: Any = None  # the Worker it was sent to


def _stage_after(done: Any, current: str) -> str:
    """The stage a job is in once ``done`` has been timed (the last one stays)."""
    if done not in STAGES:
        return current
    return STAGES[min(STAGES.index(done) + 1, len(STAGES) - 1)]


def _resolve(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


class WorkerPool:
    """N engine processes, a bounded wait queue, timeouts and restarts.

    Each worker process has a serving thread in this process that takes the next waiting
    synthesis as soon as its worker is free, so a busy worker never waits for the event
    loop between two jobs. The event loop only submits and awaits."""

    def __init__(self, settings: Any, *, workers: int | None = None,
                 runner: str = DEFAULT_RUNNER, log_queue: Any = None,
                 on_restart: Callable[[str], None] | None = None,
                 on_load: Callable[[str, str], None] | None = None) -> None:
        self.settings = settings
        self.size = workers or default_worker_count(settings)
        self.queue_size = settings.queue_size
        self.timeout = settings.request_timeout_s
        self.load_timeout = settings.model_load_timeout_s
        self.runner = runner
        self.log_queue = log_queue
        self.on_restart = on_restart
        self.on_load = on_load
        self.ctx = mp.get_context("spawn")
        self.workers = [Worker(i, cancels=self.ctx.RawArray("q", [-1] * CANCEL_SLOTS))
                        for i in range(self.size)]
        self._seq = 0
        self._items: dict[str, _Item] = {}  # by synthesis id, until answered (cancel)
        self.waiting = 0  # syntheses submitted and not yet taken by a worker
        self.ever_ready = False
        self.last_load_error: tuple[str, str] | None = None
        self.info: Any = None
        self.voices: list[Any] = []
        self.restarts = 0
        self.ewma_s = 1.0
        self._pending: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._lock = threading.Lock()  # restarts
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._reloading = False

    # --- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        if self.log_queue is None:
            from . import logsink

            sink = logsink.active()
            self.log_queue = sink.mp_queue(self.ctx) if sink is not None else self.ctx.Queue()
        for w in self.workers:
            self._spawn(w, reason=None)
            t = threading.Thread(target=self._serve, args=(w,), daemon=True,
                                 name=f"ttsops-pool-{w.index}")
            t.start()
            self._threads.append(t)

    async def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            left = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for item in left:
            self._finish(item, None, TTSError("ENGINE_NOT_READY", "the server is stopping"))
        await asyncio.to_thread(self._stop_processes, timeout)

    def _stop_processes(self, timeout: float) -> None:
        for t in self._threads:
            t.join(timeout)
        for w in self.workers:
            with contextlib.suppress(Exception):
                if w.conn is not None and w.state == "ready":
                    w.conn.send(None)
        deadline = time.monotonic() + timeout
        for w in self.workers:
            if w.proc is None:
                continue
            w.proc.join(max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(2)
            w.state = "stopped"

    # --- status ----------------------------------------------------------------------
    @property
    def ready_count(self) -> int:
        return sum(1 for w in self.workers if w.state in ("ready", "busy"))

    @property
    def ready(self) -> bool:
        return self.ready_count > 0

    def status(self) -> dict[str, Any]:
        return {
            "workers": self.size, "ready": self.ready_count, "queue_depth": self.waiting,
            "queue_size": self.queue_size, "restarts": self.restarts,
            "states": [w.state for w in self.workers],
            "last_load_error": self.last_load_error[0] if self.last_load_error else None,
        }

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers if w.pid is not None]

    def retry_after(self) -> float:
        ready = max(1, self.ready_count)
        return max(1.0, math.ceil((self.waiting + 1) * self.ewma_s / ready))

    # --- running a job (event loop side) ---------------------------------------------
    async def run(self, job: Any, then: Callable[[Any, float], Any] | None = None
                  ) -> tuple[Any, float]:
        """Run the engine half of ``job`` on a worker: (``RenderedAudio``, queue_ms).
        With ``then``, the answer is ``then(RenderedAudio, queue_ms)``, called on the
        worker's serving thread (with the request's log context) as soon as the worker
        answers: e.g. ``finish``, without a hop through the event loop and a thread pool."""
        item = self._submit("back", job, None)
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

        item = self._submit("stream", job, on_part)
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

    def _submit(self, mode: str, job: Any, on_part: Callable[[Any], None] | None) -> _Item:
        if self._stopping:
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
        loop = asyncio.get_running_loop()
        ctx = {k: v for k in ("request_id", "trace_id", "id")
               if (v := events.current(k)) is not None}
        item = _Item(mode, job, ctx, loop, loop.create_future(), loop.create_future(),
                     on_part)
        with self._cond:
            self._seq += 1
            item.seq = self._seq
            self.waiting += 1
            self._pending.append(item)
            self._cond.notify()
        jid = getattr(job, "id", None)
        if jid:
            self._items[jid] = item
            item.done.add_done_callback(lambda _f, j=jid, it=item: self._forget(j, it))
        return item

    def _forget(self, jid: str, item: _Item) -> None:
        if self._items.get(jid) is item:
            del self._items[jid]

    def cancel(self, job_id: str, error: TTSError) -> bool:
        """(event loop) Stop the synthesis ``job_id``: out of the queue if it waits, or
        told to stop at its next segment if a worker runs it. Its caller gets ``error``
        at once (the worker's late answer is dropped). False if it is not here (done)."""
        item = self._items.get(job_id)
        if item is None:
            return False
        with self._cond:
            was = item.state
            if was in ("expired", "cancelled"):
                return False
            item.state = "cancelled"
            if was in ("waiting", "prefetched"):
                self.waiting -= 1
            w = item.worker
            if was in ("running", "prefetched") and w is not None and w.cancels is not None:
                w.cancels[item.seq % CANCEL_SLOTS] = item.seq
        error.context.setdefault("stage", item.stage)
        _resolve(item.started, None, error)
        _resolve(item.done, None, error)
        return True

    def cancel_all(self, error: Callable[[], TTSError]) -> int:
        """(event loop) ``cancel`` every synthesis waiting or running (shutdown)."""
        return sum(self.cancel(jid, error()) for jid in list(self._items))

    async def _wait_start(self, item: _Item) -> float:
        """queue_ms once a worker took the item; SYNTHESIS_TIMEOUT if none did in time."""
        if item.started.done():
            return item.started.result()
        timer = item.loop.call_later(self.timeout, self._expire, item)
        try:
            return await asyncio.shield(item.started)
        finally:
            timer.cancel()

    def _expire(self, item: _Item) -> None:
        """(event loop) The item waited ``timeout`` for a worker: answer SYNTHESIS_TIMEOUT
        unless it started at the last moment."""
        with self._cond:
            if item.state in ("waiting", "prefetched"):  # a prefetched one still runs
                item.state = "expired"                   # on its worker, unanswered
                self.waiting -= 1
                _resolve(item.started, None, TTSError(
                    "SYNTHESIS_TIMEOUT", f"waited {self.timeout:g} s for a worker",
                    queue_ms=round(self.timeout * 1000.0, 1), stage=STAGES[0]))

    # --- serving threads ---------------------------------------------------------------
    def _take(self, timeout: float) -> _Item | None:
        with self._cond:
            if not self._pending and not self._stopping:
                self._cond.wait(timeout)
            while self._pending:
                item = self._pending.popleft()
                if item.state == "waiting":
                    item.state = "running"
                    self.waiting -= 1
                    return item
            return None

    def _serve(self, worker: Worker) -> None:
        """One per worker: take the next synthesis whenever the worker is free; restart
        the worker when it died while idle; retry failed loads after back-off."""
        while not self._stopping:
            if worker.swap is not None and worker.state in ("ready", "failed"):
                self._swap(worker)  # between jobs: a reloaded engine takes over
                continue
            if worker.state == "failed":
                if time.monotonic() >= worker.started:
                    self._spawn(worker, reason="load_retry")
                else:
                    time.sleep(0.1)
                continue
            if worker.state != "ready":
                time.sleep(0.02)
                continue
            if worker.proc is not None and not worker.proc.is_alive():
                self._replace(worker, "died")  # died while idle: not any job's fault
                continue
            item = self._take(0.5)
            if item is None:
                continue
            if worker.proc is None or not worker.proc.is_alive():  # died just now
                with self._cond:
                    item.state = "waiting"
                    self.waiting += 1
                    self._pending.appendleft(item)
                self._replace(worker, "died")
                continue
            worker.state = "busy"
            try:
                self._run(worker, item)
            finally:
                worker.current = None
                if worker.state == "busy":
                    worker.state = "ready"

    @staticmethod
    def _finish(item: _Item, value: Any, exc: BaseException | None) -> None:
        if item.state in ("expired", "cancelled"):  # its caller was answered already
            return
        if isinstance(exc, TTSError) and not isinstance(exc, SynthesisFailure):
            exc.context.setdefault("stage", item.stage)  # decided here, not in the worker
        with contextlib.suppress(RuntimeError):  # the loop is gone (shutdown)
            item.loop.call_soon_threadsafe(_resolve, item.done, value, exc)
            if exc is not None:
                item.loop.call_soon_threadsafe(_resolve, item.started, 0.0, None)

    def _take_next(self) -> _Item | None:
        """The next waiting synthesis if it is an ordinary one (not streamed), without
        waiting; None otherwise (first come, first served)."""
        with self._cond:
            while self._pending and self._pending[0].state != "waiting":
                self._pending.popleft()  # expired while waiting
            if not self._pending or self._pending[0].mode != "back":
                return None
            item = self._pending.popleft()
            item.state = "prefetched"  # still waiting (queue depth) until it starts
            return item

    def _requeue(self, items: list[_Item]) -> None:
        """Put syntheses that were handed to a worker but never started back at the front
        of the queue (their worker died or was replaced before it reached them)."""
        with self._cond:
            for item in reversed(items):
                if item.state != "prefetched":  # expired meanwhile: its caller has gone
                    continue
                item.state = "waiting"
                self._pending.appendleft(item)
            self._cond.notify_all()

    def _run(self, worker: Worker, first: _Item) -> None:
        """Run ``first`` on ``worker``. While an ordinary synthesis runs, the next waiting
        one is sent too (one at most): it waits in the worker's pipe, and the worker
        starts it the moment it has sent its answer instead of waiting for this process
        to read the answer and pick the next job (which, with the event loop holding the
        GIL, took milliseconds per job). A synthesis counts as started, for ``queue_ms``
        and for its timeout, when the one before it on the worker has answered. If the
        worker dies or is replaced, the running synthesis fails (ENGINE_CRASHED,
        SYNTHESIS_TIMEOUT) and the one behind it goes back to the front of the queue."""
        conn = worker.conn
        assert conn is not None
        readable = _Readable(conn)
        inflight: deque[_Item] = deque()
        head_t0 = 0.0

        def start(item: _Item) -> None:
            nonlocal head_t0
            head_t0 = time.perf_counter()
            if item.state == "prefetched":
                with self._cond:
                    if item.state == "prefetched":
                        item.state = "running"
                        self.waiting -= 1
            worker.current = getattr(item.job, "id", None)
            item.stage = STAGES[1]
            queue_ms = item.queue_ms = (head_t0 - item.enqueued) * 1000.0
            item.loop.call_soon_threadsafe(_resolve, item.started, queue_ms, None)

        try:
            first.worker = worker
            conn.send(("job", first.mode, first.job, first.ctx, first.seq))
        except OSError:  # died between the liveness check and now
            with events.context(**first.ctx):
                self._replace(worker, "died", job_id=getattr(first.job, "id", None))
            self._finish(first, None, TTSError(
                "ENGINE_CRASHED", "the worker process died during this synthesis; it "
                                  "was restarted"))
            return
        start(first)
        inflight.append(first)
        while inflight:
            head = inflight[0]
            if len(inflight) == 1 and head.mode == "back" and worker.swap is None \
                    and not self._stopping:
                nxt = self._take_next()
                if nxt is not None:
                    try:
                        nxt.worker = worker
                        conn.send(("job", nxt.mode, nxt.job, nxt.ctx, nxt.seq))
                    except OSError:  # the worker died: found when reading below
                        self._requeue([nxt])
                    else:
                        inflight.append(nxt)
            deadline = head_t0 + self.timeout
            wait = deadline - time.perf_counter()
            if len(inflight) == 1 and head.mode == "back":
                wait = min(wait, PREFETCH_POLL_S)  # look for a next job now and then
            try:
                if not readable(wait):
                    if time.perf_counter() < deadline:
                        continue
                    with events.context(**head.ctx):
                        self._replace(worker, "timeout", job_id=worker.current)
                    raise TTSError("SYNTHESIS_TIMEOUT",
                                   f"no result after {self.timeout:g} s; worker replaced")
                reply = conn.recv()
            except (EOFError, OSError):
                with events.context(**head.ctx):  # worker_died carries the request's ids
                    self._replace(worker, "died", job_id=worker.current)
                self._requeue(list(inflight)[1:])
                self._finish(head, None, TTSError(
                    "ENGINE_CRASHED", "the worker process died during this synthesis; it "
                                      "was restarted"))
                return
            except TTSError as exc:
                self._requeue(list(inflight)[1:])
                self._finish(head, None, exc)
                return
            if reply[0] == "log":  # a record of the running job (see _JobSink)
                events.get_sink().submit(reply[1])
                if reply[1][3] == "stage_time":
                    head.stage = _stage_after(reply[1][4].get("stage"), head.stage)
                continue
            if reply[0] == "part":
                head.stage = STAGES[-1]  # audio went out: the last stage was reached
                if head.on_part is not None:
                    head.on_part(reply[1])
                continue
            elapsed = time.perf_counter() - head_t0
            self.ewma_s = 0.8 * self.ewma_s + 0.2 * elapsed
            worker.jobs += 1
            inflight.popleft()
            if inflight:
                start(inflight[0])
            if reply[0] != "ok":
                self._finish(head, None, reply[1])
            elif head.then is not None and head.state not in ("expired", "cancelled"):
                try:
                    with events.context(**head.ctx):
                        value = head.then(reply[1], head.queue_ms)
                except Exception as exc:
                    self._finish(head, None, exc)
                else:
                    self._finish(head, value, None)
            else:
                self._finish(head, reply[1], None)

    # --- reload (SIGHUP) -------------------------------------------------------------
    def reload(self) -> bool:
        """Load the engine afresh in every worker, one worker at a time, without a gap in
        service: a new process loads the model first and takes the old one's place only
        once it is ready (the old one finishes its job, then exits). A load that fails
        stops the rollout and leaves the old workers serving (``reload_failed``).
        False when a reload is already running."""
        if self._reloading or self._stopping:
            return False
        self._reloading = True
        threading.Thread(target=self._reload_all, name="ttsops-pool-reload",
                         daemon=True).start()
        return True

    def _reload_all(self) -> None:
        t0 = time.perf_counter()
        try:
            log.info("reload_start", workers=self.size)
            for w in self.workers:
                if self._stopping:
                    return
                failure = self._reload_one(w)
                if failure is not None:
                    code, detail = failure
                    log.error("reload_failed", worker=w.index, error_code=code,
                              message=detail[:300], kept="the running workers keep serving "
                                                         "with the engine loaded before")
                    return
            log.info("reload_complete", workers=self.size,
                     duration_ms=round((time.perf_counter() - t0) * 1000.0, 1))
        finally:
            self._reloading = False

    def _reload_one(self, worker: Worker) -> tuple[str, str] | None:
        """Start a process for ``worker`` and wait for its engine: None once it has taken
        over, (code, detail) when its load failed."""
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(
            target=worker_main, name=f"ttsops-worker-{worker.index}", daemon=True,
            args=(worker.index, self.settings, child, self.log_queue, self.runner,
                  worker.cancels))
        proc.start()
        child.close()
        msg: Any = None
        with contextlib.suppress(EOFError, OSError):
            if parent.poll(self.load_timeout):
                msg = parent.recv()
        if msg is None or msg[0] != "ready":
            if msg is not None and msg[0] == "load_failed":
                failure = (msg[1], msg[2])
                proc.join(5)  # it exits by itself once its model_load_failed is sent
            elif proc.is_alive():
                failure = ("MODEL_LOAD_TIMEOUT", f"not ready after {self.load_timeout:g} s")
            else:
                failure = ("MODEL_LOAD_FAILED", "the new worker exited while loading")
            if proc.is_alive():
                proc.kill()
            proc.join(5)
            parent.close()
            if self.on_load is not None:
                self.on_load(self.settings.engine, "failed")
            return failure
        worker.swap = (proc, parent, msg[1])
        while worker.swap is not None and not self._stopping:
            time.sleep(0.02)
        return None

    def _swap(self, worker: Worker) -> None:
        """Serving thread, between jobs: the reloaded process replaces the old one."""
        proc, conn, payload = worker.swap
        worker.swap = None
        old_proc, old_conn, old_pid = worker.proc, worker.conn, worker.pid
        worker.proc, worker.conn, worker.pid = proc, conn, proc.pid
        worker.info, worker.voices = payload["info"], payload["voices"]
        self.info, self.voices = payload["info"], payload["voices"]
        worker.load_failures = 0
        self.last_load_error = None
        self.ever_ready = True
        worker.state = "ready"
        log.info("worker_reloaded", worker=worker.index, old_pid=old_pid, pid=proc.pid,
                 load_ms=round(payload.get("load_ms", 0.0), 1))
        if self.on_load is not None:
            self.on_load(getattr(self.info, "name", "?"), "success")

        def retire() -> None:
            with contextlib.suppress(Exception):
                if old_conn is not None:
                    old_conn.send(None)  # finish and exit
            if old_proc is not None:
                old_proc.join(5)
                if old_proc.is_alive():
                    old_proc.kill()
                    old_proc.join(2)
            with contextlib.suppress(Exception):
                if old_conn is not None:
                    old_conn.close()

        threading.Thread(target=retire, name="ttsops-pool-retire", daemon=True).start()

    # --- processes -------------------------------------------------------------------
    def _spawn(self, worker: Worker, reason: str | None) -> None:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(
            target=worker_main, name=f"ttsops-worker-{worker.index}", daemon=True,
            args=(worker.index, self.settings, child, self.log_queue, self.runner,
                  worker.cancels))
        worker.state = "starting"
        worker.started = time.monotonic()
        proc.start()
        child.close()
        old_pid = worker.pid
        worker.proc, worker.conn, worker.pid = proc, parent, proc.pid
        if reason is not None:
            self.restarts += 1
            log.warning("worker_restarted", worker=worker.index, reason=reason,
                        old_pid=old_pid, pid=proc.pid, restarts=self.restarts)
            if self.on_restart is not None:
                self.on_restart(reason)
        threading.Thread(target=self._await_ready, args=(worker, proc, parent),
                         name=f"ttsops-pool-start-{worker.index}", daemon=True).start()

    def _await_ready(self, worker: Worker, proc: Any, conn: Connection) -> None:
        """Thread: wait for the worker's first message (ready or load failure)."""
        t0 = time.monotonic()
        msg: Any = None
        try:
            if conn.poll(self.load_timeout):
                msg = conn.recv()
        except (EOFError, OSError):
            msg = None
        if self._stopping or worker.proc is not proc:
            return
        if msg is not None and msg[0] == "ready":
            payload = msg[1]
            worker.info, worker.voices = payload["info"], payload["voices"]
            if self.info is None:
                self.info, self.voices = payload["info"], payload["voices"]
            worker.load_failures = 0
            self.last_load_error = None
            self.ever_ready = True
            if self.on_load is not None:
                self.on_load(getattr(self.info, "name", "?"), "success")
            worker.state = "ready"
            return
        # load failed, timed out, or the process died while loading
        if msg is not None and msg[0] == "load_failed":
            code, detail = msg[1], msg[2]
        elif proc.is_alive():
            code, detail = "MODEL_LOAD_TIMEOUT", f"not ready after {self.load_timeout:g} s"
            log.error("model_load_failed", engine=self.settings.engine, error_code=code,
                      duration_ms=round((time.monotonic() - t0) * 1000, 1),
                      worker=worker.index, pid=worker.pid, message=detail)
            proc.kill()
        else:
            proc.join(1)
            code = "MODEL_LOAD_FAILED"
            detail = f"worker exited with code {proc.exitcode} while loading"
            log.error("model_load_failed", engine=self.settings.engine, error_code=code,
                      duration_ms=round((time.monotonic() - t0) * 1000, 1),
                      worker=worker.index, pid=worker.pid, exitcode=proc.exitcode,
                      message=detail)
        proc.join(5)
        worker.load_failures += 1
        self.last_load_error = (code, detail)
        if self.on_load is not None:
            self.on_load(self.settings.engine, "failed")
        delay = RETRY_BACKOFF_S[min(worker.load_failures, len(RETRY_BACKOFF_S)) - 1]
        worker.started = time.monotonic() + delay  # next attempt, see _serve
        worker.state = "failed"

    def _replace(self, worker: Worker, reason: str, job_id: str | None = None) -> None:
        """Kill (if needed) and restart a worker (from its serving thread)."""
        with self._lock:
            proc = worker.proc
            worker.state = "restarting"
            if proc is not None and proc.is_alive() and reason == "timeout":
                proc.kill()
            if proc is not None:
                proc.join(5)
            exitcode = proc.exitcode if proc is not None else None
            sig = None
            if exitcode is not None and exitcode < 0:
                with contextlib.suppress(ValueError):
                    sig = signal.Signals(-exitcode).name
            event = "worker_died" if reason == "died" else "worker_killed"
            log.error(event, worker=worker.index, pid=worker.pid, reason=reason,
                      exitcode=exitcode, signal=sig, error_code="ENGINE_CRASHED"
                      if reason == "died" else "SYNTHESIS_TIMEOUT", job=job_id)
            with contextlib.suppress(Exception):
                if worker.conn is not None:
                    worker.conn.close()
            if not self._stopping:
                self._spawn(worker, reason=reason)
