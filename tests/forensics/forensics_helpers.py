"""Helpers to run ``ttsops logs`` in tests (in-process and as a real subprocess)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner

from console import TTSOPS
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
