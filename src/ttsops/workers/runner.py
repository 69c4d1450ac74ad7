"""What a worker process runs: the configured engine and the engine half of the pipeline
(``PipelineRunner``), named by ``"module:function"`` so that tests and benchmarks can put
another runner in a worker (``resolve``)."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .. import events

if TYPE_CHECKING:
    from ..config import Settings

DEFAULT_RUNNER = "ttsops.workers.runner:make_runner"


def resolve(target: str) -> Callable[..., Any]:
    """The object named by ``"module:attribute"``."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


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
        self.pipeline: Any = None

    def load(self) -> Any:
        from ..pipeline.runner import Pipeline

        info = self.engine.load()
        self.pipeline = Pipeline(self.engine, self.settings, cache=None, info=info)
        return info

    def warm_up(self) -> None:
        """One unlogged synthesis per language, so that the first request does not pay
        for lazy imports and filter design (hundreds of ms in llm_postproc)."""
        from ..pipeline.types import SynthesisRequest

        prev = events.set_sink(events.NullSink())
        try:
            for lang, text in (("en", "Warm up."), ("zh", "预热。")):
                if lang not in self.pipeline.info.languages:
                    continue
                with contextlib.suppress(Exception):
                    job = self.pipeline.front(SynthesisRequest(
                        text=text, lang=lang, format="mp3",
                        voice=self.pipeline.default_voice()))
                    if not hasattr(job, "segments"):
                        continue
                    for _ in self.pipeline.stream(job):
                        pass
        finally:
            events.set_sink(prev, self.settings.log_level)

    def voices(self) -> list[Any]:
        return list(self.engine.voices())

    def back(self, job: Any) -> Any:
        return self.pipeline.back(job)

    def stream(self, job: Any) -> Iterator[Any]:
        return self.pipeline.stream(job)

    def close(self) -> None:
        self.engine.close()


def make_runner(settings: Settings) -> PipelineRunner:
    return PipelineRunner(settings)
