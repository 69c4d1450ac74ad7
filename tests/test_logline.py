from __future__ import annotations

import itertools
import json
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.logline import (
    RESERVED,
    ReadStats,
    Record,
    iter_records,
    parse,
    quote,
    render,
    render_json,
    to_number,
)

# any code point, lone surrogates included
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
keys = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True).filter(lambda k: k not in RESERVED)
events_ = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)
loggers = st.from_regex(r"[A-Za-z0-9_.]{1,20}", fullmatch=True)
levels = st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
timestamps = st.datetimes(min_value=datetime(1970, 1, 1)).map(
    lambda d: d.strftime("%Y-%m-%d %H:%M:%S,") + f"{d.microsecond // 1000:03d}")

records = st.builds(
    Record, timestamps, loggers, levels, events_,
    st.dictionaries(keys, any_text, max_size=6),
    st.lists(any_text, max_size=3),
)

BREAKERS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def physical_lines(text: str) -> list[str]:
    """Every way a tool could split lines: Python's splitlines is the strictest."""
    return text.splitlines()


@settings(max_examples=300)
@given(records)
def test_text_round_trip_and_one_line_per_record(rec):
    text = render(rec)
    lines = physical_lines(text)
    assert len(lines) == 1 + len(rec.traceback)
    assert text.encode("utf-8")  # always encodable: no lone surrogate reaches the file
    assert all(line.startswith("\t") for line in lines[1:])
    got = list(iter_records(lines))
    assert got == [rec]
    head = parse(lines[0])
    assert head == Record(rec.ts, rec.logger, rec.level, rec.event, rec.fields)


def _no_surrogate_pairs(rec: Record) -> bool:
    # JSON cannot tell a lone high+low surrogate pair from an escaped astral character
    def ok(s: str) -> bool:
        return not any(0xD800 <= ord(a) <= 0xDBFF and 0xDC00 <= ord(b) <= 0xDFFF
                       for a, b in itertools.pairwise(s))
    return all(ok(v) for v in rec.fields.values()) and all(ok(t) for t in rec.traceback)


@settings(max_examples=200)
@given(records.filter(_no_surrogate_pairs))
def test_json_round_trip_is_one_line(rec):
    text = render_json(rec)
    assert len(physical_lines(text)) == 1
    text.encode("utf-8")
    assert parse(text) == rec


@settings(max_examples=300)
@given(st.dictionaries(keys, any_text, min_size=1, max_size=4), timestamps)
def test_crafted_values_cannot_forge_a_record_or_a_field(fields, ts):
    """Values made of record fragments never create a second record, a new key, or a
    field boundary that awk -F', ' or the seed's sed could see."""
    forged = {k: v + f"\n{ts} - evil - ERROR - synthesis_failed: id=ts_evil, k=v, x=\"y"
              for k, v in fields.items()}
    rec = Record(ts, "app", "INFO", "synthesis_start", forged)
    line = render(rec)
    assert len(line.splitlines()) == 1
    assert parse(line).fields == forged
    # naive tools: the only ", " and "key=" occurrences are the real ones
    body = line.split(": ", 1)[1]
    assert body.count(", ") == len(forged) - 1
    assert [p.split("=", 1)[0] for p in body.split(", ")] == list(forged)


def test_bare_and_quoted_values():
    assert quote("ts_7f3a2b1c") == "ts_7f3a2b1c"
    assert quote("今天天气真好") == "今天天气真好"
    assert quote("") == '""'
    assert quote("a b") == '"a b"'
    assert quote('say "hi", a=b\\') == '"say \\"hi\\"\\u002c a\\u003db\\\\"'
    for ch in BREAKERS + "\x00\u200b\u202e\ud800\ue000\uffff\U0010ffff":
        assert "\n" not in quote("x" + ch) and ch not in quote("x" + ch)
        assert parse(f"2024-06-12 14:22:38,415 - a - INFO - e: v={quote('x' + ch)}"
                     ).fields == {"v": "x" + ch}


