from __future__ import annotations

from pathlib import Path

import pytest

from ttsops import events
from ttsops.logsink import LogSink


@pytest.fixture
def sink(tmp_path: Path):
    s = LogSink(tmp_path / "logs")
    prev = events.set_sink(s)
    yield s
    events.set_sink(prev)
    s.close()
