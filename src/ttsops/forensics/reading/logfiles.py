"""The reading layer's nouns: an open log file, a snapshot of them, a problem met reading.

``LogFile`` and ``Snapshot`` are made by ``sources.open_snapshot``; ``Problem`` is what
every reader reports instead of raising. No pathlib (a query's start-up).
"""

from __future__ import annotations

import os

from ...logindex import FileIndex, IndexDamaged, read_index
from ...logindex_summary import save_all, summary_for
from ...plain import Plain

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from pathlib import Path



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
                    if self.role == "stdin":
                        self.index = read_index(self.where, fd=self.fd)
                    else:  # through the directory's summary of checked indexes
                        self.index = summary_for(self.where).index(self.where, self.fd)
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
        save_all()  # the directory summaries of the indexes read (when they changed)

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stream_files(self, stream: int) -> list[LogFile]:
        return [f for f in self.files if f.stream == stream]
