"""Fixtures for pipeline tests: real pipelines on the eSpeak NG and fake engines, with
their own cache dir, and helpers to pick records out of captured events."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from ttsops.config import Settings
from ttsops.pipeline.runner import Pipeline


def make_settings(tmp_path: Any, **kw: Any) -> Settings:
    base: dict[str, Any] = {"cache_dir": tmp_path / "cache", "log_dir": tmp_path / "logs"}
    base.update(kw)
    return Settings(**base)


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


@pytest.fixture
def espeak(tmp_path):
    return Pipeline(settings=make_settings(tmp_path, engine="espeak"))


@pytest.fixture
def fake(tmp_path):
    return Pipeline(settings=make_settings(tmp_path, engine="fake"))


def of(items: list[Any], sid: str, event: str | None = None) -> list[dict[str, str]]:
    """Fields of the records of synthesis ``sid`` (optionally only ``event``), with
    ``_event``/``_level``/``_tb`` added."""
    out = []
    for _t, _logger, level, ev, fields, tb in items:
        if fields.get("id") == sid and (event is None or ev == event):
            out.append({**fields, "_event": ev, "_level": level, "_tb": tb})
    return out


def events_of(items: list[Any], sid: str) -> list[str]:
    return [r["_event"] for r in of(items, sid)]


def decode(data: bytes) -> tuple[np.ndarray, int]:
    x, sr = sf.read(io.BytesIO(data), dtype="float32")
    return (x if x.ndim == 1 else x.mean(axis=1)), sr
