"""CORS (TTSOPS_CORS_ORIGINS) against a real server: preflights answered, the headers a
browser app needs, nothing for other origins, off by default; and a real cross-origin
fetch from headless Chromium. Route labels of /static and preflights in the metrics."""

from __future__ import annotations

import shutil

import pytest

from . import harness

pytestmark = pytest.mark.slow

APP = "http://app.example"
PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}
BODY = {"model": "tts-1", "voice": "alloy", "input": "Hello.", "response_format": "wav"}


def test_off_by_default(fake_server):
    r = harness.options(fake_server.url + "/v1/audio/speech", headers=PREFLIGHT, timeout=10)
    assert r.status_code == 405
    assert "access-control-allow-origin" not in r.headers
    r = harness.post(fake_server.url + "/v1/audio/speech", json=BODY, headers={"Origin": APP},
                     timeout=30)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_allowed_origin_preflight_and_request(server_factory):
    s = server_factory(engine="fake", cors_origins=f"{APP}, http://other.example",
                       api_keys="sekrit")
    r = harness.options(s.url + "/v1/audio/speech", headers=PREFLIGHT, timeout=10)
    assert r.status_code == 200  # no token on a preflight, and none needed
    assert r.headers["access-control-allow-origin"] == APP
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    r = harness.post(s.url + "/v1/audio/speech", json=BODY, timeout=30,
                     headers={"Origin": APP, "Authorization": "Bearer sekrit"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP
    exposed = r.headers["access-control-expose-headers"].lower()
    assert "x-synthesis-id" in exposed and "server-timing" in exposed
    # an error is readable by the app too (it needs the code)
    r = harness.post(s.url + "/v1/audio/speech", json=BODY, headers={"Origin": APP}, timeout=10)
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == APP
    # another origin gets no CORS headers, and its preflight is refused
    r = harness.options(s.url + "/v1/audio/speech", timeout=10,
                        headers={**PREFLIGHT, "Origin": "http://evil.example"})
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    recs = s.wait_records(lambda rs: sum(1 for x in rs if x.event == "http_request"
                                         and x.get("method") == "OPTIONS") >= 2)
    pre = [x for x in recs if x.event == "http_request" and x.get("method") == "OPTIONS"]
    assert {x.get("status") for x in pre} == {"200", "400"}
    metrics = harness.get(s.url + "/metrics", timeout=10).text
    assert 'method="OPTIONS",route="preflight",status="200"' in metrics


def test_any_origin(server_factory):
    s = server_factory(engine="fake", cors_origins="*")
    r = harness.options(s.url + "/v1/audio/speech", timeout=10,
                        headers={**PREFLIGHT, "Origin": "http://anything.example"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


def test_static_files_have_their_own_route_label(server_factory):
    # a server of its own: the session's shared one has served whatever other tests asked
    # before (in an order pytest-xdist decides), and GET /openapi.json is counted as
    # route="unmatched" (a plain Starlette route sets no scope["route"])
    fake_server = server_factory(engine="fake")
    for path in ("/static/app.js", "/static/style.css", "/static/nothing-here.js"):
        harness.get(fake_server.url + path, timeout=10)
    metrics = harness.get(fake_server.url + "/metrics", timeout=10).text
    assert 'route="/static",status="200"' in metrics
    assert 'route="/static",status="404"' in metrics
    assert 'route="unmatched",status="200"' not in metrics


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium")
def test_a_browser_app_on_another_origin_can_synthesise(server_factory, fake_server, browser):
    # the app is served from one origin (fake_server), the API is another server that
    # allows exactly that origin; the Authorization header makes Chromium send a preflight
    api = server_factory(engine="fake", cors_origins=fake_server.url, api_keys="tok")
    script = """async (url) => {
        const r = await fetch(url + "/v1/audio/speech", {method: "POST",
            headers: {"Content-Type": "application/json", "Authorization": "Bearer tok"},
            body: JSON.stringify({model: "tts-1", voice: "alloy", input: "Hi.",
                                  response_format: "wav"})});
        const buf = await r.arrayBuffer();
        return {status: r.status, id: r.headers.get("X-Synthesis-ID"), bytes: buf.byteLength};
    }"""
    page = browser.new_page()
    page.goto(fake_server.url + "/healthz")
    got = page.evaluate(script, api.url)
    assert got["status"] == 200 and got["id"].startswith("ts_") and got["bytes"] > 1000
    # and from an origin the API does not allow, the browser gets nothing
    other = api.url.replace("127.0.0.1", "localhost")
    page.goto(other + "/healthz")
    refused = page.evaluate("async (url) => { try { await (" + script.strip() +
                            ")(url); return 'read'; } catch (e) { return 'refused'; } }",
                            api.url)
    page.close()
    assert refused == "refused"
