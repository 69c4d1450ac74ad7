from __future__ import annotations

import subprocess
import sys

from ttsops import __version__
from ttsops.errors import REGISTRY


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ttsops", *args], capture_output=True,
                          text=True, timeout=120)


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and __version__ in r.stdout
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("settings", "errors"):
        assert cmd in r.stdout


def test_settings_and_errors_tables():
    r = run("settings", "--markdown")
    assert r.returncode == 0 and "`TTSOPS_LOG_DIR`" in r.stdout
    assert "REQUEST_ID_HEADER" in r.stdout
    r = run("errors", "--markdown")
    assert r.returncode == 0
    assert all(f"`{code}`" in r.stdout for code in REGISTRY)


def test_unknown_command_fails_cleanly():
    r = run("frobnicate")
    assert r.returncode == 2 and "No such command" in r.stderr and "Traceback" not in r.stderr
