"""The pool's wait queue: syntheses waiting for a worker, first come first served, with
the count that ``queue_size`` bounds (``waiting``: submitted and not yet started, a job
handed ahead to a busy worker included). Every change of an item's state happens here,
under one condition variable shared with the serving threads."""

from __future__ import annotations

import threading
import time
from collections import deque

from .protocol import CANCEL_SLOTS, Mode
from .state import Item, ItemState


class WaitQueue:
    def __init__(self, stopping: threading.Event) -> None:
        self.pending: deque[Item] = deque()
        self.cond = threading.Condition()
        self.stopping = stopping
        self.waiting = 0  # syntheses submitted and not yet taken by a worker
        self.ewma_s = 1.0  # how long a job takes on a worker, smoothed
        self._seq = 0

    def put(self, item: Item) -> None:
        with self.cond:
            self._seq += 1
            item.seq = self._seq
            self.waiting += 1
            self.pending.append(item)
            self.cond.notify()

    def close(self) -> list[Item]:
        """Stop: wake every serving thread; the items still waiting, to be answered."""
        with self.cond:
            self.stopping.set()
            left = list(self.pending)
            self.pending.clear()
            self.cond.notify_all()
        return left

    def take(self, timeout: float) -> Item | None:
        """The next waiting item, now RUNNING; None after ``timeout`` without one."""
        with self.cond:
            if not self.pending and not self.stopping.is_set():
                self.cond.wait(timeout)
            while self.pending:
                item = self.pending.popleft()
                if item.state == ItemState.WAITING:
                    item.state = ItemState.RUNNING
                    self.waiting -= 1
                    return item
            return None

    def take_next(self, min_age_s: float = 0.0) -> Item | None:
        """The next waiting synthesis if it is an ordinary one (not streamed) that has
        waited ``min_age_s`` at least (time for a free worker to take it first), without
        waiting, PREFETCHED (it still counts as waiting until it starts); None otherwise
        (first come, first served)."""
        with self.cond:
            while self.pending and self.pending[0].state != ItemState.WAITING:
                self.pending.popleft()  # expired while waiting
            if not self.pending or self.pending[0].mode != Mode.BACK \
                    or time.perf_counter() - self.pending[0].enqueued < min_age_s:
                return None
            item = self.pending.popleft()
            item.state = ItemState.PREFETCHED
            return item

    def put_back(self, item: Item) -> None:
        """A taken item whose worker died before it was sent: first in line again."""
        with self.cond:
            item.state = ItemState.WAITING
            self.waiting += 1
            self.pending.appendleft(item)
            self.cond.notify()

    def requeue(self, items: list[Item]) -> None:
        """Put syntheses that were handed to a worker but never started back at the front
        of the queue (their worker died or was replaced before it reached them)."""
        with self.cond:
            for item in reversed(items):
                if item.state != ItemState.PREFETCHED:  # expired meanwhile: caller gone
                    continue
                item.state = ItemState.WAITING
                self.pending.appendleft(item)
            self.cond.notify_all()

    def started(self, item: Item) -> None:
        """A prefetched item's turn came on its worker: it no longer waits."""
        if item.state == ItemState.PREFETCHED:
            with self.cond:
                if item.state == ItemState.PREFETCHED:
                    item.state = ItemState.RUNNING
                    self.waiting -= 1

    def expire(self, item: Item) -> bool:
        """The item waited too long for a worker: EXPIRED unless it started meanwhile (a
        prefetched one still runs on its worker, unanswered)."""
        with self.cond:
            if item.state in (ItemState.WAITING, ItemState.PREFETCHED):
                item.state = ItemState.EXPIRED
                self.waiting -= 1
                return True
            return False

    def cancel(self, item: Item) -> bool:
        """CANCELLED; a worker that holds it is told to stop it at its next segment.
        False when its caller was answered already."""
        with self.cond:
            was = item.state
            if item.answered:
                return False
            item.state = ItemState.CANCELLED
            if was in (ItemState.WAITING, ItemState.PREFETCHED):
                self.waiting -= 1
            w = item.worker
            if was in (ItemState.RUNNING, ItemState.PREFETCHED) and w is not None \
                    and w.cancels is not None:
                w.cancels[item.seq % CANCEL_SLOTS] = item.seq
            return True

    def ran(self, elapsed_s: float) -> None:
        """A worker answered a job after ``elapsed_s``."""
        self.ewma_s = 0.8 * self.ewma_s + 0.2 * elapsed_s
