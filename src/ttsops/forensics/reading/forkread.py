"""Reading in a second process while the caller parses: the shell pipeline's two cores
(``zcat | awk | grep``) for a middle-sized selective scan.

One forked child decompresses units and runs the query's selection (``match.Select``) on
each chunk; only the selected lines come back through a pipe (pickled, one message per
selected chunk), while the caller parses them. The units are shared out as they come: the
child takes them from the front, the caller from the back whenever it has nothing of the
next unit to hand on (instead of waiting); each unit's lines are handed on in unit order
whoever read it. Threads cannot do this:
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
import sys
from collections.abc import Callable, Iterator

from .parallel import Unit

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any, BinaryIO

PIPE_SIZE = 1 << 20  # the pipe's buffer (Linux: F_SETPIPE_SZ; the default is 64 KiB)


def available() -> bool:
    """Fork is safe here: Linux, and no thread but this one."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork") or \
            not hasattr(os, "memfd_create"):
        return False
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() != 1:
        return False
    return _threads() == 1


def _threads() -> int:
    """The OS threads of this process, native ones included (Polars' pool starts when it
    is imported, BLAS's with numpy's first product): ``threading`` sees none of them, and
    a fork while one of them holds an allocator's lock leaves the child waiting forever."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 2  # unknown: not safe


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
        if os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR):
            return True  # real-time (``chrt -f``): it gets the CPUs whatever the load
        load1, running = _load()
    except (AttributeError, OSError, ValueError, IndexError):  # not Linux
        return False
    return load1 < cpus and running < cpus


def _load() -> tuple[float, int]:
    """(the last minute's load average, tasks running or ready to run now)."""
    with open("/proc/loadavg", "rb") as f:
        fields = f.read().split()
    return float(fields[0]), int(fields[3].split(b"/")[0])


class _Claims:
    """The units nobody has taken yet: the first and the last (two integers in an
    anonymous file, changed under a POSIX record lock, which is per process and let go
    if its holder dies). The child takes from the front, the caller from the back, so
    the caller's own reading touches the units it needs last."""

    def __init__(self, n: int) -> None:
        self.fd = os.memfd_create("ttsops-units", os.MFD_CLOEXEC)
        self._put(0, n - 1)

    def _put(self, lo: int, hi: int) -> None:
        os.pwrite(self.fd, lo.to_bytes(4, "big", signed=True)
                  + hi.to_bytes(4, "big", signed=True), 0)

    def take(self, front: bool) -> int | None:
        import fcntl

        fcntl.lockf(self.fd, fcntl.LOCK_EX)
        try:
            b = os.pread(self.fd, 8, 0)
            lo = int.from_bytes(b[:4], "big", signed=True)
            hi = int.from_bytes(b[4:], "big", signed=True)
            if lo > hi:
                return None
            if front:
                self._put(lo + 1, hi)
                return lo
            self._put(lo, hi - 1)
            return hi
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)


def _send(out: BinaryIO, msg: tuple[Any, ...]) -> None:
    import pickle  # here: the busy machine's path (no child) never loads it

    data = pickle.dumps(msg, pickle.HIGHEST_PROTOCOL)
    out.write(len(data).to_bytes(4, "big"))
    out.write(data)
    out.flush()


def _child(units: list[Unit[bytes]], select: Callable[[bytes], Any], claims: _Claims,
           out: BinaryIO) -> None:
    """Read and select every unit it takes, in order: ("sel", i, selection) for each
    chunk with one, then ("done", i, problems, counters); ("err", exception) when
    something raised."""
    try:
        while (i := claims.take(front=True)) is not None:
            u = units[i]
            known = len(u.problems)
            for chunk in u.run(u):
                got = select(chunk)
                if got is not None:
                    _send(out, ("sel", i, got))
            _send(out, ("done", i, u.problems[known:], u.state.get("counters")))
    except BaseException as e:  # raised again in the caller
        try:
            _send(out, ("err", e))
        except Exception:  # not picklable: its text
            _send(out, ("err", RuntimeError(f"{type(e).__name__}: {e}")))


def _here(units: list[Unit[bytes]], select: Callable[[bytes], Any],
          finish: Callable[[Any], Any] | None) -> Iterator[tuple[Unit[bytes], Any]]:
    """``items`` without a child: everything in this process."""
    for u in units:
        for chunk in u.run(u):
            got = select(chunk)
            if got is not None:
                yield u, got if finish is None else finish(got)
        yield u, None


