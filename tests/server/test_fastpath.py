"""The cache-hit fast path (server/fastpath.py) in process, on a real pipeline (fake engine,
real cache, real records): a hit is answered without the route and writes the same
records as the route's hit; everything else reaches the route with its body unchanged,
and nothing is written or counted on the way."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from ttsops.config import Settings
from ttsops.pipeline.runner import Pipeline
from ttsops.pipeline.types import SynthesisRequest
from ttsops.server.fastpath import PATH, CacheHitFastPath
from ttsops.server.metrics import Metrics
from ttsops.server.synthesis import SynthesisService

TEXT = "Fast path, please."


class Inner:
    """The route's stand-in: records what reached it and answers 299."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def setup(tmp_path):
    s = Settings(engine="fake", cache_dir=tmp_path / "cache", log_dir=tmp_path / "logs")
    pipe = Pipeline(settings=s)
    service = SynthesisService(pipe, pool=None, metrics=Metrics())
    app = SimpleNamespace(state=SimpleNamespace(service=service, settings=s))
    inner = Inner()
    return pipe, service, app, inner, CacheHitFastPath(inner)


def call(fast: CacheHitFastPath, app: Any, body: bytes, ctype: bytes = b"application/json",
         chunks: int = 1) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    scope = {"type": "http", "method": "POST", "path": PATH, "app": app,
             "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
             "ttsops": {"request_id": "req_test", "id": None}}
    parts = [body[: len(body) // 2], body[len(body) // 2:]] if chunks == 2 else [body]
    msgs = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
            for i, p in enumerate(parts)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return msgs.pop(0) if msgs else {"type": "http.disconnect"}

    async def send(m: dict[str, Any]) -> None:
        sent.append(m)

    asyncio.run(fast(scope, receive, send))
    return sent, scope


def speech(**kw: Any) -> bytes:
    return json.dumps({"model": "tts-1", "voice": "alloy", "input": TEXT, **kw}).encode()


def test_a_hit_is_answered_without_the_route_with_the_routes_records(setup, captured):
    pipe, service, app, inner, fast = setup
    sent, _ = call(fast, app, speech())
    assert inner.bodies == [speech()]  # not seen before: the route's
    assert captured == [] and pipe.cache.misses == 0  # nothing written, nothing counted
    first = pipe.run(SynthesisRequest(TEXT, voice="alloy", format="mp3"))  # as the route does
    captured.clear()
    sent, scope = call(fast, app, speech(), chunks=2)
    assert len(inner.bodies) == 1  # the route was not called
    start, *bodies = sent  # the audio in pieces (ChunkedBody), the last without more_body
    headers = dict(start["headers"])
    assert start["status"] == 200 and headers[b"content-type"] == b"audio/mpeg"
    assert not bodies[-1].get("more_body") and all(b.get("more_body") for b in bodies[:-1])
    assert headers[b"x-cache-hit"] == b"true" and b"".join(b["body"] for b in bodies) == \
        first.audio
    sid = headers[b"x-synthesis-id"].decode()
    assert scope["ttsops"]["id"] == sid and scope["route"].path == PATH
    assert [(i[3], i[4].get("id")) for i in captured] == [
        ("synthesis_start", sid), ("stage_time", sid), ("audio_metrics", sid),
        ("synthesis_complete", sid)]
    assert captured[0][4]["cache_hit"] == "true"
    assert service.recent.get(sid)["cache_hit"] is True
    assert pipe.cache.hits == 1


@pytest.mark.parametrize("body,ctype", [
    (speech(stream_format="sse"), b"application/json"),  # streamed: the route's
    (speech(model="nope"), b"application/json"),  # MODEL_UNKNOWN: the route says so
    (speech(speed=9), b"application/json"),  # invalid: the route says why
    (b"{not json", b"application/json"),
    (speech(), b"text/plain"),  # FastAPI decides what a non-JSON body means
    (speech(input="Another text."), b"application/json"),  # not in the cache
])
def test_everything_else_reaches_the_route_unchanged(setup, captured, body, ctype):
    pipe, _, app, inner, fast = setup
    pipe.run(SynthesisRequest(TEXT, voice="alloy", format="mp3"))
    captured.clear()
    misses = pipe.cache.misses
    sent, _ = call(fast, app, body, ctype=ctype, chunks=2)
    assert inner.bodies == [body] and sent[0]["status"] == 299
    assert captured == [] and pipe.cache.misses == misses
