"""The IndexTTS-2 adapter against the stand-in ``indextts`` package (tests/engines/
indextts_standin): the argument mapping of ``IndexTTS2(...)`` and ``infer(...)``, voices
from the TOML file (never a path from a request), emotion options, load failures and
timeouts with their records, the model's own phase times, and one call into the model at a
time. Real inference needs the user's checkpoints and a GPU: see docs/readme/engines.md."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ttsops.config import Settings
from ttsops.engines import indextts2 as mod
from ttsops.engines.indextts2 import EMOTIONS, IndexTTS2Engine, check_options
from ttsops.engines.registry import create_engine, load_engine
from ttsops.errors import TTSError
from ttsops.pipeline.runner import Pipeline
from ttsops.pipeline.types import SynthesisRequest

STANDIN = Path(__file__).resolve().parent / "indextts_standin"


def _forget_indextts() -> None:
    for name in [m for m in sys.modules if m == "indextts" or m.startswith("indextts.")]:
        del sys.modules[name]


@pytest.fixture
def kit(monkeypatch):
    """The stand-in on sys.path (and out of it again after the test)."""
    monkeypatch.syspath_prepend(str(STANDIN))
    _forget_indextts()
    import indextts_standin_kit

    yield indextts_standin_kit
    _forget_indextts()


@pytest.fixture
def install(kit, tmp_path):
    """An installation: checkpoints + voices; returns settings for it."""
    def make(**kw: Any) -> Settings:
        ck = {k: kw.pop(k) for k in ("load_seconds", "corrupt", "max_mel_tokens") if k in kw}
        model_dir = kit.make_checkpoints(tmp_path, **ck)
        voices = kit.make_voices(tmp_path)
        base: dict[str, Any] = {"engine": "indextts2", "indextts_model_dir": model_dir,
                                "indextts_voices": voices, "device": "cpu",
                                "cache_dir": tmp_path / "cache", "log_dir": tmp_path / "logs"}
        base.update(kw)
        return Settings(**base)
    return make


@pytest.fixture
def engine(install):
    e = create_engine("indextts2", install())
    load_engine(e)
    return e


def records(items: list[Any], event: str) -> list[dict[str, Any]]:
    """Fields (as written: strings) of every ``event`` record, with _level and _tb."""
    return [{**f, "_level": lvl, "_tb": "\n".join(tb or [])}
            for _t, _lg, lvl, ev, f, tb in items if ev == event]


# --- loading ---------------------------------------------------------------------------
def test_load_maps_settings_to_the_constructor(engine, tmp_path, captured):
    info = engine.info
    assert info.name == "indextts2" and info.sample_rate == 22050
    assert info.concurrent_safe is False
    assert info.device == "cpu" and info.version.startswith("2.0+v")
    assert info.model == str(tmp_path / "checkpoints")
    m = engine.model
    assert type(m).__module__ == "indextts.infer_v2"  # the stand-in, imported by its real path
    assert m.model_dir == str(tmp_path / "checkpoints")
    assert m.device == "cpu" and m.use_fp16 is False  # fp16 only on CUDA
    assert m.use_cuda_kernel is False and m.use_deepspeed is False
    assert {v.name for v in engine.voices()} == {"narrator", "bright", "alloy"}


def test_model_switches_reach_the_constructor(install):
    e = create_engine("indextts2", install(indextts_cuda_kernel=True, indextts_deepspeed=True,
                                           indextts_max_text_tokens=80,
                                           indextts_interval_silence_ms=50))
    load_engine(e)
    assert e.model.use_cuda_kernel is True and e.model.use_deepspeed is True
    e.infer(e.prepare("hello", "en", "narrator"), "en", "narrator", 1.0)
    (call,) = e.model.calls
    assert call["max_text_tokens_per_segment"] == 80 and call["interval_silence"] == 50


def test_version_follows_the_voices(install, kit, tmp_path):
    """The version is part of every cache key: a re-recorded voice or an edited voices
    file must not be answered from the old audio."""
    s = install()
    before = create_engine("indextts2", s).describe().version
    assert before == create_engine("indextts2", s).describe().version  # stable
    kit.reference(tmp_path / "refs" / "narrator.wav", 95.0, seconds=3.0)
    after = create_engine("indextts2", s).describe().version
    assert after != before
    with open(s.indextts_voices, "a", encoding="utf-8") as fh:
        fh.write('echo = "bright"\n')
    assert create_engine("indextts2", s).describe().version != after


def test_engine_load_record(install, captured):
    e = create_engine("indextts2", install())
    load_engine(e)
    (rec,) = records(captured, "engine_load")
    assert rec["engine"] == "indextts2" and rec["model"].endswith("checkpoints")
    assert float(rec["duration_ms"]) >= 0 and rec["device"] == "cpu"


def _failed(captured: list[Any]) -> dict[str, Any]:
    (rec,) = records(captured, "model_load_failed")
    assert rec["_level"] == "ERROR"
    assert rec["engine"] == "indextts2" and float(rec["duration_ms"]) >= 0
    assert rec["_tb"] and "Traceback" in rec["_tb"]
    return rec


def test_corrupt_checkpoint_fails_with_context(install, captured, tmp_path):
    e = create_engine("indextts2", install(corrupt=True))
    with pytest.raises(TTSError) as ei:
        load_engine(e)
    assert ei.value.code == "MODEL_LOAD_FAILED" and ei.value.status == 503
    assert "PytorchStreamReader" in ei.value.message
    assert ei.value.context["model"] == str(tmp_path / "checkpoints")
    rec = _failed(captured)
    assert rec["error_code"] == "MODEL_LOAD_FAILED"
    assert rec["model"] == str(tmp_path / "checkpoints")
    assert "PytorchStreamReader" in rec["_tb"]


def test_slow_load_times_out(install, captured):
    e = create_engine("indextts2", install(load_seconds=3, model_load_timeout_s=0.3))
    with pytest.raises(TTSError) as ei:
        load_engine(e)
    assert ei.value.code == "MODEL_LOAD_TIMEOUT"
    rec = _failed(captured)
    assert rec["error_code"] == "MODEL_LOAD_TIMEOUT" and 250 <= float(rec["duration_ms"]) < 3000


def test_missing_package_names_the_install(tmp_path, captured):
    _forget_indextts()
    ck = tmp_path / "checkpoints"
    ck.mkdir()
    (ck / "config.yaml").write_text("version: 2.0\n")
    sys.path.insert(0, str(STANDIN))
    try:
        import indextts_standin_kit as kit

        voices = kit.make_voices(tmp_path)
    finally:
        sys.path.remove(str(STANDIN))
    e = IndexTTS2Engine(ck, voices_file=voices, device="cpu")
    with pytest.raises(TTSError) as ei:
        load_engine(e)
    assert ei.value.code == "MODEL_LOAD_FAILED"
    assert "pip install 'ttsops[indextts]'" in ei.value.message
    assert "TTSOPS_INDEXTTS_MODEL_DIR" in ei.value.message
    _failed(captured)


@pytest.mark.parametrize("breakage, words", [
    ("no_model_dir", "does not exist"),
    ("no_voices", "TTSOPS_INDEXTTS_VOICES"),
    ("missing_reference", "reference"),
    ("bad_toml_alias", "unknown voice"),
    ("bad_default_option", "emo_alpha"),
    ("missing_checkpoint", "s2mel.pth (s2mel_checkpoint in config.yaml) is missing"),
])
def test_configuration_errors_fail_the_load(install, tmp_path, captured, breakage, words):
    s = install()
    if breakage == "no_model_dir":
        s = Settings(**{**s.model_dump(), "indextts_model_dir": tmp_path / "nowhere"})
    elif breakage == "no_voices":
        s = Settings(**{**s.model_dump(), "indextts_voices": None})
    elif breakage == "missing_reference":
        (tmp_path / "refs" / "bright.wav").unlink()
    elif breakage == "bad_toml_alias":
        with open(s.indextts_voices, "a", encoding="utf-8") as fh:
            fh.write('nova = "nobody"\n')
    elif breakage == "missing_checkpoint":
        (tmp_path / "checkpoints" / "s2mel.pth").unlink()
    elif breakage == "bad_default_option":
        text = s.indextts_voices.read_text().replace("emo_alpha = 0.5", "emo_alpha = 7")
        s.indextts_voices.write_text(text)
    e = create_engine("indextts2", s)
    with pytest.raises(TTSError) as ei:
        load_engine(e)
    assert ei.value.code == "MODEL_LOAD_FAILED"
    assert words in ei.value.message
    _failed(captured)


UPSTREAM_CONFIG = """\
dataset:
    bpe_model: bpe.model
    sample_rate: 24000
