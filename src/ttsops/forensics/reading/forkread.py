"""Reading in a second process while the caller parses: the shell pipeline's two cores
(``zcat | awk | grep``) for a middle-sized selective scan.

One forked child decompresses every unit and runs the query's selection (``match.Select``)
on each chunk; only the selected lines come back through a pipe (pickled, one message per
selected chunk, in unit order), while the caller parses them. Threads cannot do this:
decompression releases the GIL, but the literal search and the window check that follow
hold it, and every hand-off waits for the caller's parsing. A process pool (``fanout``)
costs more to start than a scan of a few MiB takes; one ``os.fork`` costs about a
millisecond, and the caller's modules are already loaded in the child.

The answer does not depend on it: the caller gets exactly what ``Select`` returns for each
chunk, each unit's problems and read counters when the unit is done (``(unit, None)``), as
``parallel.ReadAhead`` and ``fanout.items`` hand them out. An error in the child is raised
in the caller. Used only where forking is safe: on Linux, in a process without other
threads (a fork copies only the calling thread; a lock another one held would never be
released in the child); and only with a CPU to spare (``spare_cpu``).
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Iterator

from .parallel import Unit

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any, BinaryIO

PIPE_SIZE = 1 << 20  # the pipe's buffer (Linux: F_SETPIPE_SZ; the default is 64 KiB)


def available() -> bool:
    """Fork is safe here: Linux, and no thread but this one."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def spare_cpu() -> bool:
    """Two CPUs or more for this process, one of them free: fewer tasks ready to run
    than CPUs on the last minute's average, and right now (``/proc/loadavg``: this
    process is one of those running). On a busy machine the child only adds its cost
    (~20 ms of CPU on the tutorial's day, mostly pages copied after the fork): the
    scheduler shares a CPU among a session's processes (autogroup), so the two would take
    turns on one CPU's worth instead of running at once."""
    try:
        cpus = len(os.sched_getaffinity(0))
        if cpus < 2:
            return False
        load1, running = _load()
    except (AttributeError, OSError, ValueError, IndexError):  # not Linux
        return False
    return load1 < cpus and running < cpus


def _load() -> tuple[float, int]:
    """(the last minute's load average, tasks running or ready to run now)."""
    with open("/proc/loadavg", "rb") as f:
        fields = f.read().split()
    return float(fields[0]), int(fields[3].split(b"/")[0])


def _child(units: list[Unit[bytes]], select: Callable[[bytes], Any], out: BinaryIO) -> None:
    """Read and select every unit, in order: ("sel", i, selection) for each chunk with
    one, then ("done", i, problems, counters); ("err", exception) when something raised."""
    dump = pickle.Pickler(out, pickle.HIGHEST_PROTOCOL)
    try:
        for i, u in enumerate(units):
            known = len(u.problems)
            for chunk in u.run(u):
                got = select(chunk)
                if got is not None:
                    dump.dump(("sel", i, got))
                    dump.clear_memo()
                    out.flush()
            dump.dump(("done", i, u.problems[known:], u.state.get("counters")))
            dump.clear_memo()
            out.flush()
    except BaseException as e:  # raised again in the caller
        try:
            dump.dump(("err", e))
        except Exception:  # not picklable: its text
            dump.dump(("err", RuntimeError(f"{type(e).__name__}: {e}")))
        out.flush()


def _here(units: list[Unit[bytes]], select: Callable[[bytes], Any],
          finish: Callable[[Any], Any] | None) -> Iterator[tuple[Unit[bytes], Any]]:
    """``items`` without a child: everything in this process."""
    for u in units:
        for chunk in u.run(u):
            got = select(chunk)
            if got is not None:
                yield u, got if finish is None else finish(got)
        yield u, None


def items(units: list[Unit[bytes]], select: Callable[[bytes], Any],
          finish: Callable[[Any], Any] | None = None) -> Iterator[tuple[Unit[bytes], Any]]:
    """(unit, select(chunk)) for every chunk whose selection is not None, in unit order
    (``finish(select(chunk))`` when given: the child selects, the caller finishes);
    every unit also yields (unit, None) once when it is finished (its problems and
    ``state["counters"]`` are then those the child read)."""
    r, w = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, AttributeError, OSError):  # pragma: no cover - a smaller pipe
        pass
    import gc

    # the caller's objects out of the collector's sight while the child runs: a collection
    # would write to every page holding them, and each write to a page the two processes
    # share copies it (the child collects nothing at all: its work makes no cycles)
    gc.freeze()
    try:
        pid = os.fork()
    except OSError:  # no process to be had (a limit): read in this one
        gc.unfreeze()
        os.close(r)
        os.close(w)
        yield from _here(units, select, finish)
        return
    if pid == 0:  # the child: never returns into the caller's code
        code = 0
        try:
            gc.disable()
            os.close(r)
            with os.fdopen(w, "wb", buffering=PIPE_SIZE) as out:
                _child(units, select, out)
        except BaseException:
            code = 1
        finally:
            os._exit(code)  # no atexit handlers, no flushing of the parent's buffers
    os.close(w)
    finished = False
    try:
        with os.fdopen(r, "rb", buffering=PIPE_SIZE) as inp:
            load = pickle.Unpickler(inp)
            done = 0
            while done < len(units):
                try:
                    msg = load.load()
                except EOFError:
                    raise RuntimeError("the reading process ended before its work was "
                                       "done") from None
                if msg[0] == "sel":
                    yield units[msg[1]], msg[2] if finish is None else finish(msg[2])
                elif msg[0] == "done":
                    u = units[msg[1]]
                    u.problems.extend(msg[2])
                    if msg[3] is not None:
                        u.state["counters"] = msg[3]
                    done += 1
                    yield u, None
                else:
                    raise msg[1]
        finished = True
    finally:
        if not finished:  # the consumer stopped early, or an error: stop the child
            import signal

            os.kill(pid, signal.SIGKILL)  # not reaped yet: the pid is still the child's
        os.waitpid(pid, 0)
        gc.unfreeze()
