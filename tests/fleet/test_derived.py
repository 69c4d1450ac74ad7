"""The tables ``ship`` keeps beside the logs (issue 18's speed): the id lookup that
``trace --source`` reads instead of every row, and the per-block syntheses that answer
``stages --source`` without joining a month of records. They are answers of their own
only where they equal the join of all records (the agreement test compares every
command with the file engine); here: that the fast ways are the ones taken, that they
give the general way's report, and that a database shipped by an older ttsops (without
them) still answers, and gets them on its next ship."""

from __future__ import annotations

import json

import pytest

from ttsops.fleet.schema import has_derived

from .conftest import some_ids
from .test_source_agreement import answer, files_answer, in_process

DERIVED = ("ttsops_ids", "ttsops_syn", "ttsops_stage_hist", "ttsops_open",
           "ttsops_stage_recs", "ttsops_complete")


def _ship(d: str, url: str) -> dict:
    p = in_process("logs", "ship", d, "--to", url, "--host", "tut", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _connect(url: str):
    from ttsops.fleet.client import connect
    from ttsops.fleet.url import parse_url

    u = parse_url(url)
    return u, connect(u)


@pytest.fixture(scope="module")
def urls(ch_single, ch_cluster, corpora) -> dict[str, str]:
    out = {"single": f"clickhouse://127.0.0.1:{ch_single.tcp_port}/derived",
           "cluster": f"clickhouse://127.0.0.1:{ch_cluster[0].tcp_port}/derived"
                      "?cluster=ttsops_test"}
    for url in out.values():
        _ship(str(corpora["tut"]), url)
    return out


@pytest.mark.parametrize("where", ["single", "cluster"])
def test_stages_from_the_blocks_is_the_join_of_all_records(urls, where):
    """The tutorial-style logs rotate every few dozen records, so syntheses span two
    files (two inserts) and some never complete: the ids of ``ttsops_open``, joined again
    from all their records. The report equals the one joined from every record."""
    from ttsops.fleet import sqlstages

    url, c = _connect(urls[where])
    try:
        spans = c.execute(f"SELECT count() FROM {url.database}.ttsops_open")[0][0]
        fast = sqlstages.from_blocks(c, url, None, None, 5)
        slow = sqlstages.answer(c, url, None, None, 5)
    finally:
        c.disconnect()
    assert spans > 0  # the syntheses that span blocks are exercised
    assert fast is not None and slow is not None
    assert fast.to_json() == slow.to_json()
    assert fast.data["stage_time"]["cumulative"] > 0


def _narrowed(c, url, ids: list[str]) -> tuple[int, int]:
    """(rows, rows read) of ``ids`` through the lookup's conditions (``sqltrace``)."""
    from ttsops.fleet.client import call
    from ttsops.fleet.sqltrace import SETTINGS, narrow

    conds = narrow(c, url, ids)
    assert conds is not None
    n = call(c, f"SELECT count() FROM {url.database}.ttsops_logs WHERE "
                f"{' AND '.join(conds)} AND arrayExists(v -> v IN %(i)s, vals)",
             {"i": tuple(ids)}, settings=SETTINGS)[0][0]
    return n, c.last_query.progress.rows


@pytest.mark.parametrize("where", ["single", "cluster"])
def test_trace_reads_the_ranges_of_the_lookup(urls, corpora, where, dir_answers):
    """The lookup's ranges hold every row of the ids (the count without them is the
    same), and an id that is nowhere is no range at all."""
    from ttsops.fleet.sqltrace import narrow

    ids = some_ids(corpora["tut"], 2)
    url, c = _connect(urls[where])
    try:
        every = c.execute(f"SELECT count() FROM {url.database}.ttsops_logs WHERE "
                          "arrayExists(v -> v IN %(i)s, vals)", {"i": tuple(ids)})[0][0]
        n, _read = _narrowed(c, url, ids)
        none = narrow(c, url, ["ts_nosuchid"])
    finally:
        c.disconnect()
    assert n == every > 0
    assert none == ["0"]  # no row of it: nothing fetched
    want = files_answer(dir_answers, ["trace", *ids, "--dir", str(corpora["tut"])])
    assert answer(["trace", *ids, "--source", urls[where]]) == want


def _make_older(servers, db: str, names: tuple[str, ...] = DERIVED) -> None:
    """The database as an older ttsops left it: without the tables ``names`` (all: the
    logs and the ledger only)."""
    from clickhouse_driver import Client

    for s in servers:
        c = Client("127.0.0.1", port=s.tcp_port)
        for name in names:
            for t in (f"{name}_view", f"{name}_local", name):
                c.execute(f"DROP TABLE IF EXISTS {db}.{t}")
        c.disconnect()


def test_an_older_database_answers_and_gets_the_tables_on_its_next_ship(
        ch_cluster, corpora, dir_answers):
    from ttsops.fleet import sqlstages
    from ttsops.fleet.sqltrace import narrow

    d = str(corpora["tut"])
    url = f"clickhouse://127.0.0.1:{ch_cluster[1].tcp_port}/older?cluster=ttsops_test"
    _ship(d, url)
    _make_older(ch_cluster, "older")
    ids = some_ids(corpora["tut"], 2)
    asks = (["trace", *ids], ["stages"], ["patterns", "--by", "error_code,hour"],
            ["patterns", "--where", "status=failed", "--by", "text_len,error_code"])
    want = {tuple(a): files_answer(dir_answers, [*a, "--dir", d]) for a in asks}
    for a in asks:  # without the tables: every row read, as before
        assert answer([*a, "--source", url]) == want[tuple(a)], a
    u, c = _connect(url)
    try:
        assert narrow(c, u, ids) is None  # (the server refused the lookup)
        assert sqlstages.from_blocks(c, u, None, None, 5) is None
        assert not has_derived(c, u, "ttsops_complete")
    finally:
        c.disconnect()
    again = _ship(d, url)  # nothing new to ship: the tables are made from the rows
    assert again["rows"] == 0
    u, c = _connect(url)
    try:
        assert _narrowed(c, u, ids)[0] > 0
        fast = sqlstages.from_blocks(c, u, None, None, 5)
        assert fast is not None
        assert fast.to_json() == sqlstages.answer(c, u, None, None, 5).to_json()
        assert has_derived(c, u, "ttsops_complete")
    finally:
        c.disconnect()
    for a in asks:
        assert answer([*a, "--source", url]) == want[tuple(a)], a


def _patterns(c, url, by: str, where: tuple[str, ...], since: str | None = None,
              fields_table: bool = True) -> tuple[object, int]:
    """``patterns --source``'s report (from the fields' table, or not) and the bytes its
    grouping query read."""
    from ttsops.fleet import sqlpatterns
    from ttsops.forensics.reading.filters import parse_by, parse_where

    rep = sqlpatterns.answer(c, url, since, None, by=parse_by(by), where=parse_where(where),
                             buckets={}, event=None, top=0, fields_table=fields_table)
    return rep, c.last_query.progress.bytes


@pytest.mark.parametrize("where", ["single", "cluster"])
def test_patterns_reads_the_fields_table(urls, where):
    """``patterns`` groups the fields' columns (``ttsops_complete``), not every
    ``synthesis_complete`` row's keys/vals: the same report, a fraction of the bytes."""
    url, c = _connect(urls[where])
    try:
        for by, cond, since in (("text_len,error_code", ("status=failed",), None),
                                ("status,day", ("error_code=",), None),
                                ("hour", (), "2024-06-12 06:00"),
                                ("error_code,model_stage", ("status!=success",), None)):
            fast, read_fast = _patterns(c, url, by, cond, since)
            slow, read_slow = _patterns(c, url, by, cond, since, fields_table=False)
            assert fast is not None and slow is not None, (by, cond)
            assert fast.to_json() == slow.to_json(), (by, cond)
            assert 0 < read_fast < read_slow / 2, (by, cond, read_fast, read_slow)
    finally:
        c.disconnect()


def test_the_fields_table_holds_the_fields_of_a_complete_record():
    """The table's columns are the fields ``patterns`` takes from a synthesis's
    complete record (a field added there is answered the general way: ``covers``)."""
    from ttsops.fleet import fieldsql
    from ttsops.forensics.analyses.patterns import COMPLETE_FIELDS

    assert set(fieldsql.FIELDS) == COMPLETE_FIELDS
    assert fieldsql.covers(["error_code", "hour"]) and not fieldsql.covers(["voice"])


def test_a_database_of_the_previous_ttsops_gets_the_fields_table(ch_single, corpora,
                                                                 dir_answers):
    """A database shipped before the fields' table (it has the other tables kept beside
    the logs): ``patterns`` answers from the rows, and the next ship builds the table
    from them, then keeps it filled."""
    d = str(corpora["tut"])
    url = f"clickhouse://127.0.0.1:{ch_single.tcp_port}/previous"
    _ship(d, url)
    _make_older([ch_single], "previous", ("ttsops_complete",))
    ask = ["patterns", "--where", "status=failed", "--by", "text_len,error_code"]
    want = files_answer(dir_answers, [*ask, "--dir", d])
    u, c = _connect(url)
    try:
        assert has_derived(c, u, "ttsops_syn") and not has_derived(c, u, "ttsops_complete")
    finally:
        c.disconnect()
    assert answer([*ask, "--source", url]) == want
    assert _ship(d, url)["rows"] == 0
    u, c = _connect(url)
    try:
        assert has_derived(c, u, "ttsops_complete")
        n = c.execute("SELECT count() FROM previous.ttsops_complete")[0][0]
        assert n == c.execute("SELECT count() FROM previous.ttsops_logs "
                              "WHERE event = 'synthesis_complete'")[0][0] > 0
    finally:
        c.disconnect()
    assert answer([*ask, "--source", url]) == want


def test_an_upgrade_cut_short_makes_the_joined_tables_again(ch_single, corpora):
    """``ttsops_stage_hist`` is filled from the syntheses of ``ttsops_syn``'s view: a
    database whose hist table is missing while an older ``ttsops_syn`` (without its
    host column) is still there gets both made again, and ``stages`` from them is the
    join of all records again."""
    from clickhouse_driver import Client

    from ttsops.fleet import sqlstages

    d = str(corpora["tut"])
    url = f"clickhouse://127.0.0.1:{ch_single.tcp_port}/cutshort"
    _ship(d, url)
    _make_older([ch_single], "cutshort", ("ttsops_stage_hist",))
    raw = Client("127.0.0.1", port=ch_single.tcp_port)
    try:
        raw.execute("ALTER TABLE cutshort.ttsops_syn DROP COLUMN host")
    finally:
        raw.disconnect()
    u, c = _connect(url)
    try:
        assert sqlstages.from_blocks(c, u, None, None, 5) is None
    finally:
        c.disconnect()
    assert _ship(d, url)["rows"] == 0
    u, c = _connect(url)
    try:
        cols = [r[0] for r in c.execute("SELECT name FROM system.columns WHERE database = "
                                        "'cutshort' AND table = 'ttsops_syn'")]
        assert "host" in cols
        fast = sqlstages.from_blocks(c, u, None, None, 5)
        assert fast is not None
        assert fast.to_json() == sqlstages.answer(c, u, None, None, 5).to_json()
    finally:
        c.disconnect()


def _parts(port: int, db: str, table: str) -> int:
    from clickhouse_driver import Client

    raw = Client("127.0.0.1", port=port)
    try:
        return raw.execute("SELECT count() FROM system.parts WHERE database = %(d)s AND "
                           "table = %(t)s AND active", {"d": db, "t": table})[0][0]
    finally:
        raw.disconnect()


def test_a_ship_of_most_rows_leaves_the_lookup_tables_in_one_part(ch_single, corpora,
                                                                   tmp_path):
    """``stages`` looks the spanning ids up in ``ttsops_syn`` and ``ttsops_stage_recs``
    (a granule of each part per id): a ship that brought at least half of the rows
    leaves each in one part; a small ship after it (a live shipper's rotated file) does
    not rewrite them. The answer is the join of all records either way."""
    import gzip

    from ttsops.fleet import sqlstages
    from ttsops.fleet.ship import ship
    from ttsops.fleet.url import parse_url

    url = f"clickhouse://127.0.0.1:{ch_single.tcp_port}/settled"
    u = parse_url(url)
    got = ship(u, [str(corpora["tut"])], host="tut", batch=350, workers=1)
    assert got.rows > 3500  # (350 rows an insert: more than ten inserts)
    for t in ("ttsops_syn", "ttsops_stage_recs"):
        assert _parts(ch_single.tcp_port, "settled", t) == 1, t
    more = tmp_path / "more"
    more.mkdir()
    with gzip.open(more / "app.log.1.gz", "wt") as f:
        for i in range(3):
            f.write(f"2031-01-01 00:00:0{i},000 - tts - INFO - stage_time: id=late_{i}, "
                    f"stage=tts, duration_ms={i + 1}\n"
                    f"2031-01-01 00:00:0{i},500 - tts - INFO - synthesis_complete: "
                    f"id=late_{i}, status=ok, duration_ms={i + 9}\n")
    assert ship(u, [str(more)], host="tut", workers=1).rows == 6
    assert _parts(ch_single.tcp_port, "settled", "ttsops_stage_recs") == 2
    _u, c = _connect(url)
    try:
        fast = sqlstages.from_blocks(c, u, None, None, 5)
        assert fast is not None
        assert fast.to_json() == sqlstages.answer(c, u, None, None, 5).to_json()
    finally:
        c.disconnect()
