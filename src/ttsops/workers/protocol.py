"""The messages between the pool (main process) and a worker process, one type per kind,
used on both ends of the worker's pipe.

Main process -> worker: ``JobMsg`` (run one synthesis), ``StopMsg`` (finish and exit).
Worker -> main process: first ``ReadyMsg`` or ``LoadFailedMsg``; then, for each job, any
number of ``LogMsg`` (its records, in order) and ``PartMsg`` (streamed chunks), then one
answer, ``OkMsg`` or ``ErrMsg``. NamedTuples: they pickle as small tuples.

At its start a worker gets the settings as ``SettingsValues`` (``values_of``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias, cast

from .. import events

if TYPE_CHECKING:
    import ctypes

    from ..config import Settings
    from ..engines.base import EngineInfo, VoiceInfo

CANCEL_SLOTS = 8  # per worker: job seq numbers to stop (at most 2 jobs are in flight)
# shared memory (``RawArray("q", CANCEL_SLOTS)``, no lock) where the pool writes the seq
# number of a job to stop, in slot ``seq % CANCEL_SLOTS``; the worker reads it
CancelSlots: TypeAlias = "ctypes.Array[ctypes.c_longlong]"


class SettingsValues:
    """The settings as they cross to a worker process: their values, as plain attributes.

    A worker only reads its settings. Sent as the ``Settings`` model itself, they made
    every worker import pydantic and pydantic-settings to unpickle them: 0.12-0.19 s of
    CPU and 12.6 MB of memory per worker start, and per restart."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"SettingsValues({self.__dict__!r})"


def values_of(settings: Settings) -> Settings:
    """``settings`` as ``SettingsValues`` (every field, validated values as they are),
    typed as the model: the worker's code reads attributes of it and nothing else."""
    values = {name: getattr(settings, name) for name in type(settings).model_fields}
    return cast("Settings", SettingsValues(values))


class Mode(StrEnum):
    BACK = "back"  # the four engine/audio stages at once: one answer
    STREAM = "stream"  # piece by piece: parts, then the answer


# --- main process -> worker ---------------------------------------------------------
class JobMsg(NamedTuple):
    mode: Mode
    job: Any  # a pipeline Job (or what the configured runner takes)
    ctx: dict[str, str]  # the request's log context (request_id, trace_id, id)
    seq: int  # the job's number: the worker stops it when its cancel slot holds it


class StopMsg(NamedTuple):
    """Finish the job in hand and exit."""


# --- worker -> main process -----------------------------------------------------------
class ReadyMsg(NamedTuple):
    info: EngineInfo
    voices: list[VoiceInfo]
    pid: int
    load_ms: float


class LoadFailedMsg(NamedTuple):
    code: str  # MODEL_LOAD_FAILED or MODEL_LOAD_TIMEOUT
    detail: str


class LogMsg(NamedTuple):
    """A record of the running job (the worker's ``JobSink``)."""

    item: events.Item

    @property
    def event(self) -> str:
        return self.item[3]

    @property
    def fields(self) -> dict[str, Any]:
        return self.item[4]


class PartMsg(NamedTuple):
    chunk: Any  # a StreamChunk


class OkMsg(NamedTuple):
    value: Any  # RenderedAudio (back), None (stream)


class ErrMsg(NamedTuple):
    failure: BaseException  # a SynthesisFailure, already logged in the worker


ToWorker = JobMsg | StopMsg
FromWorker = ReadyMsg | LoadFailedMsg | LogMsg | PartMsg | OkMsg | ErrMsg
Answer = OkMsg | ErrMsg
