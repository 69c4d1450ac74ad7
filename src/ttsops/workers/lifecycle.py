"""The worker processes' lives: start (``spawn``), wait for the engine (``ReadyMsg``),
retry a failed load with back-off, replace a process that died or timed out, reload the
engine in every worker one at a time (``reload``: the new process takes the old one's
place between jobs, ``swap``), stop. A process is built in one place,
``Lifecycle.start_process``."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from ..events import get_logger
from .child import worker_main
from .protocol import LoadFailedMsg, ReadyMsg, StopMsg, values_of
from .state import Swap, Worker, WorkerState

if TYPE_CHECKING:
    from multiprocessing.context import SpawnContext

    from ..config import Settings
    from ..engines.base import EngineInfo, VoiceInfo
    from ..logsink import ItemQueue

log = get_logger("ttsops.workers")

RETRY_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Lifecycle:
    """Starts, restarts, reloads and stops the processes of a pool's workers, and keeps
    what their loads tell: the engine's ``info`` and ``voices``, ``ever_ready``,
    ``last_load_error`` (code, detail), ``restarts``."""

    def __init__(self, settings: Settings, workers: list[Worker], ctx: SpawnContext,
                 runner: str,
                 stopping: threading.Event,
                 on_restart: Callable[[str], None] | None = None,
                 on_load: Callable[[str, str], None] | None = None) -> None:
        self.settings = settings
        self.workers = workers
        self.ctx = ctx
        self.runner = runner
        self.stopping = stopping
        self.on_restart = on_restart
        self.on_load = on_load
        self.load_timeout = settings.model_load_timeout_s
        self.log_queue: ItemQueue | None = None  # set before the first start
        self.info: EngineInfo | None = None
        self.voices: list[VoiceInfo] = []
        self.ever_ready = False
        self.last_load_error: tuple[str, str] | None = None
        self.restarts = 0
        self.reloading = False
        self._lock = threading.Lock()  # restarts

    # --- one process ---------------------------------------------------------------
    def start_process(self, worker: Worker) -> tuple[BaseProcess, Connection]:
        """A new process for ``worker``, started, and this end of its pipe."""
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(
            target=worker_main, name=f"ttsops-worker-{worker.index}", daemon=True,
            args=(worker.index, values_of(self.settings), child, self.log_queue, self.runner,
                  worker.cancels))
        proc.start()
        child.close()
        return proc, parent

    def first_message(self, conn: Connection) -> ReadyMsg | LoadFailedMsg | None:
        """A new process's first message within the load timeout; None if there was
        none (timed out, or the process ended)."""
        with contextlib.suppress(EOFError, OSError):
            if conn.poll(self.load_timeout):
                msg = conn.recv()
                if isinstance(msg, (ReadyMsg, LoadFailedMsg)):
                    return msg
        return None

    def _loaded(self, worker: Worker, ready: ReadyMsg, *, replace_info: bool) -> None:
        worker.info, worker.voices = ready.info, ready.voices
        if replace_info or self.info is None:
            self.info, self.voices = ready.info, ready.voices
        worker.load_failures = 0
        self.last_load_error = None
        self.ever_ready = True

    # --- start, restart --------------------------------------------------------------
    def spawn(self, worker: Worker, reason: str | None) -> None:
        """Start ``worker``'s process (again, for ``reason``); a thread waits for it."""
        worker.state = WorkerState.STARTING
        proc, conn = self.start_process(worker)
        old_pid = worker.pid
        worker.proc, worker.conn, worker.pid = proc, conn, proc.pid
        if reason is not None:
            self.restarts += 1
            log.warning("worker_restarted", worker=worker.index, reason=reason,
                        old_pid=old_pid, pid=proc.pid, restarts=self.restarts)
            if self.on_restart is not None:
                self.on_restart(reason)
        threading.Thread(target=self._await_ready, args=(worker, proc, conn),
                         name=f"ttsops-pool-start-{worker.index}", daemon=True).start()

    def _await_ready(self, worker: Worker, proc: BaseProcess, conn: Connection) -> None:
        """Thread: wait for the worker's first message (ready or load failure)."""
        t0 = time.monotonic()
        msg = self.first_message(conn)
        if self.stopping.is_set() or worker.proc is not proc:
            return
        if isinstance(msg, ReadyMsg):
            self._loaded(worker, msg, replace_info=False)
            if self.on_load is not None:
                self.on_load(getattr(self.info, "name", "?"), "success")
            worker.state = WorkerState.READY
            return
        # load failed, timed out, or the process died while loading
        if isinstance(msg, LoadFailedMsg):
            code, detail = msg.code, msg.detail
        else:
            code, detail = self._load_gone(worker, proc, t0)
        # the error is known (to /readyz) before the process is joined: its
        # model_load_failed record can be on disk already, and a process exits slowly on a
        # loaded machine. The state follows the join (nothing swaps or retries a worker
        # whose process is still exiting).
        self.last_load_error = (code, detail)
        if self.on_load is not None:
            self.on_load(self.settings.engine, "failed")
        proc.join(5)
        worker.load_failures += 1
        delay = RETRY_BACKOFF_S[min(worker.load_failures, len(RETRY_BACKOFF_S)) - 1]
        worker.retry_at = time.monotonic() + delay
        worker.state = WorkerState.FAILED

    def _load_gone(self, worker: Worker, proc: BaseProcess, t0: float) -> tuple[str, str]:
        """No answer from a loading process: it timed out (killed) or ended. Logged."""
        fields: dict[str, Any] = {}
        alive = proc.is_alive()
        if alive:
            code, detail = "MODEL_LOAD_TIMEOUT", f"not ready after {self.load_timeout:g} s"
        else:
            proc.join(1)
            code = "MODEL_LOAD_FAILED"
            detail = f"worker exited with code {proc.exitcode} while loading"
            fields["exitcode"] = proc.exitcode
        log.error("model_load_failed", engine=self.settings.engine, error_code=code,
                  duration_ms=round((time.monotonic() - t0) * 1000, 1),
                  worker=worker.index, pid=worker.pid, **fields, message=detail)
        if alive:
            proc.kill()
        return code, detail

    def replace(self, worker: Worker, reason: str, job_id: str | None = None) -> None:
        """Kill (if needed) and restart a worker (from its serving thread)."""
        with self._lock:
            proc = worker.proc
            if worker.state == WorkerState.STOPPED:  # killed by stop_processes
                log.info("worker_stopped", worker=worker.index, pid=worker.pid,
                         reason="shutdown", job=job_id)
                with contextlib.suppress(Exception):
                    if worker.conn is not None:
                        worker.conn.close()
                return
            worker.state = WorkerState.RESTARTING
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
            if not self.stopping.is_set():
                self.spawn(worker, reason=reason)

    # --- reload (SIGHUP) -------------------------------------------------------------
    def reload(self) -> bool:
        """Load the engine afresh in every worker, one worker at a time, without a gap in
        service: a new process loads the model first and takes the old one's place only
        once it is ready (the old one finishes its job, then exits). A load that fails
        stops the rollout and leaves the old workers serving (``reload_failed``).
        False when a reload is already running."""
        if self.reloading or self.stopping.is_set():
            return False
        self.reloading = True
        threading.Thread(target=self._reload_all, name="ttsops-pool-reload",
                         daemon=True).start()
        return True

    def _reload_all(self) -> None:
        t0 = time.perf_counter()
        try:
            log.info("reload_start", workers=len(self.workers))
            for w in self.workers:
                if self.stopping.is_set():
                    return
                failure = self._reload_one(w)
                if failure is not None:
                    code, detail = failure
                    log.error("reload_failed", worker=w.index, error_code=code,
                              message=detail[:300], kept="the running workers keep serving "
                                                         "with the engine loaded before")
                    return
            log.info("reload_complete", workers=len(self.workers),
                     duration_ms=round((time.perf_counter() - t0) * 1000.0, 1))
        finally:
            self.reloading = False

    def _reload_one(self, worker: Worker) -> tuple[str, str] | None:
        """Start a process for ``worker`` and wait for its engine: None once it has taken
        over, (code, detail) when its load failed."""
        proc, conn = self.start_process(worker)
        msg = self.first_message(conn)
        if not isinstance(msg, ReadyMsg):
            if isinstance(msg, LoadFailedMsg):
                failure = (msg.code, msg.detail)
                proc.join(5)  # it exits by itself once its model_load_failed is sent
            elif proc.is_alive():
                failure = ("MODEL_LOAD_TIMEOUT", f"not ready after {self.load_timeout:g} s")
            else:
                failure = ("MODEL_LOAD_FAILED", "the new worker exited while loading")
            if proc.is_alive():
                proc.kill()
            proc.join(5)
            conn.close()
            if self.on_load is not None:
                self.on_load(self.settings.engine, "failed")
            return failure
        worker.swap = Swap(proc, conn, msg)
        while worker.swap is not None and not self.stopping.is_set():
            time.sleep(0.02)
        return None

    def swap(self, worker: Worker) -> None:
        """Serving thread, between jobs: the reloaded process replaces the old one."""
        new = worker.swap
        assert new is not None
        worker.swap = None
        old_proc, old_conn, old_pid = worker.proc, worker.conn, worker.pid
        worker.proc, worker.conn, worker.pid = new.proc, new.conn, new.proc.pid
        self._loaded(worker, new.ready, replace_info=True)
        worker.state = WorkerState.READY
        log.info("worker_reloaded", worker=worker.index, old_pid=old_pid, pid=new.proc.pid,
                 load_ms=round(new.ready.load_ms, 1))
        if self.on_load is not None:
            self.on_load(getattr(self.info, "name", "?"), "success")
        threading.Thread(target=retire, args=(old_proc, old_conn),
                         name="ttsops-pool-retire", daemon=True).start()

    # --- stop -------------------------------------------------------------------------
    def stop_processes(self, timeout: float) -> None:
        """Stop every worker: a busy one at once (the pool stops after the shutdown grace
        period, so what it runs was cut: SHUTTING_DOWN), an idle one asked to exit and
        killed if still running after ``timeout``. A process still loading the engine is
        sent SIGTERM, which ends its load (``child.StopLoading``; it was left to the
        timeout, 5 s, before: a server stopped while a model loaded took 6 s to exit). Each is
        STOPPED first, so that its serving thread, finding it gone, takes it for a stop,
        not a crash."""
        busy: list[BaseProcess] = []
        for w in self.workers:
            with contextlib.suppress(Exception):
                if w.conn is not None and w.state != WorkerState.BUSY:
                    w.conn.send(StopMsg())
            if w.state == WorkerState.BUSY and w.proc is not None:
                busy.append(w.proc)
            elif w.state == WorkerState.STARTING and w.proc is not None:
                with contextlib.suppress(Exception):
                    w.proc.terminate()  # ends its load (``child.StopLoading``)
            w.state = WorkerState.STOPPED
        for proc in busy:
            with contextlib.suppress(Exception):
                proc.kill()
        deadline = time.monotonic() + timeout
        for w in self.workers:
            if w.proc is None:
                continue
            w.proc.join(max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(2)
            w.state = WorkerState.STOPPED


def retire(proc: BaseProcess | None, conn: Connection | None) -> None:
    """Thread: a replaced process finishes its job and exits (killed if it does not)."""
    with contextlib.suppress(Exception):
        if conn is not None:
            conn.send(StopMsg())  # finish and exit
    if proc is not None:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(2)
    with contextlib.suppress(Exception):
        if conn is not None:
            conn.close()

