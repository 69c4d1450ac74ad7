"""The embedded eSpeak NG engine, through the bundled library (never Debian's)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import espeakng_loader
import numpy as np
import pytest

from ttsops.engines.espeak import VOICE_TABLE, EspeakEngine, EspeakInput
from ttsops.errors import TTSError
from ttsops.pipeline.metrics import spectral_centroid

SR = 22050


@pytest.fixture(scope="module")
def engine():
    e = EspeakEngine()
    e.load()
    return e


def speak(engine, text, lang, voice="alloy", speed=1.0):
    return engine.infer(engine.prepare(text, lang, voice), lang, voice, speed)


def test_load_reports_the_bundled_library(engine):
    info = engine.info
    assert info.name == "espeak" and info.sample_rate == SR
    assert re.fullmatch(r"1\.5\d\.\d+", info.version)
    assert info.languages[:2] == ("zh", "en") and {"ja", "ar", "ru"} <= set(info.languages)
    wheel = Path(espeakng_loader.__file__).parent
    assert Path(info.model).resolve() == Path(espeakng_loader.get_data_path()).resolve()
    # the process maps the wheel's libespeak-ng, not Debian's /usr/lib one
    maps = Path("/proc/self/maps").read_text()
    libs = {line.split()[-1] for line in maps.splitlines() if "libespeak-ng" in line}
    assert libs and all(str(wheel) in p for p in libs), libs


def test_describe_needs_no_load():
    e = EspeakEngine()
    info = e.describe()
    assert info.name == "espeak" and info.version != "unknown"
    assert info.extra["native_speed"][1] == 4.0


def test_voices_are_the_openai_names(engine):
    names = [v.name for v in engine.voices()]
    assert names == ["alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx",
                     "sage", "shimmer", "verse", "marin", "cedar"]


def _fingerprint(x: np.ndarray) -> np.ndarray:
    """Long-term log spectrum in 40 bands up to ~8.6 kHz: a voice's timbre and pitch."""
    n = 1024
    m = x.size // n
    spec = np.abs(np.fft.rfft(x[: m * n].reshape(m, n) * np.hanning(n), axis=1)).mean(axis=0)
    return np.log10(np.array([b.mean() for b in np.array_split(spec[:400], 40)]) + 1e-9)


def test_every_voice_sounds_different(engine):
    text = "Hello, how are you today? I am fine, thanks."
    # eSpeak NG is not bit-exact from call to call (its pitch flutter carries state), so
    # voices are told apart by their spectra: every two voices must differ by far more
    # than one voice differs from itself between runs
    runs = {v: [_fingerprint(speak(engine, text, "en", v)) for _ in range(3)]
            for v in VOICE_TABLE}
    noise = max(np.linalg.norm(r[i] - r[j]) for r in runs.values()
                for i in range(3) for j in range(i + 1, 3))
    names = list(runs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            d = np.linalg.norm(runs[a][0] - runs[b][0])
            assert d > 2 * noise, (a, b, d, noise)
    onyx = speak(engine, text, "en", "onyx")
    shimmer = speak(engine, text, "en", "shimmer")
    assert spectral_centroid(onyx, SR) < spectral_centroid(shimmer, SR)


def test_mandarin_differs_from_reading_pinyin_as_english(engine):
    zh = engine.phonemes("今天天气真好", "zh")
    en = engine.phonemes("jin tian tian qi zhen hao", "en")
    assert zh != en
    assert re.search(r"[1-5]", zh), zh  # Mandarin phonemes carry tone numbers
    assert "tɕ" in zh  # the alveolo-palatal affricate of 今/气
    assert not re.search(r"\d", en) and "dʒ" in en  # English reads j as in "jam"
    # and eSpeak's cmn reads tone-numbered pinyin the same way it reads the characters
    assert engine.phonemes("jin1 tian1 tian1 qi4 zhen1 hao3", "zh") == zh
    a = speak(engine, "今天天气真好", "zh")
    b = speak(engine, "jin tian tian qi zhen hao", "en")
    assert a.size != b.size or not np.array_equal(a, b)


def test_mixed_text_switches_to_english_for_latin_words(engine):
    ph = engine.phonemes("我们明天 meeting 开会", "zh")
    assert "(en)" in ph and "(cmn)" in ph


def test_prepare_output_is_picklable_and_has_phonemes(engine):
    import pickle

    p = engine.prepare("Hello world", "en", "fable")
    assert isinstance(p, EspeakInput) and p.espeak_voice.startswith("en-gb")
    assert pickle.loads(pickle.dumps(p)) == p
    assert "w" in p.phonemes


def test_speech_is_not_silence(engine):
    x = speak(engine, "今天天气真好", "zh")
    assert x.dtype == np.float32
    assert 1.0 < x.size / SR < 5.0
    assert float(np.sqrt(np.mean(x ** 2))) > 0.02
    assert 300 < spectral_centroid(x, SR) < 5000


@pytest.mark.parametrize("speed,lo,hi", [(2.0, 0.4, 0.65), (4.0, 0.18, 0.35),
                                         (0.5, 1.6, 2.4)])
def test_native_speed(engine, speed, lo, hi):
    base = speak(engine, "This is a test of the speaking rate.", "en")
    x = speak(engine, "This is a test of the speaking rate.", "en", speed=speed)
    assert lo < x.size / base.size < hi


def test_concurrent_calls_are_serialised(engine):
    texts = ["Hi.", "第二个句子，比较长一些。", "And a third, much longer sentence here.", "第四。"]
    texts = texts * 3
    lang = ["en", "zh", "en", "zh"] * 3
    expected = [speak(engine, t, g).size for t, g in zip(texts, lang, strict=True)]
    got: list = [None] * len(texts)

    def work(i):
        got[i] = speak(engine, texts[i], lang[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # each thread got its own text's audio (lengths differ a lot between the texts, and
    # by at most ~2% between runs of one text), never a mix of two
    for want, x in zip(expected, got, strict=True):
        assert abs(x.size - want) < 0.05 * want
        assert float(np.sqrt(np.mean(x ** 2))) > 0.02


def test_missing_data_is_model_load_failed(tmp_path):
    e = EspeakEngine(data_path=tmp_path / "nowhere")
    with pytest.raises(TTSError) as ei:
        e.load()
    assert ei.value.code == "MODEL_LOAD_FAILED"
    assert "nowhere" in ei.value.message


def test_data_without_mandarin_is_model_load_failed(tmp_path):
    # a copy of the data without cmn_dict: the engine refuses to load rather than
    # producing wrong Mandarin later
    import shutil

    src = Path(espeakng_loader.get_data_path())
    dst = tmp_path / "espeak-ng-data"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("cmn_dict"))
    e = EspeakEngine(data_path=dst)
    try:
        with pytest.raises(TTSError) as ei:
            e.load()
        assert ei.value.code == "MODEL_LOAD_FAILED"
    finally:
        EspeakEngine().load()  # put the process-wide library back on the real data
