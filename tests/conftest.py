"""Shared fixtures: every test gets its own settings and log dir, never the repo's."""

from __future__ import annotations

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
