"""A worker's serving thread (in the main process): it takes the next waiting synthesis
as soon as its worker is free, sends it, reads the worker's messages (records, parts,
the answer) and answers the caller; it restarts its worker when it died while idle,
retries a failed load after back-off and lets a reloaded engine take over between jobs.
"""

from __future__ import annotations

import contextlib
import math
import select
import time
from collections import deque
from multiprocessing.connection import Connection

from .. import events
from ..errors import TTSError
from ..pipeline.types import STAGES
from .lifecycle import Lifecycle
from .protocol import FromWorker, JobMsg, LogMsg, Mode, OkMsg, PartMsg
from .queue import WaitQueue
from .state import Item, Worker, WorkerState, finish, resolve, stage_after

PREFETCH_POLL_S = 0.005  # while a worker runs a job alone: how often to look for a next one
# a synthesis is handed ahead to a busy worker only after waiting this long: a worker
# that is free, or has just answered, takes it from the queue first
PREFETCH_MIN_AGE_S = 0.02


# a worker in one of these states takes the next synthesis from the queue soon
SOON_FREE = (WorkerState.READY, WorkerState.STARTING, WorkerState.RESTARTING)


def crashed() -> TTSError:
    return TTSError("ENGINE_CRASHED", "the worker process died during this synthesis; it "
                                      "was restarted")


