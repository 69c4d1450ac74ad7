"""What time span the log files cover (cheaply: index, or the first and last lines)."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from .logfiles import LogFile, Snapshot


def _first_last_plain(fd: int, size: int) -> tuple[str | None, str | None]:
    from ...logformat.parse import parse

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


HEAD_TEXT = 1 << 16  # text looked at for a file's first record


def _gz_head(fd: int, want: int = HEAD_TEXT) -> bytes:
    """The first ``want`` bytes of text of a gzip file (across members), or what could be
    inflated before damage: a few pread calls, never the whole file."""
    from ._inflate import zlib_module

    _z, _ZERRORS = zlib_module()

    out: list[bytes] = []
    have = 0
    pos = 0
    d = _z.decompressobj(31)
    while have < want:
        buf = os.pread(fd, 16384, pos)
        if not buf:
            break
        pos += len(buf)
        while buf and have < want:
            try:
                piece = d.decompress(buf, want - have)
            except _ZERRORS:
                return b"".join(out)
            out.append(piece)
            have += len(piece)
            buf = d.unconsumed_tail
            if d.eof:
                buf = d.unused_data
                if not buf.strip(b"\x00"):
                    buf = b""
                d = _z.decompressobj(31)
    return b"".join(out)


def first_ts(f: LogFile) -> str | None:
    """The time of the first record of a file, cheaply (its index, or its first lines)."""
    try:
        if f.gz:
            idx = f.get_index()
            if idx is not None:
                return idx.span[0]
            head = _gz_head(f.fd)
        else:
            head = os.pread(f.fd, HEAD_TEXT, 0)
    except OSError:
        return None
    from ...logformat.parse import parse
    from ...logformat.timestamps import norm_ts

    lines = head.decode("utf-8", "replace").split("\n")
    for ln in lines[:-1] if len(lines) > 1 else lines:
        rec = parse(ln)
        if rec:
            return norm_ts(rec.ts) if rec.ts[10:11] != " " else rec.ts
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
                a, b = idx.span
            elif not f.gz:
                a, b = _first_last_plain(f.fd, os.fstat(f.fd).st_size)
        except OSError:
            continue
        if a and (lo is None or a < lo):
            lo = a
        if b and (hi is None or b > hi):
            hi = b
    return lo, hi
