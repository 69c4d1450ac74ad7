"""The pipe's messages: one type per kind, each survives pickling as the pipe does it,
and a record is read by name, not by position."""

from __future__ import annotations

import pickle

import pytest

from ttsops.engines.base import EngineInfo
from ttsops.pipeline.types import SynthesisFailure
from ttsops.workers import protocol as p

ITEM = (1.5, "ttsops.pipeline", "INFO", "stage_time", {"stage": "llm_inference"}, [])


@pytest.mark.parametrize("msg", [
    p.JobMsg(p.Mode.BACK, "job", {"request_id": "r1"}, 7),
    p.StopMsg(),
    p.ReadyMsg(EngineInfo(name="fake", version="1", sample_rate=16000, languages=("en",)),
               ["alloy"], 123, 4.5),
    p.LoadFailedMsg("MODEL_LOAD_FAILED", "RuntimeError: no model"),
    p.LogMsg(ITEM),
    p.PartMsg(b"chunk"),
    p.OkMsg({"samples": 3}),
])
def test_each_message_pickles_to_its_own_kind(msg):
    back = pickle.loads(pickle.dumps(msg))
    assert type(back) is type(msg) and back == msg


def test_an_error_answer_carries_the_failure():
    f = SynthesisFailure("ENGINE_FAILED", "boom", stage="llm_inference", logged=True)
    back = pickle.loads(pickle.dumps(p.ErrMsg(f)))
    assert isinstance(back, p.ErrMsg) and isinstance(back.failure, SynthesisFailure)
    assert back.failure.code == "ENGINE_FAILED" and back.failure.stage == "llm_inference"


def test_a_record_is_read_by_name():
    msg = p.LogMsg(ITEM)
    assert msg.event == "stage_time" and msg.fields == {"stage": "llm_inference"}


def test_a_job_mode_is_the_string_it_was():
    assert p.Mode("stream") is p.Mode.STREAM and p.Mode.BACK == "back"
