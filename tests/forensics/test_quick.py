"""The click-free reading of the hot query commands (``forensics.quick``) agrees with
click: the same options declared, the same values on any command line it takes, and
every other command line left to click."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import click
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.forensics import quick
from ttsops.forensics.cli import logs

TOKENS = ["--since", "-s", "--until", "-u", "--tz", "--json", "--csv", "--no-index",
          "--progress", "--no-progress", "--dir", "-d", "--files", "-f", "--lines",
          "--stage-time", "--where", "-w", "--by", "-b", "--bucket", "--event", "-e", "-n",
          "--ids-out", "--slowest", "--help", "-h", "--", "-", "--since=2h", "--json=1",
          "-s2h", "-jx",
          "--sinc", "auto", "cumulative", "per-stage", "bogus", "5", "-3", "+2", "0",
          "2024-06-12 14:00", "status=failed", "ts_1", "", "x.gz", "/"]


def click_params(command: str, args: list[str]) -> dict | None:
    cmd = logs.commands[command]
    try:
        ctx = cmd.make_context(command, list(args), resilient_parsing=False)
    except (click.exceptions.Exit, click.UsageError, click.BadParameter):
        return None
    params = dict(ctx.params)
    if params.get("source") is None:  # no --source: the files' path, without it
        params.pop("source", None)
    return params


def test_the_same_options_are_declared():
    for name, (own, _defaults, argname) in quick.COMMANDS.items():
        cmd = logs.commands[name]
        declared = {}
        for p in cmd.params:
            if isinstance(p, click.Option):
                for o in (*p.opts, *p.secondary_opts):
                    declared[o] = p.name
        ours = {o: d for o, (d, _k) in {**quick.SOURCE, **own}.items()}
        # every option we read is click's, for the same parameter
        for o, dest in ours.items():
            assert declared.get(o) == dest, (name, o)
        # click's options we do not read: only those left to click on purpose
        assert set(declared) - set(ours) <= {"--help", "-h", "--ids-out", "--source"}, name
        for p in cmd.params:
            if isinstance(p, click.Argument):
                assert p.name == argname
        # the defaults: what each gives for no options at all
        base = ["ts_1"] if argname else []
        ours = quick.parse(name, base)
        assert ours is not None
        ours.pop("stage_time", None)
        assert ours == click_params(name, base)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(list(quick.COMMANDS)), st.lists(st.sampled_from(TOKENS), max_size=7))
def test_quick_reads_a_command_line_as_click_does(command, args):
    ours = quick.parse(command, args)
    if ours is None:
        return  # click's to handle
    theirs = click_params(command, args)
    assert theirs is not None, f"click refuses {args}, quick took it"
    if command in ("trace", "stages"):
        assert ours.pop("stage_time") in ("auto", "cumulative", "per-stage")
    assert ours == theirs


def test_plain_command_lines_are_taken():
    assert quick.parse("window", ["--files", "a.gz", "--json"]) is not None
    assert quick.parse("trace", ["ts_1", "--no-index", "--stage-time", "cumulative"]) \
        is not None
    assert quick.parse("patterns", ["-w", "status=failed", "--by", "text_len", "-n", "3"]) \
        is not None
    assert quick.parse("stages", ["--slowest", "3", "-b", "voice", "--stage-time", "auto"]) \
        is not None
    assert quick.parse("window", ["--help"]) is None
    assert quick.parse("window", ["--ids-out", "-"]) is None


def _tool(*args: str, cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ttsops", *args], cwd=cwd,
                          capture_output=True, text=True)


def _click(*args: str, cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from ttsops.cli import main; main()", *args],
                          cwd=cwd, capture_output=True, text=True)


def test_quick_and_click_answer_alike(tmp_path):
    lines = ["2024-06-12 14:00:00,000 - app - INFO - synthesis_start: id=ts_1, text_len=3",
             "Building prefix dict from the default dictionary ...",
             "2024-06-12 14:00:01,000 - app - ERROR - synthesis_failed: id=ts_1, "
             "error_code=DISK_FULL, disk full",
             "2024-06-12 14:00:01,500 - app - INFO - synthesis_complete: id=ts_1, "
             "status=failed, text_len=3 chars, error_code=DISK_FULL"]
    with gzip.open(tmp_path / "app.log.1.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    d = str(tmp_path)
    for args in (["logs", "window", "--files", "app.log.*.gz", "--json"],
                 ["logs", "window", "-f", "app.log.1.gz"],
                 ["logs", "trace", "ts_1", "--files", "app.log.1.gz", "--json"],
                 ["logs", "trace", "ts_9", "--files", "app.log.1.gz"],
                 ["logs", "patterns", "-f", "app.log.1.gz", "-w", "status=failed", "--json"],
                 ["logs", "stages", "-f", "app.log.1.gz", "--slowest", "2", "--json"],
                 ["logs", "stages", "-f", "app.log.1.gz", "--by", "bogus=", "-w", "x"],
                 ["logs", "window", "--files", "nope.gz"],
                 ["logs", "window", "-f", "app.log.1.gz", "--since", "bogus"],
                 ["logs", "window", "-f", "app.log.1.gz", "--json", "--csv"]):
        a, b = _tool(*args, cwd=d), _click(*args, cwd=d)
        assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), args


def test_an_unbounded_window_answers_unparsable_blocks_from_the_index(tmp_path):
    """A window without ends counts every line wherever it is: an indexed file with
    unparsable lines is answered from its index, with the reading's counts and examples."""
    lines = []
    for i in range(300):
        lines.append(f"2024-06-12 14:{i // 60:02d}:{i % 60:02d},000 - app - INFO - "
                     f"synthesis_start: id=ts_{i}")
        if i % 50 == 7:
            lines.append(f"junk line {i}")
    raw = tmp_path / "raw"
    raw.mkdir()
    with gzip.open(raw / "app.log.1.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    subprocess.run([sys.executable, "-m", "ttsops", "logs", "index", str(raw),
                    "--block-bytes", "4096"], check=True, capture_output=True,
                   env={**os.environ})
    a = json.loads(_tool("logs", "window", "-d", str(raw), "--json", cwd=d_(tmp_path)).stdout)
    b = json.loads(_tool("logs", "window", "-d", str(raw), "--json", "--no-index",
                         cwd=d_(tmp_path)).stdout)
    assert a["read"]["blocks_read"] == 0 and a["read"]["blocks_from_index"] > 1
    assert a["unparsable_lines"] == 6
    for k in ("levels", "events", "records", "unparsable_lines", "unparsable_examples",
              "summary"):
        if k == "summary":
            a[k].pop("files read", None), b[k].pop("files read", None)
        assert a[k] == b[k], k


def d_(p) -> str:
    return str(p)
