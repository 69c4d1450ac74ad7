"""Shared fixtures: every test gets its own settings and log dir, never the repo's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ttsops import events
from ttsops.config import get_settings


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("TTSOPS_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("TTSOPS_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    prev = events.get_sink()
    yield
    events.set_sink(prev)
    get_settings.cache_clear()


@pytest.fixture
def captured():
    """Events emitted during the test, as items (time, logger, level, event, fields, tb)."""
    sink = events.ListSink()
    prev = events.set_sink(sink, "DEBUG")
    yield sink.items
    events.set_sink(prev)


# Debian's chromium, driven by Playwright (its own browser download is not used)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless /usr/bin/chromium for the tests of one module (web page, HTML report)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()