def test_seed_example_line_parses_exactly():
    line = ("2024-06-12 14:22:38,415 - app.tts_engine - INFO - synthesis_complete: "
            "id=ts_7f3a2b1c, status=success, duration_ms=523, audio_size_kb=124, "
            "cache_saved=true, model_stage=llm_postproc")
    rec = parse(line)
    assert rec.ts == "2024-06-12 14:22:38,415" and rec.logger == "app.tts_engine"
    assert rec.event == "synthesis_complete"
    assert rec.fields == {"id": "ts_7f3a2b1c", "status": "success", "duration_ms": "523",
                          "audio_size_kb": "124", "cache_saved": "true",
                          "model_stage": "llm_postproc"}
    assert render(rec) == line


def test_lenient_foreign_values_with_spaces():
    rec = parse("2024-06-12 14:22:37,892 - app.tts_engine - INFO - synthesis_complete: "
                "id=ts_a1b2c3d4, text_len=86 chars, error_code=TEXT_EMPTY, note=two words")
    assert rec.fields == {"id": "ts_a1b2c3d4", "text_len": "86 chars",
                          "error_code": "TEXT_EMPTY", "note": "two words"}
    assert rec.num("text_len") == 86.0


def test_free_text_messages_are_records_with_msg():
    rec = parse("2024-06-12 03:00:01,000 - app - ERROR - ERROR: failed to load model")
    assert rec.level == "ERROR" and rec.event == "unstructured"
    assert rec.fields["msg"] == "ERROR: failed to load model"
    rec = parse("2024-06-12 14:22:38,105 - app - ERROR - scipy.fft failed on input len=1024, "
                "exc=RuntimeWarning: invalid value")
    assert rec.level == "ERROR"
    assert rec.fields["exc"].startswith("RuntimeWarning")


def test_non_records_are_none():
    for line in ["", "hello", "ERROR: failed to load model", "2024-06-12 nope",
                 "{not json", "[1,2]", '{"no": "ts"}', "\x00\xff garbage"]:
        assert parse(line) is None


def test_iter_records_attaches_tracebacks_and_counts_junk():
    lines = [
        "junk before any record",
        "2024-06-12 14:22:38,105 - app - ERROR - synthesis_failed: id=ts_1, error_code=X",
        "\tTraceback (most recent call last):",
        '\t  File "a.py", line 3, in f',
        "\tValueError: bad\\nvalue",
        "random junk line",
        "2024-06-12 14:22:38,106 - app - ERROR - plain python logging",
        "Traceback (most recent call last):",
        '  File "b.py", line 9, in g',
        "KeyError: 'x'",
        "",
        '{"ts": "2024-06-12 14:22:39,000", "level": "info", "event": "x", "n": 3}',
    ]
    stats = ReadStats()
    recs = list(iter_records(lines, stats))
    assert [r.event for r in recs] == ["synthesis_failed", "unstructured", "x"]
    assert recs[0].traceback == ["Traceback (most recent call last):",
                                 '  File "a.py", line 3, in f', "ValueError: bad\nvalue"]
    assert recs[1].traceback[-1] == "KeyError: 'x'"
    assert recs[2].level == "INFO" and recs[2].fields == {"n": "3"}
    assert stats.records == 3 and stats.skipped == 2
    assert stats.skipped_examples[0] == "junk before any record"


@settings(max_examples=300)
@given(st.lists(st.text(st.characters(codec=None, exclude_categories=()), max_size=80),
                max_size=20))
def test_reader_never_crashes_on_arbitrary_lines(lines):
    stats = ReadStats()
    recs = list(iter_records(lines, stats))
    assert stats.records == len(recs)
    assert stats.records + stats.skipped + stats.continuation <= stats.lines


def test_json_values_that_are_not_strings_become_text():
    rec = parse(json.dumps({"ts": "2024-06-12 14:22:39,000", "level": "ERROR", "event": "e",
                            "n": 3, "ok": True, "list": [1]}))
    assert rec.fields == {"n": "3", "ok": "true", "list": "[1]"}


def test_to_number():
    assert to_number("523") == 523.0
    assert to_number("86 chars") == 86.0
    assert to_number("92.7%") == 92.7
    assert to_number("-1e3") == -1000.0
    assert to_number("abc") is None and to_number(None) is None
