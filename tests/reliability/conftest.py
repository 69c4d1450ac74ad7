"""Fixtures of the reliability tests: servers started by a test are stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .kit import Server


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """The servers a test started with ``kit.serve``; each is stopped when the test ends."""
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()
