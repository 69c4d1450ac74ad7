"""Sentence streaming, word timings and the trailing silence, against a real `ttsops serve`
with the real eSpeak NG engine: one SSE delta per sentence, a stream that is one valid
file in every format, speech.audio.word events that match the text and the audio."""

from __future__ import annotations

import base64
import io
import json

import httpx
import numpy as np
import pytest
import soundfile as sf

from . import harness
from .harness import Server

pytestmark = pytest.mark.slow

THREE = "The first sentence is here. A second one follows it. And the third ends the text."


def sse(server: Server, **body: object) -> list[dict]:
    payload = {"model": "tts-1", "voice": "alloy", "stream_format": "sse", **body}
    with httpx.stream("POST", server.url + "/v1/audio/speech", json=payload,
                      timeout=60) as r:
        assert r.status_code == 200, r.read()
        text = "".join(r.iter_text())
    return [json.loads(chunk[len("data: "):]) for chunk in text.split("\n\n") if chunk]


def av_decode(data: bytes) -> tuple[np.ndarray, int]:
    import av

    with av.open(io.BytesIO(data)) as box:
        frames = [f.to_ndarray().reshape(-1).astype(np.float32) for f in box.decode(audio=0)]
        return np.concatenate(frames), box.streams.audio[0].sample_rate


def test_sse_sends_one_delta_per_sentence(espeak_server):
    events = sse(espeak_server, input=THREE, response_format="pcm")
    kinds = [e["type"] for e in events]
    assert kinds.count("speech.audio.delta") == 3, kinds
    assert kinds[-1] == "speech.audio.done"
    assert "speech.audio.word" not in kinds  # only when asked for


def test_sse_timestamps_name_every_word_in_order_within_the_audio(espeak_server):
    events = sse(espeak_server, input=THREE, response_format="pcm", timestamps=True)
    words = [e for e in events if e["type"] == "speech.audio.word"]
    done = events[-1]
    assert [w["word"] for w in words] == THREE.replace(".", "").split()
    starts = [w["start_ms"] for w in words]
    assert starts == sorted(starts) and starts[0] < 100
    assert all(w["start_ms"] < w["end_ms"] <= done["duration_ms"] for w in words)
    assert all(THREE[w["char"]:].startswith(w["word"]) for w in words)
    # a word's event follows the delta that carries its audio
    pcm = b""
    for e in events:
        if e["type"] == "speech.audio.delta":
            pcm += base64.b64decode(e["audio"])
        elif e["type"] == "speech.audio.word":
            assert len(pcm) / 2 / done["sample_rate"] * 1000 >= e["end_ms"] - 1
    # the words are where the sound is: each word's span has sound in it
    x = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    sr = done["sample_rate"]
    for w in words:
        span = x[int(w["start_ms"] * sr / 1000):int(w["end_ms"] * sr / 1000)]
        assert np.abs(span).max() > 0.05, w


def test_sse_timestamps_for_chinese_cover_the_text(espeak_server):
    text = "今天天气真好，我们去公园散步吧。"
    events = sse(espeak_server, input=text, response_format="mp3", timestamps=True)
    words = [e["word"] for e in events if e["type"] == "speech.audio.word"]
    assert "".join(words) == text.replace("，", "").replace("。", "")


def test_sse_timestamps_on_a_text_in_the_cache_still_come(espeak_server):
    body = {"model": "tts-1", "voice": "nova", "input": "Cached words come too.",
            "response_format": "mp3"}
    r = harness.post(espeak_server.url + "/v1/audio/speech", json=body, timeout=60)
    assert r.status_code == 200
    events = sse(espeak_server, input=body["input"], voice="nova", response_format="mp3",
                 timestamps=True)
    assert [e["word"] for e in events if e["type"] == "speech.audio.word"] == \
        ["Cached", "words", "come", "too"]


def test_timestamps_without_sse_is_a_clear_400(espeak_server):
    r = harness.post(espeak_server.url + "/v1/audio/speech", timeout=30, json={
        "model": "tts-1", "voice": "alloy", "input": "Hi.", "timestamps": True})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "INVALID_REQUEST" and err["param"] == "timestamps"
    assert "sse" in err["message"]


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_audio_stream_is_one_valid_file_sent_piece_by_piece(espeak_server, fmt):
    body = {"model": "tts-1", "voice": "alloy", "input": THREE, "response_format": fmt,
            "stream_format": "audio"}
    chunks: list[bytes] = []
    with httpx.stream("POST", espeak_server.url + "/v1/audio/speech", json=body,
                      timeout=60) as r:
        assert r.status_code == 200
        chunks = list(r.iter_raw())
        sr_header = r.headers.get("x-synthesis-id")
    assert sr_header
    data = b"".join(chunks)
    assert len([c for c in chunks if c]) >= 2, "bytes must leave before the end"
    if fmt == "pcm":
        x = np.frombuffer(data, "<i2").astype(np.float32) / 32768
        sr = 24000
    elif fmt in ("mp3", "opus", "wav"):
        if fmt == "wav":  # streaming header: length unknown
            assert data[4:8] == b"\xff\xff\xff\xff"
            x, sr = np.frombuffer(data[44:], "<i2").astype(np.float32) / 32768, 22050
        else:
            x, sr = sf.read(io.BytesIO(data), dtype="float32")
    else:  # aac: no libsndfile decoder; flac: length unknown in the streamed STREAMINFO
        x, sr = av_decode(data)
        if fmt == "flac":
            x = x / 32768
    assert 4.0 < x.size / sr < 12.0
    assert float(np.sqrt(np.mean(x**2))) > 0.01


def test_audio_ends_with_the_trailing_silence(espeak_server):
    r = harness.post(espeak_server.url + "/v1/audio/speech", timeout=30, json={
        "model": "tts-1", "voice": "alloy", "input": "The last syllable is kept.",
        "response_format": "wav"})
    x, sr = sf.read(io.BytesIO(r.content), dtype="float32")
    last = int(np.flatnonzero(np.abs(x) > 0.003)[-1])
    tail_ms = (x.size - last) / sr * 1000
    assert 180 <= tail_ms <= 260, tail_ms  # TTSOPS_AUDIO_TAIL_SILENCE_MS=200 by default
