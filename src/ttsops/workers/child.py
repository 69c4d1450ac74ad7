"""The worker process: its entry point (``worker_main``) and what it needs to talk to the
main process. It loads the engine once (``engine_load`` with its duration, or
``model_load_failed`` with engine, model, error code and traceback), answers
``ReadyMsg``/``LoadFailedMsg``, then runs one ``JobMsg`` at a time, logging over the job's
own connection (``JobSink``) so that a job's records arrive in order with its answer.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from .. import events, limits
from ..errors import TTSError
from ..events import get_logger
from ..pipeline.types import SynthesisFailure
from .protocol import (
    CANCEL_SLOTS,
    Answer,
    CancelSlots,
    ErrMsg,
    JobMsg,
    LoadFailedMsg,
    LogMsg,
    Mode,
    OkMsg,
    PartMsg,
    ReadyMsg,
)
from .runner import Runner, resolve

if TYPE_CHECKING:
    from ..config import Settings
    from ..logsink import ItemQueue

log = get_logger("ttsops.workers")

REPLY_BUFFER = 4 << 20  # worker's socket send buffer: an answer never waits for our reads


def as_failure(exc: BaseException, job: Any) -> SynthesisFailure:
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


class JobSink:
    """A worker's sink while it runs a job: records go to the main process over the job's
    own connection, in order with the job's answer. No queue feeder thread competes with
    the engine for the worker's GIL, the main process needs no thread to receive them,
    and a record sent before a crash is still read (it is in the socket)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def submit(self, item: events.Item) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(LogMsg(item))


def cancel_probe(cancels: CancelSlots, seq: int) -> Callable[[], bool]:
    """True once the main process wrote ``seq`` into its cancel slot (``limits``)."""

    def cancelled() -> bool:
        return bool(cancels[seq % CANCEL_SLOTS] == seq)

    return cancelled


class StopLoading(BaseException):
    """SIGTERM while the engine loads: the pool is stopping and asks this process to end
    (``Lifecycle.stop_processes``). A ``BaseException``, so that an engine's own
    ``except Exception`` does not take it for a load failure."""


class _Stop:
    requested = False  # SIGTERM came while the engine loaded


def _stop_loading(signum: int, frame: Any) -> None:
    _Stop.requested = True
    raise StopLoading


def worker_main(index: int, settings: Settings, conn: Connection, log_q: ItemQueue,
                runner_factory: str, cancels: CancelSlots | None = None) -> None:
    """Entry point of a worker process. ``cancels``: shared memory (no lock, no
    semaphore) where the main process writes the seq number of a job to stop; the job
    checks it between segments (``limits.after_segment``)."""
    from ..logsink import ForwardSink

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    events.set_sink(ForwardSink(log_q), settings.log_level)
    _grow_send_buffer(conn)
    # a stop while the engine loads ends the process now, not when the load is done (a
    # model can take a minute); once loaded, SIGTERM is as it was (``_load``)
    signal.signal(signal.SIGTERM, _stop_loading)
    try:
        runner = _load(index, settings, conn, runner_factory)
    except BaseException:
        if not _Stop.requested:
            raise
        runner = None  # stopped while loading or warming up: nothing to report
    if runner is None:
        _flush_and_exit(log_q, 3)
        return
    forward = events.get_sink()
    job_sink = JobSink(conn)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        if not isinstance(msg, JobMsg):  # StopMsg
            break
        if cancels is not None:
            limits.set_probe(cancel_probe(cancels, msg.seq))
        events.set_sink(job_sink, settings.log_level)
        try:
            with events.context(**msg.ctx):
                _run_job(runner, conn, msg)
        finally:
            limits.set_probe(None)
            events.set_sink(forward, settings.log_level)
    with contextlib.suppress(Exception):
        runner.close()
    _flush_and_exit(log_q, 0)


def _load(index: int, settings: Settings, conn: Connection,
          runner_factory: str) -> Runner | None:
    """The loaded runner, its ``ReadyMsg`` sent; None once a ``LoadFailedMsg`` is sent, or
    when the pool stopped it while loading and the stop's exception was lost on its way.
    A stop while loading (``StopLoading``) otherwise leaves it as an exception, which
    ``worker_main`` takes for the stop, wherever in the load and warm-up it came."""
    pid = os.getpid()
    t0 = time.perf_counter()
    engine_name = getattr(settings, "engine", "?")
    runner: Runner | None = None
    model = ""
    try:
        runner = resolve(runner_factory)(settings)
        engine_name = getattr(runner, "engine_name", engine_name)
        info = runner.load()
        engine_name = getattr(info, "name", engine_name)
        model = getattr(info, "model", "") or ""
        voices = list(runner.voices())
    except BaseException as exc:
        if _Stop.requested:  # StopLoading, or it changed on its way (numpy: ImportError)
            raise  # (not a load failure: ``worker_main`` ends the process)
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
            conn.send(LoadFailedMsg(code, f"{type(exc).__name__}: {exc}"[:500]))
        return None
    ms = (time.perf_counter() - t0) * 1000.0
    t1 = time.perf_counter()
    warm = getattr(runner, "warm_up", None)
    if warm is not None:
        warm()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _Stop.requested:  # its exception was swallowed on its way
        return None
    log.info("engine_load", engine=engine_name, model=model or None, version=info.version,
             sample_rate=info.sample_rate, device=info.device, duration_ms=round(ms, 1),
             warmup_ms=round((time.perf_counter() - t1) * 1000.0, 1), worker=index, pid=pid)
    conn.send(ReadyMsg(info, voices, pid, ms))
    return runner


def _run_job(runner: Runner, conn: Connection, msg: JobMsg) -> None:
    """Run one job: its parts (streamed), then its answer."""
    try:
        if msg.mode == Mode.STREAM:
            for chunk in runner.stream(msg.job):
                conn.send(PartMsg(chunk))
            reply: Answer = OkMsg(None)
        else:
            reply = OkMsg(runner.back(msg.job))
    except Exception as exc:
        reply = ErrMsg(as_failure(exc, msg.job))
    try:
        conn.send(reply)
    except Exception as exc:  # e.g. a result that does not pickle
        conn.send(ErrMsg(as_failure(exc, msg.job)))


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


def _flush_and_exit(log_q: ItemQueue, code: int) -> None:
    with contextlib.suppress(Exception):
        log_q.close()
        log_q.join_thread()  # records reach the writer before the process ends
    os._exit(code)
