"""The insert blocks ``fleet.native`` encodes from Polars' buffers, read back by a real
server: every value as it went in (strings of any length and alphabet -- varint lengths
of one to three bytes --, empty and absent values, arrays with empty ones, the constant
and numeric columns), and a table of other columns refused before a row is sent."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttsops.fleet import native

TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", "a", "x" * 127, "y" * 128, "é" * 64, "z" * 16383, "w" * 16384, "中" * 7000])
ROW = st.tuples(TEXT, st.lists(TEXT, max_size=4),
                st.none() | st.floats(allow_nan=False), st.integers(0, 2**64 - 1))


def client(server):
    from clickhouse_driver import Client

    return Client("127.0.0.1", port=server.tcp_port)


@pytest.fixture(scope="module")
def table(ch_single):
    c = client(ch_single)
    c.execute("CREATE DATABASE IF NOT EXISTS nat")
    c.execute("CREATE TABLE IF NOT EXISTS nat.t (d Date, s String, k Array(String), "
              "f Nullable(Float64), u UInt64, h String) ENGINE = Memory")
    yield c
    c.disconnect()


COLS = "INSERT INTO nat.t (d, s, k, f, u, h) VALUES"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ROW, min_size=1, max_size=25), TEXT, st.dates(dt.date(1970, 1, 1),
                                                               dt.date(2148, 12, 31)))
# one byte long on average, not each (a shortcut once took the one for the other)
@example([("", ["", "ab"], None, 0), ("ab", [], 1.5, 1)], "", dt.date(2024, 6, 12))
def test_blocks_read_back_as_written(table, rows, host, day):
    c = table
    c.execute("TRUNCATE TABLE nat.t")
    s, k, f, u = (list(x) for x in zip(*rows, strict=True))
    df = pl.DataFrame({"s": pl.Series(s, dtype=pl.String),
                       "k": pl.Series(k, dtype=pl.List(pl.String)),
                       "f": pl.Series(f, dtype=pl.Float64)})
    n = len(rows)
    native.insert(c, COLS, n, [
        ("d", "Date", native.dates(day, n)), ("s", "String", native.strings(df["s"])),
        ("k", "Array(String)", native.string_arrays(df["k"])),
        ("f", "Nullable(Float64)", native.nullable_floats(df["f"])),
        ("u", "UInt64", native.uint64s(u)), ("h", "String", native.same_string(host, n))])
    got = c.execute("SELECT d, s, k, f, u, h FROM nat.t")
    assert sorted(got, key=repr) == sorted(zip([day] * n, s, k, f, u, [host] * n,
                                               strict=True), key=repr)


def test_another_table_is_refused_before_its_rows(table):
    c = table
    c.execute("TRUNCATE TABLE nat.t")
    cols = [("d", "Date", native.dates(dt.date(2024, 6, 12), 1)),
            ("s", "String", native.same_string("x", 1)),
            ("k", "Array(String)", b"\x00" * 8), ("f", "Nullable(Float64)", b"\x01" + b"\0" * 8),
            ("u", "UInt64", native.uint64s([7])), ("h", "UInt64", native.uint64s([1]))]
    with pytest.raises(native.Mismatch, match="column 6: h String, not h UInt64"):
        native.insert(c, COLS, 1, cols)
    # the connection is usable again, and nothing was inserted
    assert c.execute("SELECT count() FROM nat.t") == [(0,)]
    cols[-1] = ("h", "String", native.same_string("web-1", 1))
    native.insert(c, COLS, 1, cols)
    assert c.execute("SELECT s, k, f, u, h FROM nat.t") == [("x", [], None, 7, "web-1")]