class Readable:
    """``conn.poll(timeout)`` without building a selector on every call (the serving
    thread polls once per message: the answer and each record of a job)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.poller: select.poll | None = None
        with contextlib.suppress(AttributeError, OSError, ValueError):
            p = select.poll()
            p.register(conn.fileno(), select.POLLIN | select.POLLPRI)
            self.poller = p

    def __call__(self, timeout: float) -> bool:
        if self.poller is None:
            return bool(self.conn.poll(max(0.0, timeout)))
        # POLLHUP/POLLERR count as readable: recv() then raises EOFError / OSError
        return bool(self.poller.poll(max(0, math.ceil(timeout * 1000.0))))


class Serving:
    """One worker's serving thread (``serve``)."""

    def __init__(self, worker: Worker, queue: WaitQueue, life: Lifecycle,
                 timeout: float) -> None:
        self.worker = worker
        self.queue = queue
        self.life = life
        self.timeout = timeout
        self.inflight: deque[Item] = deque()  # sent to the worker, oldest first
        self.head_t0 = 0.0  # when the oldest one started

    def serve(self) -> None:
        """Take the next synthesis whenever the worker is free; restart the worker when
        it died while idle; retry failed loads after back-off."""
        worker, life = self.worker, self.life
        while not self.queue.stopping.is_set():
            if worker.swap is not None and worker.state in (WorkerState.READY,
                                                            WorkerState.FAILED):
                life.swap(worker)  # between jobs: a reloaded engine takes over
                continue
            if worker.state == WorkerState.FAILED:
                if time.monotonic() >= worker.retry_at:
                    life.spawn(worker, reason="load_retry")
                else:
                    time.sleep(0.1)
                continue
            if worker.state != WorkerState.READY:
                time.sleep(0.02)
                continue
            if worker.proc is not None and not worker.proc.is_alive():
                life.replace(worker, "died")  # died while idle: not any job's fault
                continue
            item = self.queue.take(0.5)
            if item is None:
                continue
            if worker.proc is None or not worker.proc.is_alive():  # died just now
                self.queue.put_back(item)
                life.replace(worker, "died")
                continue
            worker.state = WorkerState.BUSY
            try:
                self.run(item)
            finally:
                worker.current = None
                if worker.state == WorkerState.BUSY:
                    worker.state = WorkerState.READY

    # --- running jobs on the worker ---------------------------------------------------
    def run(self, first: Item) -> None:
        """Run ``first`` on the worker. While an ordinary synthesis runs, the next waiting
        one is sent too (one at most): it waits in the worker's pipe, and the worker
        starts it the moment it has sent its answer instead of waiting for this process
        to read the answer and pick the next job (which, with the event loop holding the
        GIL, took milliseconds per job). A synthesis counts as started, for ``queue_ms``
        and for its timeout, when the one before it on the worker has answered. If the
        worker dies or is replaced, the running synthesis fails (ENGINE_CRASHED,
        SYNTHESIS_TIMEOUT) and the one behind it goes back to the front of the queue."""
        conn = self.worker.conn
        assert conn is not None
        readable = Readable(conn)
        self.inflight.clear()
        if not self._send(conn, first):  # died between the liveness check and now
            with events.context(**first.ctx):
                self.life.replace(self.worker, "died", job_id=getattr(first.job, "id", None))
            finish(first, None, crashed())
            return
        self._start(first)
        self.inflight.append(first)
        while self.inflight:
            head = self.inflight[0]
            self._prefetch(conn, head)
            try:
                msg = self._receive(conn, readable, head)
            except (EOFError, OSError):
                with events.context(**head.ctx):  # worker_died carries the request's ids
                    self.life.replace(self.worker, "died", job_id=self.worker.current)
                self._drop(head, crashed())
                return
            except TTSError as exc:
                self._drop(head, exc)
                return
            if msg is not None:
                self._handle(head, msg)

    def _send(self, conn: Connection, item: Item) -> bool:
        item.worker = self.worker
        try:
            conn.send(JobMsg(item.mode, item.job, item.ctx, item.seq))
        except OSError:
            return False
        return True

    def _start(self, item: Item) -> None:
        """``item`` is the worker's job now: its queue wait ends, its timeout starts."""
        self.head_t0 = time.perf_counter()
        self.queue.started(item)
        self.worker.current = getattr(item.job, "id", None)
        item.stage = STAGES[1]
        queue_ms = item.queue_ms = (self.head_t0 - item.enqueued) * 1000.0
        item.loop.call_soon_threadsafe(resolve, item.started, queue_ms, None)

    def _alone(self, head: Item) -> bool:
        """The worker runs one ordinary synthesis and holds nothing behind it."""
        return len(self.inflight) == 1 and head.mode == Mode.BACK

    def _prefetch(self, conn: Connection, head: Item) -> None:
        """Hand the next waiting synthesis to the worker behind ``head`` (see ``run``),
        unless another worker is free or loading: that one takes it from the queue (handed
        ahead, it would wait behind this worker's job while a worker idles)."""
        if not self._alone(head) or self.worker.swap is not None \
                or self.queue.stopping.is_set() or self._another_free():
            return
        nxt = self.queue.take_next(PREFETCH_MIN_AGE_S)
        if nxt is None:
            return
        if self._send(conn, nxt):
            self.inflight.append(nxt)
        else:  # the worker died: found when reading
            self.queue.requeue([nxt])

    def _another_free(self) -> bool:
        """Another worker is free, or loading and about to be: a synthesis handed ahead
        now could wait for this worker's whole job while that one idles (a worker that
        failed to load is retried only after back-off: not counted)."""
        return any(w is not self.worker and w.state in SOON_FREE for w in self.life.workers)

    def _receive(self, conn: Connection, readable: Readable, head: Item) -> FromWorker | None:
        """The worker's next message; None when there is none yet (time to look for a
        next job). SYNTHESIS_TIMEOUT (the worker replaced) when ``head`` ran too long;
        EOFError/OSError when the worker is gone."""
        deadline = self.head_t0 + self.timeout
        wait = deadline - time.perf_counter()
        if self._alone(head):
            wait = min(wait, PREFETCH_POLL_S)  # look for a next job now and then
        if readable(wait):
            msg: FromWorker = conn.recv()
            return msg
        if time.perf_counter() < deadline:
            return None
        with events.context(**head.ctx):
            self.life.replace(self.worker, "timeout", job_id=self.worker.current)
        raise TTSError("SYNTHESIS_TIMEOUT", f"no result after {self.timeout:g} s; "
                                            "worker replaced")

    def _drop(self, head: Item, error: BaseException) -> None:
        """The worker is gone: ``head`` fails, the one behind it waits again."""
        self.queue.requeue(list(self.inflight)[1:])
        finish(head, None, error)

    def _handle(self, head: Item, msg: FromWorker) -> None:
        if isinstance(msg, LogMsg):  # a record of the running job (see child.JobSink)
            events.get_sink().submit(msg.item)
            if msg.event == "stage_time":
                head.stage = stage_after(msg.fields.get("stage"), head.stage)
            return
        if isinstance(msg, PartMsg):
            head.stage = STAGES[-1]  # audio went out: the last stage was reached
            if head.on_part is not None:
                head.on_part(msg.chunk)
            return
        self.queue.ran(time.perf_counter() - self.head_t0)
        self.worker.jobs += 1
        self.inflight.popleft()
        if self.inflight:
            self._start(self.inflight[0])
        self._answer(head, msg)

    @staticmethod
    def _answer(head: Item, msg: FromWorker) -> None:
        if not isinstance(msg, OkMsg):
            finish(head, None, getattr(msg, "failure", None) or TTSError(
                "INTERNAL_ERROR", f"unexpected message from the worker: {type(msg).__name__}"))
        elif head.then is not None and not head.answered:
            try:
                with events.context(**head.ctx):
                    value = head.then(msg.value, head.queue_ms)
            except Exception as exc:
                finish(head, None, exc)
            else:
                finish(head, value, None)
        else:
            finish(head, msg.value, None)
