from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.errors import TTSError
from ttsops.pipeline import text as T

BAD_CATEGORIES = {"Cc", "Cf", "Co", "Cn", "Cs"}


def test_clean_removes_controls_and_invisibles_and_counts_them():
    c = T.clean("Hel\u200blo\x00 wor\u202eld\ufeff")
    assert c.text == "Hello world"
    assert c.removed == 4
    assert set(c.kinds) == {"Cc", "Cf"}


def test_clean_normalises_nfkc_and_whitespace():
    c = T.clean("  ＡＢＣ　１２３\t\t x \r\n\r\n y  ")
    assert c.text == "ABC 123 x\ny"
    assert c.removed == 0


def test_clean_keeps_thai_sara_am_whole():
    # NFKC would split it into NIKHAHIT + SARA AA, which eSpeak reads as "Thai letter"
    assert T.clean("สำหรับ").text == "สำหรับ"
    assert T.clean("\u0e4d\u0e32").text == "\u0e33"


def test_clean_keeps_chinese_and_punctuation():
    assert T.clean("今天天气真好。").text == "今天天气真好。"


def test_lone_surrogate_is_text_invalid():
    with pytest.raises(TTSError) as ei:
        T.clean("ab\udcffcd")
    assert ei.value.code == "TEXT_INVALID"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=200))
def test_clean_properties(s):
    c = T.clean(s)  # never raises for text without lone surrogates
    for ch in c.text:
        assert ch == "\n" or unicodedata.category(ch) not in BAD_CATEGORIES, repr(ch)
    assert T.clean(c.text).text == c.text  # idempotent
    assert T.clean(c.text).removed == 0
    assert c.text == c.text.strip(" \n")
    assert "  " not in c.text


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=50))
def test_clean_on_any_string_either_cleans_or_says_text_invalid(s):
    try:
        T.clean(s)
    except TTSError as e:
        assert e.code == "TEXT_INVALID"
        assert any(unicodedata.category(ch) == "Cs" for ch in s)


@pytest.mark.parametrize("src,expected", [
    ("温度3.5度", "温度三点五度"),
    ("涨了50%", "涨了百分之五十"),
    ("2024年", "二零二四年"),
    ("2024-06-12", "二零二四年六月十二日"),
    ("下午3:30", "下午三点三十分"),
    ("电话13812345678", "电话幺三八幺二三四五六七八"),
    ("3-5个", "三到五个"),
    ("第1名", "第一名"),
    ("没有数字", "没有数字"),
])
def test_read_numbers_zh(src, expected):
    assert T.read_numbers_zh(src) == expected


def test_speakable():
    assert T.speakable("a")
    assert T.speakable("五")
    assert T.speakable("5")
    assert T.speakable("$")
    assert not T.speakable("。，！ ?")


def test_split_short_text_is_one_segment():
    assert T.split_sentences("Hello. World.", 100) == ["Hello. World."]


def test_split_long_text_at_sentence_ends():
    text = "这是第一句。" * 30 + "Hello there. How are you? " * 10
    segs = T.split_sentences(text.strip(), 50)
    assert len(segs) > 5
    assert all(len(s) <= 50 for s in segs)
    assert all(s.endswith(("。", ".", "?")) for s in segs)


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([*list("ab 。,.!?\n今天"), "word ", "x" * 30]), max_size=120),
       st.integers(min_value=20, max_value=120))
def test_split_never_drops_text_and_respects_the_limit(parts, limit):
    text = "".join(parts)
    segs = T.split_sentences(text, limit)
    if len(text) > limit:
        assert all(len(s) <= limit for s in segs)
    assert _squash("".join(segs)) == _squash(text)  # nothing lost, nothing invented


def test_warm_up_loads_what_the_engines_languages_can_use_and_nothing_else(monkeypatch):
    """The server's start-up warm-up (``normalize.warm(engine languages)``): an engine with
    one language of a shared script (the fake engine, a one-voice Piper) gets no lingua
    detector and, without Chinese, no Chinese grammar (nothing of its requests would use
    them); an engine with several gets exactly the detector its requests then use."""
    from ttsops.pipeline.normalize import language, warm, zh

    language._detector.cache_clear()
    monkeypatch.setattr(zh, "_normalizer", None)
    warm(("zh", "en"))  # the fake engine's languages
    assert language._detector.cache_info().currsize == 0
    assert zh._normalizer is not None
    monkeypatch.setattr(zh, "_normalizer", None)
    warm(("en",))
    assert language._detector.cache_info().currsize == 0 and zh._normalizer is None
    speaks = ("en", "fr", "de", "ru")  # several Latin languages, one Cyrillic
    warm(speaks)
    built = language._detector.cache_info()
    assert built.currsize == 1 and zh._normalizer is None
    runs = language.runs("Bonjour tout le monde, nous partons demain matin", supported=speaks)
    assert runs == [("fr", "Bonjour tout le monde, nous partons demain matin")]
    after = language._detector.cache_info()
    assert after.misses == built.misses and after.hits > built.hits  # found it built
