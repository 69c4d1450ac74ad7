"""What time span the log files cover (cheaply: index, or the first and last lines)."""

from __future__ import annotations

import os

from ..logline import parse
from .sources import LogFile, Snapshot


def _first_last_plain(fd: int, size: int) -> tuple[str | None, str | None]:
    first = last = None
    head = os.pread(fd, 65536, 0).decode("utf-8", "replace").split("\n")
    for ln in head:
        rec = parse(ln)
        if rec:
            first = rec.ts
            break
    tail = os.pread(fd, 65536, max(0, size - 65536)).decode("utf-8", "replace").split("\n")
    for ln in reversed(tail):
        rec = parse(ln)
        if rec:
            last = rec.ts
            break
    return first, last


def first_ts(f: LogFile) -> str | None:
    """The time of the first record of a file, cheaply (its index, or its first lines)."""
    try:
        if f.gz:
            idx = f.get_index()
            if idx is not None:
                return idx.total.first_ts
            from .reader import ReadCounters, _stream_gz

            for chunk in _stream_gz(f, [], ReadCounters()):
                for ln in chunk[:65536].decode("utf-8", "replace").split("\n"):
                    rec = parse(ln)
                    if rec:
                        return rec.ts
                return None
            return None
        return _first_last_plain(f.fd, os.fstat(f.fd).st_size)[0]
    except OSError:
        return None


def coverage(snap: Snapshot) -> tuple[str | None, str | None]:
    """(earliest, latest) record time over the files that tell it cheaply."""
    lo: str | None = None
    hi: str | None = None
    for f in snap.files:
        a = b = None
        try:
            idx = f.get_index() if f.gz else None
            if idx is not None:
                t = idx.total
                a, b = t.first_ts, t.last_ts
            elif not f.gz:
                a, b = _first_last_plain(f.fd, os.fstat(f.fd).st_size)
        except OSError:
            continue
        if a and (lo is None or a < lo):
            lo = a
        if b and (hi is None or b > hi):
            hi = b
    return lo, hi
