"""Filtering on several processes: for a selective scan of many compressed bytes, each
unit of work (a run of index blocks, a whole unindexed ``.gz``) is decompressed *and
filtered* in a forked worker process, and only the selected lines come back.

Threads (``parallel.ReadAhead``) overlap decompression (isal releases the GIL) with the
caller, but the literal search and line splitting that follow hold the GIL, so on a large
``--no-index`` scan the caller's one core is the limit. Here every core runs the whole
read-and-filter pipeline of its own units; the caller only parses what was selected.

Results come back in unit order (``Pool.imap``), each with the unit's problems and read
counters, so reports do not depend on which process read what. Only for selective
queries: what a worker selects is pickled back to the caller.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Callable, Iterator

from .parallel import Unit

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

# job id -> (units, select): set before the pool forks, read by its workers
_JOBS: dict[int, tuple[list[Unit[bytes]], Callable[[bytes], Any]]] = {}
_next_job = itertools.count()


def _run_unit(job_unit: tuple[int, int]) -> tuple[list[Any], list[Any], Any]:
    job, i = job_unit
    units, select = _JOBS[job]
    u = units[i]
    known = len(u.problems)
    out = [r for chunk in u.run(u) if (r := select(chunk)) is not None]
    return out, u.problems[known:], u.state.get("counters")


def available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def items(units: list[Unit[bytes]], select: Callable[[bytes], Any], workers: int,
          ) -> Iterator[tuple[Unit[bytes], Any]]:
    """(unit, select(chunk)) for every chunk whose selection is not None, in unit order;
    every unit also yields (unit, None) once when it is finished (its problems and
    ``state["counters"]`` are then those of the worker that read it)."""
    job = next(_next_job)
    _JOBS[job] = (units, select)
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(min(workers, len(units))) as pool:
            results = pool.imap(_run_unit, [(job, i) for i in range(len(units))])
            for u, (selected, problems, counters) in zip(units, results, strict=True):
                u.problems.extend(problems)
                if counters is not None:
                    u.state["counters"] = counters
                for item in selected:
                    yield u, item
                yield u, None
    finally:
        del _JOBS[job]
