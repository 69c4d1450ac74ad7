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
import sys
import time

from ._naming import (
    LIVE,
    SPOOL_READ,
    NotRegular,
    classify,
    dir_names,
    exists,
    is_dir,
    is_gz,
    join,
    open_file,
    parent_dir,
    spool,
    spool_stream,
)
from .logfiles import LogFile, Problem, Snapshot, SourceError, pathstr

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from os import PathLike

    from ...logindex import Readable

__all__ = ["LIVE", "STDIN", "LogFile", "NotRegular", "Problem", "Snapshot", "SourceError",
           "drop_duplicates", "open_snapshot", "order_by_content", "pathstr", "snapshot_dir",
           "spool"]

STDIN = "-"



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
    # its bytes (.buffer), or a binary stream put in place of sys.stdin (no .buffer)
    raw: Readable = sys.stdin.buffer if hasattr(sys.stdin, "buffer") \
        else sys.stdin  # type: ignore[assignment]
    fd = spool(src) if src >= 0 else spool_stream(raw)
    st = os.fstat(fd)
    p = "<stdin>"
    return LogFile(p, "stdin", -1, "stdin", is_gz(fd, p), fd, st.st_size,
                   (st.st_dev, st.st_ino))


def snapshot_dir(d: str | PathLike[str], stream: int, label: str,
                  problems: list[Problem], notes: list[str] | None = None) -> list[LogFile]:
    """Open the files of one directory consistently (retry while a rotation runs), in
    name order (oldest first); special files are noted in ``notes`` and left alone."""
    d = pathstr(d)
    for _attempt in range(20):
        names = dir_names(d)
        opened: list[LogFile] = []
        local_problems: list[Problem] = []
        local_notes: list[str] = []
        for name, role in names:
            p = join(d, name)
            try:
                fd, st = open_file(p)
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
            opened.append(LogFile(p, role, stream, label, is_gz(fd, p), fd, st.st_size,
                                  (st.st_dev, st.st_ino)))
        else:
            # consistent when the listing is unchanged and every name is still our file
            if dir_names(d) == names and all(_same(f) for f in opened):
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
    c = classify(f.name)
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


def _open_files(files: list[str | PathLike] | tuple[str | PathLike, ...],
                problems: list[Problem]) -> dict[str, list[LogFile]]:
    """Open the explicit ``files``, grouped by their directory."""
    # explicit files: those of one directory are one host's files (one stream, ordered
    # by content); several directories are several hosts, merged by time
    by_dir: dict[str, list[LogFile]] = {}
    parents: dict[str, str] = {}  # parent as given -> resolved
    for fp in files:
        if str(fp) == STDIN:
            by_dir.setdefault(STDIN, []).append(_stdin_file())
            continue
        p = pathstr(fp)
        if not exists(p):
            raise SourceError(f"log file {p} does not exist")
        try:
            fd, st = open_file(p, keep_fifo=True)
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
        given = parent_dir(p)
        parent = parents.get(given)
        if parent is None:
            parent = parents[given] = os.path.realpath(given)
        # the file's own directory: its parent's, unless the name is a symbolic link
        # (resolved once per directory: a month is hundreds of files in one)
        name = p.rpartition("/")[2]
        real = parent if name not in ("", ".", "..") and not os.path.islink(p) \
            else parent_dir(os.path.realpath(p))
        group = by_dir.setdefault(real, [])
        group.append(LogFile(p, "file", -1, os.path.basename(parent) or given,
                             is_gz(fd, p), fd, st.st_size, (st.st_dev, st.st_ino)))
    return by_dir


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
            if not exists(dp):
                raise SourceError(f"log directory {dp} does not exist")
            if not is_dir(dp):
                raise SourceError(f"{dp} is not a directory (use --files for single files)")
            labels.append(os.path.basename(os.path.realpath(dp)) or dp)
            try:
                got = snapshot_dir(dp, len(labels) - 1, labels[-1], problems, notes)
            except PermissionError as e:
                raise SourceError(f"cannot list {dp}: {e.strerror}") from None
            if not got and not any(p.path.startswith(dp) for p in problems) and \
                    not any(n.startswith(dp) for n in notes):
                problems.append(Problem(dp, "no app.log, app.log.N[.gz] or "
                                                 "app.log-YYYYMMDD[.gz] in this directory"))
            out.extend(got)
        by_dir = _open_files(files, problems)
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
