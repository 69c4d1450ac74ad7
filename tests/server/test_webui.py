"""The web page in a real headless Chromium (Debian's, through Playwright) against a real
server with the real eSpeak NG engine: type, click "🔊 开始合成", the player gets playable
audio, the page shows the ids and timings, and the server's log has that id's webui_event
and synthesis records. Playback that fails in the browser is reported to the log."""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from . import harness
from .harness import Server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium")]

BUTTON = "🔊 开始合成"


@pytest.fixture
def page(browser: Any, espeak_server: Server) -> Iterator[Any]:
    # the page's Content-Security-Policy forbids eval, which Playwright's wait_for_function
    # needs; the header itself is checked in test_page_sets_a_strict_csp
    ctx = browser.new_context(bypass_csp=True)
    pg = ctx.new_page()
    pg.requested = []  # every URL the page asked for
    pg.on("request", lambda req: pg.requested.append(req.url))
    pg.goto(espeak_server.url + "/")
    yield pg
    ctx.close()


def synthesise(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.get_by_role("button", name=BUTTON).click()


def test_type_click_play_and_the_log_has_the_id(page, espeak_server):
    page.select_option("#lang", "zh")
    synthesise(page, "今天天气真好。")
    page.wait_for_function("/^ts_[0-9a-f]{16}$/.test(document.getElementById('res-id')"
                           ".textContent)", timeout=30_000)
    sid = page.text_content("#res-id")
    rid = page.text_content("#res-request-id")
    assert rid.startswith("req_")
    assert page.text_content("#res-status").startswith("200")
    # playable audio: the player decoded it and knows its duration
    page.wait_for_function("document.getElementById('player').readyState >= 2 && "
                           "document.getElementById('player').duration > 0.5",
                           timeout=30_000)
    assert page.evaluate("document.getElementById('player').error") is None
    stages = page.locator("#stages tbody tr td:first-child").all_text_contents()
    assert {"queue", "text_normalize", "llm_inference", "audio_render", "total"} <= set(stages)
    metrics = page.locator("#metrics tbody tr td:first-child").all_text_contents()
    assert {"rms", "spectral_centroid", "duration_ms"} <= set(metrics)
    recs = espeak_server.wait_records(lambda rs: any(
        r.event == "webui_event" and r.get("id") == sid and r.get("kind") == "play"
        for r in rs), timeout=30)
    mine = [r for r in recs if r.get("id") == sid]
    kinds = {r.event for r in mine}
    assert {"synthesis_start", "synthesis_complete", "webui_event"} <= kinds
    play = next(r for r in mine if r.event == "webui_event")
    assert play.get("synthesis_request_id") == rid and play.num("fetch_ms") > 0
    # nothing left the server's origin
    assert all(u.startswith(espeak_server.url) or u.startswith("blob:") or
               u.startswith("data:") for u in page.requested), page.requested


def test_broken_audio_in_the_browser_is_reported_as_playback_error(page, espeak_server):
    """Symptom 1: "the play button does nothing" - here the audio reaches the page
    mangled (as by a broken proxy); the player fails and the log says so, with the id."""

    def mangle(route: Any) -> None:  # the page streams SSE: every delta's audio mangled
        resp = route.fetch()
        bad = base64.b64encode(b"\x00garbage" * 64).decode()
        body = re.sub(r'"audio":"[^"]*"', '"audio":"' + bad + '"', resp.text())
        route.fulfill(status=resp.status, headers=resp.headers, body=body)

    page.route("**/v1/audio/speech", mangle)
    synthesise(page, "This audio will not survive the trip.")
    page.wait_for_function("document.getElementById('playback').textContent"
                           ".startsWith('error')", timeout=30_000)
    sid = page.text_content("#res-id")
    recs = espeak_server.wait_records(lambda rs: any(
        r.event == "webui_event" and r.get("id") == sid and r.get("kind") == "error"
        for r in rs), timeout=30)
    ev = next(r for r in recs if r.event == "webui_event" and r.get("id") == sid)
    assert ev.level == "WARNING" and ev.get("warning_code") == "WEBUI_PLAYBACK_FAILED"
    assert re.search(r"MEDIA_ERR|NotSupportedError|play\(\) rejected", ev.get("detail") or "")
    # the server itself succeeded for that id: the fault is between server and speaker
    assert any(r.event == "synthesis_complete" and r.get("status") == "success"
               for r in recs if r.get("id") == sid)


def test_errors_show_code_and_message_as_text(page, espeak_server):
    hostile = '<img src=x onerror="window.pwned=1">'
    # the page fills the voice list from /v1/audio/voices when it loads, replacing the
    # options: wait for that first, or the injected option is gone before the click
    page.wait_for_function("[...document.getElementById('voice').options]"
                           ".some((o) => o.textContent.includes('('))", timeout=30_000)
    page.evaluate("""(v) => { const o = document.createElement('option');
        o.value = v; o.textContent = 'evil'; document.getElementById('voice').append(o);
        document.getElementById('voice').value = v; }""", hostile)
    synthesise(page, "hello")
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert page.text_content("#err-code") == "VOICE_UNKNOWN"
    assert page.text_content("#err-status") == "HTTP 400"
    assert page.text_content("#err-request-id").startswith("req_")
    assert page.evaluate("window.pwned") is None
    assert page.locator("img").count() == 0
    sid = page.text_content("#err-id")
    espeak_server.wait_records(lambda rs: any(
        r.event == "webui_event" and r.get("kind") == "request_failed" and r.get("id") == sid
        for r in rs), timeout=30)


def test_page_sets_a_strict_csp(espeak_server):

    r = harness.get(espeak_server.url + "/")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "🔊 开始合成" in r.text
    assert "http://" not in r.text and "https://" not in r.text
