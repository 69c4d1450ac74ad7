"""The OpenAI contract against a real `ttsops serve` with the real eSpeak NG engine, through
the official `openai` client: audio that decodes, streaming (audio and SSE), headers with
the ids and timings, and the records each synthesis leaves in the server's log."""

from __future__ import annotations

import base64
import io
import json
import re

import httpx
import numpy as np
import pytest
import soundfile as sf
from openai import OpenAI

from . import harness
from .harness import Server

pytestmark = pytest.mark.slow


def client(server: Server) -> OpenAI:
    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def decode(data: bytes) -> tuple[np.ndarray, int]:
    x, sr = sf.read(io.BytesIO(data), dtype="float32")
    return x, sr


def speechlike(x: np.ndarray, sr: int, min_s: float = 0.3) -> None:
    assert x.ndim == 1
    assert len(x) / sr >= min_s
    assert float(np.sqrt(np.mean(x**2))) > 0.01


@pytest.mark.parametrize("fmt", ["mp3", "wav", "flac", "opus"])
def test_openai_client_create_returns_audio_that_decodes(espeak_server, fmt):
    resp = client(espeak_server).audio.speech.create(
        model="tts-1", voice="alloy", input="今天天气真好。Hello from the server.",
        response_format=fmt)
    x, sr = decode(resp.content)
    speechlike(x, sr, min_s=1.0)
    sid = resp.response.headers["x-synthesis-id"]
    assert re.fullmatch(r"ts_[0-9a-f]{16}", sid)
    recs = espeak_server.wait_records(
        lambda rs: any(r.event == "http_request" and r.get("id") == sid for r in rs))
    mine = [r for r in recs if r.get("id") == sid]
    events = [r.event for r in mine]
    assert events.count("synthesis_start") == 1 and events.count("synthesis_complete") == 1
    done = next(r for r in mine if r.event == "synthesis_complete")
    assert done.get("status") == "success" and done.num("queue_ms") is not None
    rid = resp.response.headers["x-request-id"]
    assert all(r.get("request_id") == rid for r in mine)


def test_pcm_is_raw_s16le_at_the_announced_rate(espeak_server):
    resp = client(espeak_server).audio.speech.create(
        model="tts-1", voice="nova", input="Raw samples, please.", response_format="pcm")
    assert resp.response.headers["content-type"] == "audio/pcm"
    rate = int(resp.response.headers["x-sample-rate"])
    x = np.frombuffer(resp.content, dtype="<i2").astype(np.float32) / 32768
    speechlike(x, rate)


def test_openai_streaming_response_decodes(espeak_server):
    text = "First sentence here. 第二句话在这里。 And a third one to finish."
    with client(espeak_server).audio.speech.with_streaming_response.create(
            model="tts-1", voice="echo", input=text, response_format="mp3",
            stream_format="audio") as resp:
        assert resp.headers["content-type"] == "audio/mpeg"
        sid = resp.headers["x-synthesis-id"]
        pieces = list(resp.iter_bytes())
    data = b"".join(pieces)
    x, sr = decode(data)
    speechlike(x, sr, min_s=2.0)
    recs = espeak_server.wait_records(
        lambda rs: any(r.event == "http_request" and r.get("id") == sid for r in rs))
    first = [r for r in recs if r.event == "stream_first_audio" and r.get("id") == sid]
    assert len(first) == 1 and first[0].num("ttfa_ms") > 0
    http = next(r for r in recs if r.event == "http_request" and r.get("id") == sid)
    assert http.num("ttfa_ms") is not None
    assert [r.event for r in recs if r.get("id") == sid].count("synthesis_complete") == 1


def test_wav_stream_arrives_sentence_by_sentence_and_decodes(espeak_server):
    text = " ".join(f"This is sentence number {i} of a text long enough to be split into "
                    f"several segments." for i in range(1, 13))  # > 3 x segment_max_chars
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "wav",
            "stream_format": "audio"}
    chunks = []
    with httpx.stream("POST", espeak_server.url + "/v1/audio/speech", json=body,
                      timeout=60) as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers
        for c in r.iter_raw():
            chunks.append(c)
        sid = r.headers["x-synthesis-id"]
    x, sr = decode(b"".join(chunks))
    speechlike(x, sr, min_s=10.0)
    assert len(chunks) >= 3
    recs = espeak_server.wait_records(
        lambda rs: any(r.event == "http_request" and r.get("id") == sid for r in rs))
    first = next(r for r in recs if r.event == "stream_first_audio" and r.get("id") == sid)
    http = next(r for r in recs if r.event == "http_request" and r.get("id") == sid)
    start = next(r for r in recs if r.event == "stage_time" and r.get("id") == sid
                 and r.get("stage") == "text_normalize")
    assert start.num("segments") >= 3
    # the first audio left before the synthesis of the rest was done
    assert first.num("ttfa_ms") < 0.8 * http.num("duration_ms")


