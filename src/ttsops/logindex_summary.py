"""A per-directory summary of the files' checked block indexes, kept in the user's cache
(``$XDG_CACHE_HOME/ttsops/idxsum``): one file read instead of opening and checking the
index of every rotated file (a month is ~200 files, ~100 µs each).

An entry holds what opening a version 3 index checked (``indexread.v3_parts``: the
totals, the members table, where the id filter and the block list lie), keyed by the
file's identity: device and inode, and its size and mtime (ns). Rotated files never
change; ``logs index`` rewrites a file under a new inode; a rename (each rotation renames
every numbered file) keeps all of it, and the index travels with the file, so the ctime,
which a rename sets, is not part of it. Any difference, and the file's index is opened
and checked as without a summary, and the entry replaced. (What this cannot see, as
make and rsync's quick check cannot: a rewrite in place to the same size whose mtime is
then set back. The id filter and block list are still checked against their CRC-32s
when read, and every block's text against the members table.) The id filter and the block
list are read from the file when first needed and checked against their CRC-32s, as when
the index is opened.

The summary is written whole to a new file and renamed over the old one (concurrent
writers: the last rename wins, each version is whole), and carries a CRC-32 of its
payload: a summary that is damaged, truncated, of another version or unreadable is
ignored (and rewritten), never an error. Only indexes that passed every check (and are
of this ``GRAMMAR``) are entered, of files not modified for ``RACY_NS`` (a rewrite
within the file system's clock tick could keep the mtime); a damaged index is reported
on every query.

Nothing is imported here that a query does not load already (``marshal`` is built in).
"""

from __future__ import annotations

import marshal
import os
import time
import zlib

from .indexformat import GRAMMAR, FileIndex
from .indexread import IndexDamaged, read_index, v3_index

MAGIC = b"TTSOPS-IDXSUM/1\n"
_VERSION = (1, GRAMMAR)
# a summary larger than this is not read (a directory of ~10 000 indexed files)
MAX_BYTES = 64 << 20

# a file modified less than this long ago is not entered: its mtime could stay the same
# through a rewrite within the file system's clock tick (git's "racy" entries)
RACY_NS = 2_000_000_000

Key = tuple  # (st_dev, st_ino)
Stamp = tuple  # (st_size, st_mtime_ns)


def summary_root() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                              ".cache")
    return os.path.join(base, "ttsops", "idxsum")


def summary_path(directory: str) -> str:
    """The summary file of a directory (its absolute path, as given, hashed)."""
    d = os.fsencode(os.path.abspath(directory))
    tag = f"{zlib.crc32(d) & 0xFFFFFFFF:08x}{zlib.adler32(d) & 0xFFFFFFFF:08x}"
    name = "".join(c if c.isalnum() or c in "-_." else "_"
                   for c in os.path.basename(os.path.abspath(directory)))[:40]
    return os.path.join(summary_root(), f"{name}-{tag}.sum")


def decode(data: bytes) -> dict | None:
    """The entries of a summary file's bytes; None when they are not a whole, current
    summary (damaged, truncated, another version)."""
    head = len(MAGIC) + 8
    if len(data) < head or data[:len(MAGIC)] != MAGIC:
        return None
    try:
        crc = int(data[len(MAGIC):head], 16)
    except ValueError:
        return None
    body = data[head:]
    if zlib.crc32(body) & 0xFFFFFFFF != crc:
        return None
    try:
        doc = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None
    if not isinstance(doc, tuple) or len(doc) != 2 or doc[0] != _VERSION or \
            not isinstance(doc[1], dict):
        return None
    return doc[1]


def encode(entries: dict) -> bytes:
    body = marshal.dumps((_VERSION, entries), 4)
    return MAGIC + b"%08x" % (zlib.crc32(body) & 0xFFFFFFFF) + body


def _valid_entry(e: object) -> bool:
    return isinstance(e, tuple) and len(e) == 4 and isinstance(e[0], str) and \
        isinstance(e[1], tuple) and isinstance(e[2], tuple) and len(e[2]) == 14 and \
        isinstance(e[3], bytes)


def _entry(name: str, stamp: tuple, parts: tuple) -> tuple:
    """(name, stamp, parts without the totals document, the document marshalled: decoded
    only for a file whose totals a query needs)."""
    return (name, stamp, (parts[0], None, *parts[2:]), marshal.dumps(parts[1], 4))


