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

pytestmark = pytest.mark.slow

CLIENTS = 100
SECONDS = 6.0


async def hammer(url: str) -> list[tuple[int, str | None, str | None]]:
    """(status, error code, synthesis id) of every request."""
    results: list[tuple[int, str | None, str | None]] = []
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
                r = await client.post("/v1/audio/speech", json=body)
                code = r.json()["error"]["code"] if r.status_code >= 400 else None
                if r.status_code == 429:
                    assert int(r.headers["retry-after"]) >= 1
                results.append((r.status_code, code, r.headers.get("x-synthesis-id")))

        await asyncio.gather(*(one_client(n) for n in range(CLIENTS)))
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
