"""Which log files to read, in which order, held open as one consistent snapshot.

A directory holds ``app.log`` (live), possibly ``app.log.0`` (rotated, not yet
compressed; or ``app.log.0.gz`` between compression and its rename) and the rotated
``app.log.1.gz`` (newest) ... ``app.log.N.gz`` (oldest). Rotated files named by other
tools are read too: uncompressed ``app.log.N`` (logrotate's ``delaycompress``, the
stdlib's ``RotatingFileHandler`` without a rotator) and logrotate's ``dateext`` names
``app.log-YYYYMMDD[HH][-N][.gz]``. ``--dir`` may be repeated (one directory per host:
the streams are merged by time); ``--files`` names files directly, ``-`` standard
input (plain or gzip, told by its first bytes).

Within a stream the files are ordered by their content's time (each file's first
record), not by their names: names lie when several processes rotate one file.
Byte-identical files (two processes that compressed the same file) are read once and
noted (``Snapshot.duplicates``). Entries that are not regular files (a FIFO, a socket, a
device named ``app.log``) are skipped with a note and never opened for reading: a FIFO
would block every command.

``open_snapshot`` opens every file and then checks that each name still points at the
file it opened; while the writer is rotating (a rename cascade) it retries. Reading then
goes through the held descriptors, so a rotation during a long query neither loses nor
doubles a record: the answer is the log as it was at the snapshot.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import time

from ..logindex import FileIndex, IndexDamaged, read_index
from ..plain import Plain

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from os import PathLike
    from pathlib import Path

LIVE = "app.log"
STDIN = "-"
_ROTATED_RE = re.compile(r"app\.log\.(\d+)\.gz\Z")
# app.log.N (plain) or app.log.N.gz: the writer's own, logrotate's, the stdlib's
_NUMBERED_RE = re.compile(r"app\.log\.(\d+)(\.gz)?\Z")
# logrotate dateext: app.log-20240611, app.log-2024061113, app.log-20240611-1718150400
_DATEEXT_RE = re.compile(r"app\.log-(\d{8}(?:\d{2})?(?:-\d+)?)(\.gz)?\Z")


class SourceError(Exception):
    """No answer is possible (missing directory, no log files): a clear message, exit 2."""


class Problem(Plain):
    """Something that could not be read: reported, and the rest still answered.

    ``hole``: for damage inside a file, the time span whose records were lost, as far as
    the reader knows it: (time of the last record read before the damage, time of the
    first record read after it); None at an end means "the file's start/end" (the
    neighbouring file's records bound it)."""

    FIELDS = ("path", "message", "lines_lost", "hole")
    __slots__ = FIELDS

    def __init__(self, path: str, message: str, lines_lost: int | None = None,
                 hole: tuple[str | None, str | None] | None = None) -> None:
        self.path = path
        self.message = message
        self.lines_lost = lines_lost
        self.hole = hole

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def pathstr(p: str | os.PathLike[str]) -> str:
    """``str(pathlib.PurePosixPath(p))`` without importing pathlib (a query's start-up):
    repeated slashes and ``.`` parts dropped, ``..`` kept, no trailing slash."""
    s = os.fspath(p)
    if not s:
        return "."
    root = ""
    if s.startswith("/"):
        root = "//" if s.startswith("//") and not s.startswith("///") else "/"
    return (root + "/".join(x for x in s.split("/") if x and x != ".")) or "."


def _parent(s: str) -> str:
    """``str(PurePosixPath(s).parent)`` of a ``pathstr``."""
    head, sep, _tail = s.rpartition("/")
    if not sep:
        return "."
    return head if head.strip("/") else s[:len(s) - len(_tail)]


def _join(d: str, name: str) -> str:
    return f"{d}{name}" if d.endswith("/") else f"{d}/{name}"


_IGNORED_ERRNOS = (2, 20, 9, 40)  # ENOENT, ENOTDIR, EBADF, ELOOP: as pathlib ignores them


def _exists(s: str) -> bool:
    """``Path(s).exists()``."""
    try:
        os.stat(s)
    except OSError as e:
        if e.errno not in _IGNORED_ERRNOS:
            raise
        return False
    return True


def _is_dir(s: str) -> bool:
    """``Path(s).is_dir()``."""
    try:
        return stat.S_ISDIR(os.stat(s).st_mode)
    except OSError as e:
        if e.errno not in _IGNORED_ERRNOS:
            raise
        return False
    except ValueError:
        return False


class LogFile(Plain):
    """One open log file. ``where`` is its path as text (``str(path)``); ``path`` the
    same as a ``pathlib.Path``, made when first asked for."""

    FIELDS = ("where", "role", "stream", "label", "gz", "fd", "size", "inode", "index",
              "index_loaded", "head_ts", "problems", "index_problem")
    __slots__ = (*FIELDS, "_path")

    def __init__(self, path: str | os.PathLike[str], role: str, stream: int, label: str, gz: bool,
                 fd: int = -1, size: int = 0, inode: tuple[int, int] = (0, 0),
                 index: FileIndex | None = None, index_loaded: bool = False,
                 head_ts: str | None = None, problems: list[Problem] | None = None,
                 index_problem: Problem | None = None) -> None:
        self.where = pathstr(path)
        self._path: Path | None = None
        self.role = role  # "rotated" | "pending" | "live" | "file" | "stdin"
        # which --dir (or explicit file) it belongs to: merged by time across streams
        self.stream = stream
        self.label = label  # shown when several streams are read (the directory's name)
        self.gz = gz
        self.fd = fd
        self.size = size
        self.inode = inode
        self.index = index
        self.index_loaded = index_loaded
        self.head_ts = head_ts  # its first record's time (set when ordered by content)
        # the snapshot's: where a damaged index is told
        self.problems = problems
        self.index_problem = index_problem

    @property
    def path(self) -> Path:
        if self._path is None:
            from pathlib import Path

            self._path = Path(self.where)
        return self._path

    @property
    def name(self) -> str:
        return self.where.rpartition("/")[2]

    def get_index(self) -> FileIndex | None:
        """The embedded block index (None for plain files, foreign or damaged gz)."""
        if not self.index_loaded:
            self.index_loaded = True
            if self.gz and self.fd >= 0:
                try:
                    self.index = read_index(self.where, fd=self.fd)
                except IndexDamaged as e:
                    self.index_damaged(str(e))
        return self.index

    def index_damaged(self, why: str) -> None:
        """The index does not match the data: ignore it, answer from the data, say so."""
        self.index = None
        self.index_loaded = True
        if self.index_problem is None:
            self.index_problem = Problem(self.where, f"its block index is damaged or "
                                         f"tampered with ({why}); ignored, the answer comes "
                                         "from the data (ttsops logs index rebuilds "
                                         "it)")
            if self.problems is not None:
                self.problems.append(self.index_problem)


class Snapshot(Plain):
    """Open log files, oldest first within each stream; close() when done."""

    FIELDS = ("files", "streams", "problems", "notes", "duplicates")
    __slots__ = FIELDS

    def __init__(self, files: list[LogFile], streams: list[str],
                 problems: list[Problem] | None = None, notes: list[str] | None = None,
                 duplicates: list[tuple[str, str]] | None = None) -> None:
        self.files = files
        self.streams = streams  # label per stream
        self.problems: list[Problem] = [] if problems is None else problems
        # said on stderr, not damage: skipped special files, duplicates read once
        self.notes: list[str] = [] if notes is None else notes
        # (path read, path of a byte-identical copy that was not read)
        self.duplicates: list[tuple[str, str]] = [] if duplicates is None else duplicates

    def close(self) -> None:
        for f in self.files:
            if f.fd >= 0:
                try:  # noqa: SIM105 - no contextlib import on the query path (start-up)
                    os.close(f.fd)
                except OSError:
                    pass
                f.fd = -1

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stream_files(self, stream: int) -> list[LogFile]:
        return [f for f in self.files if f.stream == stream]


def _classify(name: str) -> tuple[str, tuple[int, int, str]] | None:
    """(role, name rank: oldest first) of a log file name, or None."""
    if name == LIVE:
        return "live", (3, 0, "")
    m = _NUMBERED_RE.match(name)
    if m:
        n = int(m.group(1))
        return ("pending", (2, 0, "")) if n == 0 else ("rotated", (1, -n, ""))
    m = _DATEEXT_RE.match(name)
    if m:
        return "rotated", (0, 0, m.group(1))
    return None


def _dir_names(d: str) -> list[tuple[str, str]]:
    """(file name, role) of the log files in ``d``, oldest first by name. Of a plain and
    a compressed file of one rotation (compression under way), the plain one is read."""
    names = set(os.listdir(d))
    found: list[tuple[tuple[int, int, str], str, str]] = []
    for n in names:
        c = _classify(n)
        if c is None:
            continue
        role, rank = c
        if n.endswith(".gz") and n[:-3] in names:
            continue  # app.log.0 / app.log.3 / app.log-20240611 is still there: read it
        found.append((rank, n, role))
    return [(n, role) for _rank, n, role in sorted(found)]


_KIND = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device",
         stat.S_IFBLK: "a device", stat.S_IFDIR: "a directory"}


