"""``--tz``: a time with a zone is converted to the log's zone, one without is read in
it; any other zone text is a TimeArgError (one line, exit 2), never a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ttsops.forensics.reading.timeargs import TimeArgError, parse_time, parse_tz, to_ts

from ..forensics_helpers import cli

offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59)
moments = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2100, 1, 1))


def _fmt(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


@given(log_off=offsets, arg_off=offsets, moment=moments)
def test_a_zoned_time_lands_in_the_logs_zone(log_off, arg_off, moment):
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    tz = parse_tz(_fmt(log_off))
    assert tz.utcoffset(None) == timedelta(minutes=log_off)
    text = moment.isoformat(timespec="milliseconds") + _fmt(arg_off)
    want = (moment.replace(tzinfo=timezone(timedelta(minutes=arg_off)))
            .astimezone(timezone(timedelta(minutes=log_off))).replace(tzinfo=None))
    assert parse_time(text, tz=tz) == to_ts(want)
    # without a zone the time is the log's own text
    naive = moment.strftime("%Y-%m-%d %H:%M:%S")
    assert parse_time(naive, tz=tz) == naive + ",000"


@given(log_off=offsets, now=st.floats(min_value=1e9, max_value=4e9))
def test_relative_times_count_back_from_now_in_the_logs_zone(log_off, now):
    tz = parse_tz(_fmt(log_off))
    want = datetime.fromtimestamp(now - 7200, UTC).replace(tzinfo=None) + \
        timedelta(minutes=log_off)
    assert parse_time("2h", now=now, tz=tz) == to_ts(want)


@given(st.text(max_size=30))
def test_any_zone_text_is_a_zone_or_a_clear_error(text):
    try:
        tz = parse_tz(text)
    except TimeArgError as e:
        assert "--tz" in str(e) and "\n" not in str(e)
    else:
        assert tz.utcoffset(datetime(2024, 6, 12)) is not None


def test_named_zones_and_cli_errors():
    assert parse_time("2024-06-12T06:00Z", tz=parse_tz("Asia/Shanghai")) == \
        "2024-06-12 14:00:00,000"
    assert parse_time("2024-01-12T12:00Z", tz=parse_tz("Europe/Berlin")) == \
        "2024-01-12 13:00:00,000"
    assert parse_time("2024-07-12T12:00Z", tz=parse_tz("Europe/Berlin")) == \
        "2024-07-12 14:00:00,000"
    for bad in ("+24:00", "Mars/Olympus", "8 hours", "+08:61"):
        code, _out, err = cli("window", "--dir", "/nonexistent", "--tz", bad)
        assert code == 2 and err.count("\n") == 1 and "--tz" in err, (bad, err)
