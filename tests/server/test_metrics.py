"""/metrics of a real server: valid exposition (`promtool check metrics`) and values that
follow the traffic it served."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from . import harness

pytestmark = pytest.mark.slow


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = harness.get(url + "/metrics").text
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: dict, name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_exposition(fake_server):
    for text in ("metrics please", "#raise failing one"):
        harness.post(fake_server.url + "/v1/audio/speech", timeout=30,
                     json={"model": "tts-1", "voice": "alloy", "input": text})
    harness.get(fake_server.url + "/v1/nope")
    text = harness.get(fake_server.url + "/metrics").content
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()


def test_metrics_follow_traffic(server_factory):
    s = server_factory(engine="fake", workers=1)
    before = scrape(s.url)
    post = {"model": "tts-1", "voice": "alloy", "input": "count me"}
    for _ in range(2):  # a miss then a hit
        assert harness.post(s.url + "/v1/audio/speech", json=post, timeout=30).status_code == 200
    bad = harness.post(s.url + "/v1/audio/speech", json={**post, "input": "#raise"}, timeout=30)
    assert bad.status_code == 500
    after = scrape(s.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/v1/audio/speech"
    assert delta("ttsops_http_requests_total", method="POST", route=route, status="200",
                 code="none") == 2
    assert delta("ttsops_http_requests_total", method="POST", route=route, status="500",
                 code="ENGINE_FAILED") == 1
    assert delta("ttsops_syntheses_total", status="success", code="none", cache_hit="false") == 1
    assert delta("ttsops_syntheses_total", status="success", code="none", cache_hit="true") == 1
    assert delta("ttsops_syntheses_total", status="failed", code="ENGINE_FAILED",
                 cache_hit="false") == 1
    assert delta("ttsops_cache_lookups_total", result="hit") == 1
    assert delta("ttsops_cache_lookups_total", result="miss") == 1
    assert delta("ttsops_stage_duration_seconds_count", stage="llm_inference") == 1
    assert delta("ttsops_queue_wait_seconds_count") >= 1
    assert delta("ttsops_audio_seconds_total", format="mp3") > 0.3
    assert delta("ttsops_real_time_factor_count") == 1
    assert value(after, "ttsops_workers_ready") == 1
    assert value(after, "ttsops_queue_depth") == 0
    assert value(after, "ttsops_cache_entries") >= 1
    assert value(after, "ttsops_cache_used_bytes") > 0
    # a worker killed from outside counts as a restart
    harness.post(s.url + "/v1/audio/speech", json={**post, "input": "#exit"}, timeout=30)
    s.wait_ready()
    assert value(scrape(s.url), "ttsops_worker_restarts_total", reason="died") == 1


def test_label_values_stay_bounded_whatever_clients_send(fake_server):
    for i in range(5):
        harness.request(f"BREW{i}", fake_server.url + f"/v1/random/path/{i}")
        harness.get(fake_server.url + f"/nothing-{i}")
    m = scrape(fake_server.url)
    methods = {dict(k[1]).get("method") for k in m if k[0] == "ttsops_http_requests_total"}
    routes = {dict(k[1]).get("route") for k in m if k[0] == "ttsops_http_requests_total"}
    assert not any(x and x.startswith("BREW") for x in methods) and "OTHER" in methods
    assert not any(r and ("random" in r or "nothing" in r) for r in routes)
