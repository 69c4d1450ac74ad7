"""Property tests of the one grammar (``ttsops.logformat``): the writer's format reads
back exactly; every dialect form reads to the fields it stands for."""

from __future__ import annotations

import json
from datetime import datetime
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.logformat import RESERVED, Record, parse, render, render_fields
from ttsops.logformat import record as R
from ttsops.logformat.dialects import (
    is_cumulative,
    json_level,
    level_needles,
    per_stage,
)
from ttsops.logformat.timestamps import TsFormatter, norm_ts

keys = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True).filter(lambda k: k not in RESERVED)
events_ = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)
loggers = st.from_regex(r"[A-Za-z0-9_.]{1,20}", fullmatch=True)
levels = st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
timestamps = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1)).map(
    lambda d: f"{d.year:04d}-" + d.strftime("%m-%d %H:%M:%S,") + f"{d.microsecond // 1000:03d}")
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)
# a bare token (a code, a number, a word): what a lenient value keeps
token = st.from_regex(r"[A-Za-z0-9_.:/+-]{1,16}", fullmatch=True)
# free text as people write it after a code: words, no "key=" and no ", word=" in it
free = st.lists(st.from_regex(r"[A-Za-z][A-Za-z0-9.()']{0,9}", fullmatch=True), min_size=1,
                max_size=6).map(" ".join)
plain = st.dictionaries(keys, token, min_size=1, max_size=5)


@settings(max_examples=300)
@given(st.builds(Record, timestamps, loggers, levels, events_,
                 st.dictionaries(keys, any_text, max_size=6)))
def test_the_writers_line_reads_back_exactly(rec):
    got = parse(render(rec))
    assert got == rec and got.dialect == 0


@settings(max_examples=200)
@given(timestamps, loggers, levels, events_, plain, st.sampled_from(["error_code",
                                                                       "warning_code", "x"]),
       token, free)
def test_a_value_followed_by_free_text_keeps_the_bare_token(ts, lg, lvl, ev, fields, key, code,
                                                            text):
    fields.pop(key, None)
    fields.pop("msg", None)
    line = f"{ts} - {lg} - {lvl} - {ev}: {render_fields(fields)}, {key}={code}, {text}"
    rec = parse(line)
    assert rec.event == ev and rec.level == lvl
    assert rec.fields == {**fields, key: code, "msg": text}
    assert rec.dialect & R.FREE_TEXT


@settings(max_examples=200)
@given(st.integers(0, 10**9), st.sampled_from(["", "."]), st.integers(0, 99),
       st.sampled_from([" chars", " char", "ms", "MB", "%", " KB", "s"]))
def test_a_number_with_a_unit_reads_as_the_number(n, dot, frac, unit):
    text = f"{n}{dot}{frac if dot else ''}{unit}"
    rec = parse(f"2024-06-12 14:22:38,415 - app - INFO - e: text_len={text}, id=ts_1")
    assert rec.fields["text_len"] == text
    assert rec.num("text_len") == float(f"{n}{dot}{frac if dot else ''}")


