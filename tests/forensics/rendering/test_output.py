"""The report renderer's markup escape equals rich's, so that --json need not import rich."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.markup import escape as rich_escape

from ttsops.forensics.analyses.answer import escape

MARKUPISH = st.text(alphabet=st.sampled_from(list("[]\\/#@ab ")), max_size=30)


@settings(max_examples=400)
@given(st.one_of(MARKUPISH, st.text(max_size=60)))
def test_escape_is_riches(text):
    assert escape(text) == rich_escape(text)


def test_escape_examples():
    assert escape("[bold]x[/]") == "\\[bold]x\\[/]"
    assert escape("a\\") == "a\\\\"
    assert escape("plain [1] text") == "plain [1] text"


def test_tables_summaries_and_text_show_log_values_escaped():
    from ttsops.forensics.analyses.answer import Report, Table
    from ttsops.forensics.rendering.output import to_text

    hostile = "\x1b]0;pwned\x07[/bold]\x00\nforged line"
    rep = Report("x", summary={"value": hostile},
                 tables=[Table("t", "t", ["col"], [[hostile]])],
                 text=[f"[bold]{hostile}", "ok \x1b[31mred"])
    out = to_text(rep)
    for raw in ("\x1b", "\x07", "\x00", "\nforged"):
        assert raw not in out
    assert out.count("\\x1b]0;pwned\\x07") == 3
    assert "[/bold]" in out  # shown literally, not applied (and no MarkupError)
    # --json and --csv stay the exact data
    import csv
    import io
    import json

    assert list(csv.reader(io.StringIO(to_text(rep, "csv")))) == [["col"], [hostile]]

    assert json.loads(to_text(rep, "json"))["summary"]["value"] == hostile


def test_write_lines_to_a_file_stdout_or_a_clear_error(tmp_path, capsys):
    import pytest

    from ttsops.forensics.analyses.answer import OutputError, write_lines

    assert write_lines(str(tmp_path / "a[b].txt"), ["x", "y"]) == str(tmp_path / "a[b].txt")
    assert (tmp_path / "a[b].txt").read_text() == "x\ny\n"
    assert write_lines("-", ["x"]) == "stdout"
    assert capsys.readouterr().out == "x\n"
    with pytest.raises(OutputError, match="cannot write /nonexistent/x"):
        write_lines("/nonexistent/x", ["x"])
