"""The report renderer's markup escape equals rich's, so that --json need not import rich."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.markup import escape as rich_escape

from ttsops.forensics.output import escape

MARKUPISH = st.text(alphabet=st.sampled_from(list("[]\\/#@ab ")), max_size=30)


@settings(max_examples=400)
@given(st.one_of(MARKUPISH, st.text(max_size=60)))
def test_escape_is_riches(text):
    assert escape(text) == rich_escape(text)


def test_escape_examples():
    assert escape("[bold]x[/]") == "\\[bold]x\\[/]"
    assert escape("a\\") == "a\\\\"
    assert escape("plain [1] text") == "plain [1] text"
