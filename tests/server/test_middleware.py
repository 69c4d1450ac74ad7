"""The middleware's input handling (property tests) and its behaviour in-process through
the ASGI interface: one http_request record per request, ids bound to every record,
a crash becomes a 500 INTERNAL_ERROR in the OpenAI shape with a traceback record."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from ttsops import events
from ttsops.logline import Record, parse, render
from ttsops.server.middleware import (
    ServiceMiddleware,
    bearer_ok,
    new_request_id,
    parse_traceparent,
    sanitize_request_id,
)
from ttsops.server.ratelimit import RateLimiter

SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}")


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_sanitised_request_id_is_a_plain_token_or_nothing(raw):
    out = sanitize_request_id(raw)
    if out is not None:
        assert SAFE.fullmatch(out)
        rendered = render(Record("2024-01-01 00:00:00,000", "t", "INFO", "e",
                                 {"request_id": out}))
        assert f"request_id={out}" in rendered  # bare: no quoting, nothing to forge
        assert parse(rendered).fields == {"request_id": out}


@given(st.from_regex(SAFE, fullmatch=True))
def test_plain_request_ids_are_kept(rid):
    assert sanitize_request_id(rid) == rid
    assert sanitize_request_id(rid.encode()) == rid


@pytest.mark.parametrize("raw", [b"0\x1f", b"\x1c0", "0\x1e", b"0\x0b", "0\x85", "\u20280"])
def test_control_and_unicode_whitespace_around_an_id_is_not_stripped(raw):
    """Only HTTP's optional whitespace (space, tab) is trimmed; an id carrying any other
    control or separator character is replaced, not silently shortened (fuzz finding)."""
    assert sanitize_request_id(raw) is None
    assert sanitize_request_id(b" \tabc\t ") == "abc"


def test_an_id_the_log_would_have_to_quote_is_replaced():
    """(found by the property above: "0=" passed the sanitiser, and the log quoted it)"""
    assert sanitize_request_id("abc=") is None and sanitize_request_id("a=b") is None


def test_generated_request_ids_are_unique_and_plain():
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(SAFE.fullmatch(i) for i in ids)


@given(st.text(max_size=80))
def test_traceparent_never_raises_and_only_accepts_valid_headers(raw):
    out = parse_traceparent(raw)
    if out is not None:
        assert re.fullmatch(r"[0-9a-f]{32}", out) and out != "0" * 32


def test_traceparent_examples():
    tid = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert parse_traceparent(f"00-{tid}-00f067aa0ba902b7-01") == tid
    assert parse_traceparent(f"00-{tid.upper()}-00F067AA0BA902B7-01") == tid
    assert parse_traceparent(f"00-{'0' * 32}-00f067aa0ba902b7-01") is None
    assert parse_traceparent(f"00-{tid}-{'0' * 16}-01") is None
    assert parse_traceparent(f"ff-{tid}-00f067aa0ba902b7-01") is None
    assert parse_traceparent(f"00-{tid}-00f067aa0ba902b7-01-extra") is None
    assert parse_traceparent("garbage") is None


def test_bearer_tokens():
    keys = [b"k1", b"second-key"]
    assert bearer_ok(b"Bearer k1", keys) and bearer_ok(b"bearer second-key", keys)
    for bad in (None, b"", b"Bearer", b"Bearer k", b"Bearer k1x", b"Basic k1", b"k1"):
        assert not bearer_ok(bad, keys)


def test_rate_limiter_refills_and_tells_how_long_to_wait():
    now = [0.0]
    rl = RateLimiter(60, clock=lambda: now[0])  # one per second, burst 60
    assert all(rl.check("a") == 0 for _ in range(60))
    assert rl.check("a") >= 1
    assert rl.check("b") == 0  # per client
    now[0] += 2.0
    assert rl.check("a") == 0 and rl.check("a") == 0 and rl.check("a") >= 1
    assert not RateLimiter(0).enabled and RateLimiter(0).check("x") == 0


def test_rate_limiter_memory_is_bounded():
    rl = RateLimiter(10, max_clients=100)
    for i in range(1000):
        rl.check(f"10.0.{i // 256}.{i % 256}")
    assert len(rl.buckets) == 100


# --- in-process, through ASGI ----------------------------------------------------------

log = events.get_logger("test")


async def hello(request: Request) -> PlainTextResponse:
    log.info("inside", where_from="handler")
    return PlainTextResponse("hi")


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("kaput")


def app() -> Starlette:
    """Placed as in the service: inside Starlette's outermost error middleware."""
    return Starlette(routes=[Route("/v1/hello", hello), Route("/v1/boom", boom)],
                     middleware=[Middleware(ServiceMiddleware,
                                            request_id_header="X-Correlation-ID",
                                            api_keys="", max_body_bytes=1024)])


def call(method: str, path: str, **kw) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


def test_request_id_header_name_is_configurable_and_bound_to_records(captured):
    r = call("GET", "/v1/hello", headers={"X-Correlation-ID": "abc-123"})
    assert r.headers["x-correlation-id"] == "abc-123"
    inside = [i for i in captured if i[3] == "inside"]
    http = [i for i in captured if i[3] == "http_request"]
    assert len(inside) == 1 and inside[0][4]["request_id"] == "abc-123"
    assert len(http) == 1
    fields = http[0][4]
    assert fields["status"] == "200" and fields["method"] == "GET"
    assert fields["path"] == "/v1/hello" and fields["client"] == "127.0.0.1"


def test_unhandled_exception_is_a_500_in_the_openai_shape(captured):
    r = call("GET", "/v1/boom")
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "INTERNAL_ERROR"
    err = [i for i in captured if i[3] == "http_error"]
    assert len(err) == 1 and err[0][2] == "ERROR"
    assert err[0][4]["exc_type"] == "RuntimeError" and any("kaput" in x for x in err[0][5])
    http = [i for i in captured if i[3] == "http_request"]
    assert http[0][4]["status"] == "500" and http[0][4]["error_code"] == "INTERNAL_ERROR"


def test_invalid_content_length_and_big_bodies_are_refused_before_the_app(captured):
    r = call("POST", "/v1/hello", content=b"x" * 2000)
    assert r.status_code == 413 and r.json()["error"]["code"] == "BODY_TOO_LARGE"
    assert not [i for i in captured if i[3] == "inside"]