class NotRegular(OSError):
    """A name that is not a regular file (FIFO, socket, device, directory)."""

    def __init__(self, kind: str, fd: int = -1) -> None:
        super().__init__(21, f"not a regular file ({kind})")
        self.kind = kind
        self.fd = fd


def _kind(mode: int) -> str:
    return _KIND.get(stat.S_IFMT(mode), "not a regular file")


def _open(path: str, keep_fifo: bool = False) -> tuple[int, os.stat_result]:
    """Open a regular file for reading. Never blocks: a FIFO is opened non-blocking (a
    plain open waits for a writer forever) and refused (``NotRegular``), or, with
    ``keep_fifo``, handed back in ``NotRegular.fd`` switched to blocking reads (a pipe
    named on the command line, ``<(zcat ...)``, is read to its end)."""
    pre = os.stat(path)  # a socket or a device is refused before any open
    if not (stat.S_ISREG(pre.st_mode) or stat.S_ISFIFO(pre.st_mode)):
        raise NotRegular(_kind(pre.st_mode))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            if keep_fifo and stat.S_ISFIFO(st.st_mode):
                os.set_blocking(fd, True)
                raise NotRegular("a FIFO", fd)
            raise NotRegular(_kind(st.st_mode))
        os.set_blocking(fd, True)
    except NotRegular as e:
        if e.fd < 0:
            os.close(fd)
        raise
    except OSError:
        os.close(fd)
        raise
    return fd, st


