"""Bad arguments and hostile log values at the CLI: a one-line error and exit 2, never a
traceback; log values never reach the terminal as markup or control characters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttsops.forensics.analyses.answer import Report
from ttsops.forensics.reading.sources import Problem

from .forensics_helpers import cli, ttsops


def _line(sec: int, level: str, event: str, fields: str) -> str:
    m, s = divmod(sec, 60)
    return f"2024-06-12 10:{m:02d}:{s:02d},000 - ttsops.x - {level} - {event}: {fields}\n"


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """A few records: two syntheses started, one webui_event with a hostile detail."""
    d = tmp_path / "logs"
    d.mkdir()
    (d / "app.log").write_text(
        _line(0, "INFO", "synthesis_start", "request_id=r1, id=ts_00000001")
        + _line(1, "INFO", "synthesis_complete", "request_id=r1, id=ts_00000001, "
                                                   "status=success")
        + _line(2, "INFO", "synthesis_start", "request_id=r2, id=ts_00000002")
        + _line(3, "WARNING", "webui_event",
                "warning_code=\x1b]0;pwned\x07[/bold], detail=\x1b[31mred\x00")
        + "foreign [/bold] line \x1b]0;pwned\x07\n")
    return d


def _no_traceback(res_err: str) -> None:
    assert "Traceback" not in res_err


@pytest.mark.parametrize("args", [
    ("stages", "--slowest", "-1"),
    ("patterns", "-n", "-1"),
    ("top", "errors", "-n", "-1"),
    ("audio", "-k", "-1"),
    ("audio", "--min-n", "0"),
    ("precursors", "--min-errors", "0"),
    ("precursors", "-n", "-1"),
    ("check", "--tolerance-ms", "-5"),
    ("cache", "--interval", "0s"),
    ("window", "--since", "99999999d"),
    ("window", "--until", "99999999d"),
    ("window", "--ids-out", "/nonexistent/x.txt"),
    ("audio", "--ids-out", "/nonexistent/x.txt"),
    ("report", "-o", "/nonexistent/r.html"),
])
def test_bad_arguments_exit_2_without_a_traceback(small, args):
    res = ttsops("logs", *args, "-d", str(small))
    assert res.returncode == 2, res.stderr
    _no_traceback(res.stderr)
    assert res.stderr.strip().splitlines()[-1].startswith(("Error:", "ttsops logs: error:"))


@pytest.mark.parametrize("args", [
    ("tail", "--poll", "-1", "--for", "1s"),
    ("tail", "--poll", "0", "--for", "1s"),
    ("tail", "-n", "-1", "--for", "1s"),
    ("index", "--block-bytes", "0"),
    ("index", "--block-bytes", "1023"),
    ("index", "--jobs", "-1"),
])
def test_bad_numbers_of_tail_and_index_exit_2(small, args):
    res = ttsops("logs", *args[:1], *(("-d", str(small)) if args[0] == "tail"
                                      else (str(small),)), *args[1:])
    assert res.returncode == 2, res.stderr
    _no_traceback(res.stderr)
    assert "not in the range" in res.stderr


def test_foreign_markup_and_control_characters_are_counted_and_shown_escaped(small):
    res = ttsops("logs", "window", "-d", str(small))
    assert res.returncode == 0, res.stderr
    assert "unparsable lines" in res.stdout and "foreign [/bold] line" in res.stdout
    for raw in ("\x1b", "\x07", "\x00"):
        assert raw not in res.stdout
    assert "\\x1b]0;pwned\\x07" in res.stdout  # shown, escaped
    # --json stays the exact data
    code, out, _ = cli("window", "-d", str(small), "--json")
    assert code == 0 and "\\u001b]0;pwned\\u0007" in out


def test_ids_out_names_the_file_it_wrote(small, tmp_path):
    target = tmp_path / "ids[x].txt"
    code, out, err = cli("window", "-d", str(small), "--ids-out", str(target))
    assert code == 0, err
    assert target.read_text() == "ts_00000001\nts_00000002\n"
    assert f"2 synthesis ids written to {target}" in out


def test_ids_out_dash_writes_the_ids_to_stdout_and_the_report_to_stderr(small, tmp_path):
    res = ttsops("logs", "window", "-d", str(small), "--ids-out", "-", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "ts_00000001\nts_00000002\n"
    assert "syntheses started" in res.stderr and "written to stdout" in res.stderr
    assert not (tmp_path / "-").exists()


def test_empty_logs_say_no_records_not_question_marks(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    (d / "app.log").write_text("")
    code, _out, err = cli("window", "-d", str(d))
    assert code == 1 and "hold no records" in err and "?" not in err
    code, _out, err = cli("report", "-d", str(d), "--since", "2024-06-12", "--until",
                          "2024-06-13", "-o", str(tmp_path / "r.html"))
    assert code == 1 and "hold no records" in err and "? .. ?" not in err
    assert not (tmp_path / "r.html").exists()


def test_report_charts_the_window_asked_cut_to_the_records(small, tmp_path):
    from ttsops.forensics.rendering.report import chart_range

    code, out, err = cli("report", "-d", str(small), "--since", "2024-06-12", "--until",
                         "2024-06-13", "-o", str(tmp_path / "r.html"), "--json")
    assert code == 0, err
    assert json.loads(out)["summary"]["window"] == \
        "2024-06-12 10:00:00,000 .. 2024-06-12 10:00:03,000"
    # --until 2024-06-13 includes that day (the docs); the logs end on the 12th: the
    # charts end at the last record, not two days after the start
    lo, hi, to_end = chart_range("2024-06-12 00:00:00,000", "2024-06-14 00:00:00,000",
                                 "2024-06-11 23:00:00,000", "2024-06-12 23:58:37,088")
    assert (lo, hi, to_end) == ("2024-06-12 00:00:00,000", "2024-06-12 23:58:37,088", True)
    # a window inside the logs is charted as asked
    assert chart_range("2024-06-12 10:00:00,000", "2024-06-12 11:00:00,000",
                       "2024-06-12 00:00:00,000", "2024-06-13 00:00:00,000") == \
        ("2024-06-12 10:00:00,000", "2024-06-12 11:00:00,000", False)
    # no window: the logs' span
    assert chart_range(None, None, "2024-06-12 00:00:00,000", "2024-06-12 01:00:00,000") \
        == ("2024-06-12 00:00:00,000", "2024-06-12 01:00:00,000", True)
    with pytest.raises(ValueError):
        chart_range(None, None, None, None)


def test_the_same_problem_is_reported_once(small, capsys):
    from ttsops.forensics.cli import Env

    env = Env((str(small),), (), None, None, False, False, False)
    p = Problem("x.gz", "truncated")
    rep = Report("report", summary={"a": 1}, problems=[p, Problem("x.gz", "truncated"), p])
    with pytest.raises(SystemExit) as e:
        env.finish(rep)
    assert e.value.code == 3
    err = capsys.readouterr().err
    assert err.count("x.gz: truncated") == 1 and "1 problem(s)" in err
