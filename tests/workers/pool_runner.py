"""A worker-side runner around the real fake engine, for testing the pool's own logic
(queueing, timeouts, crashes, restarts, load failures) without the pipeline.

A job is a string of fake-engine directives and text (e.g. ``"#sleep=300 hello"``);
``stream`` yields one piece per ``|``-separated part."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from ttsops.engines.fake import FakeEngine


class FakeRunner:
    def __init__(self, settings: Any) -> None:
        self.engine = FakeEngine(delay_ms=settings.fake_delay_ms, load_ms=settings.fake_load_ms,
                                 load_fail=settings.fake_load_fail)
        self.engine_name = "fake"

    def load(self) -> Any:
        return self.engine.load()

    def voices(self) -> list[Any]:
        return self.engine.voices()

    def back(self, job: str) -> dict[str, Any]:
        x = self.engine.infer(self.engine.prepare(job, "en", "alloy"), "en", "alloy", 1.0)
        return {"samples": len(x), "pid": os.getpid()}

    def stream(self, job: str) -> Iterator[dict[str, Any]]:
        for part in job.split("|"):
            yield self.back(part)

    def close(self) -> None:
        pass


def make(settings: Any) -> FakeRunner:
    return FakeRunner(settings)
