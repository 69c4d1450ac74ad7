"""Helpers for the worker pool's tests: a pool around the real fake engine in real
spawned processes, writing to a real log; waits on conditions (never a bare sleep)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from ttsops.config import Settings
from ttsops.logline import Record, iter_records
from ttsops.logsink import LogSink
from ttsops.workers import WorkerPool, WorkerState

RUNNER = "workers.pool_runner:make"


def records(sink: LogSink) -> list[Record]:
    sink.flush()
    with open(sink.dir / "app.log", encoding="utf-8") as fh:
        return list(iter_records(fh))


def make_pool(sink: LogSink, workers: int = 1, **overrides: Any) -> WorkerPool:
    s = Settings(engine="fake", **overrides)
    return WorkerPool(s, workers=workers, runner=RUNNER, log_queue=sink.mp_queue())


async def until(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait until ``cond()`` holds (checked every 5 ms); fail with ``what`` after
    ``timeout`` s. The event loop runs meanwhile."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.005)


async def wait_ready(pool: WorkerPool, n: int | None = None, timeout: float = 30) -> None:
    n = n or pool.size
    await until(lambda: pool.ready_count >= n, f"{n} workers are ready: {pool.status()}",
                timeout)


def busy(pool: WorkerPool) -> int:
    return sum(1 for w in pool.workers if w.state == WorkerState.BUSY)


async def taken(pool: WorkerPool, running: int = 1) -> None:
    """Wait until nothing waits and ``running`` workers are busy: every job submitted so
    far was taken by a worker."""
    await until(lambda: pool.waiting == 0 and busy(pool) >= running,
                f"{running} worker(s) took the jobs: {pool.status()}")


async def handed_ahead(pool: WorkerPool) -> None:
    """Wait until one synthesis waits, not in the queue: handed to a busy worker."""
    await until(lambda: pool.waiting == 1 and not pool.queue.pending,
                f"a job was handed ahead: {pool.status()}")


@contextlib.asynccontextmanager
async def ready_pool(sink: LogSink, workers: int = 1,
                     **overrides: Any) -> AsyncIterator[WorkerPool]:
    """A started pool whose workers are all ready; stopped at the end, whatever happens."""
    pool = make_pool(sink, workers, **overrides)
    await pool.start()
    try:
        await wait_ready(pool)
        yield pool
    finally:
        await pool.stop()