@given(st.sampled_from(["WARN", "FATAL", "WARNING", "CRITICAL", "ERROR"]), events_, plain)
def test_level_aliases(word, ev, fields):
    rec = parse(f"2024-06-12 14:22:38,415 - app - {word} - {ev}: {render_fields(fields)}")
    assert rec.level == {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(word, word)
    assert bool(rec.dialect & R.LEVEL_ALIAS) == (word in ("WARN", "FATAL"))
    assert rec.fields == fields
    head = f" - {word} - "
    assert any(n == head for n in level_needles(rec.level))  # the scan selects it


@settings(max_examples=200)
@given(free, st.one_of(st.none(), st.integers(0, 2**32 - 1)), st.booleans(), levels)
def test_unstructured_lines_are_records_with_their_id(text, n, as_field, lvl):
    sid = None if n is None else f"ts_{n:08x}"
    msg = f"ERROR: {text}" + ("" if sid is None else f" id={sid}" if as_field
                              else f" for {sid} now")
    rec = parse(f"2024-06-12 14:22:38,415 - app - {lvl} - {msg}")
    assert rec.event == "unstructured" and rec.level == lvl
    assert rec.fields["msg"] == msg
    assert rec.fields.get("id") == sid


@given(plain)
def test_key_value_only_lines_are_metric_records(fields):
    rec = parse(f"2024-06-12 14:22:38,415 - root - INFO - {render_fields(fields)}")
    assert rec.event == "metric" and rec.fields == fields


@settings(max_examples=200)
@given(timestamps, loggers, levels, events_, plain, st.sampled_from(["stdlib", "structlog"]),
       st.sampled_from(["message", "keys"]))
def test_json_conventions_read_as_the_text_line(ts, lg, lvl, ev, fields, conv, where):
    """stdlib (asctime, name, levelname, message) and structlog (timestamp, level, event)
    lines give the record of the text line, the fields in the message or as keys."""
    text = parse(f"{ts} - {lg} - {lvl} - {ev}: {render_fields(fields)}")
    msg = f"{ev}: {render_fields(fields)}" if where == "message" else ev
    extra = fields if where == "keys" else {}
    if conv == "stdlib":
        obj = {"asctime": ts, "name": lg, "levelname": lvl, "message": msg, **extra}
    else:
        iso = ts[:10] + "T" + ts[11:19] + "." + ts[20:] + "123Z"
        obj = {"event": msg, "level": lvl.lower(), "logger": lg, "timestamp": iso, **extra}
    if "level" in fields or "levelname" in fields or "asctime" in fields or \
            "message" in fields or "timestamp" in fields or "name" in fields:
        return  # a field spelled like a convention's key is that key
    rec = parse(json.dumps(obj, ensure_ascii=False))
    assert (rec.ts, rec.logger, rec.level, rec.event, rec.fields) == \
        (text.ts, text.logger, text.level, text.event, text.fields)
    assert rec.dialect & (R.JSON_STDLIB if conv == "stdlib" else R.JSON_STRUCTLOG)


@settings(max_examples=300)
@given(st.lists(st.integers(0, 5000), min_size=1, max_size=6), st.integers(0, 3000))
def test_cumulative_stage_times_convert_back_to_the_durations(durations, after):
    cum = []
    t = 0
    for d in durations:
        t += d
        cum.append(float(t))
    e2e = float(t + after)
    assert per_stage(cum) == [float(d) for d in durations]
    if len(durations) >= 2:
        assert is_cumulative(cum, e2e, False)
        assert is_cumulative(cum, None, False)
    assert not is_cumulative(cum, e2e, True)  # elapsed_ms: ttsops' own per-stage times
    assert is_cumulative(cum, e2e, True, "cumulative")
    assert not is_cumulative(cum, e2e, False, "per-stage")


@given(st.lists(st.integers(0, 5000), min_size=2, max_size=6))
def test_per_stage_times_that_decrease_or_outrun_the_end_stay_per_stage(durations):
    vals = [float(d) for d in durations]
    if any(b < a for a, b in pairwise(vals)):
        assert not is_cumulative(vals, sum(vals) + 5, False)
    assert not is_cumulative(vals, vals[-1] / 2 - 10, False)  # beyond the end: not elapsed


@given(st.floats(0, 4e9, allow_nan=False))
def test_timestamps_formatted_and_normalised(t):
    fmt = TsFormatter(utc=True)(t)
    assert norm_ts(fmt) == fmt
    iso = fmt[:10] + "T" + fmt[11:19] + "." + fmt[20:] + "999Z"
    assert norm_ts(iso) == fmt
    assert norm_ts(int(t)) == fmt[:20] + "000"
    assert norm_ts(fmt[:10] + "T" + fmt[11:19] + "+08:00") == fmt[:20] + "000"  # as written


def test_json_levels():
    assert json_level("warn") == "WARNING" and json_level("fatal") == "CRITICAL"
    assert json_level(40) == "ERROR" and json_level("notice") == "NOTICE"
    assert json_level("") is None and json_level(None) is None


def test_a_chained_foreign_traceback_stays_with_its_record():
    from ttsops.logformat import ReadStats, iter_records

    lines = ["2024-06-12 03:00:00,001 - root - CRITICAL - model_load_failed: path=/app/x",
             "Traceback (most recent call last):", '  File "a.py", line 1, in f',
             "KeyError: 'w'", "", "The above exception was the direct cause of the "
             "following exception:", "", "Traceback (most recent call last):",
             '  File "b.py", line 2, in g', "RuntimeError: load failed"]
    rs = ReadStats()
    (rec,) = list(iter_records(lines, rs))
    assert rs.skipped == 0 and rec.traceback[-1] == "RuntimeError: load failed"
    assert rec.traceback[3].startswith("The above exception")
