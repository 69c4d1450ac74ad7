"""The ``clickhouse://`` URL: its parts, and a clear error for anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttsops.fleet.url import ChUrl, UrlError, parse_url


def test_parts():
    assert parse_url("clickhouse://h/db") == ChUrl("h", 9000, "db")
    assert parse_url("clickhouse://u:p%40ss@h:9001/db?cluster=c1") == ChUrl(
        "h", 9001, "db", "u", "p@ss", "c1")
    assert "p@ss" not in str(parse_url("clickhouse://u:p%40ss@h:9001/db"))


@pytest.mark.parametrize("url", ["", "clickhouse://", "clickhouse://h", "clickhouse://h/",
                                 "http://h/db", "clickhouse://h:99999/db",
                                 "clickhouse://h/d-b", "clickhouse://h/db?x=1",
                                 "clickhouse://h/db?cluster=a;b", "clickhouse://h/db#f"])
def test_refused(url):
    with pytest.raises(UrlError):
        parse_url(url)


@given(st.text(max_size=60))
def test_any_text_is_parsed_or_refused_clearly(text):
    try:
        u = parse_url(text)
    except UrlError as e:
        assert str(e)
    else:
        assert u.host and u.database and 0 < u.port < 65536
