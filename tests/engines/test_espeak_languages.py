"""Languages through the real eSpeak NG engine: every language the engine lists speaks,
detected text is read by the voice of its language (no English switch, no letter names),
and what no voice can read is refused with a code."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from ttsops.config import Settings
from ttsops.engines.espeak import LANG_VOICE
from ttsops.errors import TTSError
from ttsops.pipeline.runner import Pipeline
from ttsops.pipeline.types import SynthesisRequest


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    d = tmp_path_factory.mktemp("langs")
    return Pipeline(settings=Settings(engine="espeak", cache_dir=d / "c", log_dir=d / "l"),
                    cache=False)


def _voiced(data: bytes) -> tuple[float, float]:
    x, sr = sf.read(io.BytesIO(data), dtype="float32")
    return len(x) / sr, float(np.sqrt(np.mean(x ** 2)))


def test_the_engine_lists_the_languages_of_its_data(pipe):
    assert set(pipe.info.languages) == set(LANG_VOICE)
    assert {"zh", "en", "ja", "ar", "ru", "ko", "fr", "vi", "yue"} <= set(pipe.info.languages)


@pytest.mark.parametrize("code", sorted(LANG_VOICE))
def test_every_listed_language_speaks(pipe, code):
    r = pipe.run(SynthesisRequest("1 2 3", lang=code, format="wav"))
    dur, rms = _voiced(r.audio)
    assert r.lang == code
    assert dur > 0.3 and rms > 0.01, (code, dur, rms)


SAMPLES = {
    "ja": "こんにちは、ありがとうございます",
    "ko": "안녕하세요, 주문해 주셔서 감사합니다",
    "ar": "مرحبا بالعالم",
    "fa": "سلام دنیا، سفارش شما ارسال شد",
    "ru": "Спасибо за ваш заказ, посылка прибудет завтра.",
    "uk": "Дякуємо за ваше замовлення.",
    "el": "Ευχαριστούμε για την παραγγελία σας.",
    "he": "תודה על ההזמנה שלך",
    "th": "ขอบคุณสำหรับการสั่งซื้อ",
    "hi": "आपके ऑर्डर के लिए धन्यवाद।",
    "fr": "Merci pour votre commande, le colis arrivera demain.",
    "de": "Vielen Dank für Ihre Bestellung, das Paket kommt morgen an.",
    "es": "Gracias por su pedido, el paquete llegará mañana.",
    "vi": "Cảm ơn bạn đã đặt hàng.",
    "zh": "您的订单已发货，预计明天送达。",
    "en": "Thank you for your order, it will arrive tomorrow.",
}


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_detected_language_is_read_by_its_own_voice(pipe, code):
    text = SAMPLES[code]
    job = pipe.front(SynthesisRequest(text, format="wav"))
    assert job.lang == code and set(job.segment_langs) == {code}
    phonemes = pipe.engine.prepare(job.segments[0], code, "alloy").phonemes
    # eSpeak marks a switch to another language's rules as "(en)": not for native text
    assert "(en)" not in phonemes and phonemes, phonemes
    dur, rms = _voiced(pipe.back(job).audio)
    assert dur > 0.3 and rms > 0.01


def test_arabic_is_no_longer_spelled_as_english_letter_names(pipe):
    r = pipe.run(SynthesisRequest("مرحبا بالعالم", format="wav"))
    dur, _ = _voiced(r.audio)
    assert r.lang == "ar"
    assert dur < 3.0  # "arabic letter meem ..." took 7.6 s


def test_japanese_kana_is_japanese_and_kanji_are_refused_with_a_reason(pipe):
    assert pipe.run(SynthesisRequest("こんにちは", format="wav")).lang == "ja"
    with pytest.raises(TTSError) as ei:
        pipe.run(SynthesisRequest("こんにちは世界", format="wav"))
    err = ei.value
    assert err.code == "LANG_UNSUPPORTED" and err.status == 400 and err.param == "input"
    assert "Japanese" in err.message and "世界" in err.message and "kana" in err.message


def test_a_script_without_a_voice_is_refused_naming_the_language(pipe):
    with pytest.raises(TTSError) as ei:
        pipe.run(SynthesisRequest("សួស្តី​ពិភពលោក", format="wav"))  # Khmer
    assert ei.value.code == "LANG_UNSUPPORTED" and "Khmer (km)" in ei.value.message


def test_emoji_only_is_text_empty_and_emoji_are_never_read(pipe):
    with pytest.raises(TTSError) as ei:
        pipe.run(SynthesisRequest("😀😀🎉", format="wav"))
    assert ei.value.code == "TEXT_EMPTY" and "emoji" in ei.value.message
    with_emoji = pipe.front(SynthesisRequest("你好😀👍🏽世界", format="wav"))
    assert with_emoji.lang == "zh" and "😀" not in with_emoji.text
    plain = pipe.run(SynthesisRequest("你好 世界", format="wav"))
    assert _voiced(pipe.back(with_emoji).audio)[0] == pytest.approx(
        _voiced(plain.audio)[0], abs=0.05)


def test_two_scripts_two_voices_and_the_label_names_both(pipe):
    job = pipe.front(SynthesisRequest("Спасибо! 您的订单已发货，预计明天送达。", format="wav"))
    assert job.lang == "zh+ru"  # main language (most letters) first
    assert job.segment_langs == ["ru", "zh"]
    assert job.segments == ["Спасибо!", "您的订单已发货,预计明天送达。"]
    dur, rms = _voiced(pipe.back(job).audio)
    assert dur > 1.0 and rms > 0.01


def test_latin_words_in_chinese_stay_with_the_chinese_voice(pipe):
    job = pipe.front(SynthesisRequest("我用iPhone 15打电话", format="wav"))
    assert job.lang == "zh" and job.segment_langs == ["zh"]
    assert job.text == "我用iPhone 十五打电话"


def test_a_given_lang_overrides_detection(pipe):
    job = pipe.front(SynthesisRequest("Bonjour, votre commande est prête.", lang="en",
                                      format="wav"))
    assert job.lang == "en" and job.segment_langs == ["en"]
    assert pipe.front(SynthesisRequest("Bonjour", lang="fr-FR", format="wav")).lang == "fr"