def _suffix_gz(path: str) -> bool:
    """``Path(path).suffix == ".gz"``."""
    name = path.rpartition("/")[2]
    return len(name) > 3 and name.endswith(".gz")


def _is_gz(fd: int, path: str) -> bool:
    try:
        head = os.pread(fd, 2, 0)
    except OSError:
        return _suffix_gz(path)
    if head == b"\x1f\x8b":
        return True
    return _suffix_gz(path) and len(head) > 0  # named .gz but not gzip: reader says so


SPOOL_READ = 1 << 20


def spool(src: int) -> int:
    """Copy what can be read from ``src`` (a pipe) to an unlinked temporary file and
    return a descriptor of it (readable at any offset, as the readers need)."""
    import tempfile

    with tempfile.TemporaryFile(prefix="ttsops-stdin-") as tf:
        fd = os.dup(tf.fileno())
    try:
        while True:
            data = os.read(src, SPOOL_READ)
            if not data:
                break
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        raise
    return fd


def _spool_stream(stream: object) -> int:
    """``spool`` for a standard input without a descriptor (an in-memory stream)."""
    import tempfile

    with tempfile.TemporaryFile(prefix="ttsops-stdin-") as tf:
        fd = os.dup(tf.fileno())
    while True:
        data = stream.read(SPOOL_READ)  # type: ignore[attr-defined]
        if not data:
            return fd
        os.write(fd, data)


def _stdin_file() -> LogFile:
    if sys.stdin is None:
        raise SourceError("--files -: there is no standard input to read")
    try:
        src = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        src = -1
    if src >= 0 and os.isatty(src):
        raise SourceError("--files -: standard input is a terminal; pipe a log into it "
                          "(zcat app.log.1.gz | ttsops logs ... --files -)")
    fd = spool(src) if src >= 0 else _spool_stream(getattr(sys.stdin, "buffer", sys.stdin))
    st = os.fstat(fd)
    p = "<stdin>"
    return LogFile(p, "stdin", -1, "stdin", _is_gz(fd, p), fd, st.st_size,
                   (st.st_dev, st.st_ino))


