"""Every documented error of the HTTP API against real servers: the OpenAI error shape,
the registry's status and code, the ids in headers, the records in the log - and the
OpenAPI schema the server publishes is valid and describes those bodies."""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate

from ttsops.errors import REGISTRY

from . import harness
from .harness import Server

pytestmark = pytest.mark.slow

SPEECH = "/v1/audio/speech"


def body(**kw: Any) -> dict[str, Any]:
    return {"model": "tts-1", "voice": "alloy", "input": "hello there", **kw}


def check_error(server: Server, r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    j = r.json()
    assert set(j) == {"error"}
    err = j["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == code and isinstance(err["message"], str) and err["message"]
    assert err["type"] == REGISTRY[code].type
    assert REGISTRY[code].status == status
    rid = r.headers["x-request-id"]
    recs = server.wait_records(lambda rs: any(
        x.event == "http_request" and x.get("request_id") == rid for x in rs))
    http = next(x for x in recs if x.event == "http_request" and x.get("request_id") == rid)
    assert http.get("status") == str(status) and http.get("error_code") == code
    return err


def check_failed_synthesis(server: Server, r: httpx.Response, code: str) -> None:
    sid = r.headers["x-synthesis-id"]
    recs = server.wait_records(lambda rs: any(
        x.event == "synthesis_complete" and x.get("id") == sid for x in rs))
    mine = [x for x in recs if x.get("id") == sid]
    done = [x for x in mine if x.event == "synthesis_complete"]
    assert len(done) == 1 and done[0].get("status") == "failed"
    assert done[0].get("error_code") == code
    failed = [x for x in mine if x.event == "synthesis_failed"]
    assert len(failed) == 1 and failed[0].get("error_code") == code


@pytest.fixture(scope="module")
def tight(tmp_path_factory) -> Any:
    """One worker, a queue of one, a short timeout."""
    from .harness import start_server

    s = start_server(tmp_path_factory.mktemp("tight"), engine="fake", workers=1,
                     queue_size=1, request_timeout_s=1.5)
    yield s
    s.stop()


# --- the caller's input ----------------------------------------------------------------

@pytest.mark.parametrize("payload,code,param", [
    (body(input=" \u200b\t "), "TEXT_EMPTY", "input"),
    (body(input="a" * 4097), "TEXT_TOO_LONG", "input"),
    (body(voice="no-such-voice"), "VOICE_UNKNOWN", "voice"),
    (body(lang="fr"), "LANG_UNSUPPORTED", "lang"),
    (body(options={"emotion": "sad"}), "INVALID_REQUEST", "options"),  # fake takes none
])
def test_bad_input_found_by_the_pipeline(fake_server, payload, code, param):
    r = harness.post(fake_server.url + SPEECH, json=payload, timeout=30)
    err = check_error(fake_server, r, 400, code)
    assert err["param"] == param
    check_failed_synthesis(fake_server, r, code)


@pytest.mark.parametrize("payload,code,param", [
    (body(model="dall-e-3"), "MODEL_UNKNOWN", "model"),
    (body(response_format="ogg"), "FORMAT_UNSUPPORTED", "response_format"),
    (body(speed=4.5), "SPEED_OUT_OF_RANGE", "speed"),
    (body(speed=0.1), "SPEED_OUT_OF_RANGE", "speed"),
    (body(stream_format="chunks"), "INVALID_REQUEST", "stream_format"),
    ({"model": "tts-1", "voice": "alloy"}, "INVALID_REQUEST", "input"),
    (body(input=["not", "text"]), "INVALID_REQUEST", "input"),
    (body(voice="v" * 200), "INVALID_REQUEST", "voice"),
    (body(voice={"name": "alloy"}), "INVALID_REQUEST", "voice"),
    (["a", "list"], "INVALID_REQUEST", None),
])
def test_bad_request_fields(fake_server, payload, code, param):
    r = harness.post(fake_server.url + SPEECH, json=payload, timeout=30)
    err = check_error(fake_server, r, 400, code)
    assert err["param"] == param


@pytest.mark.parametrize("content", [b'{"model": "tts-1", "inp',
                                     b'{"model":"tts-1","voice":"alloy","input":"hi"',
                                     b"\x00\x01\x02"])
def test_malformed_json(fake_server, content):
    """Not JSON: no field is to blame (pydantic's location is a character offset)."""
    r = harness.post(fake_server.url + SPEECH, content=content,
                     headers={"content-type": "application/json"})
    err = check_error(fake_server, r, 400, "INVALID_REQUEST")
    assert err["param"] is None
    assert err["message"].startswith("The request is malformed: the body is not valid JSON")
    assert " at character " in err["message"]


def test_a_field_that_must_be_an_object_is_named(fake_server):
    r = harness.post(fake_server.url + SPEECH, json=body(options="sad"))
    err = check_error(fake_server, r, 400, "INVALID_REQUEST")
    assert err["param"] == "options" and "'options' must be a JSON object" in err["message"]


@pytest.mark.parametrize("method,path,status,code", [
    ("GET", "/v1/no/such/thing", 404, "NOT_FOUND"),
    ("GET", "/v1/syntheses/ts_00000000", 404, "NOT_FOUND"),
    ("GET", "/v1/models/not-a-model", 404, "NOT_FOUND"),
    ("GET", SPEECH, 405, "METHOD_NOT_ALLOWED"),
    ("DELETE", "/v1/models", 405, "METHOD_NOT_ALLOWED"),
])
def test_unknown_paths_and_methods(fake_server, method, path, status, code):
    r = harness.request(method, fake_server.url + path)
    check_error(fake_server, r, status, code)


def test_body_too_large_by_length_and_while_streaming(fake_server):
    big = b'{"model":"tts-1","voice":"alloy","input":"' + b"a" * 70_000 + b'"}'
    r = harness.post(fake_server.url + SPEECH, content=big,
                     headers={"content-type": "application/json"})
    check_error(fake_server, r, 413, "BODY_TOO_LARGE")

    def chunks():  # no Content-Length: chunked transfer, counted while read
        yield b'{"model":"tts-1","voice":"alloy","input":"'
        for _ in range(20):
            yield b"a" * 4096
        yield b'"}'

    r = harness.post(fake_server.url + SPEECH, content=chunks(),
                     headers={"content-type": "application/json"})
    check_error(fake_server, r, 413, "BODY_TOO_LARGE")


# --- engine failures -------------------------------------------------------------------

@pytest.mark.parametrize("text,status,code", [
    ("#raise the engine fails", 500, "ENGINE_FAILED"),
    ("#nan bad samples", 500, "SCIPY_FFT_INVALID"),
    ("#silence nothing to hear", 422, "AUDIO_SILENT"),
    ("#exit the worker dies", 503, "ENGINE_CRASHED"),
])
def test_engine_failures_are_never_2xx(fake_server, text, status, code):
    r = harness.post(fake_server.url + SPEECH, json=body(input=text), timeout=30)
    check_error(fake_server, r, status, code)
    check_failed_synthesis(fake_server, r, code)
    # and the service keeps serving
    ok = harness.post(fake_server.url + SPEECH, json=body(input=f"fine after {code}"),
                      timeout=30)
    assert ok.status_code == 200


def test_failure_in_a_stream_before_audio_is_an_http_error(fake_server):
    for mode in ("audio", "sse"):
        r = harness.post(fake_server.url + SPEECH, timeout=30,
                         json=body(input="#raise streamed", stream_format=mode))
        check_error(fake_server, r, 500, "ENGINE_FAILED")
        # a stream of nothing but silence is held back, so it fails before its first byte
        r = harness.post(fake_server.url + SPEECH, timeout=30,
                         json=body(input="#silence streamed", stream_format=mode))
        check_error(fake_server, r, 422, "AUDIO_SILENT")


@pytest.mark.parametrize("stream_format", [None, "audio"])
def test_text_the_real_voice_cannot_speak_is_not_a_silent_200(espeak_server, stream_format):
    """eSpeak NG renders a lone U+FFFD as a few milliseconds of zeros: a 200 with that
    would be the play button that does nothing. It is AUDIO_SILENT, logged as a failure,
    and not cached (the same request fails again rather than being served silence)."""
    extra = {"stream_format": stream_format} if stream_format else {}
    for _ in range(2):
        r = harness.post(espeak_server.url + SPEECH, timeout=30,
                         json=body(input="\ufffd", response_format="wav", **extra))
        err = check_error(espeak_server, r, 422, "AUDIO_SILENT")
        assert "silent" in err["message"]
        check_failed_synthesis(espeak_server, r, "AUDIO_SILENT")
    ok = harness.post(espeak_server.url + SPEECH, timeout=30,
                      json=body(input="\ufffd ok", response_format="wav", **extra))
    assert ok.status_code == 200 and len(ok.content) > 4000  # with a word, it speaks


def test_queue_full_and_timeout(tight):
    def slow(text: str) -> httpx.Response:
        return harness.post(tight.url + SPEECH, json=body(input=text), timeout=30)

    with cf.ThreadPoolExecutor(4) as ex:
        busy = ex.submit(slow, "#sleep=900 one")
        tight.wait_status(lambda st: st["states"] == ["busy"] and st["queue_depth"] == 0,
                          "the worker took the first")
        waiting = ex.submit(slow, "two")
        tight.wait_status(lambda st: st["queue_depth"] == 1, "the second waits")
        r = slow("three")
        assert busy.result().status_code == 200 and waiting.result().status_code == 200
    check_error(tight, r, 429, "QUEUE_FULL")
    assert int(r.headers["retry-after"]) >= 1
    check_failed_synthesis(tight, r, "QUEUE_FULL")

    r = slow("#sleep=10000 stuck")
    check_error(tight, r, 504, "SYNTHESIS_TIMEOUT")
    check_failed_synthesis(tight, r, "SYNTHESIS_TIMEOUT")
    tight.wait_records(lambda rs: any(x.event == "worker_killed" for x in rs))
    tight.wait_ready()
    assert slow("back to normal").status_code == 200


# --- settings-dependent gates ----------------------------------------------------------

def test_auth(server_factory):
    s = server_factory(engine="fake", api_keys="sekrit-one,sekrit-two")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "sekrit-one"}):
        r = harness.post(s.url + SPEECH, json=body(), headers=headers)
        check_error(s, r, 401, "UNAUTHORIZED")
        assert r.headers["www-authenticate"] == "Bearer"
    r = harness.post(s.url + SPEECH, json=body(), headers={"Authorization": "Bearer sekrit-two"},
                     timeout=30)
    assert r.status_code == 200
    assert harness.get(s.url + "/healthz").status_code == 200  # probes stay open
    s.stop()
    text = (s.log_dir / "app.log").read_text()
    assert "sekrit" not in text


