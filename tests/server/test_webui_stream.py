"""The page's streaming, word highlighting, download, history, favicon and beacons, in a
real headless Chromium against a real server with the real eSpeak NG engine."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import harness
from .harness import Server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium")]

BUTTON = "🔊 开始合成"
ID_JS = "/^ts_[0-9a-f]{16}$/.test(document.getElementById('res-id').textContent)"
DONE_JS = ("!document.getElementById('res-status').textContent.includes('streaming') && "
           + ID_JS)


@pytest.fixture
def page(browser: Any, espeak_server: Server) -> Iterator[Any]:
    ctx = browser.new_context(bypass_csp=True)  # wait_for_function needs eval
    pg = ctx.new_page()
    pg.console_errors = []
    pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
    pg.goto(espeak_server.url + "/")
    yield pg
    ctx.close()


def synthesise(page: Any, text: str, fmt: str = "mp3") -> str:
    before = page.locator("#history li").count()
    page.select_option("#format", fmt)
    page.fill("#text", text)
    page.get_by_role("button", name=BUTTON).click()
    # done: the synthesis is in the history
    page.wait_for_function(f"document.querySelectorAll('#history li').length > {before}",
                           timeout=60_000)
    assert page.evaluate(DONE_JS)
    return page.text_content("#res-id")


def records_of(server: Server, sid: str, kind: str, n: int = 1) -> list[Any]:
    recs = server.wait_records(lambda rs: sum(
        1 for r in rs if r.event == "webui_event" and r.get("id") == sid
        and r.get("kind") == kind) >= n, timeout=30)
    return [r for r in recs if r.event == "webui_event" and r.get("id") == sid
            and r.get("kind") == kind]


def test_audio_plays_while_the_stream_is_still_arriving(page):
    # the page notes when the player starts and when the result is complete
    page.evaluate("""() => {
        window.marks = {};
        const p = document.getElementById('player');
        p.addEventListener('playing', () => { window.marks.playing ??= performance.now(); });
        new MutationObserver(() => {
            const t = document.getElementById('res-status').textContent;
            if (t.startsWith('200') && !t.includes('streaming'))
                window.marks.done ??= performance.now();
        }).observe(document.getElementById('res-status'), {childList: true, subtree: true});
    }""")
    text = " ".join(f"Sentence number {i} of a long text, spoken while the rest is still "
                    "being made." for i in range(1, 40))
    page.fill("#text", text)
    page.get_by_role("button", name=BUTTON).click()
    page.wait_for_function("window.marks.playing && window.marks.done", timeout=60_000)
    marks = page.evaluate("window.marks")
    assert marks["playing"] < marks["done"], marks
    assert page.evaluate("document.getElementById('player').error") is None


def test_each_word_is_highlighted_as_it_is_spoken(page):
    synthesise(page, "Highlight every single word of this sentence please.")
    words = page.locator("#words span").all_text_contents()
    assert [w.strip() for w in words] == ["Highlight", "every", "single", "word", "of",
                                          "this", "sentence", "please"]
    seen = page.evaluate("""() => new Promise((resolve) => {
        const seen = new Set();
        const p = document.getElementById('player');
        const look = () => {
            document.querySelectorAll('#words span.now').forEach(
                (s) => seen.add(s.textContent.trim()));
            if (p.ended) resolve([...seen]); else requestAnimationFrame(look);
        };
        look();
    })""")
    assert len(seen) >= 5, seen


def test_download_has_a_sensible_name_and_the_audio(page):
    sid = synthesise(page, "Download me.", fmt="wav")
    link = page.locator("#download")
    assert link.is_visible()
    assert link.get_attribute("download") == f"ttsops-{sid}.wav"
    with page.expect_download() as dl:
        link.click()
    data = Path(dl.value.path()).read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE" and len(data) > 10_000
    assert dl.value.suggested_filename == f"ttsops-{sid}.wav"


def test_history_lists_the_syntheses_and_replays_them(page, espeak_server):
    first = synthesise(page, "The first synthesis of this page.")
    records_of(espeak_server, first, "play")
    second = synthesise(page, "第二次合成。", fmt="mp3")
    items = page.locator("#history li")
    assert items.count() == 2
    assert second in items.nth(0).text_content() and first in items.nth(1).text_content()
    assert "The first synthesis" in items.nth(1).text_content()
    assert "audio_render" in items.nth(1).text_content()
    items.nth(1).locator("button.replay").click()
    # the replay is reported with the first synthesis' id, not the second's
    plays = records_of(espeak_server, first, "play", n=2)
    assert len(plays) >= 2
    assert page.locator("#download").get_attribute("download") == f"ttsops-{first}.mp3"


def test_a_failure_unloads_the_old_audio_and_its_beacon_is_its_own(page, espeak_server):
    ok = synthesise(page, "This clip plays first.")
    records_of(espeak_server, ok, "play")
    page.wait_for_function("document.getElementById('player').currentTime > 0.2",
                           timeout=30_000)
    page.evaluate("""() => { const o = document.createElement('option');
        o.value = 'no-such-voice'; o.textContent = 'x';
        document.getElementById('voice').append(o);
        document.getElementById('voice').value = 'no-such-voice'; }""")
    page.fill("#text", "This one fails.")
    page.get_by_role("button", name=BUTTON).click()
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    failed_id = page.text_content("#err-id")
    assert failed_id != ok
    player = page.evaluate("""() => { const p = document.getElementById('player');
        return {src: p.getAttribute('src'), paused: p.paused}; }""")
    assert player == {"src": None, "paused": True}  # nothing of the old clip left
    assert not page.locator("#download").is_visible()
    (beacon,) = records_of(espeak_server, failed_id, "request_failed")
    assert beacon.get("position_s") is None and beacon.get("audio_duration_s") is None


def test_page_load_has_a_favicon_and_no_errors(page, espeak_server):
    page.reload()
    page.wait_for_load_state("networkidle")
    assert page.console_errors == []
    r = harness.get(espeak_server.url + "/favicon.ico", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    metrics = harness.get(espeak_server.url + "/metrics", timeout=10).text
    assert 'code="NOT_FOUND"' not in metrics
