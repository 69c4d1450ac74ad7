"""Index against scan, on worker processes (split from ``test_index_agreement.py`` so that
pytest-xdist's ``--dist loadfile`` can run it beside the rest of that file): selective
scans filtered in forked processes answer as when the caller filters everything itself,
on the indexed and the plain-gzip copy, with and without --no-index."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .test_index_agreement import QUERIES, _answer, _ids, _indexed_and_plain

pytestmark = pytest.mark.skipif(shutil.which("gzip") is None, reason="needs gzip")


@pytest.fixture(scope="module")
def copies(incident, tmp_path_factory) -> tuple[Path, Path, dict]:
    d, truth = incident
    a, b = _indexed_and_plain(d, tmp_path_factory.mktemp("agree-fanout"))
    return a, b, truth


# the queries' answers the four runs below are held to: the same for both copies, with
# and without --no-index (test_index_agreement's check), so computed once
QUERIED = [q for q in QUERIES if q[0] not in ("check", "diagnose")]  # (no needles)


class Counted:
    """``fanout.items``, the real thing, counting the scans it fans out."""

    def __init__(self) -> None:
        from ttsops.forensics.reading import fanout

        self.real = fanout.items
        self.used: list[int] = []

    def __call__(self, units, select, workers):
        self.used.append(len(units))
        yield from self.real(units, select, workers)


def _fanning(mp: pytest.MonkeyPatch, fan: bool) -> Counted:
    from ttsops.forensics.reading import fanout, scan

    counted = Counted()
    mp.setattr(fanout, "items", counted)
    mp.setenv("TTSOPS_LOGS_WORKERS", "2")
    mp.setattr(scan, "FANOUT_BYTES", 0 if fan else 1 << 60)
    return counted


@pytest.fixture(scope="module")
def alone(copies) -> list[dict]:
    """Every query's answer on the indexed copy, filtered by the caller alone (no scan
    fans out); once for the module instead of once per copy and flag (the answers those
    give are the same: test_index_agreement)."""
    a, _b, _ = copies
    with pytest.MonkeyPatch.context() as mp:
        counted = _fanning(mp, fan=False)
        answers = [_answer(a, *q) for q in QUERIED]
    assert not counted.used
    return answers


@pytest.mark.parametrize("flag", [(), ("--no-index",)], ids=["index", "no-index"])
@pytest.mark.parametrize("copy", ["indexed", "plain"])
def test_filtering_on_worker_processes_gives_the_same_answers(copies, alone, copy, flag):
    """``fanout``: selective scans read and filter in forked processes; every query (and
    trace) answers exactly as when the caller filters everything itself."""
    a, b, _ = copies
    d = a if copy == "indexed" else b
    ids = _ids(a)
    ids += [ids[0][:-1]]  # a part of an id: nothing, on worker processes too
    with pytest.MonkeyPatch.context() as mp:
        counted = _fanning(mp, fan=False)
        traced = [_answer(d, "trace", i, *flag) for i in ids]
    assert not counted.used
    with pytest.MonkeyPatch.context() as mp:
        counted = _fanning(mp, fan=True)
        fanned = [_answer(d, *q, *flag) for q in QUERIED]
        fanned_traced = [_answer(d, "trace", i, *flag) for i in ids]
    assert counted.used, "no scan fanned out"
    assert fanned == alone
    assert fanned_traced == traced