def _snapshot_dir(d: str | PathLike[str], stream: int, label: str,
                  problems: list[Problem], notes: list[str] | None = None) -> list[LogFile]:
    """Open the files of one directory consistently (retry while a rotation runs), in
    name order (oldest first); special files are noted in ``notes`` and left alone."""
    d = pathstr(d)
    for _attempt in range(20):
        names = _dir_names(d)
        opened: list[LogFile] = []
        local_problems: list[Problem] = []
        local_notes: list[str] = []
        for name, role in names:
            p = _join(d, name)
            try:
                fd, st = _open(p)
            except FileNotFoundError:
                break  # renamed under us: retry
            except NotRegular as e:
                if e.kind == "a directory":  # where a log file should be: damage
                    local_problems.append(Problem(p, f"cannot open: {e.strerror}"))
                    continue
                local_notes.append(f"{p}: skipped: {e.kind}, not a log file (never opened "
                                   "for reading)")
                continue
            except OSError as e:
                local_problems.append(Problem(p, f"cannot open: {e.strerror or e}"))
                continue
            opened.append(LogFile(p, role, stream, label, _is_gz(fd, p), fd, st.st_size,
                                  (st.st_dev, st.st_ino)))
        else:
            # consistent when the listing is unchanged and every name is still our file
            if _dir_names(d) == names and all(_same(f) for f in opened):
                problems.extend(local_problems)
                if notes is not None:
                    notes.extend(local_notes)
                return opened
        for f in opened:
            os.close(f.fd)
        time.sleep(0.02)
    raise SourceError(f"{d}: the log files keep changing (rotation storm?); try again")


def _same(f: LogFile) -> bool:
    try:
        st = os.stat(f.where)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == f.inode


def _name_rank(f: LogFile) -> tuple[int, int, str]:
    c = _classify(f.name)
    return c[1] if c is not None else (1, 0, f.name)


def order_by_content(group: list[LogFile]) -> list[LogFile]:
    """Oldest first by each file's first record; a file whose first record cannot be
    read (empty, damaged) keeps its place in name order (it takes the time of the file
    before it), and equal times keep name order."""
    from .coverage import first_ts

    by_name = sorted(group, key=_name_rank)
    keyed = []
    prev = ""
    for i, f in enumerate(by_name):
        f.head_ts = first_ts(f)
        t = f.head_ts or prev
        prev = t
        keyed.append(((t, i), f))
    return [f for _k, f in sorted(keyed, key=lambda x: x[0])]


def _digest(f: LogFile) -> bytes:
    import hashlib

    h = hashlib.blake2b(digest_size=20)
    pos = 0
    while True:
        data = os.pread(f.fd, SPOOL_READ, pos)
        if not data:
            return h.digest()
        h.update(data)
        pos += len(data)


END_BYTES = 4096


def _same_ends(files: list[LogFile]) -> list[LogFile]:
    """The files (of one size) whose first and last ``END_BYTES`` some other file of the
    list shares: only those can be byte-identical to another."""
    by_ends: dict[bytes, list[LogFile]] = {}
    for f in files:
        try:
            key = os.pread(f.fd, END_BYTES, 0) + os.pread(f.fd, END_BYTES,
                                                           max(0, f.size - END_BYTES))
        except OSError:
            continue  # unreadable: never a duplicate (as when its digest fails)
        by_ends.setdefault(key, []).append(f)
    return [f for group in by_ends.values() if len(group) > 1 for f in group]


def drop_duplicates(files: list[LogFile]) -> tuple[list[LogFile], list[tuple[str, str]]]:
    """The files with byte-identical copies removed (the first of each set kept), and
    (kept path, dropped path) pairs. Only files of equal size are read to compare."""
    by_size: dict[int, list[LogFile]] = {}
    for f in files:
        if f.size > 0 and f.role != "live":
            by_size.setdefault(f.size, []).append(f)
    dropped: dict[int, str] = {}  # id(file) -> path of the file it copies
    for same in by_size.values():
        if len(same) < 2:
            continue
        # files that differ in their first or last bytes differ: no need to read them
        same = _same_ends(same)
        if len(same) < 2:
            continue
        seen: dict[bytes, LogFile] = {}
        for f in same:
            try:
                key = _digest(f)
            except OSError:
                continue
            if key in seen:
                dropped[id(f)] = seen[key].where
            else:
                seen[key] = f
    keep: list[LogFile] = []
    pairs: list[tuple[str, str]] = []
    for f in files:
        if id(f) in dropped:
            pairs.append((dropped[id(f)], f.where))
            try:  # noqa: SIM105 - no contextlib import on the query path (start-up)
                os.close(f.fd)
            except OSError:
                pass
            f.fd = -1
        else:
            keep.append(f)
    return keep, pairs


