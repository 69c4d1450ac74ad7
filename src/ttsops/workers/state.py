"""What the pool keeps about its workers and the syntheses it runs on them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import TTSError
from ..pipeline.types import STAGES, SynthesisFailure
from .protocol import CancelSlots, Mode, ReadyMsg

if TYPE_CHECKING:
    from ..engines.base import EngineInfo, VoiceInfo


class WorkerState(StrEnum):
    STARTING = "starting"  # a process is loading the engine
    READY = "ready"  # idle, waiting for a synthesis
    BUSY = "busy"  # running one (and perhaps holding the next)
    RESTARTING = "restarting"  # its process died or was killed: being replaced
    FAILED = "failed"  # the engine did not load: retried at ``retry_at``
    STOPPED = "stopped"  # the pool stopped


class Swap(NamedTuple):
    """A process that reloaded the engine, ready to take over a worker's place."""

    proc: BaseProcess
    conn: Connection
    ready: ReadyMsg


@dataclass
class Worker:
    index: int
    proc: BaseProcess | None = None
    conn: Connection | None = None
    pid: int | None = None
    state: WorkerState = WorkerState.STARTING
    retry_at: float = 0.0  # FAILED: when to try loading again (time.monotonic)
    jobs: int = 0
    load_failures: int = 0
    current: str | None = None  # id of the job in flight
    cancels: CancelSlots | None = None  # seq numbers of jobs to stop (see protocol.py)
    swap: Swap | None = None  # a reloaded engine to take over (between jobs)
    info: EngineInfo | None = None
    voices: list[VoiceInfo] = field(default_factory=list)


class ItemState(StrEnum):
    WAITING = "waiting"  # in the queue
    PREFETCHED = "prefetched"  # sent behind a running job: still waiting until it starts
    RUNNING = "running"
    EXPIRED = "expired"  # waited too long for a worker: its caller was answered
    CANCELLED = "cancelled"  # its caller went away: its caller was answered


@dataclass
class Item:
    """A synthesis waiting for, or running on, a worker."""

    mode: Mode
    job: Any
    ctx: dict[str, str]
    loop: asyncio.AbstractEventLoop
    started: asyncio.Future[float]  # resolved with queue_ms when a worker takes it
    done: asyncio.Future[Any]  # the worker's answer
    on_part: Callable[[Any], None] | None = None
    then: Callable[[Any, float], Any] | None = None  # run on the answer (serving thread)
    enqueued: float = field(default_factory=time.perf_counter)
    state: ItemState = ItemState.WAITING
    queue_ms: float = 0.0
    # the stage it is in, for a failure decided here (model_stage of a crash, a timeout):
    # text_normalize until a worker takes it, then the stage after the last one timed
    stage: str = STAGES[0]
    seq: int = 0  # tells the worker which job to stop (cancel)
    worker: Worker | None = None  # the Worker it was sent to

    @property
    def answered(self) -> bool:
        """Its caller has had an answer from the pool already (expired or cancelled)."""
        return self.state in (ItemState.EXPIRED, ItemState.CANCELLED)


def stage_after(done: Any, current: str) -> str:
    """The stage a job is in once ``done`` has been timed (the last one stays)."""
    if done not in STAGES:
        return current
    return STAGES[min(STAGES.index(done) + 1, len(STAGES) - 1)]


def resolve(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    """(event loop) Settle ``fut`` unless it is settled already."""
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


def finish(item: Item, value: Any, exc: BaseException | None) -> None:
    """(any thread) Answer ``item``'s caller, unless the pool answered it already."""
    if item.answered:
        return
    if isinstance(exc, TTSError) and not isinstance(exc, SynthesisFailure):
        exc.context.setdefault("stage", item.stage)  # decided here, not in the worker
    with contextlib.suppress(RuntimeError):  # the loop is gone (shutdown)
        item.loop.call_soon_threadsafe(resolve, item.done, value, exc)
        if exc is not None:
            item.loop.call_soon_threadsafe(resolve, item.started, 0.0, None)
