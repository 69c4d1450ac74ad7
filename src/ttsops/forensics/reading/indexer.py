"""``logs index``: give rotated ``.gz`` files a block index once, so later queries skip
what they do not need.

* A file without an index (written by another program, recompressed, index lost) is
  recompressed as block gzip with the embedded index (``logindex.write_block_gzip``):
  still ordinary gzip, the same bytes out of ``zcat``.
* A file with an older index (versions 1 and 2, which carry no checksum and are not
  trusted for answers; a version 3 index whose counts another parser made,
  ``indexformat.GRAMMAR``, or that does not keep its blocks' failed syntheses' lines)
  keeps its compressed blocks; only the index member is computed anew. A file whose
  index fails its checks (damaged, tampered with) is recompressed from its data.
* A file that is damaged (truncated, corrupt) is left as it is and reported: rewriting
  would drop the unreadable part for good.

The new file is written beside the old one (``.part``), fsynced, checked, given the old
file's mode and times, and renamed over it: a reader that has the old file open keeps
reading the old file. The check does not trust the writer: both files are decompressed
again, member by member, and the new one must give exactly as many bytes as the original,
with the same CRC-32, and its index must count that many; otherwise the original stays.
A directory whose ttsops writer is running (``.app.log.lock`` held) is refused: its
rotation renames files underneath us.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ...indexformat import GRAMMAR
from ...logindex import (
    INDEX_VERSION,
    FileIndex,
    IndexDamaged,
    check_block_bytes,
    index_member,
    read_block,
    read_index,
    scan_lines,
    write_block_gzip,
)
from ._inflate import zlib_module

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .logfiles import Problem

LOCK_NAME = ".app.log.lock"
_VERIFY_READ = 1 << 20


class IndexError_(Exception):
    """Cannot index here (a live writer, nothing to index): a message, exit 2."""


@dataclass
class Result:
    path: str
    status: str  # indexed | reindexed | up to date | damaged | not gzip | error
    blocks: int = 0
    text_bytes: int = 0
    seconds: float = 0.0
    detail: str = ""


def _index_version(path: Path) -> int | None:
    """0 when the file has no index, -1 when it has a damaged one, 2 for a version 3 one
    that another parser made or without the failed syntheses' lines (its blocks are kept,
    its counts computed anew), else its version."""
    try:
        idx = read_index(path, legacy=True)
    except IndexDamaged:
        return -1
    if idx is None:
        return 0
    if idx.version == INDEX_VERSION and (idx.grammar != GRAMMAR or not idx.keeps_failed):
        return 2
    return idx.version


class _Stream:
    """A file-like ``read(n)`` over the checked decompressed bytes of a gzip file."""

    def __init__(self, path: Path) -> None:
        from ._inflate import stream_gz
        from .logfiles import LogFile
        from .reader import ReadCounters

        self.fd = os.open(path, os.O_RDONLY)
        st = os.fstat(self.fd)
        self.problems: list[Problem] = []
        f = LogFile(path, "file", 0, path.name, True, self.fd, st.st_size,
                    (st.st_dev, st.st_ino))
        self.it: Iterator[bytes] = stream_gz(f, self.problems, ReadCounters())
        self.buf = b""
        self.total = 0

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            nxt = next(self.it, None)
            if nxt is None:
                break
            self.buf += nxt
        out, self.buf = self.buf[:n], self.buf[n:]
        self.total += len(out)
        return out

    def close(self) -> None:
        os.close(self.fd)


def gunzip_sum(path: Path) -> tuple[int, int]:
    """(decompressed length, CRC-32 of the decompressed bytes) of a whole gzip file, every
    member, read on its own (neither the indexing reader nor the writer is involved).
    ValueError when the file does not end at the end of a member; zero padding between or
    after members is skipped (as the reader skips it)."""
    _z = zlib_module()[0]
    size = crc = 0
    d = _z.decompressobj(31)
    started = False  # bytes fed into ``d``
    with open(path, "rb") as f:
        while chunk := f.read(_VERIFY_READ):
            while chunk:
                if not started and not chunk.strip(b"\x00"):
                    break
                out = d.decompress(chunk)
                started = True
                size += len(out)
                crc = zlib.crc32(out, crc)
                if d.eof:
                    chunk = d.unused_data
                    d = _z.decompressobj(31)
                    started = False
                else:
                    chunk = b""
    if started:
        raise ValueError("ends inside a gzip member")
    return size, crc


def _verify(original: Path, part: Path, new: FileIndex) -> str | None:
    """None when ``part`` holds exactly the original's text (length and CRC-32 of both
    decompressed anew, and the new index's count); else why it must not replace it."""
    errors: tuple[type[BaseException], ...] = (ValueError, *zlib_module()[1])
    try:
        osize, ocrc = gunzip_sum(original)
    except errors as e:
        return f"cannot decompress the original to check the copy ({e}); left as it is"
    try:
        nsize, ncrc = gunzip_sum(part)
    except errors as e:
        return f"the new file does not decompress ({e}); left as it is"
    if nsize != osize or ncrc != ocrc:
        return (f"the new file decompresses to {nsize} bytes (crc32 {ncrc:08x}), the "
                f"original to {osize} (crc32 {ocrc:08x}); left as it is")
    if new.total.ulen != osize:
        return f"the new index counts {new.total.ulen} bytes of {osize}; left as it is"
    return None


