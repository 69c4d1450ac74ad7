"""Helpers to run ``ttsops logs`` in tests (in-process and as a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from console import TTSOPS
from ttsops import entry
from ttsops.forensics.cli import logs


def cli(*args: str) -> tuple[int, str, str]:
    """Run ``ttsops logs ARGS`` in-process; (exit code, stdout, stderr)."""
    res = CliRunner().invoke(logs, list(args), catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def cli_json(*args: str) -> dict:
    code, out, err = cli(*args, "--json")
    assert code in (0, 1, 3), err
    return json.loads(out)


def ttsops(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point in a subprocess (exit status, stderr without tracebacks)."""
    return subprocess.run([*TTSOPS, *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@dataclass
class Ran:
    """What ``entry()`` gives: a ``subprocess.CompletedProcess``'s three fields."""

    returncode: int
    stdout: str
    stderr: str


def entry_in_process(*args: str, env: Mapping[str, str | None] | None = None,
                     stdin: bytes | None = None) -> Ran:
    """``ttsops ARGS`` through the console script's own function (``ttsops.entry:main``:
    the click-free path of ``logs window/trace/patterns`` included) in this process, its
    streams and ``env`` isolated by click's runner: the answer a subprocess gives, without
    a Python start and the imports of each. A traceback is raised, not printed. For what
    is about the process (the script, exit status on a real exit) use ``ttsops()``."""
    argv = sys.argv
    with CliRunner().isolation(input=stdin, env=env) as (out, err, _):
        sys.argv = ["ttsops", *args]
        try:
            got = entry.main()
            code = 0 if got is None else int(got)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        finally:
            sys.argv = argv
            sys.stdout.flush()
            sys.stderr.flush()
        return Ran(code, out.getvalue().decode("utf-8", "replace"),
                   err.getvalue().decode("utf-8", "replace"))
