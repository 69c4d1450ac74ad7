"""The lean cache-hit path keeps the contract: the writer's one-pass text renderer writes
exactly what the grammar's renderer writes (and the parser reads it back), and a cache
hit through the whole app (edge outside FastAPI's stack) still writes its five records,
counts its metrics and answers an unhandled failure in the OpenAI shape."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.events import format_fields
from ttsops.logformat import Record, parse, render
from ttsops.logsink import render_text

KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda k: k not in {"ts", "logger", "level", "event", "traceback"})
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(), st.text(alphabet=st.characters(codec="ascii")),
    st.sampled_from(["req_0a1b", "ts_ff00", "/v1/audio/speech", "a,b", "x=y", 'q"', "a\\b",
                     "", " ", "今天 天气", "\u2028", "\x85", "e\u0301"]))


class Num(float):
    """A float subclass (numpy's float64 is one): formatted as the grammar says."""


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=12),
       st.lists(st.text(max_size=40), max_size=3))
def test_one_pass_renderer_writes_what_the_grammar_writes(fields: dict[str, Any],
                                                          tb: list[str]) -> None:
    ts = "2026-12-06 02:16:59,082"
    fast = render_text(ts, "ttsops.pipeline", "INFO", "synthesis_start", dict(fields), tb)
    slow = render(Record(ts, "ttsops.pipeline", "INFO", "synthesis_start",
                         format_fields(dict(fields)), tb), "text")
    assert fast == slow
    if not tb:
        rec = parse(fast)
        assert rec is not None and rec.fields == format_fields(dict(fields))


def test_subclassed_and_odd_values_are_formatted_as_the_grammar_says() -> None:
    fields = {"a": Num(0.1234567), "b": True, "c": 10**30, "d": math.inf, "e": [1, "x y"],
              "f": None, "g": -0.0}
    assert render_text("t", "l", "INFO", "e", dict(fields), []) == render(
        Record("t", "l", "INFO", "e", format_fields(dict(fields)), []), "text")