class _Inbox:
    """The child's messages, read without blocking unless asked to (length-prefixed
    pickles: a buffered reader would hide what it holds from ``select``)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.open = True
        os.set_blocking(fd, False)

    def read(self, wait: bool) -> list[tuple[Any, ...]]:
        """The whole messages that have come (waiting for some when ``wait``); sets
        ``open`` to False at the end of the stream."""
        while self.open:
            try:
                data = os.read(self.fd, PIPE_SIZE)
            except BlockingIOError:
                if not wait:
                    break
                import select

                select.select([self.fd], [], [])
                continue
            if not data:
                self.open = False
                break
            self.buf += data
            if self._whole():
                break
        import pickle

        out = []
        while self._whole():
            n = int.from_bytes(self.buf[:4], "big")
            out.append(pickle.loads(memoryview(self.buf)[4:4 + n]))
            del self.buf[:4 + n]
        return out

    def _whole(self) -> bool:
        return len(self.buf) >= 4 and len(self.buf) >= 4 + int.from_bytes(self.buf[:4],
                                                                            "big")


def items(units: list[Unit[bytes]], select: Callable[[bytes], Any],
          finish: Callable[[Any], Any] | None = None) -> Iterator[tuple[Unit[bytes], Any]]:
    """(unit, select(chunk)) for every chunk whose selection is not None, in unit order
    (``finish(select(chunk))`` when given: the child selects, the caller finishes);
    every unit also yields (unit, None) once when it is finished (its problems and
    ``state["counters"]`` are then those of the process that read it).

    The units are shared out as they come: the child takes the first one not yet taken
    whenever it is done with one; the caller, whenever it has nothing of the next unit
    to hand on, takes the last one and reads it itself instead of waiting (a query that
    selects little, ``patterns``, would leave it idle)."""
    claims = _Claims(len(units))
    r, w = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, AttributeError, OSError):  # pragma: no cover - a smaller pipe
        pass
    import gc
    import pickle  # noqa: F401  # loaded once, before the fork: both sides use it

    # the caller's objects out of the collector's sight while the child runs: a collection
    # would write to every page holding them, and each write to a page the two processes
    # share copies it (the child collects nothing at all: its work makes no cycles)
    gc.freeze()
    try:
        pid = os.fork()
    except OSError:  # no process to be had (a limit): read in this one
        gc.unfreeze()
        for fd in (claims.fd, r, w):
            os.close(fd)
        yield from _here(units, select, finish)
        return
    if pid == 0:  # the child: never returns into the caller's code
        code = 0
        try:
            gc.disable()
            os.close(r)
            with os.fdopen(w, "wb", buffering=PIPE_SIZE) as out:
                _child(units, select, claims, out)
        except BaseException:
            code = 1
        finally:
            os._exit(code)  # no atexit handlers, no flushing of the parent's buffers
    os.close(w)
    finished = False
    try:
        yield from _consume(units, select, finish, claims, _Inbox(r))
        finished = True
    finally:
        if not finished:  # the consumer stopped early, or an error: stop the child
            import signal

            os.kill(pid, signal.SIGKILL)  # not reaped yet: the pid is still the child's
        os.waitpid(pid, 0)
        os.close(r)
        os.close(claims.fd)
        gc.unfreeze()


def _consume(units: list[Unit[bytes]], select: Callable[[bytes], Any],
             finish: Callable[[Any], Any] | None, claims: _Claims, inbox: _Inbox,
             ) -> Iterator[tuple[Unit[bytes], Any]]:
    """``items``' caller side: each unit's selections handed on in unit order, the
    child's as they come, the caller's own units read when it would wait."""
    sels: dict[int, list[Any]] = {}  # unit -> selections not yet handed on
    done: dict[int, tuple[Any, ...] | None] = {}  # unit -> the child's end (None: ours)
    nxt = 0
    while nxt < len(units):
        if sels.get(nxt):
            for got in sels.pop(nxt):
                yield units[nxt], got if finish is None else finish(got)
            continue
        if nxt in done:
            u = units[nxt]
            end = done.pop(nxt)
            if end is not None:
                u.problems.extend(end[0])
                if end[1] is not None:
                    u.state["counters"] = end[1]
            yield u, None
            nxt += 1
            continue
        msgs = inbox.read(wait=False)
        if not msgs:
            i = claims.take(front=False)
            if i is not None:  # nothing of unit ``nxt`` yet: read the last one ourselves
                u = units[i]
                mine = sels.setdefault(i, [])
                for chunk in u.run(u):
                    got = select(chunk)
                    if got is not None:
                        mine.append(got)
                done[i] = None
                continue
            msgs = inbox.read(wait=True)
            if not msgs and not inbox.open:
                raise RuntimeError("the reading process ended before its work was done")
        for msg in msgs:
            if msg[0] == "sel":
                sels.setdefault(msg[1], []).append(msg[2])
            elif msg[0] == "done":
                done[msg[1]] = (msg[2], msg[3])
            else:
                raise msg[1]
