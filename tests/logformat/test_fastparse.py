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