def test_sse_stream_has_deltas_and_done(espeak_server):
    body = {"model": "gpt-4o-mini-tts", "voice": "alloy", "input": "One. Two. Three.",
            "response_format": "pcm", "stream_format": "sse"}
    with httpx.stream("POST", espeak_server.url + "/v1/audio/speech", json=body,
                      timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    events = [json.loads(line[len("data: "):]) for line in text.split("\n\n") if line]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "speech.audio.done" and set(kinds[:-1]) == {"speech.audio.delta"}
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    done = events[-1]
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    speechlike(x, done["sample_rate"])
    assert done["usage"]["input_tokens"] == len(body["input"])
    assert set(done["stages"]) >= {"text_normalize", "llm_inference", "audio_render"}
    assert abs(len(x) / done["sample_rate"] * 1000 - done["duration_ms"]) < 50


def test_headers_carry_ids_and_timings_and_the_synthesis_can_be_looked_up(espeak_server):
    with espeak_server.client() as c:
        r = c.post("/v1/audio/speech", headers={"X-Request-ID": "my-req.42"},
                   json={"model": "tts-1", "voice": "alloy", "input": "Look me up."})
        assert r.status_code == 200
        assert r.headers["x-request-id"] == "my-req.42"
        timing = dict(p.split(";dur=") for p in r.headers["server-timing"].split(", "))
        assert set(timing) >= {"queue", "text_normalize", "llm_prompt_gen", "llm_inference",
                               "llm_postproc", "audio_render", "total"}
        metrics = dict(p.split("=") for p in r.headers["x-audio-metrics"].split(", "))
        assert float(metrics["rms"]) > 0 and float(metrics["duration_ms"]) > 100
        sid = r.headers["x-synthesis-id"]
        info = c.get(f"/v1/syntheses/{sid}").json()
        assert info["id"] == sid and info["request_id"] == "my-req.42"
        assert info["status"] == "success" and info["audio_bytes"] == len(r.content)
        # the same input again is a cache hit, answered without a worker
        again = c.post("/v1/audio/speech",
                       json={"model": "tts-1", "voice": "alloy", "input": "Look me up."})
        assert again.headers["x-cache-hit"] == "true" and again.content == r.content


def test_request_id_is_sanitised_and_traceparent_gives_trace_id(espeak_server):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    with espeak_server.client() as c:
        bad = 'x", injected=1\nfoo'
        r = c.get("/v1/models", headers={"X-Request-ID": bad.replace("\n", " "),
                                          "traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
        rid = r.headers["x-request-id"]
        assert rid.startswith("req_") and "injected" not in rid
    recs = espeak_server.wait_records(
        lambda rs: any(x.get("request_id") == rid for x in rs))
    rec = next(x for x in recs if x.get("request_id") == rid)
    assert rec.event == "http_request" and rec.get("trace_id") == trace
    assert "injected" not in rec.fields


def test_models_and_voices(espeak_server):
    c = client(espeak_server)
    ids = [m.id for m in c.models.list().data]
    assert "tts-1" in ids and "gpt-4o-mini-tts" in ids and "espeak" in ids
    voices = harness.get(espeak_server.url + "/v1/audio/voices").json()["data"]
    names = {v["id"] for v in voices}
    assert {"alloy", "nova"} <= names
    assert all(v["languages"] for v in voices)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/", "/v1/models"])
def test_head_answers_like_get_without_a_body(espeak_server, path):
    """Uptime checkers probe with HEAD: the GET answer's status and headers, no body,
    and one http_request record that says HEAD."""
    get = harness.get(espeak_server.url + path)
    head = httpx.head(espeak_server.url + path, headers={"X-Request-ID": f"head-{path}"[:60]})
    assert get.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    if path not in ("/metrics", "/readyz"):  # those two change from one call to the next
        assert head.headers["content-length"] == get.headers["content-length"]
    rid = head.headers["x-request-id"]
    recs = espeak_server.wait_records(lambda rs: any(
        x.event == "http_request" and x.get("request_id") == rid for x in rs))
    (rec,) = [x for x in recs if x.event == "http_request" and x.get("request_id") == rid]
    assert rec.get("method") == "HEAD" and rec.get("status") == "200"


def test_head_on_a_post_route_is_method_not_allowed(espeak_server):
    r = httpx.head(espeak_server.url + "/v1/audio/speech")
    assert r.status_code == 405 and r.content == b"" and "POST" in r.headers["allow"]
