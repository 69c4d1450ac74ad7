"""The fast path parses exactly like logline.parse (it only skips work)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.logformat.fastparse import iter_records, parse_line
from ttsops.logline import Record, parse, render
from ttsops.logline import iter_records as slow_iter

keys = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
values = st.one_of(st.from_regex(r"[a-z0-9_.:/%-]{1,8}", fullmatch=True),
                   st.text(max_size=8))
records = st.builds(
    Record, st.just("2024-06-12 14:22:38,415"),
    st.sampled_from(["app.tts_engine", "ttsops.pipeline", "x-y"]),
    st.sampled_from(["INFO", "WARNING", "ERROR"]),
    st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
    st.dictionaries(keys, values, max_size=6),
    st.lists(st.text(max_size=10), max_size=2))


@settings(max_examples=150, deadline=None)
@given(records)
def test_fast_parse_equals_the_grammar_on_rendered_records(rec):
    head = render(rec).split("\n")[0]
    assert parse_line(head) == parse(head)
    lines = render(rec).split("\n")
    assert list(iter_records(lines)) == list(slow_iter(lines))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80), st.sampled_from(["", "2024-06-12 14:22:38,415 - a - INFO - ",
                                              "2024-06-12 14:22:38,415 - a - INFO - ev: "]))
def test_fast_parse_equals_the_grammar_on_any_line(tail, prefix):
    line = prefix + tail
    assert parse_line(line) == parse(line)


# lines in the shape the one-match path takes whole (head, event, bare key=value fields),
# and near misses of it: a key twice, a level alias or lower case, a logger or a value
# with an odd character, " - " or ": " inside the message, other digits in the time
bare_values = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=6)
strict_lines = st.builds(
    lambda ts, logger, level, event, pairs, sep: ts + " - " + logger + " - " + level
    + " - " + event + ": " + sep.join(f"{k}={v}" for k, v in pairs),
    st.sampled_from(["2024-06-12 14:22:38,415", "٢٠٢٤-06-12 14:22:38,415",
                     "2024-06-12T14:22:38,415"]),
    st.one_of(st.sampled_from(["app.tts_engine", "x-y", "a - b", "tts"]),
              st.text(min_size=0, max_size=5)),
    st.sampled_from(["INFO", "WARNING", "ERROR", "DEBUG", "CRITICAL", "WARN", "info"]),
    st.one_of(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True),
              st.sampled_from(["Ev", "a b", "a: b", "x-y"])),
    st.lists(st.tuples(st.sampled_from(["id", "stage", "duration_ms", "a_1", "Bad"]),
                       st.one_of(st.from_regex(r"[a-z0-9_.:/%-]{1,8}", fullmatch=True),
                                 bare_values)),
             min_size=1, max_size=5),
    st.sampled_from([", ", ",", " , "]))


@settings(max_examples=400, deadline=None)
@given(strict_lines)
def test_fast_parse_equals_the_grammar_on_lines_shaped_like_the_commonest(line):
    assert parse_line(line) == parse(line)


def test_a_key_twice_and_a_message_with_dashes_parse_as_the_grammar_does():
    for line in ["2024-06-12 14:22:38,415 - app - INFO - ev: a=1, b=2, a=3",
                 "2024-06-12 14:22:38,415 - app - INFO - ev: a=1 - b=2",
                 "2024-06-12 14:22:38,415 - a-b - ERROR - ev: id=ts_1, code=X",
                 "2024-06-12 14:22:38,415 - app - INFO - INFO - ev: id=ts_1"]:
        assert parse_line(line) == parse(line), line
    rec = parse_line("2024-06-12 14:22:38,415 - app - INFO - ev: a=1, b=2:3, c=x/y")
    assert rec is not None and rec.fields == {"a": "1", "b": "2:3", "c": "x/y"}
