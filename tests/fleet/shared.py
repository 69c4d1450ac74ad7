"""What the test processes of one run share (``.ci/run`` runs the suite in several,
pytest-xdist's ``--dist loadfile``): the corpora the fleet tests ship, written once, and
the ``--dir`` answers they are held to, asked once. ``test_source_agreement`` (Debian's
18.16) and ``test_current_engine`` (chdb) run in different processes and compare their
``--source`` answers with the same 81 ``--dir`` answers of the same files: each process
asked all of them again (~10 s of CPU), and wrote the corpora again (~2 s each).

The files are read-only once written; a writer holds an exclusive ``flock`` on a lock
file beside them while it writes, and a reader waits for it. One process (no xdist):
the same, in its own base directory."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of this run that every test process sees: under pytest-xdist each
    worker's base directory (``popen-gwN``) is in the run's own (``pytest-N``)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """``path`` (a lock file, made if missing) held exclusively by this process."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def made_once(d: Path, make: Callable[[Path], None]) -> Path:
    """``d``, filled by ``make(d)`` in the first process to ask for it; the others wait
    for it to finish and use what it wrote (a ``make`` cut short is made again)."""
    d.parent.mkdir(parents=True, exist_ok=True)
    done = d.with_name(d.name + ".done")
    with locked(d.with_name(d.name + ".lock")):
        if not done.exists():
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
            make(d)
            done.touch()
    return d


class Answers:
    """Answers kept in files under a directory, one per key (a tuple of strings), each
    asked once across the processes: ``get(key, ask)`` returns the kept answer, or
    ``ask()``'s, kept for the others (JSON: ``(code, document)`` comes back as it went)."""

    def __init__(self, d: Path) -> None:
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)

    def get(self, key: tuple[str, ...], ask: Callable[[], tuple[int, object]]
            ) -> tuple[int, object]:
        name = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]
        path = self.dir / f"{name}.json"
        with locked(self.dir / f"{name}.lock"):
            if path.exists():
                kept = json.loads(path.read_text(encoding="utf-8"))
                assert kept["key"] == list(key), (kept["key"], key)
                return int(kept["code"]), kept["answer"]
            code, answer = ask()
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"key": list(key), "code": code, "answer": answer}),
                           encoding="utf-8")
            tmp.replace(path)
            return code, answer
