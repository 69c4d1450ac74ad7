"""The lean cache-hit path keeps the contract: the writer's one-pass text renderer writes
exactly what the grammar's renderer writes (and the parser reads it back), and a cache
hit through the whole app (edge outside FastAPI's stack) still writes its five records,
counts its metrics and answers an unhandled failure in the OpenAI shape."""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.events import format_fields
from ttsops.logformat import Record, parse, render
from ttsops.logsink_render import render_text

KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda k: k not in {"ts", "logger", "level", "event", "traceback"})
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(), st.text(alphabet=st.characters(codec="ascii")),
    st.sampled_from(["req_0a1b", "ts_ff00", "/v1/audio/speech", "a,b", "x=y", 'q"', "a\\b",
                     "", " ", "今天 天气", "\u2028", "\x85", "e\u0301"]))


class Num(float):
    """A float subclass (numpy's float64 is one): formatted as the grammar says."""


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=12),
       st.lists(st.text(max_size=40), max_size=3))
def test_one_pass_renderer_writes_what_the_grammar_writes(fields: dict[str, Any],
                                                          tb: list[str]) -> None:
    ts = "2026-12-06 02:16:59,082"
    fast = render_text(ts, "ttsops.pipeline", "INFO", "synthesis_start", dict(fields), tb)
    slow = render(Record(ts, "ttsops.pipeline", "INFO", "synthesis_start",
                         format_fields(dict(fields)), tb), "text")
    assert fast == slow
    if not tb:
        rec = parse(fast)
        assert rec is not None and rec.fields == format_fields(dict(fields))


def test_subclassed_and_odd_values_are_formatted_as_the_grammar_says() -> None:
    fields = {"a": Num(0.1234567), "b": True, "c": 10**30, "d": math.inf, "e": [1, "x y"],
              "f": None, "g": -0.0}
    assert render_text("t", "l", "INFO", "e", dict(fields), []) == render(
        Record("t", "l", "INFO", "e", format_fields(dict(fields)), []), "text")


# --- the whole app, in process (the real stack: edge around FastAPI's own layers) -------

def _app(tmp_path: Any) -> Any:
    from ttsops.config import Settings
    from ttsops.pipeline.runner import Pipeline
    from ttsops.server.app import create_app
    from ttsops.server.synthesis import SynthesisService

    s = Settings(engine="fake", cache_dir=tmp_path / "cache", log_dir=tmp_path / "logs")
    pipe = Pipeline(settings=s)
    app = create_app(s, workers=1, pipeline=pipe, manage_log=False)
    # no lifespan (no worker processes): the first synthesis runs here, the rest are hits
    app.state.service = SynthesisService(pipe, pool=None, metrics=app.state.metrics)

    async def boom() -> None:
        raise RuntimeError("kaput")

    app.add_api_route("/v1/boom", boom)
    return app, pipe


def _get(app: Any, method: str, path: str, **kw: Any) -> Any:
    import asyncio

    import httpx

    async def go() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


