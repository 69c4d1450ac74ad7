from __future__ import annotations

import subprocess
import sys

import click

from console import TTSOPS
from ttsops import __version__
from ttsops.cli import SUBCOMMANDS, main
from ttsops.errors import REGISTRY


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TTSOPS, *args], capture_output=True,
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


# An interpreter that has not imported importlib.util yet (a fresh venv: no site-wide .pth
# that imports it at start-up). ttsops must import every submodule it uses itself.
_STRIPPED = r"""
import importlib, sys
sys.modules.pop("importlib.util", None)
if hasattr(importlib, "util"):
    delattr(importlib, "util")
for name in [m for m in sys.modules if m == "ttsops" or m.startswith("ttsops.")]:
    del sys.modules[name]
assert not hasattr(importlib, "util")
import ttsops.cli
for args in (["--help"], *[[name, "--help"] for name in sorted(ttsops.cli.SUBCOMMANDS)]):
    try:
        ttsops.cli.main(args, prog_name="ttsops")
    except SystemExit as e:
        if e.code not in (0, None):
            raise
print("listed:", ",".join(ttsops.cli.main.list_commands(None)))
"""


def test_cli_imports_what_it_uses_on_a_bare_interpreter():
    r = subprocess.run([sys.executable, "-c", _STRIPPED], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    listed = r.stdout.rsplit("listed:", 1)[1].strip().split(",")
    assert sorted(listed) == sorted(SUBCOMMANDS)


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name in group.list_commands(click.Context(group)):
        cmd = group.get_command(click.Context(group), name)
        assert cmd is not None, name
        paths.append((*prefix, name))
        if isinstance(cmd, click.Group):
            paths.extend(_command_paths(cmd, (*prefix, name)))
    return paths


def test_every_command_help_runs_from_the_installed_script():
    paths = _command_paths(main)
    assert {p[0] for p in paths} == set(SUBCOMMANDS)
    assert ("logs", "diagnose") in paths  # nested groups are walked too
    for path in [(), *paths]:
        r = subprocess.run([*TTSOPS, *path, "--help"], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0 and "Usage:" in r.stdout, (path, r.stderr[-2000:])
        assert "Traceback" not in r.stderr, path
