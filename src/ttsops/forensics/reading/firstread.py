"""The first read of many rotated files on every core: their sidecars written by worker
processes, a file each at a time, before the read that wants them.

The first whole read (``TTSOPS_LOGS_SIDECAR=auto``, no window) parses every rotated file
and writes its sidecar (``sidecar``). Parsing is Python holding the GIL, one core: on a
month of 209 files it is minutes. Here the files that lack a sidecar are parsed and
written by ``workers`` processes at once (``sidecar.build_for``, as ``ttsops logs index``
does it), and the read then takes every file from its sidecar -- the vectorised pass of
``diagnose``, ``report`` and the others instead of their loop over records.

Nothing depends on it: a file a worker could not write (damaged, changed, renamed away,
a worker that died) is read by the line path as before, which reports what it finds. A
worker re-opens the file by its path and writes only when the file's identity is the one
the caller saw. Workers are spawned (a forked child of a process whose Polars threads
run can deadlock); each holds one file's records at a time.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .logfiles import LogFile
    from .scan import Scan

# below this much to parse (compressed bytes of gzip files, an eighth of plain ones) the
# workers' start-up (~0.5 s each) costs more than it saves: the caller parses as before
MIN_BYTES = 2 << 20
MAX_WORKERS = 4  # each holds a file's records and Polars (~150-250 MB)


def prebuild(scan: Scan, files: list[LogFile] | None = None) -> int:
    """Write the missing sidecars of ``files`` (default: the scan's) on several cores,
    when this read would write them (``auto``, the whole data) and there is enough to
    parse; the number written."""
    from . import sidecar
    from .parallel import default_workers

    q = scan.query
    if sidecar.mode() != "auto" or q.since is not None or q.until is not None \
            or not sidecar.applies(scan):
        return 0
    todo: list[tuple[LogFile, str]] = []
    for f in scan.snap.files if files is None else files:
        key = sidecar.identity(f) if sidecar.eligible(f) else None
        if key is not None and not sidecar.exists(f, key):
            todo.append((f, key))
    work = sum(f.size if f.gz else f.size // 8 for f, _ in todo)
    workers = min(default_workers(), MAX_WORKERS, len(todo))
    if workers < 2 or work < MIN_BYTES or not _writable(sidecar.cache_dir()):
        return 0
    return _run(scan, todo, workers)


def _writable(d: Path) -> bool:
    """Can sidecars be written into ``d`` (made if missing)? Where they cannot, the
    workers would parse every file for nothing and the read parse it again."""
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(d, os.W_OK | os.X_OK)


def _run(scan: Scan, todo: list[tuple[LogFile, str]], workers: int) -> int:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from . import scan as scanning  # (its progress bars: the CLI's)
    from .sidecar import cache_dir

    cache = str(cache_dir())
    bar = None if scanning.progress_factory is None else \
        scanning.progress_factory(sum(f.size for f, _ in todo), "parsing rotated files once")
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


def build(where: str, role: str, label: str, gz: bool, key: str, cache: str) -> bool:
    """In a worker: parse the file at ``where`` whole and write its sidecar into
    ``cache``, if it is still the version named ``key``."""
    from .logfiles import LogFile
    from .scan import Scan
    from .sidecar import build_for, identity

    try:
        fd = os.open(where, os.O_RDONLY)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        f = LogFile(where, role, 0, label, gz, fd, st.st_size, (st.st_dev, st.st_ino))
        if identity(f) != key:  # replaced or renamed away since the caller looked
            return False
        return build_for(f, [Path(cache)], Scan.of_file(f)) is not None
    except Exception:
        return False
    finally:
        os.close(fd)
