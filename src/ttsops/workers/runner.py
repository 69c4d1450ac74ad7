"""What a worker process runs: the configured engine and the engine half of the pipeline
(``PipelineRunner``), named by ``"module:function"`` so that tests and benchmarks can put
another runner in a worker (``resolve``)."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from .. import events

if TYPE_CHECKING:
    from ..config import Settings
    from ..engines.base import EngineInfo, VoiceInfo
    from ..pipeline.runner import Pipeline
    from ..pipeline.types import Job, RenderedAudio, StreamChunk

DEFAULT_RUNNER = "ttsops.workers.runner:make_runner"


def resolve(target: str) -> Callable[..., Any]:
    """The object named by ``"module:attribute"``."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class Runner(Protocol):
    """What a worker process runs, made by the ``"module:function"`` it is given (called
    with the settings). It may also have ``warm_up()`` (called once after ``load``) and
    ``engine_name`` / ``model`` (for ``model_load_failed``); the worker looks them up."""

    def load(self) -> EngineInfo: ...

    def voices(self) -> Iterable[VoiceInfo]: ...

    def back(self, job: Any) -> Any: ...  # JobMsg.job -> OkMsg.value

    def stream(self, job: Any) -> Iterable[Any]: ...  # JobMsg.job -> PartMsg.chunk, ...

    def close(self) -> None: ...


class PipelineRunner:
    """The worker-side object: the configured engine and the engine half of the pipeline
    (``load() -> EngineInfo``, ``voices()``, ``back(job)``, ``stream(job)``, ``close()``).
    The worker logs ``engine_load`` / ``model_load_failed`` itself (with its index and
    pid), so the pipeline gets an engine that is already loaded."""

    def __init__(self, settings: Settings) -> None:
        from ..engines.registry import create_engine, describe

        self.settings = settings
        self.engine = create_engine(None, settings)
        self.engine_name = self.engine.name
        pre = describe(self.engine)
        self.model = pre.model if pre is not None else ""
        self.pipeline: Pipeline | None = None

    def load(self) -> EngineInfo:
        from ..pipeline.runner import Pipeline

        info = self.engine.load()
        self.pipeline = Pipeline(self.engine, self.settings, cache=None, info=info)
        return info

    @property
    def loaded(self) -> Pipeline:
        """The pipeline over the loaded engine (``load`` first)."""
        if self.pipeline is None:
            raise RuntimeError("the runner's engine is not loaded yet (call load() first)")
        return self.pipeline

    def warm_up(self) -> None:
        """One unlogged synthesis per language, so that the first request does not pay
        for lazy imports and filter design (hundreds of ms in llm_postproc)."""
        from ..pipeline.types import SynthesisRequest, SynthesisResult

        pipeline = self.loaded
        prev = events.set_sink(events.NullSink())
        try:
            for lang, text in (("en", "Warm up."), ("zh", "预热。")):
                if lang not in pipeline.info.languages:
                    continue
                with contextlib.suppress(Exception):
                    job = pipeline.front(SynthesisRequest(
                        text=text, lang=lang, format="mp3",
                        voice=pipeline.default_voice()))
                    if isinstance(job, SynthesisResult):  # answered from a cache
                        continue
                    for _ in pipeline.stream(job):
                        pass
        finally:
            events.set_sink(prev, self.settings.log_level)

    def voices(self) -> list[VoiceInfo]:
        return list(self.engine.voices())

    def back(self, job: Job) -> RenderedAudio:
        return self.loaded.back(job)

    def stream(self, job: Job) -> Iterator[StreamChunk]:
        return self.loaded.stream(job)

    def close(self) -> None:
        self.engine.close()


def make_runner(settings: Settings) -> PipelineRunner:
    return PipelineRunner(settings)