def open_snapshot(dirs: list[str | PathLike] | tuple[str | PathLike, ...] = (),
                  files: list[str | PathLike] | tuple[str | PathLike, ...] = (),
                  use_index: bool = True) -> Snapshot:
    """Open the log files of ``dirs`` and the explicit ``files`` (``-``: standard input).

    ``use_index=False`` (``--no-index``): no embedded index is read for anything, not even
    to order the files, so a damaged one is neither used nor reported.

    Raises SourceError for a missing directory or file, or when nothing readable is found.
    """
    if not dirs and not files:
        raise SourceError("no log source: give --dir DIR (repeatable) or --files FILE...")
    if sum(1 for f in files if str(f) == STDIN) > 1:
        raise SourceError("--files -: standard input can be named once")
    out: list[LogFile] = []
    problems: list[Problem] = []
    notes: list[str] = []
    labels: list[str] = []
    try:
        for d in dirs:
            dp = pathstr(d)
            if not _exists(dp):
                raise SourceError(f"log directory {dp} does not exist")
            if not _is_dir(dp):
                raise SourceError(f"{dp} is not a directory (use --files for single files)")
            labels.append(os.path.basename(os.path.realpath(dp)) or dp)
            try:
                got = _snapshot_dir(dp, len(labels) - 1, labels[-1], problems, notes)
            except PermissionError as e:
                raise SourceError(f"cannot list {dp}: {e.strerror}") from None
            if not got and not any(p.path.startswith(dp) for p in problems) and \
                    not any(n.startswith(dp) for n in notes):
                problems.append(Problem(dp, "no app.log, app.log.N[.gz] or "
                                                 "app.log-YYYYMMDD[.gz] in this directory"))
            out.extend(got)
        # explicit files: those of one directory are one host's files (one stream, ordered
        # by content); several directories are several hosts, merged by time
        by_dir: dict[str, list[LogFile]] = {}
        parents: dict[str, str] = {}  # parent as given -> resolved
        for fp in files:
            if str(fp) == STDIN:
                by_dir.setdefault(STDIN, []).append(_stdin_file())
                continue
            p = pathstr(fp)
            if not _exists(p):
                raise SourceError(f"log file {p} does not exist")
            try:
                fd, st = _open(p, keep_fifo=True)
            except NotRegular as e:
                if e.fd < 0:
                    raise SourceError(f"{p} is {e.kind}, not a log file") from None
                try:  # a pipe named on the command line: read it to its end, once
                    fd = spool(e.fd)
                finally:
                    os.close(e.fd)
                st = os.fstat(fd)
            except OSError as e:
                problems.append(Problem(p, f"cannot open: {e.strerror or e}"))
                continue
            given = _parent(p)
            parent = parents.get(given)
            if parent is None:
                parent = parents[given] = os.path.realpath(given)
            # the file's own directory: its parent's, unless the name is a symbolic link
            # (resolved once per directory: a month is hundreds of files in one)
            name = p.rpartition("/")[2]
            real = parent if name not in ("", ".", "..") and not os.path.islink(p) \
                else _parent(os.path.realpath(p))
            group = by_dir.setdefault(real, [])
            group.append(LogFile(p, "file", -1, os.path.basename(parent) or given,
                                 _is_gz(fd, p), fd, st.st_size, (st.st_dev, st.st_ino)))
        for group in by_dir.values():
            labels.append(group[0].label)
            for f in group:
                f.stream = len(labels) - 1
                out.append(f)
    except BaseException:
        for f in out:
            try:  # noqa: SIM105 - no contextlib import on the query path (start-up)
                os.close(f.fd)
            except OSError:
                pass
        raise
    # the same file named twice (a --dir and a --files, or a hard link) is read once
    seen: set[tuple[int, int]] = set()
    unique: list[LogFile] = []
    for f in out:
        if f.inode in seen:
            os.close(f.fd)
            continue
        seen.add(f.inode)
        unique.append(f)
    unique, dups = drop_duplicates(unique)
    for kept, dropped in dups:
        notes.append(f"{dropped} is byte-identical to {kept}: read once (several "
                     "processes rotating one file? see ttsops logs check)")
    if not unique:
        where = ", ".join(str(x) for x in (*dirs, *files))
        detail = "; ".join([str(p) for p in problems] + notes)
        raise SourceError(f"no readable log files in {where}" + (f" ({detail})" if detail
                                                                   else ""))
    for f in unique:
        if not use_index:
            f.index, f.index_loaded = None, True
        f.problems = problems  # a damaged index found from now on (ordering, reading) is told
        if f.index_problem is not None:  # found before: while listing the files
            problems.append(f.index_problem)
    ordered: list[LogFile] = []
    for s in range(len(labels)):
        ordered.extend(order_by_content([f for f in unique if f.stream == s]))
    return Snapshot(ordered, labels, problems, notes, dups)
