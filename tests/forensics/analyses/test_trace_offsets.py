"""The trace table's "+ms" column is worked out from the record times' digits where they
have the canonical form, as ``datetime`` works it out (and by ``datetime`` otherwise, an
impossible date refused alike)."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.forensics.analyses.trace import offset_ms
from ttsops.forensics.reading.timeargs import from_ts


def _plain(t0: str, ts: str) -> int | str:
    try:
        return round((from_ts(ts) - from_ts(t0)).total_seconds() * 1000)
    except ValueError:
        return "refused"


def _ours(t0: str, ts: str) -> int | str:
    try:
        return offset_ms(t0, ts)
    except ValueError:
        return "refused"


def _text(d: datetime) -> str:
    return d.strftime("%Y-%m-%d %H:%M:%S,") + f"{d.microsecond // 1000:03d}"


times = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))
digits = st.tuples(*(st.integers(0, hi) for hi in (9999, 13, 32, 24, 60, 60, 999))).map(
    lambda t: "{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d},{:03d}".format(*t))
other = st.sampled_from(["2024-06-11T09:40:00.425", "2024-06-11 09:40:00.425",
                         "2024-06-11 09:40:00,425123", "2024-06-11 09:40:00,42٣"])


@settings(max_examples=500, deadline=None)
@given(st.one_of(times.map(_text), digits, other), st.one_of(times.map(_text), digits, other))
def test_the_offset_is_what_datetime_says(t0, ts):
    assert _ours(t0, ts) == _plain(t0, ts)


def test_offsets_across_a_leap_day_and_years():
    assert offset_ms("2024-02-28 23:59:59,999", "2024-03-01 00:00:00,000") == 86_400_001
    assert offset_ms("2023-12-31 23:59:59,500", "2024-01-01 00:00:00,000") == 500
    assert offset_ms("2024-06-11 09:40:00,425", "2024-06-11 09:39:59,425") == -1000
