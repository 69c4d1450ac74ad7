"""Fault drills against the running service (see drills.py): each checks the response
codes, the records written, that the service still serves afterwards, and that
``ttsops logs diagnose`` names the cause. bench/reliability.py runs the same drills
longer and writes docs/reliability.md."""

from __future__ import annotations

import pytest

from .drills import DRILLS, Skip

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", list(DRILLS))
def test_drill(name, tmp_path):
    try:
        res = DRILLS[name](tmp_path, 1)
    except Skip as e:
        pytest.skip(str(e))
    assert res.served_after
    assert res.diagnosis
    assert sum(res.responses.values()) > 0
