from __future__ import annotations

import pytest

from ttsops.forensics.reading.timeargs import (
    TimeArgError,
    duration_s,
    human_duration,
    parse_time,
    window,
)

NOW = 1718200800.0  # 2024-06-12 14:00:00 UTC


@pytest.mark.parametrize(("arg", "want"), [
    ("2024-06-12 14:22", "2024-06-12 14:22:00,000"),
    ("2024-06-12 14:22:38,415", "2024-06-12 14:22:38,415"),
    ("2024-06-12T14:22:38.415Z", "2024-06-12 14:22:38,415"),
    ("2024-06-12T16:22:38+02:00", "2024-06-12 14:22:38,000"),
    ("2024-06-12", "2024-06-12 00:00:00,000"),
    ("2h", "2024-06-12 12:00:00,000"),
    ("-90m", "2024-06-12 12:30:00,000"),
    ("1d12h", "2024-06-11 02:00:00,000"),
    ("now", "2024-06-12 14:00:00,000"),
])
def test_parse_time(arg, want):
    assert parse_time(arg, now=NOW) == want


def test_until_date_includes_the_day_and_window_order():
    assert parse_time("2024-06-12", end=True) == "2024-06-13 00:00:00,000"
    assert window("2024-06-12", "2024-06-12") == ("2024-06-12 00:00:00,000",
                                                  "2024-06-13 00:00:00,000")
    with pytest.raises(TimeArgError, match="not before"):
        window("2024-06-12 15:00", "2024-06-12 14:00")
    for bad in ("", "yesterday", "2024-13-01", "12:00"):
        with pytest.raises(TimeArgError):
            parse_time(bad, now=NOW)


def test_durations():
    assert duration_s("2h30m") == 9000
    assert duration_s("1w") == 604800
    with pytest.raises(TimeArgError):
        duration_s("soon")
    assert human_duration(3725) == "1h02m" and human_duration(0.25) == "250ms"


def test_times_out_of_range_are_a_clear_error_not_a_crash():
    from ttsops.forensics.reading.timeargs import epoch_to_ts, shift

    for bad in ("99999999d", "9999999999w"):
        with pytest.raises(TimeArgError, match="too far back"):
            parse_time(bad, now=NOW)
    with pytest.raises(TimeArgError, match="out of range"):
        epoch_to_ts(1e18)
    assert parse_time("9999-12-31", end=True) == "9999-12-31 23:59:59,999"
    # a huge lookback means "from the beginning"
    assert shift("2024-06-12 00:00:00,000", -1e15) == "0001-01-01 00:00:00,000"
    assert shift("2024-06-12 00:00:00,000", 1e15) == "9999-12-31 23:59:59,999"
