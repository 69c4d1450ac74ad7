"""Which log files to read, in which order, held open as one consistent snapshot.

A directory holds ``app.log`` (live), possibly ``app.log.0`` (rotated, not yet
compressed; or ``app.log.0.gz`` between compression and its rename) and the rotated
``app.log.1.gz`` (newest) ... ``app.log.N.gz`` (oldest). ``--dir`` may be repeated (one
directory per host: the streams are merged by time); ``--files`` names files directly.

``open_snapshot`` opens every file and then checks that each name still points at the
file it opened; while the writer is rotating (a rename cascade) it retries. Reading then
goes through the held descriptors, so a rotation during a long query neither loses nor
doubles a record: the answer is the log as it was at the snapshot.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..logindex import FileIndex, IndexDamaged, read_index

LIVE = "app.log"
_ROTATED_RE = re.compile(r"app\.log\.(\d+)\.gz\Z")


class SourceError(Exception):
    """No answer is possible (missing directory, no log files): a clear message, exit 2."""


@dataclass
class Problem:
    """Something that could not be read: reported, and the rest still answered."""

    path: str
    message: str
    lines_lost: int | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class LogFile:
    path: Path
    role: str  # "rotated" | "pending" | "live" | "file"
    stream: int  # which --dir (or explicit file) it belongs to: merged by time across streams
    label: str  # shown when several streams are read (the directory's name)
    gz: bool
    fd: int = -1
    size: int = 0
    inode: tuple[int, int] = (0, 0)
    index: FileIndex | None = None
    index_loaded: bool = False
    problems: list[Problem] | None = None  # the snapshot's: where a damaged index is told
    index_problem: Problem | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def get_index(self) -> FileIndex | None:
        """The embedded block index (None for plain files, foreign or damaged gz)."""
        if not self.index_loaded:
            self.index_loaded = True
            if self.gz and self.fd >= 0:
                try:
                    self.index = read_index(self.path, fd=self.fd)
                except IndexDamaged as e:
                    self.index_damaged(str(e))
        return self.index

    def index_damaged(self, why: str) -> None:
        """The index does not match the data: ignore it, answer from the data, say so."""
        self.index = None
        self.index_loaded = True
        if self.index_problem is None:
            self.index_problem = Problem(str(self.path), f"its block index is damaged or "
                                         f"tampered with ({why}); ignored, the answer comes "
                                         "from the data (ttsops logs index rebuilds "
                                         "it)")
            if self.problems is not None:
                self.problems.append(self.index_problem)


@dataclass
class Snapshot:
    """Open log files, oldest first within each stream; close() when done."""

    files: list[LogFile]
    streams: list[str]  # label per stream
    problems: list[Problem] = field(default_factory=list)

    def close(self) -> None:
        for f in self.files:
            if f.fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(f.fd)
                f.fd = -1

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stream_files(self, stream: int) -> list[LogFile]:
        return [f for f in self.files if f.stream == stream]


def _dir_names(d: Path) -> list[tuple[str, str]]:
    """(file name, role) of the log files in ``d``, oldest first."""
    names = set(os.listdir(d))
    rotated = sorted(((int(m.group(1)), n) for n in names if (m := _ROTATED_RE.match(n))
                      and int(m.group(1)) > 0), reverse=True)
    out = [(n, "rotated") for _, n in rotated]
    if "app.log.0" in names:  # rotated, compression pending (its .gz may be half-way)
        out.append(("app.log.0", "pending"))
    elif "app.log.0.gz" in names:  # compressed, not yet renamed to app.log.1.gz
        out.append(("app.log.0.gz", "pending"))
    if LIVE in names:
        out.append((LIVE, "live"))
    return out


def _open(path: Path) -> tuple[int, os.stat_result]:
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(21, "not a regular file")
    except OSError:
        os.close(fd)
        raise
    return fd, st


def _is_gz(fd: int, path: Path) -> bool:
    try:
        head = os.pread(fd, 2, 0)
    except OSError:
        return path.suffix == ".gz"
    if head == b"\x1f\x8b":
        return True
    return path.suffix == ".gz" and len(head) > 0  # named .gz but not gzip: reader says so


def _snapshot_dir(d: Path, stream: int, label: str, problems: list[Problem]) -> list[LogFile]:
    """Open the files of one directory consistently (retry while a rotation runs)."""
    for _attempt in range(20):
        names = _dir_names(d)
        opened: list[LogFile] = []
        local_problems: list[Problem] = []
        for name, role in names:
            p = d / name
            try:
                fd, st = _open(p)
            except FileNotFoundError:
                break  # renamed under us: retry
            except OSError as e:
                local_problems.append(Problem(str(p), f"cannot open: {e.strerror or e}"))
                continue
            opened.append(LogFile(p, role, stream, label, _is_gz(fd, p), fd, st.st_size,
                                  (st.st_dev, st.st_ino)))
        else:
            # consistent when the listing is unchanged and every name is still our file
            if _dir_names(d) == names and all(_same(f) for f in opened):
                problems.extend(local_problems)
                return opened
        for f in opened:
            os.close(f.fd)
        time.sleep(0.02)
    raise SourceError(f"{d}: the log files keep changing (rotation storm?); try again")


def _same(f: LogFile) -> bool:
    try:
        st = os.stat(f.path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == f.inode


def _age_key(group: list[LogFile]):  # type: ignore[no-untyped-def]
    """Oldest first: by rotation number when the names are the writer's own
    (app.log.N.gz ... app.log.0 ... app.log), else by the first record's time."""
    def rank(f: LogFile) -> tuple[int, int] | None:
        m = _ROTATED_RE.match(f.name)
        if m:
            return (0, -int(m.group(1)))
        if f.name in ("app.log.0", "app.log.0.gz"):
            return (1, 0)
        if f.name == LIVE:
            return (2, 0)
        return None
    ranks = [rank(f) for f in group]
    if all(r is not None for r in ranks):
        return lambda f: rank(f)
    from .coverage import first_ts

    return lambda f: (first_ts(f) or "", f.name)


