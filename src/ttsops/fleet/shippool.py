"""Shipping files in several processes: each worker connects once and ships whole files
(``shipfile.ship_file``), so that a file's batches keep their order and a file's
offset stays exact. Workers are started with ``spawn`` (Polars' threads do not survive
a fork) and die with the process that started them (``PR_SET_PDEATHSIG``): a ship that
is killed stops inserting, and the next one resumes where it stopped."""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from .shipfile import Done, Inserter, Job, Sink, ship_file
from .url import ChUrl

_STATE: dict[str, Any] = {}


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies (elsewhere: nothing)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _init(url: ChUrl, host: str, batch: int) -> None:
    _die_with_parent()
    _STATE["put"] = Inserter(Sink(url), host, batch)


def _one(job: Job) -> Done:
    put = _STATE["put"]
    done = ship_file(put, job)
    put.flush()  # the file's last rows: its Done is final when it is handed back
    return done


def run_pool(url: ChUrl, host: str, jobs: list[Job], batch: int, workers: int,
             progress: Callable[[int], None] | None) -> list[Done]:
    """Ship ``jobs`` on ``workers`` processes; their results in the order of ``jobs``.
    A worker's failure (``FleetError``: the server went away) is raised here."""
    import os

    ctx = multiprocessing.get_context("spawn")
    out: list[Done | None] = [None] * len(jobs)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init,
                             initargs=(url, host, batch)) as pool:
        pending: dict[Future[Done], int] = {pool.submit(_one, j): i
                                            for i, j in enumerate(jobs)}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    i = pending.pop(f)
                    out[i] = f.result()
                    if progress is not None:
                        with contextlib.suppress(OSError):
                            progress(os.path.getsize(jobs[i].path))
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    return [d if d is not None else Done() for d in out]
