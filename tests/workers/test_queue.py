"""The wait queue's bookkeeping on its own (no processes): what counts as waiting, which
job is handed ahead, what expiry, cancellation and requeueing do to an item's state."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from ttsops.workers.protocol import CANCEL_SLOTS, Mode
from ttsops.workers.queue import WaitQueue
from ttsops.workers.state import Item, ItemState, Worker


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def item(loop: asyncio.AbstractEventLoop, mode: Mode = Mode.BACK) -> Item:
    return Item(mode, "job", {}, loop, loop.create_future(), loop.create_future())


def test_first_come_first_served_and_counted_until_started(loop):
    q = WaitQueue(threading.Event())
    a, b = item(loop), item(loop)
    q.put(a)
    q.put(b)
    assert (a.seq, b.seq, q.waiting) == (1, 2, 2)
    assert q.take(0) is a and a.state == ItemState.RUNNING and q.waiting == 1
    assert q.take_next() is b and b.state == ItemState.PREFETCHED
    assert q.waiting == 1  # handed ahead: still waiting until its turn on the worker
    q.started(b)
    assert b.state == ItemState.RUNNING and q.waiting == 0
    assert q.take(0) is None


def test_a_stream_is_never_handed_ahead(loop):
    q = WaitQueue(threading.Event())
    s = item(loop, Mode.STREAM)
    q.put(s)
    assert q.take_next() is None and s.state == ItemState.WAITING
    assert q.take(0) is s


def test_expired_items_are_skipped_and_not_requeued(loop):
    q = WaitQueue(threading.Event())
    a, b = item(loop), item(loop)
    q.put(a)
    q.put(b)
    assert q.expire(a) and a.answered and q.waiting == 1
    assert not q.expire(a)  # once
    assert q.take_next() is b  # a skipped
    assert q.expire(b)  # a prefetched item expires too (its worker runs it unanswered)
    q.requeue([b])
    assert not q.pending and q.waiting == 0


def test_a_requeued_item_is_first_in_line_again(loop):
    q = WaitQueue(threading.Event())
    a, b = item(loop), item(loop)
    q.put(a)
    q.put(b)
    assert q.take_next() is a
    q.requeue([a])
    assert a.state == ItemState.WAITING and q.take(0) is a and q.waiting == 1


def test_cancel_tells_the_worker_that_holds_it(loop):
    q = WaitQueue(threading.Event())
    w = Worker(0, cancels=[-1] * CANCEL_SLOTS)
    a = item(loop)
    q.put(a)
    assert q.take(0) is a
    a.worker = w
    assert q.cancel(a) and a.state == ItemState.CANCELLED
    assert w.cancels[a.seq % CANCEL_SLOTS] == a.seq
    assert not q.cancel(a)  # answered already


def test_close_wakes_the_serving_threads_and_hands_back_the_waiting(loop):
    stopping = threading.Event()
    q = WaitQueue(stopping)
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(q.take(30)))
    t.start()
    q.put(a := item(loop))
    t.join(10)
    assert got == [a]
    b = item(loop)
    q.put(b)
    assert q.close() == [b] and stopping.is_set()
    assert q.take(30) is None  # returns at once once stopping


def test_an_item_is_handed_ahead_only_after_waiting_its_minimum(loop):
    """A free worker gets the first chance at a new item (``take``); a busy worker's
    prefetch (``take_next`` with a minimum age) leaves it alone until it has waited."""
    q = WaitQueue(threading.Event())
    a = item(loop)
    q.put(a)
    assert q.take_next(min_age_s=60.0) is None and a.state == ItemState.WAITING
    a.enqueued -= 61.0  # as if it had waited a minute
    assert q.take_next(min_age_s=60.0) is a and a.state == ItemState.PREFETCHED
