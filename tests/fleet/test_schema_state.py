"""What ``ship`` asks the servers before it ships (``schema.ensure``): each server once,
in one statement, what it holds; the tables and views only where something is missing;
and the view-chain probe (``schema.view_chain``: three tables made and dropped) once per
server version -- remembered in the process and in the user's cache, so that the next
ship (a live shipper's next look is a new process) sends no probe -- and again for a
server of a version not seen before."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ttsops.fleet import schema


@pytest.fixture
def sent(monkeypatch, tmp_path) -> list[tuple[str, str]]:
    """(server address, statement) of every statement ``schema`` sends; an empty user's
    cache and a new process's memory of the probe."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(schema, "_CHAINS", {})
    out: list[tuple[str, str]] = []
    real = schema.call

    def call(c: Any, sql: str, *a: Any, **kw: Any) -> Any:
        out.append((str(getattr(c, "ttsops_addr", "?")), sql))
        return real(c, sql, *a, **kw)

    monkeypatch.setattr(schema, "call", call)
    return out


def _ship(url: str, d: str, host: str) -> int:
    from ttsops.fleet.ship import ship
    from ttsops.fleet.url import parse_url

    return ship(parse_url(url), [d], host=host, workers=1).rows


def _probes(sent: list[tuple[str, str]]) -> int:
    """How many times the probe ran (its one insert)."""
    return sum(1 for _a, q in sent if q.startswith("INSERT INTO") and "_ttsops_probe_" in q)


def test_the_probe_runs_once_per_server_version(ch_cluster, corpora, sent, monkeypatch):
    d = str(corpora["tut"])
    url = f"clickhouse://127.0.0.1:{ch_cluster[0].tcp_port}/probed?cluster=ttsops_test"
    assert _ship(url, d, "a") > 0
    assert _probes(sent) == 1  # two shards of one version: one probe
    cached = json.loads(schema._chain_file().read_text())
    assert list(cached.values()) == ["view"]  # 18.16: a view's view runs on the view
    version = next(iter(cached))

    # the next ship, in a new process (the memory gone, the user's cache kept), with
    # nothing new: one statement per shard about its tables, nothing made, no probe
    monkeypatch.setattr(schema, "_CHAINS", {})
    sent.clear()
    assert _ship(url, d, "a") == 0
    assert _probes(sent) == 0
    asks = [a for a, q in sent if "FROM system.tables" in q]
    assert sorted(asks) == sorted(f"127.0.0.1:{s.tcp_port}" for s in ch_cluster), sent
    made = [q for _a, q in sent if q.lstrip().startswith(("CREATE", "DROP", "INSERT"))]
    assert made == [schema.ledger("probed")], made  # (IF NOT EXISTS, on the URL's server)

    # a server of a version the cache does not know (another server at the address)
    schema._chain_file().write_text(json.dumps({"0.0.0": "table"}))
    monkeypatch.setattr(schema, "_CHAINS", {})
    sent.clear()
    assert _ship(url, d, "a") == 0
    assert _probes(sent) == 1
    assert json.loads(schema._chain_file().read_text()) == {"0.0.0": "table", version: "view"}


def test_a_server_is_sent_only_what_it_lacks(ch_single, corpora, sent):
    """One server with everything but the fields' table: its state, then that table
    made (with its view), nothing else dropped or made again."""
    from clickhouse_driver import Client

    d = str(corpora["tut"])
    url = f"clickhouse://127.0.0.1:{ch_single.tcp_port}/lacks"
    assert _ship(url, d, "a") > 0
    c = Client("127.0.0.1", port=ch_single.tcp_port)
    for t in ("ttsops_complete_view", "ttsops_complete"):
        c.execute(f"DROP TABLE lacks.{t}")
    c.disconnect()
    sent.clear()
    assert _ship(url, d, "a") == 0
    made = {q.split("`.`")[1].split("`")[0] for _a, q in sent
            if q.lstrip().startswith(("CREATE TABLE", "CREATE MATERIALIZED", "DROP"))}
    assert made == {"ttsops_complete", "ttsops_complete_view"}, made
