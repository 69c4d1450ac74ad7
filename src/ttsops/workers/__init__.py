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

The modules, from the worker process up:

- ``protocol``: the messages on a worker's pipe, one type per kind, used on both ends;
- ``runner``: what a worker runs (``Runner``; ``PipelineRunner``: the engine and
  ``Pipeline.back``);
- ``child``: the worker process's entry point (``worker_main``);
- ``state``: what the pool keeps about a worker (``Worker``, ``WorkerState``) and a
  synthesis (``Item``, ``ItemState``);
- ``queue``: the wait queue (``WaitQueue``);
- ``lifecycle``: start, restart with back-off, reload and swap, stop (``Lifecycle``);
- ``serving``: a worker's serving thread in the main process (``Serving``);
- ``pool``: ``WorkerPool``, what the server uses.
"""

from __future__ import annotations

from .child import worker_main
from .lifecycle import RETRY_BACKOFF_S
from .pool import WorkerPool, default_worker_count
from .runner import DEFAULT_RUNNER, PipelineRunner, Runner, make_runner, resolve
from .state import Worker, WorkerState

__all__ = ["DEFAULT_RUNNER", "RETRY_BACKOFF_S", "PipelineRunner", "Runner", "Worker",
           "WorkerPool", "WorkerState", "default_worker_count", "make_runner", "resolve",
           "worker_main"]
