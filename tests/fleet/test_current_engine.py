"""The same SQL on a current ClickHouse engine: ``chdb`` (embedded ClickHouse 2x.y, the
engine of current servers) stands in for the connection (``chdbclient``), and ``ship``
and every ``logs`` command of the agreement test run on it through their own code --
the tables, the views that fill the tables kept beside the logs, the inserts (the
blocks ``fleet.native`` encodes, read by the current engine's ``Native`` reader), the
queries of ``--source`` -- and answer as the files do.

This is where 18.16 and current servers differ for ttsops (``schema.view_chain``): a
view reading the rows another view writes runs, on 18.16, on the inserts into that
view, and on current servers on the inserts into its target table. A database whose
view was made for the other kind (a current server given the 18.16 view) is remade on
the next ``ship``."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import some_ids
from .test_source_agreement import assert_agree, commands

chdb = pytest.importorskip("chdb", reason="chdb (a current ClickHouse engine) is not "
                                          "installed: pip install chdb")


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[Any]:
    """One chdb session (chdb allows one per process), the fleet code's connections and
    inserts pointed at it for this module."""
    from ttsops.fleet import client as fc
    from ttsops.fleet import native, schema, ship, shipfile, source

    from .chdbclient import ChdbClient

    root = tmp_path_factory.mktemp("chdb")
    eng = ChdbClient(root)
    mp = pytest.MonkeyPatch()

    def connect(*_a: Any, **_k: Any) -> ChdbClient:
        return eng

    def insert(c: ChdbClient, query: str, n: int, cols: list[Any]) -> None:
        table = re.match(r"INSERT INTO (\S+) ", query)
        assert table is not None, query
        c.insert_block(table.group(1), n, cols)

    for mod in (fc, schema, ship, shipfile, source):
        mp.setattr(mod, "connect", connect)
    mp.setattr(native, "insert", insert)
    try:
        yield eng
    finally:
        mp.undo()
        eng.close()
        shutil.rmtree(root, ignore_errors=True)


def ship_to(engine: Any, d: Path, db: str, host: str) -> int:
    from ttsops.fleet.ship import ship
    from ttsops.fleet.url import parse_url

    return ship(parse_url(f"clickhouse://127.0.0.1:9/{db}"), [str(d)], host=host,
                workers=1).rows


@pytest.fixture(scope="module")
def first_ship(engine, corpora) -> Any:
    """``first_ship(corpus)``: the rows of the first ship of ``corpus`` into ``cur_<corpus>``
    (shipped once in the module: the agreement test and ``stages`` read that database;
    nothing writes into it after)."""
    rows: dict[str, int] = {}

    def get(corpus: str) -> int:
        if corpus not in rows:
            d = corpora[corpus]
            rows[corpus] = ship_to(engine, d, f"cur_{corpus}", d.name)
        return rows[corpus]

    return get


def test_the_engine_is_a_current_one(engine):
    assert int(engine.version.split(".")[0]) >= 24, engine.version
    from ttsops.fleet.schema import view_chain

    engine.execute("CREATE DATABASE IF NOT EXISTS probe")
    assert view_chain(engine, "probe") == "table"
    assert engine.execute("SELECT count() FROM system.tables WHERE database = 'probe'") \
        == [(0,)]  # the probe's tables are gone


@pytest.mark.parametrize("corpus", ["sim", "tut", "json"])
def test_source_answers_as_the_files_do(engine, corpora, corpus, dir_answers, tmp_path,
                                        first_ship):
    d = corpora[corpus]
    assert first_ship(corpus) > 0
    assert ship_to(engine, d, f"cur_{corpus}", d.name) == 0  # nothing twice
    url = f"clickhouse://127.0.0.1:9/cur_{corpus}"
    # (the --dir answers: asked once in the run, here or by test_source_agreement)
    assert_agree(commands(some_ids(d, 3)), ["--dir", str(d)], url, dir_answers, tmp_path)


def test_stages_reads_the_counts_the_views_keep(engine, first_ship):
    """``stages`` is answered from ``ttsops_stage_hist`` (filled by the view chain), not
    by the general way: the table holds the components of every synthesis."""
    from ttsops.fleet import sqlstages
    from ttsops.fleet.url import parse_url

    first_ship("tut")  # (the database the agreement test reads)
    n_syn = engine.execute("SELECT count() FROM cur_tut.ttsops_syn")[0][0]
    n_e2e = engine.execute("SELECT sum(cnt) FROM cur_tut.ttsops_stage_hist WHERE comp = "
                           "'end_to_end'")[0][0]
    assert n_syn > 0 and n_e2e > 0
    rep = sqlstages.answer(engine, parse_url("clickhouse://127.0.0.1:9/cur_tut"), None,
                           None, 5)
    assert rep is not None
    assert [r["component"] for r in rep.data["rows"]][-1] == "end_to_end"


def test_a_view_made_for_18_16_is_remade(engine, corpora):
    """A database whose ``ttsops_stage_hist`` view reads the view of ``ttsops_syn`` (as
    made for 18.16, by this code there or by an older ttsops) gets rows on a current
    server only after the next ``ship`` remakes the view and fills the table again."""
    from ttsops.fleet import synsql

    d = corpora["tut"]
    db = "cur_old"
    ship_to(engine, d, db, "first")
    want = engine.execute(f"SELECT comp, sum(cnt) FROM {db}.ttsops_stage_hist GROUP BY comp "
                          "ORDER BY comp")
    engine.execute(f"DROP TABLE {db}.ttsops_stage_hist_view")
    engine.execute(f"TRUNCATE TABLE {db}.ttsops_stage_hist")
    engine.execute(f"CREATE MATERIALIZED VIEW {db}.ttsops_stage_hist_view TO "
                   f"{db}.ttsops_stage_hist AS {synsql.hist_of_syn(db, 'ttsops_syn_view')}")
    # the old view sees nothing of a new host's rows on this server
    before = engine.execute(f"SELECT count() FROM {db}.ttsops_syn")[0][0]
    ship_to(engine, d, db, "second")
    # (the ship remade the view first, so the second host's rows were counted too)
    got = dict(engine.execute(f"SELECT comp, sum(cnt) FROM {db}.ttsops_stage_hist "
                              "GROUP BY comp"))
    assert engine.execute(f"SELECT count() FROM {db}.ttsops_syn")[0][0] == 2 * before
    assert got == {c: 2 * n for c, n in want}
