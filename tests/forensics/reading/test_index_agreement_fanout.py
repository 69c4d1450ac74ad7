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


@pytest.mark.parametrize("flag", [(), ("--no-index",)], ids=["index", "no-index"])
@pytest.mark.parametrize("copy", ["indexed", "plain"])
def test_filtering_on_worker_processes_gives_the_same_answers(copies, monkeypatch, copy,
                                                              flag):
    """``fanout``: selective scans read and filter in forked processes; every query (and
    trace) answers exactly as when the caller filters everything itself."""
    from ttsops.forensics.reading import fanout, scan

    a, b, _ = copies
    d = a if copy == "indexed" else b
    used: list[int] = []
    real = fanout.items

    def counting(units, select, workers):  # the real thing, counted
        used.append(len(units))
        yield from real(units, select, workers)

    monkeypatch.setattr(fanout, "items", counting)
    monkeypatch.setenv("TTSOPS_LOGS_WORKERS", "2")
    queries = [q for q in QUERIES if q[0] not in ("check", "diagnose")]  # (no needles)
    ids = _ids(a)
    ids += [ids[0][:-1]]  # a part of an id: nothing, on worker processes too
    monkeypatch.setattr(scan, "FANOUT_BYTES", 1 << 60)
    alone = [_answer(d, *q, *flag) for q in queries] + \
        [_answer(d, "trace", i, *flag) for i in ids]
    assert not used
    monkeypatch.setattr(scan, "FANOUT_BYTES", 0)
    fanned = [_answer(d, *q, *flag) for q in queries] + \
        [_answer(d, "trace", i, *flag) for i in ids]
    assert used, "no scan fanned out"
    assert fanned == alone
