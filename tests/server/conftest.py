"""Fixtures: real `ttsops serve` processes (see harness.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import Server, start_server


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def make(**kw: Any) -> Server:
        s = start_server(tmp_path / f"srv{len(started)}", **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def espeak_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server with the real eSpeak NG engine, shared by the read-only tests."""
    s = start_server(tmp_path_factory.mktemp("espeak"), engine="espeak", workers=2)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on the deterministic fake engine (for the server's own logic)."""
    s = start_server(tmp_path_factory.mktemp("fake"), engine="fake", workers=2,
                     request_timeout_s=3)
    yield s
    s.stop()
