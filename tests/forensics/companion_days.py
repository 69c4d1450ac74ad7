"""What the companion tables' tests share (``diagnose``'s and ``report``'s): a spy on
``companion.load``, the tutorial-style day they read, and a day made once given to each
test as its own (``linked_day``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ttsops.forensics.reading import companion

from .linked_logs import link_files
from .stdlib_logs import write_day

# where under its directory ``day_with_cache`` puts the day's logs and its cache
# (``linked_day`` finds them there)
LOGS, CACHE = "logs", "c"


def loads(monkeypatch: pytest.MonkeyPatch, name: str | None = None) -> list[bool]:
    """Each lookup of a companion (of ``name`` only, where given), from here on: found
    and valid."""
    seen: list[bool] = []
    real = companion.load

    def spy(side: Path, key: str, nm: str, *a: Any) -> Any:
        got = real(side, key, nm, *a)
        if name is None or nm == name:
            seen.append(got is not None)
        return got

    monkeypatch.setattr(companion, "load", spy)
    return seen


def day_with_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A tutorial-style day (700 requests in ~30 kB files, three ids never completed,
    tracebacks) and the cache its sidecars go to, the first whole read writing them
    (``TTSOPS_LOGS_SIDECAR=auto``)."""
    logs = tmp_path / LOGS
    write_day(logs, requests=700, max_bytes=30_000, incomplete=frozenset({5, 77, 402}),
              tracebacks=frozenset(range(200, 215)))
    cache = tmp_path / CACHE
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")
    return logs, cache


def linked_day(made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
               ) -> tuple[Path, Path]:
    """The day ``day_with_cache`` made under ``made`` (and whatever was read of it there)
    as a test's own: its log files hard-linked (``linked_logs``: the same identities, so
    the sidecars and companions made for them are theirs), the cache copied;
    ``XDG_CACHE_HOME`` set to that copy. For tests that do not write into the log files;
    the cache is theirs to damage."""
    logs, cache = link_files(made / LOGS, tmp_path / LOGS), tmp_path / CACHE
    if (made / CACHE).exists():
        shutil.copytree(made / CACHE, cache)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return logs, cache
