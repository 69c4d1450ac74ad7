"""``synjoin`` joins the records of some id hashes into syntheses in Python exactly as
``synsql``'s SQL joins them in ClickHouse (``stages --source`` joins the ids whose
records span inserts there): on generated records -- ids written in any order across
files, stage times cumulative or not, a stage twice, missing values, ``elapsed_ms``,
queue waits, syntheses that never complete -- the same syntheses, the same pairs to the
bit, the same worst component."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttsops.fleet.synjoin import Rec, syntheses
from ttsops.fleet.synsql import RECS_COLUMNS, syntheses_sql

_DB = "synjoin"
_COUNTER = itertools.count()

_value = st.one_of(st.none(), st.integers(0, 60).map(float),
                   st.sampled_from([0.5, 2.25, 1e-3, 7.0, 7.0, 30.0]))
_record = st.tuples(
    st.sampled_from(["ts_a", "ts_b", "ts_c"]),
    st.sampled_from(["stage_time"] * 4 + ["synthesis_complete"] * 2),
    st.sampled_from(["tts", "llm", "vocoder", "", "tts"]),
    _value, st.one_of(st.none(), st.just(3.0)), _value,
    # (the files' names sort against their times: reading order is by time first)
    st.sampled_from([("2024-06-12 10:00:00,000", "f2"), ("2024-06-12 10:00:00,000", "f1"),
                     ("2024-06-12 11:00:00,000", "f0")]))


@pytest.fixture(scope="module")
def client(ch_single):
    from clickhouse_driver import Client

    c = Client("127.0.0.1", port=ch_single.tcp_port)
    c.execute(f"CREATE DATABASE IF NOT EXISTS {_DB}")
    yield c
    c.execute(f"DROP DATABASE IF EXISTS {_DB}")
    c.disconnect()


def _in_sql(c, table: str) -> list[tuple]:
    sql = syntheses_sql(f"{_DB}.{table}", "1", "1", "auto", "1")
    return sorted((tuple(tuple(p) for p in pairs), sid, worst) for pairs, sid, worst in
                  c.execute(f"SELECT pairs, sid, worst FROM ({sql})"))


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_record, min_size=1, max_size=24))
def test_the_python_join_is_the_sql_join(client, records):
    table = f"recs_{next(_COUNTER)}"
    client.execute(f"CREATE TABLE {_DB}.{table} ({RECS_COLUMNS}) ENGINE = Memory")
    try:
        rows = [{"hid": 0, "id": i, "file_ts": fts, "file": f, "seq": seq, "event": ev,
                 "stage": stage, "duration_ms": dur, "elapsed_ms": el, "queue_ms": q,
                 "ts": fts}
                for seq, (i, ev, stage, dur, el, q, (fts, f)) in enumerate(records)]
        client.execute(f"INSERT INTO {_DB}.{table} VALUES", rows)
        got = client.execute(
            f"SELECT cityHash64(id), id, file_ts, file, seq, event, stage, duration_ms, "
            f"elapsed_ms, queue_ms FROM {_DB}.{table}")
        ours = sorted((tuple(s.pairs), s.sid, s.worst) for s in syntheses(Rec(*r) for r in got))
        assert ours == _in_sql(client, table)
    finally:
        client.execute(f"DROP TABLE IF EXISTS {_DB}.{table}")


def test_a_synthesis_that_spans_files_is_joined_in_reading_order():
    """The records of one id in two files (the older file's time first): one synthesis,
    its cumulative stage times read as differences in that order."""
    recs = [Rec(1, "ts_a", "2024-06-12 11:00:00,000", "f2", 0, "synthesis_complete", "",
                900.0, None, 4.0),
            Rec(1, "ts_a", "2024-06-12 11:00:00,000", "f2", 1, "stage_time", "tts", 50.0,
                None, None),
            Rec(1, "ts_a", "2024-06-12 10:00:00,000", "f9", 7, "stage_time", "llm", 30.0,
                None, None),
            Rec(1, "ts_a", "2024-06-12 10:00:00,000", "f9", 6, "stage_time", "text", 10.0,
                None, None)]
    got = list(syntheses(recs))
    assert len(got) == 1  # (the stage time after the complete waits for the next)
    assert got[0].pairs == [("text", 10.0), ("llm", 20.0), ("queue_wait", 4.0),
                            ("end_to_end", 900.0), ("", 1.0)]
    assert got[0].worst == "llm"
