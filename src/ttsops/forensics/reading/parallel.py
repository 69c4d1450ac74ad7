"""Reading ahead on several cores: independent units of work (a run of index blocks, a
whole unindexed ``.gz``, a plain file) are read and decompressed by a few threads while
the caller consumes the units in order.

isal's inflate releases the GIL, so two threads really do decompress on two cores; the
caller's parsing overlaps with them. Every unit's output is a bounded queue (memory stays
at ``workers * depth`` chunks), results are handed out strictly in unit order, and a unit's
problems and counters are attached to it so that reports do not depend on thread timing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

from ...plain import Plain

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    import queue
    from typing import Any, Generic, TypeVar

    T = TypeVar("T")
else:
    T = None

    class Generic:
        """``typing.Generic`` at run time: ``Unit[bytes]`` is ``Unit``."""

        def __class_getitem__(cls, item: object) -> type:
            return cls
_DONE = object()


def default_workers() -> int:
    """``TTSOPS_LOGS_WORKERS`` or one thread per CPU this process may use (at most 8)."""
    from ...knobs import value

    if value("logs_workers") > 0:
        return int(value("logs_workers"))
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def workers_set() -> bool:
    """``TTSOPS_LOGS_WORKERS`` is set (not 0: one per CPU, the reader's choice)."""
    from ...knobs import value

    return int(value("logs_workers")) > 0


class Unit(Plain, Generic[T]):
    """One unit of work and what it produced."""

    FIELDS = ("key", "run", "problems", "state", "q")
    __slots__ = FIELDS

    def __init__(self, key: Any, run: Callable[[Unit[T]], Iterator[T]],
                 problems: list[Any] | None = None, state: dict[str, Any] | None = None,
                 q: queue.Queue[Any] | None = None) -> None:
        self.key = key
        self.run = run
        self.problems: list[Any] = [] if problems is None else problems
        self.state: dict[str, Any] = {} if state is None else state
        self.q = q  # the unit's output queue, made by ``ReadAhead`` when it uses threads


class ReadAhead(Generic[T]):
    """``for unit, item in ReadAhead(units, workers).items(): ...`` in unit order.

    With ``workers <= 1`` everything runs in the calling thread (no threads at all); so
    does every unit whose ``state["bytes"]`` says it has nothing to read (an indexed
    file none of whose blocks is wanted: a trace over a month skips ~200 such files, and
    a queue and a thread hand-off each cost more than the unit)."""

    def __init__(self, units: Iterable[Unit[T]], workers: int | None = None,
                 depth: int = 8) -> None:
        self.units = list(units)
        self.workers = default_workers() if workers is None else max(1, workers)
        self.depth = depth
        self.stop: Any = None  # a threading.Event, made when threads run (items)

    def _produce(self, u: Unit[T]) -> None:
        import queue

        assert u.q is not None
        try:
            for item in u.run(u):
                while not self.stop.is_set():
                    try:
                        u.q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self.stop.is_set():
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self._put_final(u, e)
            return
        self._put_final(u, _DONE)

    def _put_final(self, u: Unit[T], item: Any) -> None:
        import queue

        assert u.q is not None
        while not self.stop.is_set():
            try:
                u.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def items(self) -> Iterator[tuple[Unit[T], T | None]]:
        """(unit, item) in order; every unit also yields (unit, None) once when it is
        finished (its problems and state are then complete)."""
        heavy = [u for u in self.units if u.state.get("bytes", 1)]
        if self.workers <= 1 or not heavy:
            for u in self.units:
                for item in u.run(u):
                    yield u, item
                yield u, None
            return
        import queue
        import threading  # here: a query answered from the index starts no thread

        self.stop = threading.Event()
        for u in self.units:
            u.q = None  # nothing to read: run by the consumer when its turn comes
        for u in heavy:
            u.q = queue.Queue(self.depth)
        todo: queue.SimpleQueue[Unit[T] | None] = queue.SimpleQueue()
        for u in heavy:  # taken in order: the unit consumed next always runs
            todo.put(u)

        def worker() -> None:
            while not self.stop.is_set():
                try:
                    u = todo.get_nowait()
                except queue.Empty:
                    return
                if u is None:
                    return
                self._produce(u)
        threads = [threading.Thread(target=worker, name="ttsops-read", daemon=True)
                   for _ in range(min(self.workers, len(heavy)))]
        for t in threads:
            t.start()
        try:
            for u in self.units:
                if u.q is None:
                    for item in u.run(u):
                        yield u, item
                    yield u, None
                    continue
                while True:
                    item = u.q.get()
                    if item is _DONE:
                        break
                    if isinstance(item, BaseException):
                        raise item
                    yield u, item
                yield u, None
        finally:
            self.stop.set()
            for t in threads:
                t.join()