class DirSummary:
    """The summary of one directory, loaded on first use; ``save()`` writes it back when
    a query met files it did not describe (or described wrongly)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = summary_path(directory)
        self.entries: dict | None = None  # (dev, ino) -> (name, stamp, parts, doc)
        self.fresh: dict = {}  # entries made or confirmed by this process
        self.dirty = False
        self.hits = 0  # files answered from the summary

    def _load(self) -> dict:
        if self.entries is None:
            self.entries = read_summary(self.path) or {}
        return self.entries

    def index(self, where: str, fd: int) -> FileIndex | None:
        """The checked index of the open file ``fd`` (path ``where``): from the summary
        when its entry's identity is the file's, else read and checked from the file
        (and entered). ``IndexDamaged`` as ``read_index``."""
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        stamp = (st.st_size, st.st_mtime_ns)
        e = self._load().get(key)
        if e is not None and _valid_entry(e) and e[1] == stamp:
            self.hits += 1
            self.fresh[key] = e
            name = where.rpartition("/")[2]
            if e[0] != name:  # renamed (rotated): the same file
                self.fresh[key] = (name, *e[1:])
                self.dirty = True
            return from_parts(fd, e[2], e[3])
        idx = read_index(where, fd=fd)
        if idx is not None and idx.parts is not None and \
                time.time_ns() - st.st_mtime_ns >= RACY_NS:
            self.fresh[key] = _entry(where.rpartition("/")[2], stamp, idx.parts)
            self.dirty = True
        elif e is not None:
            self.dirty = True  # a stale entry: dropped at the next save
        return idx

    def save(self) -> None:
        """Write the summary (atomically; quietly not when the cache is not writable):
        this process's entries, and the others of the one on disk now whose file is
        still there, unchanged."""
        if not self.dirty:
            return
        self.dirty = False
        merged: dict = {}
        for key, e in (read_summary(self.path) or {}).items():
            if key in self.fresh or not _valid_entry(e):
                continue
            try:
                st = os.stat(os.path.join(self.directory, e[0]))
            except (OSError, ValueError):
                continue
            if (st.st_dev, st.st_ino) == key and \
                    (st.st_size, st.st_mtime_ns) == e[1]:
                merged[key] = e
        merged.update(self.fresh)
        write_summary(self.path, merged)


def from_parts(fd: int, parts: tuple, doc: bytes) -> FileIndex:
    """A ``FileIndex`` of checked parts and its marshalled totals document; its filter
    and block list read through ``fd`` when first needed (and checked against their
    CRC-32s)."""
    f_off, fl, b_off, b_len = parts[2], parts[3], parts[5], parts[6]

    def get_filter() -> bytes | None:
        try:
            return os.pread(fd, fl, f_off)
        except OSError:
            return None

    def get_blocks() -> bytes:
        try:
            return os.pread(fd, b_len, b_off)
        except OSError as e:
            raise IndexDamaged(f"the index's block list cannot be read ({e})") from None

    return v3_index(parts, lambda: marshal.loads(doc), get_filter, get_blocks)


def read_summary(path: str) -> dict | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size > MAX_BYTES:
            return None
        chunks = []
        while True:
            b = os.read(fd, max(size, 1 << 16))
            if not b:
                break
            chunks.append(b)
        return decode(b"".join(chunks))
    except OSError:
        return None
    finally:
        os.close(fd)


def write_summary(path: str, entries: dict) -> bool:
    """Write ``entries`` to a new file beside ``path`` and rename it over ``path``;
    False (and nothing left behind) when that fails."""
    tmp = f"{path}.{os.getpid()}.{id(entries):x}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            data = encode(entries)
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return True
    except (OSError, ValueError):
        try:  # noqa: SIM105 - no contextlib import on the query path (start-up)
            os.unlink(tmp)
        except OSError:
            pass
        return False


_open: dict[tuple[str, str], DirSummary] = {}


def summary_for(where: str) -> DirSummary:
    """The summary of the directory holding ``where`` (one per directory and cache, until
    ``save_all``)."""
    d = os.path.dirname(where) or "."
    k = (os.environ.get("XDG_CACHE_HOME") or "", d)
    s = _open.get(k)
    if s is None:
        s = _open[k] = DirSummary(d)
    return s


def save_all() -> None:
    """Write every summary a query changed, and forget them (``Snapshot.close``)."""
    while _open:
        _k, s = _open.popitem()
        s.save()