MOVED = "renamed while being indexed (a rotation); left as it is: index it again"


def _replace(path: Path, part: Path, was: os.stat_result) -> bool:
    """Put ``part`` in place of ``path``; False (``part`` removed) when ``path`` is no
    longer the file that was read (``was``): a rotation renamed it away meanwhile and the
    path names another file, which the copy must not overwrite."""
    st = os.stat(path)
    if (st.st_dev, st.st_ino) != (was.st_dev, was.st_ino):
        os.unlink(part)
        return False
    os.chmod(part, st.st_mode & 0o7777)
    os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(part, path)
    return True


def index_file(path: str, block_bytes: int = 1 << 19, force: bool = False) -> Result:
    """Give one ``.gz`` file a current index (see the module docstring). ValueError for
    a ``block_bytes`` no block writer accepts (before the file is touched)."""
    check_block_bytes(block_bytes)
    p = Path(path)
    t0 = time.monotonic()
    part = p.with_name(p.name + ".index.part")
    try:
        with open(p, "rb") as fh:
            was = os.fstat(fh.fileno())
            magic = fh.read(2)
        if magic != b"\x1f\x8b":
            return Result(path, "not gzip", detail="not a gzip file; left as it is")
        version = _index_version(p)
        if version == INDEX_VERSION and not force:
            idx = read_index(p)
            assert idx is not None
            return Result(path, "up to date", len(idx.blocks), idx.total.ulen,
                          time.monotonic() - t0)
        if version in (1, 2) and not force:  # keep the blocks, compute the index anew
            old = read_index(p, legacy=True)
            assert old is not None
            blocks = []
            for b in old.blocks:
                data = read_block(p, b)
                text = data.decode("utf-8", "replace")
                st = scan_lines((text[:-1] if text.endswith("\n") else text).split("\n")
                                if text else [])
                st.off, st.clen, st.ulen = b.off, b.clen, b.ulen
                st.crc = zlib.crc32(data) & 0xFFFFFFFF
                blocks.append(st)
            new = FileIndex(blocks, old.data_len)
            with open(p, "rb") as src, open(part, "wb") as dst:
                left = old.data_len
                while left > 0:
                    chunk = src.read(min(left, 8 << 20))
                    if not chunk:
                        raise OSError(f"{p} shrank while being indexed")
                    dst.write(chunk)
                    left -= len(chunk)
                dst.write(index_member(new))
                dst.flush()
                os.fsync(dst.fileno())
            bad = _verify(p, part, new)
            if bad is not None:
                os.unlink(part)
                return Result(path, "error", detail=bad)
            if not _replace(p, part, was):
                return Result(path, "moved", detail=MOVED)
            return Result(path, "reindexed", len(blocks), new.total.ulen,
                          time.monotonic() - t0, f"index version {old.version} -> "
                          f"{INDEX_VERSION}; blocks kept" if old.version != INDEX_VERSION
                          else f"counts of another parser (grammar {old.grammar}) "
                          f"computed anew; blocks kept" if old.grammar != GRAMMAR
                          else "failed syntheses' lines added; blocks kept")
        stream = _Stream(p)
        try:
            with open(part, "wb") as dst:
                new = write_block_gzip(stream, dst, block_bytes)
                dst.flush()
                os.fsync(dst.fileno())
        finally:
            stream.close()
        if stream.problems:
            os.unlink(part)
            return Result(path, "damaged", detail="; ".join(x.message for x in stream.problems)
                          + "; left as it is (rewriting would drop the unreadable part)")
        bad = _verify(p, part, new)
        if bad is not None:
            os.unlink(part)
            return Result(path, "error", detail=bad)
        if not _replace(p, part, was):
            return Result(path, "moved", detail=MOVED)
        return Result(path, "indexed", len(new.blocks), new.total.ulen,
                      time.monotonic() - t0, "recompressed as block gzip")
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(part)
        return Result(path, "error", detail=str(e))


