"""The text front (normalisation, languages, segments) runs off the event loop: while a
long text is being read, the loop answers other requests (/healthz, cache hits). Proved
with events, not timings: the front is held at its start until the test has had its
/healthz answer; on the loop, /healthz could only come after the front let go."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import httpx

from ttsops.config import Settings
from ttsops.pipeline.runner import Pipeline
from ttsops.pipeline.types import SynthesisRequest
from ttsops.server.app import create_app
from ttsops.server.synthesis import SynthesisService

# a long Chinese text full of numbers: the kind that kept the loop ~0.3 s
LONG = ("价格1500000元，电话13812345678，2024年6月12日14:30到达，温度25.5度，"
        "折扣-3.5%。" * 60)[:4000]


class HeldPipeline(Pipeline):
    """The real pipeline (fake engine, real front, real cache); its ``front`` waits at the
    start until the test lets it go (at most ``hold_s``), and says where it ran."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.started = threading.Event()
        self.release = threading.Event()
        self.released_by_test: bool | None = None
        self.threads: list[str] = []

    def front(self, req: SynthesisRequest) -> Any:
        self.threads.append(threading.current_thread().name)
        self.started.set()
        self.released_by_test = self.release.wait(10)  # 10 s: the old code's way out
        return super().front(req)


def _setup(tmp_path: Any) -> tuple[Any, HeldPipeline, dict[str, Any]]:
    s = Settings(engine="fake", cache_dir=tmp_path / "cache", log_dir=tmp_path / "logs")
    pipe = HeldPipeline(settings=s)
    body = {"model": "tts-1", "voice": "alloy", "input": LONG, "response_format": "wav"}
    pipe.release.set()
    pipe.run(SynthesisRequest(text=LONG, voice="alloy", format="wav", model="tts-1"))
    pipe.front_memo.clear()  # not a fast-path hit: the route's front reads the text again
    pipe.release.clear()
    pipe.started.clear()
    pipe.threads.clear()
    app = create_app(s, workers=1, pipeline=pipe, manage_log=False)
    app.state.service = SynthesisService(pipe, pool=None, metrics=app.state.metrics)
    return app, pipe, body


def test_the_loop_answers_while_a_long_text_is_read(tmp_path, captured):
    app, pipe, body = _setup(tmp_path)

    async def go() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                     timeout=30) as c:
            speech = asyncio.ensure_future(c.post("/v1/audio/speech", json=body))
            assert await asyncio.to_thread(pipe.started.wait, 10), "front never started"
            health = await c.get("/healthz")  # the front is still held
            pipe.release.set()
            return health, await speech

    health, speech = asyncio.run(go())
    assert health.status_code == 200
    assert pipe.released_by_test is True  # /healthz came while the front was held
    assert pipe.threads and all(t.startswith("ttsops-front") for t in pipe.threads)
    # the same answer as before: the cached audio, its records under the request's ids
    assert speech.status_code == 200 and speech.headers["x-cache-hit"] == "true"
    rid, sid = speech.headers["x-request-id"], speech.headers["x-synthesis-id"]
    done = [i[4] for i in captured if i[3] == "synthesis_complete"]
    assert done and done[-1]["id"] == sid and done[-1]["request_id"] == rid


def test_a_bad_text_read_off_the_loop_keeps_its_code(tmp_path, captured):
    app, pipe, _ = _setup(tmp_path)
    pipe.release.set()

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.post("/v1/audio/speech", json={
                "model": "tts-1", "voice": "alloy", "input": "¤", "lang": "zh"})

    r = asyncio.run(go())
    assert r.status_code == 400 and r.json()["error"]["code"] == "TEXT_EMPTY"
    failed = [i[4] for i in captured if i[3] == "synthesis_failed"]
    assert failed and failed[-1]["request_id"] == r.headers["x-request-id"]


def test_a_request_cancelled_during_its_front_is_recorded_once(tmp_path, captured):
    app, pipe, _ = _setup(tmp_path)
    service = app.state.service

    async def go() -> None:
        req = SynthesisRequest(text=LONG, voice="alloy", format="wav", model="tts-1",
                               id="ts_cancelled0000001")
        task = asyncio.ensure_future(service.synthesize(req, "req_c"))
        assert await asyncio.to_thread(pipe.started.wait, 10)
        task.cancel()
        pipe.release.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for _ in range(200):  # the front thread finishes; its outcome lands on the loop
            if service.recent.get("ts_cancelled0000001") is not None:
                break
            await asyncio.sleep(0.01)

    asyncio.run(go())
    got = service.recent.get("ts_cancelled0000001")
    assert got is not None and got["status"] == "success" and got["cache_hit"] is True
    hits = app.state.metrics.render().decode()
    assert 'ttsops_syntheses_total{cache_hit="true",code="none",status="success"} 1.0' in hits
