"""Shared fixtures: every test gets its own settings and log dir, never the repo's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

import filecosts
from ttsops import events
from ttsops.config import get_settings

# Hypothesis' per-example deadline (200 ms) is a timing assertion: on a shared two-core
# machine under load an example of a correct grammar test took 272 ms and failed the run.
# The suite checks behaviour, not time; a test that must be fast says so itself.
hypothesis_settings.register_profile("ttsops", deadline=None)
hypothesis_settings.load_profile("ttsops")


def pytest_collection_modifyitems(config, items) -> None:
    """The dearest test files first (``tests/filecosts.py``), each file's tests together
    and in their own order, so that ``.ci/run``'s processes finish together."""
    costs = filecosts.load()
    if not costs or config.getoption("lf", False) or config.getoption("failedfirst", False):
        return  # (--lf/--ff: the order asked for)
    root = config.rootpath
    cost: dict[Path, float] = {}
    first: dict[Path, int] = {}
    for i, item in enumerate(items):
        path = item.path
        if path not in cost:
            try:
                # a file the table does not know yet (new since it was measured) goes
                # first: a cheap one there costs nothing, a dear one last would run alone
                cost[path] = costs.get(path.relative_to(root).as_posix(), float("inf"))
            except ValueError:
                cost[path] = float("inf")
            first[path] = i
    items.sort(key=lambda it: (-cost[it.path], first[it.path]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``.ci/run`` (``TTSOPS_TESTS_NO_SKIP=1``) a skipped test is a failure: CI installs
    everything the suite drives (chromium, promtool, ffmpeg, espeak-ng ...), so a skip there
    means a check silently did not run."""
    outcome = yield
    rep = outcome.get_result()
    if os.environ.get("TTSOPS_TESTS_NO_SKIP") == "1" and rep.skipped \
            and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"skipped under .ci/run, where every check must run: {reason}"


@pytest.fixture(scope="session", autouse=True)
def _per_worker_environment(tmp_path_factory) -> Iterator[None]:
    """What a test process shares with others, made its own (the suite runs in several
    processes, ``pytest -n 2``): sidecars (parsed rotated files) go to this session's own
    cache, not the user's ``$XDG_CACHE_HOME/ttsops/sidecar`` (subprocesses inherit it);
    and pytest-xdist's workers start with ``COLUMNS=80``/``LINES=24``, which a serial run
    does not have (tables would wrap at 80 columns), so they are removed."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        if os.environ.get("PYTEST_XDIST_WORKER"):
            mp.delenv("COLUMNS", raising=False)
            mp.delenv("LINES", raising=False)
        yield


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("TTSOPS_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("TTSOPS_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    prev = events.get_sink()
    yield
    events.set_sink(prev)
    get_settings.cache_clear()


@pytest.fixture
def captured():
    """Events emitted during the test, as items (time, logger, level, event, fields, tb)."""
    sink = events.ListSink()
    prev = events.set_sink(sink, "DEBUG")
    yield sink.items
    events.set_sink(prev)


# Debian's chromium, driven by Playwright (its own browser download is not used)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless /usr/bin/chromium for the tests of one module (web page, HTML report)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()