def test_a_hit_through_the_whole_app_writes_its_five_records_and_metrics(tmp_path, captured):
    from ttsops.pipeline.types import SynthesisRequest

    app, pipe = _app(tmp_path)
    body = {"model": "tts-1", "voice": "alloy", "input": "Hit me again.", "response_format": "wav"}
    pipe.run(SynthesisRequest(text=body["input"], voice="alloy", format="wav", model="tts-1"))
    captured.clear()
    r = _get(app, "POST", "/v1/audio/speech", json=body, headers={"X-Request-ID": "rq-1"})
    assert r.status_code == 200 and r.headers["x-cache-hit"] == "true"
    assert r.headers["x-request-id"] == "rq-1" and len(r.headers["x-synthesis-token"]) == 32
    assert r.content == pipe.cache.get(next(iter(pipe.cache._mem)), count_miss=False).audio
    sid = r.headers["x-synthesis-id"]
    # the ten headers of a whole answer (names in order, as the route sends them)
    assert [k.lower() for k, _ in r.headers.raw] == [
        b"x-synthesis-id", b"x-cache-hit", b"x-sample-rate", b"x-audio-duration-ms",
        b"server-timing", b"x-audio-metrics", b"content-length", b"content-type",
        b"x-request-id", b"x-synthesis-token"]
    assert re.fullmatch(r"queue;dur=\d+\.\d, text_normalize;dur=\d+\.\d, total;dur=\d+\.\d",
                        r.headers["server-timing"])
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.headers["content-type"] == "audio/wav"
    got = [(i[3], i[4]) for i in captured]
    assert [e for e, _ in got] == ["synthesis_start", "stage_time", "audio_metrics",
                                   "synthesis_complete", "http_request"]
    assert all(f["request_id"] == "rq-1" and f["id"] == sid for _, f in got)
    # the ids lead every synthesis record (request_id, then id), as the seed's sed expects
    assert all(list(f)[:2] == ["request_id", "id"] for _, f in got[:4])
    assert got[-1][1]["status"] == "200" and got[3][1]["cache_hit"] == "true"
    assert app.state.tokens.check(sid, "rq-1", r.headers["x-synthesis-token"])
    metrics = _get(app, "GET", "/metrics").text
    assert ('ttsops_http_requests_total{code="none",method="POST",'
            'route="/v1/audio/speech",status="200"} 1.0') in metrics
    assert 'ttsops_syntheses_total{cache_hit="true",code="none",status="success"} 1.0' \
        in metrics
    assert 'ttsops_cache_lookups_total{result="hit"} 1.0' in metrics


def test_an_unhandled_exception_is_still_a_500_in_the_openai_shape(tmp_path, captured):
    app, _ = _app(tmp_path)
    r = _get(app, "GET", "/v1/boom")
    assert r.status_code == 500 and r.json()["error"]["code"] == "INTERNAL_ERROR"
    assert r.headers["x-request-id"]
    err = [i for i in captured if i[3] == "http_error"]
    assert len(err) == 1 and any("kaput" in x for x in err[0][5])
    http = [i[4] for i in captured if i[3] == "http_request"]
    assert len(http) == 1 and http[0]["status"] == "500"
    assert http[0]["error_code"] == "INTERNAL_ERROR"


def test_plain_routes_have_their_own_route_label(tmp_path):
    app, _ = _app(tmp_path)
    assert _get(app, "GET", "/openapi.json").status_code == 200
    metrics = _get(app, "GET", "/metrics").text
    assert 'method="GET",route="/openapi.json",status="200"' in metrics
    assert 'route="unmatched"' not in metrics


# --- the body's time limit (a timer on the request's task) ------------------------------

def _edge(body_timeout_s: float) -> Any:
    from starlette.responses import PlainTextResponse

    from ttsops.errors import TTSError
    from ttsops.server.errors_http import error_response, note_error
    from ttsops.server.middleware import ServiceMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        try:
            while True:
                msg = await receive()
                body += msg.get("body", b"")
                if not msg.get("more_body"):
                    break
        except TTSError as e:  # as the app's TTSError handler answers it
            note_error(scope, e.code)
            await error_response(e.code, e.detail)(scope, receive, send)
            return
        await PlainTextResponse(f"{len(body)} bytes")(scope, receive, send)

    return ServiceMiddleware(app, body_timeout_s=body_timeout_s)


def _drive(edge: Any, messages: list[Any], hang: Any) -> tuple[list[Any], Any]:
    import asyncio

    scope = {"type": "http", "method": "POST", "path": "/v1/x", "headers": [],
             "client": ("127.0.0.1", 1)}
    sent: list[Any] = []

    async def receive() -> Any:
        if messages:
            return messages.pop(0)
        await hang()
        return {"type": "http.disconnect"}

    async def send(m: Any) -> None:
        sent.append(m)

    async def go() -> Any:
        return await edge(scope, receive, send)

    return sent, asyncio.run(go())


def test_a_body_that_stops_coming_gets_408_after_the_limit(captured):
    import asyncio

    never = asyncio.Event()
    sent, _ = _drive(_edge(0.3), [{"type": "http.request", "body": b"ab", "more_body": True}],
                     never.wait)
    assert sent[0]["status"] == 408 and b"REQUEST_TIMEOUT" in sent[1]["body"]
    http = [i[4] for i in captured if i[3] == "http_request"]
    assert http[0]["error_code"] == "REQUEST_TIMEOUT" and http[0]["body_bytes"] == "2"


