"""``ttsops logs`` sets the allocator of Polars (jemalloc) through ``_RJEM_MALLOC_CONF``
(``entry.malloc_conf``): an arena per usable core, freed pages returned at once. The
setting must be one jemalloc accepts (it says so on standard error otherwise, and
ignores the pair) and must not override the user's own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ttsops import entry


def test_one_arena_per_usable_core():
    name, value = entry.malloc_conf()
    assert name == "_RJEM_MALLOC_CONF"
    pairs = dict(p.split(":") for p in value.split(","))
    assert pairs == {"narenas": str(len(os.sched_getaffinity(0))), "muzzy_decay_ms": "0"}


def _polars_stderr(conf: str) -> str:
    code = ("import polars as pl\n"
            "df = pl.DataFrame({'a': list(range(200_000))})\n"
            "assert df.select(pl.col('a').sum()).item() == sum(range(200_000))\n")
    env = {**os.environ, "_RJEM_MALLOC_CONF": conf}
    got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return got.stderr


def test_jemalloc_accepts_the_setting():
    assert "<jemalloc>" not in _polars_stderr(entry.malloc_conf()[1])
    # (the check can fail: a pair jemalloc does not know is said on standard error)
    assert "<jemalloc>" in _polars_stderr("narenas:1,no_such_option:1")


@pytest.mark.parametrize("own", [None, "muzzy_decay_ms:-1"])
def test_logs_commands_set_it_unless_the_user_did(own, monkeypatch):
    monkeypatch.delenv("_RJEM_MALLOC_CONF", raising=False)
    if own is not None:
        monkeypatch.setenv("_RJEM_MALLOC_CONF", own)
    import ttsops.cli

    monkeypatch.setattr(ttsops.cli, "main", lambda: 0)
    monkeypatch.setattr(sys, "argv", ["ttsops", "logs", "diagnose"])
    entry.main()
    assert os.environ["_RJEM_MALLOC_CONF"] == (own or entry.malloc_conf()[1])
