"""What the reliability drills share with bench/reliability.py: real servers (the server
tests' harness), real file systems that fill up (tmpfs), the whole log read back from
disk (``app.log`` and every rotated ``.gz``), and ``ttsops logs diagnose`` run as a user
runs it."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # bench/reliability.py imports this module directly
    sys.path.insert(0, str(TESTS))

from forensics.forensics_helpers import entry_in_process  # noqa: E402
from server import harness  # noqa: E402
from server.harness import Server, free_port  # noqa: E402, F401
from ttsops.logline import Record, iter_records  # noqa: E402

SPEECH = "/v1/audio/speech"
STARTED: list[Server] = []  # every server started here, so that a failed drill stops its own


def start_server(root: Path, **kw: Any) -> Server:
    s = harness.start_server(root, **kw)
    STARTED.append(s)
    return s


@contextlib.contextmanager
def stops_its_servers() -> Iterator[None]:
    """Whatever happens inside, the servers started inside are stopped at the end."""
    first = len(STARTED)
    try:
        yield
    finally:
        for s in STARTED[first:]:
            with contextlib.suppress(Exception):
                s.stop()
        del STARTED[first:]


def body(text: str, **kw: Any) -> dict[str, Any]:
    return {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "wav",
            **kw}


def outcome(r: httpx.Response) -> str:
    """``200`` or ``503 ENGINE_CRASHED``: the status and, for errors, the registry code."""
    if r.status_code < 400:
        return str(r.status_code)
    try:
        code = r.json()["error"]["code"]
    except Exception:
        code = "(no error body)"
    return f"{r.status_code} {code}"


# --- file systems ------------------------------------------------------------------------

def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[bool]:
    """A real tmpfs of ``size`` (``mount -t tmpfs``) at ``path``; yields False when this
    machine does not allow mounting (not root, no CAP_SYS_ADMIN)."""
    path.mkdir(parents=True, exist_ok=True)
    if not can_mount() or _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                               "tmpfs", str(path)).returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        _run("umount", "-l", str(path))


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[bool]:
    """``path`` made read-only while the service runs: a read-only bind mount over it
    (new files, renames and opens for writing fail with EROFS; descriptors opened before
    keep working, as on a real remount). Yields False where mounting is not allowed."""
    if not can_mount() or _run("mount", "--bind", str(path), str(path)).returncode != 0:
        yield False
        return
    try:
        if _run("mount", "-o", "remount,bind,ro", str(path)).returncode != 0:
            yield False
            return
        yield True
    finally:
        _run("umount", "-l", str(path))


def fill_up(directory: Path, name: str = "filler") -> Path:
    """Write a file into ``directory`` until its file system answers ENOSPC."""
    p = directory / name
    block = b"\0" * 65536
    with open(p, "wb") as fh:
        try:
            while True:
                fh.write(block)
                fh.flush()
        except OSError:
            pass
    with contextlib.suppress(OSError), open(p, "ab") as fh:  # the last partial block
        while True:
            fh.write(b"\0" * 512)
            fh.flush()
    return p


# --- the log, read back ------------------------------------------------------------------

def log_files(log_dir: Path) -> list[Path]:
    """Oldest first: app.log.N.gz ... app.log.1.gz, a pending app.log.0, app.log. A pending
    app.log.0 whose compressed copy app.log.0.gz is complete already (the compressor renames
    it into place only once written and fsynced) is left out: same records, not twice."""
    gz = sorted(log_dir.glob("app.log.*.gz"), key=lambda p: -int(p.name.split(".")[2]))
    out = list(gz)
    for name in ("app.log.0", "app.log"):
        if name == "app.log.0" and (log_dir / "app.log.0.gz").exists():
            continue
        if (log_dir / name).exists():
            out.append(log_dir / name)
    return out


def _files_now(log_dir: Path) -> list[tuple[str, int]] | None:
    """Which file is under which name (None when one vanished while looking)."""
    try:
        return [(p.name, p.stat().st_ino) for p in log_files(log_dir)]
    except FileNotFoundError:
        return None


def read_log(log_dir: Path, attempts: int = 200) -> list[Record]:
    """Every record of every file, oldest file first (gzip read by the standard library:
    a corrupt member raises). A running writer may rotate while this reads (a file moves
    to the next name, or app.log.0 is removed once compressed): then the files are read
    again, until a read began and ended with the same file under each name."""
    for _ in range(attempts):
        before = _files_now(log_dir)
        if before is not None:
            try:
                recs = _read_files(log_dir / name for name, _ in before)
            except FileNotFoundError:
                recs = None
            if recs is not None and _files_now(log_dir) == before:
                return recs
        time.sleep(0.05)
    raise AssertionError(f"the log in {log_dir} kept rotating while it was read")


def _read_files(paths: Iterable[Path]) -> list[Record]:
    recs: list[Record] = []
    for p in paths:
        if p.suffix == ".gz":
            with gzip.open(p, "rt", encoding="utf-8", errors="surrogateescape") as fh:
                recs.extend(iter_records(fh))
        else:
            with open(p, encoding="utf-8", errors="surrogateescape") as fh:
                recs.extend(iter_records(fh))
    return recs


def gzip_ok(log_dir: Path) -> list[str]:
    """Names of rotated files that `gzip -t` rejects (empty: all sound)."""
    bad = []
    for p in sorted(log_dir.glob("app.log.*.gz")):
        if _run("gzip", "-t", str(p)).returncode != 0:
            bad.append(p.name)
    return bad


def wait_for(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition",
             every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def events_of(recs: Iterable[Record], event: str, **match: str) -> list[Record]:
    return [r for r in recs if r.event == event
            and all(r.get(k) == v for k, v in match.items())]


# --- forensics, as a user runs it ---------------------------------------------------------

@dataclass
class Diagnosis:
    data: dict[str, Any]
    args: list[str]

    @property
    def text(self) -> str:
        """The table a user reads (run again without --json; for failure messages)."""
        return entry_in_process(*self.args, env={"COLUMNS": "200"}).stdout

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(self.data.get("findings", []))

    def naming(self, *words: str) -> dict[str, Any] | None:
        """The most severe finding whose title or details contain every word; its
        ``quote`` is the title, and the detail line with the words when the title lacks
        them."""
        for f in self.findings:
            blob = " ".join([f["title"], *f.get("details", [])])
            if all(w in blob for w in words):
                quote = f"[{f['severity']}] {f['title']}"
                if not all(w in f["title"] for w in words):
                    line = next((d for d in f.get("details", []) if any(w in d for w in words)),
                                None)
                    if line:
                        quote += f": {line}"
                return {**f, "quote": quote}
        return None


def diagnose(log_dir: Path, *extra: str) -> Diagnosis:
    """``ttsops logs diagnose -d DIR --json`` through the console script's own function
    (``ttsops.entry:main``), in this process: the answer the installed script gives (the
    tests of the script itself run it as a subprocess), without a Python start and its
    imports for each drill."""
    args = ["logs", "diagnose", "-d", str(log_dir), *extra]
    js = entry_in_process(*args, "--json")
    try:
        data = json.loads(js.stdout)
    except ValueError as e:
        raise AssertionError(f"diagnose --json gave no JSON: {js.stdout[-500:]} "
                             f"{js.stderr[-2000:]}") from e
    return Diagnosis(data, args)


# --- results ------------------------------------------------------------------------------

@dataclass
class DrillResult:
    """One drill: what was done, what the clients got, what the log holds, what the
    forensics said."""

    name: str
    fault: str
    responses: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    served_after: bool = False
    diagnosis: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        return {"drill": self.name, "fault": self.fault,
                "responses": ", ".join(f"{n} x {k}" for k, n in sorted(self.responses.items())),
                "records": ", ".join(f"{k} {n}" for k, n in self.records.items()),
                "served_after": self.served_after, "diagnosis": self.diagnosis,
                "notes": "; ".join(self.notes), "seconds": round(self.seconds, 1)}


def serve(servers: list[Server], root: Path, **kw: Any) -> Server:
    """``start_server`` whose server the ``servers`` fixture stops after the test."""
    s = start_server(root, **kw)
    servers.append(s)
    return s