def test_a_body_in_time_is_read_whole_and_no_timer_is_left(captured):
    import asyncio

    async def check() -> None:
        edge = _edge(30)
        sent: list[Any] = []
        msgs = [{"type": "http.request", "body": b"ab", "more_body": True},
                {"type": "http.request", "body": b"cd"}]

        async def receive() -> Any:
            await asyncio.sleep(0)  # a receive that waits, as a socket does
            return msgs.pop(0)

        async def send(m: Any) -> None:
            sent.append(m)

        await edge({"type": "http", "method": "POST", "path": "/v1/x", "headers": [],
                    "client": ("127.0.0.1", 1)}, receive, send)
        assert sent[0]["status"] == 200 and sent[1]["body"] == b"4 bytes"
        loop = asyncio.get_running_loop()
        assert all(h.cancelled() for h in loop._scheduled)  # type: ignore[attr-defined]

    asyncio.run(check())


def test_a_body_already_there_arms_no_timer_and_a_waiting_one_still_times_out(captured):
    import asyncio

    async def check() -> None:
        edge = _edge(30)
        sent: list[Any] = []
        msgs = [{"type": "http.request", "body": b"ab", "more_body": True},
                {"type": "http.request", "body": b"cd"}]

        async def receive() -> Any:  # both pieces already read from the socket
            return msgs.pop(0)

        async def send(m: Any) -> None:
            sent.append(m)

        await edge({"type": "http", "method": "POST", "path": "/v1/x", "headers": [],
                    "client": ("127.0.0.1", 1)}, receive, send)
        assert sent[0]["status"] == 200 and sent[1]["body"] == b"4 bytes"
        assert not asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]

    asyncio.run(check())
    # the first piece there, the second one waited for (a real wait: the timer is armed)
    never = asyncio.Event()
    sent, _ = _drive(_edge(0.3), [{"type": "http.request", "body": b"abc", "more_body": True}],
                     never.wait)
    assert sent[0]["status"] == 408
    http = [i[4] for i in captured if i[3] == "http_request"]
    assert http[-1]["error_code"] == "REQUEST_TIMEOUT" and http[-1]["body_bytes"] == "3"


def test_cancelling_a_request_that_waits_for_its_body_is_not_a_timeout():
    import asyncio

    async def check() -> None:
        edge = _edge(30)
        waiting = asyncio.Event()

        async def receive() -> Any:
            waiting.set()
            await asyncio.Event().wait()

        async def send(m: Any) -> None:
            pass

        task = asyncio.ensure_future(edge({"type": "http", "method": "POST", "path": "/v1/x",
                                           "headers": [], "client": ("127.0.0.1", 1)},
                                          receive, send))
        await waiting.wait()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return
        raise AssertionError("the cancellation was swallowed")

    asyncio.run(check())


# --- the header timer: one per connection, re-armed for a later request -----------------

def test_keep_alive_requests_are_not_cut_and_a_later_slow_one_is(server_factory):
    import socket
    import time

    s = server_factory(engine="fake", workers=1, header_timeout_s=1)
    port = int(s.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(10)
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    t0 = time.monotonic()
    answers = 0
    while time.monotonic() - t0 < 2.5:  # quick requests for longer than the time limit
        sock.sendall(req)
        got = b""
        while b"\r\n\r\n" not in got or len(got.partition(b"\r\n\r\n")[2]) < int(
                got.lower().split(b"content-length: ")[1].split(b"\r\n")[0]):
            chunk = sock.recv(65536)
            assert chunk, "the server closed a connection that was on time"
            got += chunk
        assert got.startswith(b"HTTP/1.1 200"), got[:100]
        answers += 1
        time.sleep(0.2)
    assert answers >= 5
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers begun, never ended
    t1 = time.monotonic()
    got = b""
    while chunk := sock.recv(65536):
        got += chunk
    assert got.startswith(b"HTTP/1.1 408") and b"REQUEST_TIMEOUT" in got
    assert 0.9 <= time.monotonic() - t1 < 5  # its own second, counted from its first byte
    sock.close()
