"""The README stays true: every setting, error code, command and event is in it, the
generated tables match the code, and the test command is the one CI runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from ttsops.cli import SUBCOMMANDS, main
from ttsops.config import settings_table
from ttsops.errors import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_generated_tables_are_current():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "update_readme.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_setting_and_error_code_is_documented():
    for env, _, _ in settings_table():
        assert f"`{env}`" in README, env
    for code in REGISTRY:
        assert f"`{code}`" in README, code


def test_every_command_is_documented():
    ctx = click.Context(main)
    for name in SUBCOMMANDS:
        assert f"ttsops {name}" in README, name
        cmd = main.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            for sub in cmd.list_commands(click.Context(cmd)):
                assert f"ttsops {name} {sub}" in README, f"{name} {sub}"


def test_every_event_of_the_contract_is_documented():
    for event in ("synthesis_start", "stage_time", "audio_metrics", "synthesis_complete",
                  "synthesis_failed", "text_sanitized", "voice_fallback", "cache_health",
                  "cache_dir_usage", "http_request", "engine_load", "model_load_failed",
                  "webui_event"):
        assert f"`{event}`" in README, event


def test_the_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash .ci/run" in README
    # CI runs where users run: a fresh venv, the project and its test extra installed into
    # it, ruff and pytest run by that venv's interpreter
    assert 'python3 -m venv --without-pip "$venv"' in ci and 'rm -rf "$venv"' in ci
    assert """"$venv/bin/python" -m uv pip install -q --python "$venv/bin/python" """ \
        """-e '.[test]'""" in ci
    assert "pip_in_venv install -q --disable-pip-version-check --no-compile -e '.[test]'" \
        in ci  # (pip when uv cannot be had)
    assert """"$venv/bin/python" -m pytest""" in ci and """"$venv/bin/python" -m ruff""" in ci
    assert "python -m pytest -q" in README and "fresh virtual environment" in README
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/ttsops serve" \
        in README
