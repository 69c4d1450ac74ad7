"""The first read of many rotated files on every core: their sidecars written by worker
processes, a file each at a time, before the read that wants them (``sidecar.prebuild``
says which files; this module runs the workers).

The first whole read (``TTSOPS_LOGS_SIDECAR=auto``, no window) parses every rotated file
and writes its sidecar (``sidecar``). Parsing is Python holding the GIL, one core: on a
month of 209 files it is minutes. Here the files that lack a sidecar are parsed and
written by up to ``MAX_WORKERS`` processes at once (``sidecar.build_file``, as
``ttsops logs index`` does it), and the read then takes every file from its sidecar --
the vectorised pass of ``diagnose``, ``report`` and the others instead of their loop over
records.

Nothing depends on it: a file a worker could not write (damaged, changed, renamed away,
a worker that died) is read by the line path as before, which reports what it finds. A
worker re-opens the file by its path and writes only when the file's identity is the one
the caller saw. Workers are spawned (a forked child of a process whose Polars threads
run can deadlock); each holds one file's records at a time.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .logfiles import LogFile

# below this much to parse (compressed bytes of gzip files, an eighth of plain ones) the
# workers' start-up (~0.5 s each) costs more than it saves: the caller parses as before
MIN_BYTES = 2 << 20
MAX_WORKERS = 4  # each holds a file's records and Polars (~150-250 MB)

# a worker's job: (path, role, label, gz, key, cache directory) -> written?
Build = Callable[[str, str, str, bool, str, str], bool]


def run(todo: list[tuple[LogFile, str]], build: Build,
        new_bar: Callable[[int], Callable[[int], None] | None]) -> int:
    """Write the sidecars of ``todo`` (files and their keys) by ``build`` in worker
    processes when there is enough to parse and somewhere to write; how many were
    written (0: none tried, the read writes them as before)."""
    from ._sidecar_store import cache_dir
    from .parallel import default_workers

    work = sum(f.size if f.gz else f.size // 8 for f, _ in todo)
    workers = min(default_workers(), MAX_WORKERS, len(todo))
    if workers < 2 or work < MIN_BYTES or not _writable(cache_dir()):
        return 0
    return _run(todo, workers, build, new_bar)


def _writable(d: Path) -> bool:
    """Can sidecars be written into ``d`` (made if missing)? Where they cannot, the
    workers would parse every file for nothing and the read parse it again."""
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(d, os.W_OK | os.X_OK)


def _run(todo: list[tuple[LogFile, str]], workers: int, build: Build,
         new_bar: Callable[[int], Callable[[int], None] | None]) -> int:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from ._sidecar_store import cache_dir

    cache = str(cache_dir())
    bar = new_bar(sum(f.size for f, _ in todo))
    done = failed = 0
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_quiet)
    try:
        jobs = {pool.submit(build, f.where, f.role, f.label, f.gz, key, cache): f
                for f, key in sorted(todo, key=lambda t: -t[0].size)}
        for job in as_completed(jobs):
            ok = False
            with contextlib.suppress(Exception):  # (a worker died: its files are read as before)
                ok = bool(job.result())
            done += ok
            failed += not ok
            if bar is not None:
                bar(jobs[job].size)
            if not done and failed >= 2 * workers:
                break  # nothing could be written (a full disk ...): the read parses the rest
    except Exception:
        pass
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None and hasattr(bar, "close"):
            bar.close()
    return done


def _quiet() -> None:
    """A worker leaves Ctrl-C to the caller (which stops the pool), printing nothing."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
