"""logs report: one self-contained HTML file, opened in real headless Chromium with the
network cut off: every chart renders (no console errors), the screenshots of the charts
are not blank, and what the charts say is what the generator emitted."""

from __future__ import annotations

import io
import re
import shutil
from typing import Any

import pytest

from ..forensics_helpers import cli

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium")]

CHARTS = {"requests", "error_codes", "stages", "queue", "cache", "audio_spectral_centroid",
          "audio_rms"}


@pytest.fixture(scope="module")
def report(incident, tmp_path_factory) -> tuple[str, dict]:
    d, truth = incident
    out = tmp_path_factory.mktemp("report") / "report.html"
    rc, stdout, err = cli("report", "--dir", str(d), "-o", str(out))
    assert rc == 0, err
    assert "written" in stdout
    return out.read_text(encoding="utf-8"), truth


def test_the_file_is_self_contained(report):
    page, _ = report
    assert "<script" not in page  # nothing to run, nothing to fetch
    assert not re.search(r"<link|@import|url\(|src=", page)
    # the only absolute URL is the SVG namespace (a name, never fetched)
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) <= {"http://www.w3.org/2000/svg"}


def _pixels(png: bytes) -> Any:
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)


def test_every_chart_renders_offline_in_chromium(report, browser, tmp_path):
    html, truth = report
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    blocked: list[str] = []

    def no_network(route: Any) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()
    page.route("**/*", no_network)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    full = page.screenshot(full_page=True)
    (tmp_path / "report.png").write_bytes(full)
    assert _pixels(full).std() > 10
    names = page.eval_on_selector_all("figure.chart", "els => els.map(e => e.dataset.chart)")
    assert set(names) >= CHARTS, names
    assert any(n.startswith("trace_") for n in names)  # example traces drawn
    for name in names:
        fig = page.locator(f'figure.chart[data-chart="{name}"]')
        svg = fig.locator("svg")
        assert svg.count() == 1, f"{name}: no chart"
        box = svg.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 60, (name, box)
        assert svg.locator(".mark").count() > 0, f"{name}: no data drawn"
        # a screenshot of the chart itself is not blank: dark ink on the white card
        px = _pixels(svg.screenshot())
        assert px.std() > 15, f"{name}: blank chart"
        assert (px < 200).mean() > 0.01, f"{name}: nearly empty chart"
    assert problems == []
    assert blocked == []
    # what the charts say: the failed bars add up to the failed syntheses emitted
    tips = page.eval_on_selector_all('figure[data-chart="requests"] rect.mark title',
                                     "els => els.map(e => e.textContent)")
    failed = sum(int(t.rsplit(": ", 1)[1]) for t in tips if " failed: " in t)
    ok = sum(int(t.rsplit(": ", 1)[1]) for t in tips if " succeeded: " in t)
    assert failed == truth["complete"]["failed"]
    assert ok == truth["complete"]["success"]
    # the cache chart crosses the warning line the disk scenario drives it over
    assert page.locator('figure[data-chart="cache"] .threshold').count() == 1
    # the findings of diagnose are listed, the most severe first
    sev = page.eval_on_selector_all("#findings ~ table .sev",
                                    "els => els.map(e => e.textContent)")
    assert sev and sev[0] == "critical"
    ctx.close()


def test_report_of_an_empty_window_says_so_and_writes_nothing(incident, tmp_path):
    d, _ = incident
    rc, _out, err = cli("report", "--dir", str(d), "--since", "2030-01-01", "--until",
                        "2030-01-02", "-o", str(tmp_path / "r.html"))
    assert rc == 1
    assert "no records between 2030-01-01" in err and "the logs cover 2024-06-12" in err
    assert not (tmp_path / "r.html").exists()