gpt:
    model_dim: 1280
    stop_mel_token: 8193
gpt_checkpoint: gpt.pth
w2v_stat: wav2vec2bert_stats.pt
s2mel_checkpoint: s2mel.pth
emo_matrix: feat2.pt
spk_matrix: feat1.pt
emo_num: [3, 17, 2, 8, 4, 5, 10, 24]
qwen_emo_path: qwen0.6bemo4-merge/
vocoder:
    type: "bigvgan"
    name: "nvidia/bigvgan_v2_22khz_80band_256x"
version: 2.0
"""


def test_checkpoint_files_of_the_upstream_config(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(UPSTREAM_CONFIG)
    assert mod.checkpoint_files(cfg) == {
        "bpe_model": "bpe.model", "gpt_checkpoint": "gpt.pth",
        "w2v_stat": "wav2vec2bert_stats.pt", "s2mel_checkpoint": "s2mel.pth",
        "emo_matrix": "feat2.pt", "spk_matrix": "feat1.pt",
        "qwen_emo_path": "qwen0.6bemo4-merge"}


# --- the call into the model -----------------------------------------------------------
def test_infer_arguments_and_audio(engine, tmp_path):
    p = engine.prepare("今天天气真好。", "zh", "narrator")
    assert p.tokens == 7 and p.unknown_tokens == 0
    x = engine.infer(p, "zh", "narrator", 1.0)
    (call,) = engine.model.calls
    assert call["spk_audio_prompt"] == str(tmp_path / "refs" / "narrator.wav")
    assert call["text"] == "今天天气真好。"
    assert call["output_path"] is None
    assert call["emo_vector"] is None and call["emo_audio_prompt"] is None
    assert call["use_emo_text"] is False
    assert call["interval_silence"] == 200 and call["max_text_tokens_per_segment"] == 120
    assert x.dtype == np.float32 and x.ndim == 1
    assert 0.05 < float(np.abs(x).max()) <= 1.0
    assert x.size == 6 * int(0.16 * 22050) + int(0.08 * 22050)  # 6 syllables + the "。"


def test_alias_and_voice_defaults(engine, tmp_path):
    engine.infer(engine.prepare("hello", "en", "ALLOY"), "en", "alloy", 1.0)
    engine.infer(engine.prepare("hello", "en", "bright"), "en", "bright", 1.0)
    a, b = engine.model.calls
    assert a["spk_audio_prompt"].endswith("narrator.wav")
    assert b["spk_audio_prompt"].endswith("bright.wav")
    assert b["emo_vector"] == [1.0] + [0.0] * 7 and b["emo_alpha"] == 0.5


@pytest.mark.parametrize("options, expect", [
    ({"emotion": "sad"}, {"emo_vector": [0, 0, 1, 0, 0, 0, 0, 0]}),
    ({"emo_vector": [0, 0.3, 0, 0, 0, 0, 0, 0.5], "emo_alpha": 0.8},
     {"emo_vector": [0, 0.3, 0, 0, 0, 0, 0, 0.5], "emo_alpha": 0.8}),
    ({"emo_text": "我太高兴了"}, {"use_emo_text": True, "emo_text": "我太高兴了"}),
    ({"emo_voice": "Bright", "emo_alpha": 0.7},
     {"emo_audio_prompt": "bright.wav", "emo_alpha": 0.7}),
    ({"use_random": True}, {"use_random": True}),
])
def test_request_options_reach_the_model(engine, options, expect):
    engine.infer(engine.prepare("hello there", "en", "narrator", options), "en", "narrator", 1)
    (call,) = engine.model.calls
    for k, v in expect.items():
        if k == "emo_audio_prompt":
            assert call[k].endswith(v)
        else:
            assert call[k] == v, k


def test_request_emotion_replaces_the_voice_default(engine):
    p = engine.prepare("hi", "en", "bright", {"emo_text": "angry words"})
    assert "emo_vector" not in p.kwargs and p.kwargs["use_emo_text"] is True
    assert p.kwargs["emo_alpha"] == 0.5  # the voice's alpha stays unless overridden


@pytest.mark.parametrize("options, param", [
    ({"emotion": "giddy"}, "options.emotion"),
    ({"emo_vector": [1, 2]}, "options.emo_vector"),
    ({"emo_vector": [0, 0, 0, 0, 0, 0, 0, float("nan")]}, "options.emo_vector"),
    ({"emo_alpha": 1.5}, "options.emo_alpha"),
    ({"emo_alpha": True}, "options.emo_alpha"),
    ({"emo_voice": "/etc/passwd"}, "options.emo_voice"),
    ({"emo_voice": "../refs/narrator.wav"}, "options.emo_voice"),
    ({"spk_audio_prompt": "/tmp/x.wav"}, "options.spk_audio_prompt"),
    ({"emotion": "sad", "emo_text": "x"}, "options"),
])
def test_bad_options_are_invalid_requests(engine, options, param):
    with pytest.raises(TTSError) as ei:
        engine.prepare("hello", "en", "narrator", options)
    assert ei.value.code == "INVALID_REQUEST" and ei.value.status == 400
    assert ei.value.param == param
    assert engine.model.calls == []


@pytest.mark.parametrize("voice", ["/etc/passwd", "refs/narrator.wav", "narrator.wav", ""])
def test_a_voice_is_never_a_path(engine, voice):
    with pytest.raises(TTSError) as ei:
        engine.prepare("hello", "en", voice)
    assert ei.value.code == "VOICE_UNKNOWN" and ei.value.param == "voice"


_values = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.integers(),
                    st.text(max_size=12), st.lists(st.floats(-1, 2), max_size=9))


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([*mod.OPTION_KEYS, "output_path", "x"]), _values,
                       max_size=4))
def test_any_options_validate_or_fail_cleanly(options):
    voices = {"narrator": mod.RefVoice("narrator", Path("/srv/voices/n.wav"))}
    try:
        out = check_options(options, voices)
    except TTSError as e:
        assert e.code == "INVALID_REQUEST" and (e.param or "").startswith("options")
        return
    assert set(out) <= set(mod.OPTION_KEYS)
    if "emo_vector" in out:
        assert len(out["emo_vector"]) == len(EMOTIONS)
        assert all(0 <= v <= 1.2 for v in out["emo_vector"])
    if "emo_voice" in out:
        assert out["emo_voice"] in voices


def test_phase_times_and_warnings_are_logged(install, captured):
    e = create_engine("indextts2", install(max_mel_tokens=40))
    load_engine(e)
    e.infer(e.prepare("one two three four five six seven", "en", "narrator"), "en",
            "narrator", 1.0)
    (ph,) = records(captured, "model_phases")
    assert ph["engine"] == "indextts2" and ph["voice"] == "narrator"
    assert ph["text_tokens"] == "7"
    assert {"gpt_gen_ms", "gpt_forward_ms", "s2mel_ms", "bigvgan_ms"} <= set(ph)
    assert float(ph["s2mel_ms"]) == 20.0 and float(ph["gpt_gen_ms"]) >= 30.0
    (w,) = records(captured, "model_warning")
    assert w["_level"] == "WARNING" and w["warning_code"] == "MODEL_WARNING"
    assert "max_mel_tokens" in w["message"]


def test_unknown_tokens_are_counted(engine):
    p = engine.prepare("hello ☃ world", "en", "narrator")
    assert p.tokens == 3 and p.unknown_tokens == 1


# --- through the pipeline -------------------------------------------------------------
def test_pipeline_run_and_oom_failure(install, captured):
    pipe = Pipeline(settings=install(), cache=False)
    r = pipe.run(SynthesisRequest("你好，世界。", voice="narrator", format="wav"))
    assert r.sample_rate == 22050 and r.duration_ms > 500
    with pytest.raises(TTSError) as ei:
        pipe.run(SynthesisRequest("CUDA_OOM please", voice="narrator", format="wav"))
    assert ei.value.code == "ENGINE_FAILED"
    (failed,) = records(captured, "synthesis_failed")
    assert "CUDA out of memory" in failed["message"]
    assert failed["_tb"] and "infer_v2.py" in failed["_tb"]
    # the service keeps serving
    assert pipe.run(SynthesisRequest("still here", voice="alloy", format="wav")).audio


def test_speed_is_left_to_the_pipeline(install):
    pipe = Pipeline(settings=install(), cache=False)
    one = pipe.run(SynthesisRequest("one two three four", voice="narrator", format="pcm"))
    two = pipe.run(SynthesisRequest("one two three four", voice="narrator", format="pcm",
                                    speed=2.0))
    assert pipe.engine.model.calls[0] == pipe.engine.model.calls[1]  # the model never sees it
    tail = pipe.settings.audio_tail_silence_ms  # the same after any speech
    assert 0.4 < (two.duration_ms - tail) / (one.duration_ms - tail) < 0.6


def test_one_call_into_the_model_at_a_time(install):
    pipe = Pipeline(settings=install(), cache=False)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            pipe.run(SynthesisRequest(f"request number {i}", voice="narrator", format="wav"))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(pipe.engine.model.calls) == 6
    assert pipe.engine.model.max_in_flight == 1


def test_the_stand_in_does_notice_overlapping_calls(engine, tmp_path):
    """The check above can fail: calling the model directly from two threads trips it."""
    ref = str(tmp_path / "refs" / "narrator.wav")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            engine.model.infer(ref, "a b c d e f", None)
        except RuntimeError as e:
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert engine.model.max_in_flight > 1 and errors


def test_request_options_go_through_the_pipeline_and_the_cache_key(install, tmp_path):
    pipe = Pipeline(settings=install(cache_dir=tmp_path / "c2"), cache=True)
    model = pipe.engine.model
    sad = pipe.run(SynthesisRequest("hello there", voice="narrator", format="wav",
                                    options={"emotion": "sad"}))
    assert model.calls[-1]["emo_vector"] == [0, 0, 1, 0, 0, 0, 0, 0]
    n = len(model.calls)
    happy = pipe.run(SynthesisRequest("hello there", voice="narrator", format="wav",
                                      options={"emotion": "happy"}))
    assert len(model.calls) > n and not happy.cache_hit and not sad.cache_hit
    again = pipe.run(SynthesisRequest("hello there", voice="narrator", format="wav",
                                      options={"emotion": "sad"}))
    assert again.cache_hit


def test_bad_options_fail_in_front_before_any_model_call(install, captured):
    pipe = Pipeline(settings=install(), cache=False)
    n = len(pipe.engine.model.calls)
    with pytest.raises(TTSError) as ei:
        pipe.front(SynthesisRequest("hi", voice="narrator", options={"emotion": "giddy"}))
    assert ei.value.code == "INVALID_REQUEST" and ei.value.param == "options.emotion"
    assert len(pipe.engine.model.calls) == n
    (done,) = records(captured, "synthesis_complete")
    assert done["status"] == "failed" and done["error_code"] == "INVALID_REQUEST"