def open_snapshot(dirs: list[str | Path] | tuple[str | Path, ...] = (),
                  files: list[str | Path] | tuple[str | Path, ...] = ()) -> Snapshot:
    """Open the log files of ``dirs`` and the explicit ``files``.

    Raises SourceError for a missing directory or file, or when nothing readable is found.
    """
    if not dirs and not files:
        raise SourceError("no log source: give --dir DIR (repeatable) or --files FILE...")
    out: list[LogFile] = []
    problems: list[Problem] = []
    labels: list[str] = []
    for d in dirs:
        dp = Path(d)
        if not dp.exists():
            raise SourceError(f"log directory {dp} does not exist")
        if not dp.is_dir():
            raise SourceError(f"{dp} is not a directory (use --files for single files)")
        labels.append(dp.resolve().name or str(dp))
        try:
            got = _snapshot_dir(dp, len(labels) - 1, labels[-1], problems)
        except PermissionError as e:
            raise SourceError(f"cannot list {dp}: {e.strerror}") from None
        if not got and not any(p.path.startswith(str(dp)) for p in problems):
            problems.append(Problem(str(dp), "no app.log or app.log.N.gz in this directory"))
        out.extend(got)
    # explicit files: those of one directory are one host's files (one stream, oldest
    # first); several directories are several hosts, merged by time
    by_dir: dict[Path, list[LogFile]] = {}
    for fp in files:
        p = Path(fp)
        if not p.exists():
            raise SourceError(f"log file {p} does not exist")
        try:
            fd, st = _open(p)
        except OSError as e:
            problems.append(Problem(str(p), f"cannot open: {e.strerror or e}"))
            continue
        group = by_dir.setdefault(p.resolve().parent, [])
        group.append(LogFile(p, "file", -1, p.parent.resolve().name or str(p.parent),
                             _is_gz(fd, p), fd, st.st_size, (st.st_dev, st.st_ino)))
    for group in by_dir.values():
        labels.append(group[0].label)
        for f in sorted(group, key=_age_key(group)):
            f.stream = len(labels) - 1
            out.append(f)
    # the same file named twice (a --dir and a --files, or a hard link) is read once
    seen: set[tuple[int, int]] = set()
    unique: list[LogFile] = []
    for f in out:
        if f.inode in seen:
            os.close(f.fd)
            continue
        seen.add(f.inode)
        unique.append(f)
    if not unique:
        where = ", ".join(str(x) for x in (*dirs, *files))
        detail = "; ".join(str(p) for p in problems)
        raise SourceError(f"no readable log files in {where}" + (f" ({detail})" if detail
                                                                   else ""))
    for f in unique:
        f.problems = problems
        if f.index_problem is not None:  # found while ordering the files
            problems.append(f.index_problem)
    # explicit files: order within their own stream does not matter (one file each)
    return Snapshot(unique, labels, problems)
