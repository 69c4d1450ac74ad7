"""Text, languages and voices through the real server (eSpeak NG) and the official
`openai` client: every voice of the client's list, languages with their own voices and
the `lang` they leave in the log, emoji and unsupported scripts refused with a code, and
the request checks for non-UTF-8 bodies and mistyped speeds."""

from __future__ import annotations

import io
import typing

import numpy as np
import pytest
import soundfile as sf
from openai import BadRequestError, OpenAI
from openai.types.audio import speech_create_params

from . import harness
from .harness import Server
from .test_errors_http import check_error

pytestmark = pytest.mark.slow
SPEECH = "/v1/audio/speech"


def client(server: Server) -> OpenAI:
    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def openai_voices() -> list[str]:
    """The voice names of the installed `openai` client (its ``Voice`` type)."""
    names: list[str] = []
    for arg in typing.get_args(speech_create_params.Voice):
        if typing.get_origin(arg) is typing.Literal:
            names += typing.get_args(arg)
    return names


def test_the_client_knows_marin_and_cedar():
    assert {"marin", "cedar", "alloy", "verse"} <= set(openai_voices())


@pytest.mark.parametrize("voice", openai_voices())
def test_every_voice_of_the_openai_client_is_accepted(espeak_server, voice):
    resp = client(espeak_server).audio.speech.create(
        model="tts-1", voice=voice, input="你好, hello.", response_format="wav")
    x, sr = sf.read(io.BytesIO(resp.content), dtype="float32")
    assert len(x) / sr > 0.3 and float(np.sqrt(np.mean(x ** 2))) > 0.01


def test_the_voice_list_has_the_clients_voices_and_languages(espeak_server):
    data = harness.get(espeak_server.url + "/v1/audio/voices", timeout=30).json()["data"]
    assert set(openai_voices()) <= {v["id"] for v in data}
    assert {"zh", "en", "ja", "ar", "ru"} <= set(data[0]["languages"])


def _lang_of(server: Server, sid: str) -> str | None:
    recs = server.wait_records(lambda rs: any(
        r.event == "synthesis_complete" and r.get("id") == sid for r in rs))
    return next(r.get("lang") for r in recs if r.event == "synthesis_start" and
                r.get("id") == sid)


@pytest.mark.parametrize("text,lang,max_s", [
    ("こんにちは", "ja", 2.0), ("مرحبا بالعالم", "ar", 3.0), ("Привет, мир!", "ru", 2.0),
    ("안녕하세요", "ko", 2.0), ("今天天气真好😀", "zh", 3.0),
    ("Спасибо! 您的订单已发货，预计明天送达。", "zh+ru", 6.0),
])
def test_languages_are_spoken_and_logged(espeak_server, text, lang, max_s):
    resp = client(espeak_server).audio.speech.create(
        model="tts-1", voice="alloy", input=text, response_format="wav")
    x, sr = sf.read(io.BytesIO(resp.content), dtype="float32")
    assert 0.3 < len(x) / sr < max_s and float(np.sqrt(np.mean(x ** 2))) > 0.01
    assert _lang_of(espeak_server, resp.response.headers["x-synthesis-id"]) == lang


@pytest.mark.parametrize("text,code,words", [
    ("😀😀🎉", "TEXT_EMPTY", ["emoji"]),
    ("こんにちは世界", "LANG_UNSUPPORTED", ["Japanese", "kana", "世界"]),
    ("សួស្តី", "LANG_UNSUPPORTED", ["Khmer"]),
])
def test_what_no_voice_reads_is_refused(espeak_server, text, code, words):
    with pytest.raises(BadRequestError) as ei:
        client(espeak_server).audio.speech.create(model="tts-1", voice="alloy", input=text)
    err = ei.value.body
    assert err["code"] == code and all(w in err["message"] for w in words), err
    r = harness.post(espeak_server.url + SPEECH, json={"model": "tts-1", "voice": "alloy",
                                                    "input": text}, timeout=30)
    check_error(espeak_server, r, 400, code)


def test_a_body_that_is_not_utf8_is_text_invalid(fake_server):
    content = b'{"model":"tts-1","voice":"alloy","input":"caf\xe9 \xff"}'
    r = harness.post(fake_server.url + SPEECH, content=content,
                     headers={"Content-Type": "application/json"}, timeout=30)
    err = check_error(fake_server, r, 400, "TEXT_INVALID")
    assert "0xe9" in err["message"]


@pytest.mark.parametrize("speed,says", [("1.5", "a string"), (None, "null"),
                                         (True, "a boolean"), ([1], "an array")])
def test_a_speed_of_the_wrong_type_is_invalid_request_saying_what_came(fake_server, speed,
                                                                      says):
    r = harness.post(fake_server.url + SPEECH, json={"model": "tts-1", "voice": "alloy",
                                                  "input": "hi", "speed": speed}, timeout=30)
    err = check_error(fake_server, r, 400, "INVALID_REQUEST")
    assert err["param"] == "speed" and says in err["message"]
    assert "valid number" not in err["message"]


def test_a_speed_out_of_range_is_still_speed_out_of_range(fake_server):
    r = harness.post(fake_server.url + SPEECH, json={"model": "tts-1", "voice": "alloy",
                                                  "input": "hi", "speed": 4.5}, timeout=30)
    check_error(fake_server, r, 400, "SPEED_OUT_OF_RANGE")
