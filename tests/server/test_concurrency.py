"""100 concurrent clients for a bounded time against a real server (loopback, async httpx):
every request answered, no 5xx, 429 only as QUEUE_FULL with Retry-After, and exactly one
synthesis_complete per synthesis in the log."""

from __future__ import annotations

import asyncio
import collections
import random
import time

import httpx
import pytest

from . import harness

pytestmark = pytest.mark.slow

CLIENTS = 100
SECONDS = 6.0


async def hammer(url: str) -> list[tuple[int, str | None, str | None]]:
    """(status, error code, synthesis id) of every request."""
    results: list[tuple[int, str | None, str | None]] = []
    transport_errors: list[str] = []
    deadline = time.monotonic() + SECONDS
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def one_client(n: int) -> None:
            rnd = random.Random(n)
            while time.monotonic() < deadline:
                text = f"client {n} says {rnd.randrange(30)}"  # some repeats: cache hits
                fmt = rnd.choice(["mp3", "wav", "opus"])
                body = {"model": "tts-1", "voice": "alloy", "input": text,
                        "response_format": fmt}
                if rnd.random() < 0.2:
                    body["stream_format"] = "audio"
                try:
                    r = await client.post("/v1/audio/speech", json=body)
                except httpx.TransportError as e:  # an unanswered request: reported below
                    transport_errors.append(f"{type(e).__name__}: {e!r} at "
                                            f"{SECONDS - (deadline - time.monotonic()):.2f}s")
                    continue
                code = r.json()["error"]["code"] if r.status_code >= 400 else None
                if r.status_code == 429:
                    assert int(r.headers["retry-after"]) >= 1
                results.append((r.status_code, code, r.headers.get("x-synthesis-id")))

        await asyncio.gather(*(one_client(n) for n in range(CLIENTS)))
    assert not transport_errors, transport_errors
    return results


def test_hundred_concurrent_clients(server_factory):
    s = server_factory(engine="fake", workers=2, queue_size=16)
    results = asyncio.run(hammer(s.url))
    by_status = collections.Counter(status for status, _, _ in results)
    codes = collections.Counter(code for _, code, _ in results if code)
    assert len(results) >= CLIENTS
    assert all(status < 500 for status in by_status), by_status
    assert set(codes) <= {"QUEUE_FULL"}, codes
    assert by_status[200] > 0
    ids = [sid for _, _, sid in results if sid]
    assert len(ids) == len(results) and len(set(ids)) == len(ids)
    recs = s.wait_records(lambda rs: sum(
        1 for r in rs if r.event == "synthesis_complete") >= len(ids), timeout=60)
    complete = collections.Counter(r.get("id") for r in recs if r.event == "synthesis_complete")
    starts = collections.Counter(r.get("id") for r in recs if r.event == "synthesis_start")
    assert set(complete) == set(ids) == set(starts)
    assert all(n == 1 for n in complete.values())
    assert all(n == 1 for n in starts.values())
    http = [r for r in recs if r.event == "http_request" and r.get("path") == "/v1/audio/speech"]
    assert len(http) == len(results)
    failed = {r.get("id"): r.get("error_code") for r in recs
              if r.event == "synthesis_complete" and r.get("status") == "failed"}
    assert set(failed.values()) <= {"QUEUE_FULL"}
    assert len(failed) == codes["QUEUE_FULL"]


def test_client_gone_mid_synthesis_still_gets_exactly_one_complete(server_factory):
    fake_server = server_factory(engine="fake", segment_max_chars=20)  # one sentence each
    url = fake_server.url + "/v1/audio/speech"
    with pytest.raises(httpx.ReadTimeout):
        harness.post(url, headers={"X-Request-ID": "gone-early"}, timeout=0.4,
                     json={"model": "tts-1", "voice": "alloy", "input": "#sleep=1500 bye"})
    with httpx.stream("POST", url, headers={"X-Request-ID": "gone-streaming"}, timeout=30,
                      json={"model": "tts-1", "voice": "alloy", "response_format": "pcm",
                            "stream_format": "audio",
                            "input": "First one here. #sleep=500 Second one. "
                                     "#sleep=500 The third."}) as r:
        assert r.status_code == 200
        next(r.iter_raw())  # the first sentence arrived; then hang up

    def done(rid: str, recs) -> list:
        return [x for x in recs if x.event == "synthesis_complete" and
                x.get("request_id") == rid]

    recs = fake_server.wait_records(lambda rs: done("gone-early", rs) and
                                    done("gone-streaming", rs) and
                                    sum(x.event == "http_request" and x.get("request_id")
                                        in ("gone-early", "gone-streaming") for x in rs) == 2)
    for rid in ("gone-early", "gone-streaming"):  # the hang-up cancelled it (issue 15)
        assert len(done(rid, recs)) == 1
        assert done(rid, recs)[0].get("status") == "cancelled"
        assert done(rid, recs)[0].get("error_code") == "CLIENT_CLOSED"
    for rid in ("gone-early", "gone-streaming"):
        http = [x for x in recs if x.event == "http_request" and x.get("request_id") == rid]
        assert len(http) == 1 and http[0].get("status") == "499", (rid, http[0].fields)


def test_client_gone_while_sending_its_body_is_499_not_a_bad_request(fake_server):
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(fake_server.url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100\r\n"
                  b"X-Request-ID: gone-in-body\r\n\r\n" + b'{"model":')
        time.sleep(0.3)  # the server is reading the body when the client goes
    recs = fake_server.wait_records(lambda rs: any(
        x.event == "http_request" and x.get("request_id") == "gone-in-body" for x in rs))
    (http,) = [x for x in recs if x.event == "http_request"
               and x.get("request_id") == "gone-in-body"]
    assert http.get("status") == "499" and http.get("error_code") is None, http.fields
    assert http.get("body_bytes") == "9"
    assert harness.get(fake_server.url + "/healthz").status_code == 200
