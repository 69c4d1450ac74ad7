"""The stage functions on their own: they need only a ``StageContext`` (settings, engine,
its description, voices), not the ``Pipeline``; ``back``'s stages and ``stream``'s piece
stages turn the same text into the same audio and fail the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from ttsops.config import Settings
from ttsops.engines.fake import FakeEngine
from ttsops.errors import TTSError
from ttsops.pipeline import stages, streaming
from ttsops.pipeline.types import Job, SynthesisRequest


@dataclass
class Context:
    """A StageContext that is not a Pipeline: no records, no cache, no runner."""

    settings: Any
    engine: Any
    info: Any

    def voice_names(self) -> list[str]:
        return [v.name for v in self.engine.voices()]

    def default_voice(self) -> str:
        return "alloy"


@pytest.fixture
def ctx() -> Context:
    engine = FakeEngine()
    return Context(Settings(engine="fake"), engine, engine.load())


def job_of(ctx: Context, text: str, fmt: str = "pcm") -> Job:
    req = SynthesisRequest(text, format=fmt)
    st = stages.FrontState()
    for step in stages.FRONT_STEPS:
        step(req, st, ctx)
    return Job(id="ts_0", request=req, text=st.text, segments=st.segments,
               lang=st.lang or "", voice=st.voice, cache_key=None, started=0.0,
               stages={}, sample_rate=st.sample_rate, segment_langs=st.segment_langs)


def back(ctx: Context, job: Job) -> stages.BackState:
    st = stages.BackState(job)
    for _, fn in stages.BACK_STAGES:
        fn(ctx, st)
    return st


def stream(ctx: Context, job: Job) -> streaming.StreamState:
    st = streaming.open_stream(ctx, job)
    streaming.open_render(ctx, st)
    for k in range(len(st.pieces)):
        st.k = k
        for _, fn in streaming.PIECE_STAGES:
            fn(ctx, st)
    for _, fn in streaming.END_STAGES:
        fn(ctx, st)
    return st


def test_front_steps_need_only_the_context(ctx):
    job = job_of(ctx, "Hello there. How are you?")
    assert job.voice == "alloy" and job.lang == "en" and job.segment_langs == ["en"]
    assert job.segments == ["Hello there. How are you?"]
    with pytest.raises(TTSError) as exc:
        job_of(ctx, "hello", fmt="ogg-vorbis")
    assert exc.value.code == "FORMAT_UNSUPPORTED"


def test_back_and_stream_stages_make_the_same_audio(ctx):
    job = job_of(ctx, "Hello there. How are you today?")
    whole, piecewise = back(ctx, job), stream(ctx, job)
    a = np.frombuffer(whole.data, np.int16)
    b = np.frombuffer(piecewise.whole, np.int16)
    # the same sound up to the first pause (loudness is set per piece in a stream, per
    # synthesis in the whole; a stream pauses between pieces), about as long in all
    first = int(ctx.info.sample_rate * 0.06 * len("Hello there"))
    assert a.size > first
    assert np.corrcoef(a[:first].astype(float), b[:first].astype(float))[0, 1] > 0.99
    assert abs(a.size - b.size) <= 0.15 * a.size
    assert whole.rate == piecewise.rate == ctx.info.sample_rate
    assert abs(whole.metrics["duration_ms"] - piecewise.metrics["duration_ms"]) < 300


@pytest.mark.parametrize("text,code", [("hello #silence", "AUDIO_SILENT"),
                                       ("hello #raise", "ENGINE_FAILED")])
def test_back_and_stream_fail_alike(ctx, text, code):
    job = job_of(ctx, text)
    errors = []
    for run in (back, stream):
        with pytest.raises(Exception) as exc:
            run(ctx, job)
        errors.append(exc.value)
    assert type(errors[0]) is type(errors[1])
    assert str(errors[0]) == str(errors[1])
    err = stages.as_tts_error("llm_inference", errors[0])
    assert err.code == code


def test_no_samples_at_all_is_engine_failed_not_silent():
    assert stages.produced_error(0, False).code == "ENGINE_FAILED"
    assert stages.produced_error(10, False).code == "AUDIO_SILENT"
    assert stages.produced_error(10, True) is None
