"""Log file names and opening them: which names are log files (the writer's, logrotate's,
the stdlib's), in which order by name, and opening one without ever blocking on a FIFO.

Private to the reading layer (``sources``, ``tail``, ``indexer``, ``sidecar``); no
pathlib (a query's start-up).
"""

from __future__ import annotations

import os
import re
import stat

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from ...logindex import Readable

LIVE = "app.log"
ROTATED_RE = re.compile(r"app\.log\.(\d+)\.gz\Z")
# app.log.N (plain) or app.log.N.gz: the writer's own, logrotate's, the stdlib's
NUMBERED_RE = re.compile(r"app\.log\.(\d+)(\.gz)?\Z")
# logrotate dateext: app.log-20240611, app.log-2024061113, app.log-20240611-1718150400
DATEEXT_RE = re.compile(r"app\.log-(\d{8}(?:\d{2})?(?:-\d+)?)(\.gz)?\Z")



def parent_dir(s: str) -> str:
    """``str(PurePosixPath(s).parent)`` of a ``pathstr``."""
    head, sep, _tail = s.rpartition("/")
    if not sep:
        return "."
    return head if head.strip("/") else s[:len(s) - len(_tail)]


def join(d: str, name: str) -> str:
    return f"{d}{name}" if d.endswith("/") else f"{d}/{name}"


IGNORED_ERRNOS = (2, 20, 9, 40)  # ENOENT, ENOTDIR, EBADF, ELOOP: as pathlib ignores them


def exists(s: str) -> bool:
    """``Path(s).exists()``."""
    try:
        os.stat(s)
    except OSError as e:
        if e.errno not in IGNORED_ERRNOS:
            raise
        return False
    return True


def is_dir(s: str) -> bool:
    """``Path(s).is_dir()``."""
    try:
        return stat.S_ISDIR(os.stat(s).st_mode)
    except OSError as e:
        if e.errno not in IGNORED_ERRNOS:
            raise
        return False
    except ValueError:
        return False


def classify(name: str) -> tuple[str, tuple[int, int, str]] | None:
    """(role, name rank: oldest first) of a log file name, or None."""
    if name == LIVE:
        return "live", (3, 0, "")
    m = NUMBERED_RE.match(name)
    if m:
        n = int(m.group(1))
        return ("pending", (2, 0, "")) if n == 0 else ("rotated", (1, -n, ""))
    m = DATEEXT_RE.match(name)
    if m:
        return "rotated", (0, 0, m.group(1))
    return None


def dir_names(d: str) -> list[tuple[str, str]]:
    """(file name, role) of the log files in ``d``, oldest first by name. Of a plain and
    a compressed file of one rotation (compression under way), the plain one is read."""
    names = set(os.listdir(d))
    found: list[tuple[tuple[int, int, str], str, str]] = []
    for n in names:
        c = classify(n)
        if c is None:
            continue
        role, rank = c
        if n.endswith(".gz") and n[:-3] in names:
            continue  # app.log.0 / app.log.3 / app.log-20240611 is still there: read it
        found.append((rank, n, role))
    return [(n, role) for _rank, n, role in sorted(found)]


KIND = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device",
         stat.S_IFBLK: "a device", stat.S_IFDIR: "a directory"}


class NotRegular(OSError):
    """A name that is not a regular file (FIFO, socket, device, directory)."""

    def __init__(self, kind: str, fd: int = -1) -> None:
        super().__init__(21, f"not a regular file ({kind})")
        self.kind = kind
        self.fd = fd


def kind_of(mode: int) -> str:
    return KIND.get(stat.S_IFMT(mode), "not a regular file")


def open_file(path: str, keep_fifo: bool = False) -> tuple[int, os.stat_result]:
    """Open a regular file for reading. Never blocks: a FIFO is opened non-blocking (a
    plain open waits for a writer forever) and refused (``NotRegular``), or, with
    ``keep_fifo``, handed back in ``NotRegular.fd`` switched to blocking reads (a pipe
    named on the command line, ``<(zcat ...)``, is read to its end)."""
    pre = os.stat(path)  # a socket or a device is refused before any open
    if not (stat.S_ISREG(pre.st_mode) or stat.S_ISFIFO(pre.st_mode)):
        raise NotRegular(kind_of(pre.st_mode))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            if keep_fifo and stat.S_ISFIFO(st.st_mode):
                os.set_blocking(fd, True)
                raise NotRegular("a FIFO", fd)
            raise NotRegular(kind_of(st.st_mode))
        os.set_blocking(fd, True)
    except NotRegular as e:
        if e.fd < 0:
            os.close(fd)
        raise
    except OSError:
        os.close(fd)
        raise
    return fd, st


def suffix_gz(path: str) -> bool:
    """``Path(path).suffix == ".gz"``."""
    name = path.rpartition("/")[2]
    return len(name) > 3 and name.endswith(".gz")


def is_gz(fd: int, path: str) -> bool:
    try:
        head = os.pread(fd, 2, 0)
    except OSError:
        return suffix_gz(path)
    if head == b"\x1f\x8b":
        return True
    return suffix_gz(path) and len(head) > 0  # named .gz but not gzip: reader says so


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


def spool_stream(stream: Readable) -> int:
    """``spool`` for a standard input without a descriptor (an in-memory stream)."""
    import tempfile

    with tempfile.TemporaryFile(prefix="ttsops-stdin-") as tf:
        fd = os.dup(tf.fileno())
    while True:
        data = stream.read(SPOOL_READ)
        if not data:
            return fd
        os.write(fd, data)