def candidates(dirs: list[str], files: list[str]) -> list[Path]:
    """The rotated gzip files of each directory -- logrotate's ``app.log-YYYYMMDD.gz``
    (dateext; by name, which is oldest first), then ``app.log.N.gz`` (oldest first) --
    then ``files``."""
    from ._naming import DATEEXT_RE, ROTATED_RE

    out: list[Path] = []
    for d in dirs:
        dp = Path(d)
        if not dp.is_dir():
            raise IndexError_(f"log directory {dp} does not exist")
        names = os.listdir(dp)
        out.extend(dp / n for n in sorted(names)
                   if (m := DATEEXT_RE.match(n)) and m.group(2))
        rot = sorted(((int(m.group(1)), dp / n) for n in names
                      if (m := ROTATED_RE.match(n)) and int(m.group(1)) > 0), reverse=True)
        out.extend(p for _, p in rot)
    for f in files:
        fp = Path(f)
        if not fp.is_file():
            raise IndexError_(f"log file {fp} does not exist")
        out.append(fp)
    return out


@contextlib.contextmanager
def writer_locks(paths: list[Path]) -> Iterator[None]:
    """Hold the ttsops writer lock of every directory involved (refuse if a writer runs)."""
    fds: list[int] = []
    try:
        for d in sorted({p.parent.resolve() for p in paths}):
            lock = d / LOCK_NAME
            if not lock.exists():
                continue
            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise IndexError_(
                    f"a ttsops writer is running in {d} (it holds {LOCK_NAME}); its "
                    "rotation renames these files: stop it, or copy the files elsewhere and "
                    "index the copies") from None
            fds.append(fd)
        yield
    finally:
        for fd in fds:
            os.close(fd)


def index_and_sidecar(path: str, block_bytes: int = 1 << 19, force: bool = False,
                      ) -> Result:
    """``index_file``, then the file's sidecar (its parsed records, ``sidecar.py``)
    beside it when it has none: what every later whole-data command reads instead of
    decompressing and parsing the file."""
    r = index_file(path, block_bytes, force)
    if r.status in ("indexed", "reindexed", "up to date"):
        from . import sidecar
        from .scan import Scan

        t0 = time.monotonic()
        if sidecar.build_path(Path(path), Scan.of_file) is not None:
            r.seconds += time.monotonic() - t0
            r.detail = "; ".join(x for x in (r.detail, "sidecar written") if x)
    return r


def run(paths: list[Path], *, block_bytes: int = 1 << 19, force: bool = False,
        jobs: int = 1, on_done: object = None) -> list[Result]:
    """Index ``paths`` with ``jobs`` processes; ``on_done(result)`` after each file.
    IndexError_ for a block size no block writer accepts (nothing is touched)."""
    try:
        check_block_bytes(block_bytes)
    except ValueError as e:
        raise IndexError_(f"--block-bytes: {e}") from None
    results: list[Result] = []
    with writer_locks(paths):
        if jobs <= 1 or len(paths) <= 1:
            for p in paths:
                r = index_and_sidecar(str(p), block_bytes, force)
                results.append(r)
                if callable(on_done):
                    on_done(r)
            return results
        import multiprocessing as mp

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as ex:
            futs = [ex.submit(index_and_sidecar, str(p), block_bytes, force)
                    for p in paths]
            for fut in futs:
                r = fut.result()
                results.append(r)
                if callable(on_done):
                    on_done(r)
    return results