def test_rate_limit(server_factory):
    s = server_factory(engine="fake", rate_limit_per_minute=3)
    codes = [harness.get(s.url + "/v1/models").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    r = harness.get(s.url + "/v1/models")
    check_error(s, r, 429, "RATE_LIMITED")
    assert int(r.headers["retry-after"]) >= 1


def test_model_load_failure_and_not_ready(server_factory):
    s = server_factory(engine="fake", fake_load_fail=True, ready=False)
    rec = s.wait_records(lambda rs: any(x.event == "model_load_failed" for x in rs))
    # logged by the worker before the pool has taken it: wait for the pool's state
    s.wait_status(lambda st: st.get("last_load_error") is not None,
                  "the pool has taken the load failure")
    r = harness.get(s.url + "/readyz")
    check_error_like = r.json()
    assert r.status_code == 503 and check_error_like["error"]["code"] == "MODEL_LOAD_FAILED"
    r = harness.post(s.url + SPEECH, json=body())
    check_error(s, r, 503, "MODEL_LOAD_FAILED")
    assert rec

    slow = server_factory(engine="fake", fake_load_ms=20000, ready=False)
    r = harness.post(slow.url + SPEECH, json=body())
    check_error(slow, r, 503, "ENGINE_NOT_READY")
    assert harness.get(slow.url + "/readyz").status_code == 503


# --- the schema --------------------------------------------------------------------------

def test_openapi_schema_is_valid_and_error_bodies_match_it(fake_server):
    spec = harness.get(fake_server.url + "/openapi.json").json()
    validate(spec)
    op = spec["paths"][SPEECH]["post"]
    for status in ("400", "401", "413", "429", "500", "503", "504"):
        assert status in op["responses"], status
    schema = {"$ref": "#/components/schemas/ErrorResponse", "components": spec["components"]}
    for payload in (body(speed=9), body(voice="nobody"), body(input="#raise x")):
        r = harness.post(fake_server.url + SPEECH, json=payload, timeout=30)
        jsonschema.validate(r.json(), schema)
    req_schema = {"$ref": "#/components/schemas/SpeechRequest",
                  "components": spec["components"]}
    jsonschema.validate(body(stream_format="sse", lang="zh", allow_fallback=True), req_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body(response_format="ogg"), req_schema)
