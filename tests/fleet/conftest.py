"""ClickHouse for the fleet tests: Debian's ``clickhouse-server`` started as plain
processes (one server; two servers with a two-shard cluster) on free ports in temporary
directories, stopped at the end; the corpora they receive. Without the server binary or
``clickhouse-driver`` the tests skip and say why (``.ci/run`` installs both, and turns a
skip into a failure)."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import chserver, shared


def _need() -> None:
    if chserver.binary() is None:
        pytest.skip("clickhouse-server is not installed (apt-get install clickhouse-server)")
    try:
        import clickhouse_driver  # noqa: F401
    except ImportError:
        pytest.skip("clickhouse-driver is not installed (pip install 'ttsops[clickhouse]')")


@pytest.fixture(scope="session")
def ch_single(tmp_path_factory) -> Iterator[chserver.Server]:
    """One ClickHouse server."""
    _need()
    s = chserver.start(tmp_path_factory.mktemp("ch1"))
    try:
        yield s
    finally:
        chserver.discard([s])


@pytest.fixture(scope="session")
def ch_cluster(tmp_path_factory) -> Iterator[list[chserver.Server]]:
    """Two ClickHouse servers, both configured with the cluster ``chserver.CLUSTER`` whose
    two shards they are."""
    _need()
    servers = chserver.cluster(tmp_path_factory.mktemp("ch2"), 2)
    try:
        yield servers
    finally:
        chserver.discard(servers)


def _write_corpora(root: Path) -> None:
    from forensics import stdlib_logs
    from ttsops.simulate import INCIDENT, SimConfig, generate

    generate(root / "sim", SimConfig(requests=2500, seed=11, scenarios=INCIDENT,
                                     max_bytes=200_000, block_bytes=16_384),
             root / "sim.truth.json")
    # TTSOPS_LOG_FORMAT=json: one JSON object per line
    generate(root / "json", SimConfig(requests=1200, seed=12, scenarios=INCIDENT,
                                      max_bytes=200_000, block_bytes=16_384, fmt="json"),
             root / "json.truth.json")
    stdlib_logs.write_day(root / "tut", requests=600, max_bytes=30_000,
                          incomplete=frozenset(range(5, 600, 97)),
                          tracebacks=frozenset(range(3, 600, 41)))


@pytest.fixture(scope="session")
def corpora(tmp_path_factory) -> dict[str, Path]:
    """The simulator's logs (ttsops' own format, rotated block gzip with an index) and
    tutorial-style logs written by plain stdlib logging (cumulative stage times, a code
    then free text, tracebacks, unfinished syntheses, gzip rotation by the stdlib).
    Written once for the run's test processes (``shared``); read-only."""
    root = shared.made_once(shared.root(tmp_path_factory) / "fleet-corpora", _write_corpora)
    return {"sim": root / "sim", "tut": root / "tut", "json": root / "json"}


@pytest.fixture(scope="session")
def dir_answers(tmp_path_factory) -> shared.Answers:
    """The ``--dir`` answers of ``corpora`` the ``--source`` answers are held to
    (``test_source_agreement``, ``test_current_engine``, ``test_derived``), each asked
    once in the run."""
    return shared.Answers(shared.root(tmp_path_factory) / "fleet-dir-answers")


def some_ids(d: Path, n: int = 3) -> list[str]:
    """Synthesis ids that occur in the logs of ``d`` (the first of the oldest file...)."""
    ids: list[str] = []
    for p in sorted(d.iterdir()):
        opener = gzip.open if p.name.endswith(".gz") else open
        with opener(p, "rt", encoding="utf-8", errors="replace") as f:
            for m in re.finditer(r"\bid(?:=|\": \")(ts_[0-9a-f]+)", f.read()):
                if m.group(1) not in ids:
                    ids.append(m.group(1))
                if len(ids) >= n:
                    return ids
    return ids
