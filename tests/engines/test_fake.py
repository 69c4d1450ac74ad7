from __future__ import annotations

import multiprocessing as mp
import signal
import time

import numpy as np
import pytest

from ttsops.engines.fake import SAMPLE_RATE, FakeEngine, parse_directives
from ttsops.errors import TTSError
from ttsops.pipeline.metrics import spectral_centroid


def test_deterministic_sine_of_known_frequency():
    e = FakeEngine()
    e.load()
    a = e.infer(e.prepare("hello world #freq=1000", "en", "alloy"), "en", "alloy", 1.0)
    b = e.infer(e.prepare("hello world #freq=1000", "en", "alloy"), "en", "alloy", 1.0)
    assert np.array_equal(a, b)
    assert a.size == int(SAMPLE_RATE * len("hello world") * 0.060)
    assert spectral_centroid(a, SAMPLE_RATE) == pytest.approx(1000, rel=0.01)


def test_speed_scales_length():
    e = FakeEngine()
    p = e.prepare("abcdefghij", "en", "alloy")
    assert e.infer(p, "en", "alloy", 2.0).size * 2 == pytest.approx(
        e.infer(p, "en", "alloy", 1.0).size, abs=2)


def test_directives():
    p = parse_directives("hi #nan #sleep=250 #freq=300 there")
    assert p.text.split() == ["hi", "there"]
    assert p.directives == {"nan": 1.0, "sleep": 250.0, "freq": 300.0}
    e = FakeEngine()
    x = e.infer(e.prepare("abc #nan", "en", "alloy"), "en", "alloy", 1.0)
    assert np.isnan(x).sum() == 1
    x = e.infer(e.prepare("abc #inf", "en", "alloy"), "en", "alloy", 1.0)
    assert np.isinf(x).sum() == 1
    x = e.infer(e.prepare("abc #silence", "en", "alloy"), "en", "alloy", 1.0)
    assert not x.any()
    with pytest.raises(RuntimeError):
        e.infer(e.prepare("abc #raise", "en", "alloy"), "en", "alloy", 1.0)
    with pytest.raises(RuntimeError):
        e.prepare("abc #raise_prepare", "en", "alloy")


def test_sleep_and_delay():
    e = FakeEngine(delay_ms=50)
    t0 = time.perf_counter()
    e.infer(e.prepare("abc #sleep=100", "en", "alloy"), "en", "alloy", 1.0)
    assert time.perf_counter() - t0 >= 0.14


def test_load_failure_and_slow_load():
    with pytest.raises(TTSError) as ei:
        FakeEngine(load_fail=True).load()
    assert ei.value.code == "MODEL_LOAD_FAILED"
    t0 = time.perf_counter()
    FakeEngine(load_ms=100).load()
    assert time.perf_counter() - t0 >= 0.1


def _infer(text: str) -> None:
    e = FakeEngine()
    e.infer(e.prepare(text, "en", "alloy"), "en", "alloy", 1.0)


@pytest.mark.parametrize("directive,exitcode", [("#exit", 3), ("#segv", -signal.SIGSEGV)])
def test_crash_directives_end_the_process(directive, exitcode):
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_infer, args=(f"abc {directive}",))
    p.start()
    p.join(60)
    assert p.exitcode == exitcode
