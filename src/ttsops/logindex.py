"""Block-gzip files and their embedded index.

A rotated log file is plain gzip written as independent members of about
``block_bytes`` uncompressed each (cut only at record boundaries, so a traceback stays
with its record), followed by one empty gzip member whose FCOMMENT header field carries
the index. ``zcat`` and ``gzip -t`` ignore the comment; the index travels with the file
through renames and copies. A file whose last member is not an index (written by someone
else, appended to, recompressed) simply has no index.

The index, per block: compressed offset and length, uncompressed length, lines, first and
last timestamp, counts by level, by event and by error/warning code, stage time sums,
cache hits, and a bloom filter of ids, request ids and trace ids. Per file: the totals.

Version 2 adds what ``ttsops logs window`` needs to answer a block from its index alone:
codes keyed by the level they were logged at (``ERROR:DISK_FULL``, ``WARNING:QUEUE_FULL``,
as the window counts them), ``synthesis_complete`` statuses and failure codes, and the
first few unparsable lines; later also, per block, the head lines of the
``synthesis_complete`` records that did not succeed (``failed``; an index without them
is read as before), from which ``logs patterns --where status=failed`` answers the block
without decompressing it.

Version 3 makes the index checkable, because answers come from it without reading the
data: a CRC-32 of each of its three parts (the totals' CRC in the frame, the bloom's and
the blocks' in the totals), and in the totals the table of data members (offset, length,
uncompressed length, CRC-32 of the text). Opening the index checks the parts' CRCs, that
the members tile the data exactly, and each member's gzip trailer (CRC-32 and ISIZE, 8
bytes read per block) against the table; reading a block checks its text against them
again. Any mismatch raises ``IndexDamaged``: the reader ignores the index of that file,
says so, and answers from the data. Indexes of versions 1 and 2 carry no checksum and are
not trusted for answers (``ttsops logs index`` upgrades them; ``legacy=True`` reads them
for that). The checksum guards against damage and against edits that do not know the
format; whoever can rewrite the index at will can rewrite the data as well.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Iterator

from .indexformat import (  # noqa: F401 -- the block index's names, importable from here
    EMPTY_DEFLATE,
    EXAMPLES_PER_BLOCK,
    FCOMMENT,
    ID_KEYS,
    INDEX_MAGIC,
    INDEX_VERSION,
    LEN_DIGITS,
    MIN_BLOCK_BYTES,
    BlockStats,
    Bloom,
    FileIndex,
    bloom_key,
    level_code,
    merge_stats,
)
from .indexread import IndexDamaged, check_members, read_block, read_index  # noqa: F401

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import BinaryIO, Protocol

    class Readable(Protocol):
        """What the writer reads from: a file, or a stream of checked decompressed text."""

        def read(self, n: int, /) -> bytes: ...


def deflate(data: bytes) -> bytes:
    """Raw deflate of a block (the writer's; isal, imported here: the readers of an
    index never compress)."""
    try:  # isal is several times faster than zlib and releases the GIL
        from isal import isal_zlib as z
    except ImportError:  # pragma: no cover - isal is a hard dependency; zlib keeps it working
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush()
    ic = z.compressobj(2, z.DEFLATED, -15)
    return ic.compress(data) + ic.flush()


def __getattr__(name: str) -> object:
    """``norm_ts``, kept importable from here (it lives in ``logformat.timestamps``;
    loaded when asked for: reading an index needs no timestamp grammar)."""
    if name == "norm_ts":
        from .logformat.timestamps import norm_ts

        return norm_ts
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def scan_lines(lines: Iterable[str]) -> BlockStats:
    """Statistics of a run of log lines, with the parser the readers use (the fast path
    ``logformat.fastparse``, property-tested equal to ``logformat.parse``)."""
    from .logformat.fastparse import iter_records as records
    from .logformat.timestamps import norm_ts
    from .logline import ReadStats
    lines = lines if isinstance(lines, list) else list(lines)
    st = BlockStats()
    keep_failed = True
    rs = ReadStats()
    lcodes, status, fcodes = st.lcodes, st.status, st.fcodes
    assert lcodes is not None and status is not None and fcodes is not None
    for rec in records(lines, rs):
        ts = rec.ts
        if ts[10:11] != " ":
            ts = rec.ts = norm_ts(ts)
        if st.first_ts is None or ts < st.first_ts:
            st.first_ts = ts
        if st.last_ts is None or ts > st.last_ts:
            st.last_ts = ts
        lvl = rec.level
        st.levels[lvl] += 1
        st.events[rec.event] += 1
        f = rec.fields
        code = f.get("error_code") or f.get("warning_code")
        if code:
            st.codes[code] += 1
        lc = level_code(lvl, f)
        if lc is not None:
            lcodes[f"{lvl}:{lc}"] += 1
        if rec.event == "synthesis_complete":
            keep_failed = keep_failed and bool(f.get("id"))
            s = f.get("status", "(none)")
            status[s] += 1
            if s == "failed":
                fcodes[f.get("error_code") or "(no code)"] += 1
        for k in ID_KEYS:
            v = f.get(k)
            if v:
                st.ids.add(v)
        if rec.event == "stage_time":
            ms = rec.num("duration_ms")
            stage = f.get("stage")
            if stage and ms is not None:
                acc = st.stages.setdefault(stage, [0, 0.0])
                acc[0] += 1
                acc[1] += ms
        elif rec.event == "synthesis_complete" and "cache_hit" in f:
            st.cache["hit" if f["cache_hit"] == "true" else "miss"] += 1
    st.failed = failed_heads(lines, sum(n for s, n in status.items() if s != "success")) \
        if keep_failed else None
    st.lines, st.records, st.skipped = rs.lines, rs.records, rs.skipped
    st.examples = rs.skipped_examples[:EXAMPLES_PER_BLOCK]
    st.bloom = Bloom.sized(len(st.ids))
    for i in st.ids:
        st.bloom.add(i)
    return st


def failed_heads(lines: list[str], n: int) -> list[str] | None:
    """The head lines of the ``n`` synthesis_complete records of ``lines`` whose status
    is not success, each as the readers parse it (every line that parses is a record's
    head); None if another number is found (kept only when exact)."""
    if n == 0:
        return []
    from .logformat.fastparse import parse_line

    out = []
    for raw in lines:
        if "synthesis_complete" not in raw or raw[:1] == "\t":
            continue
        line = raw.rstrip("\r\n")
        rec = parse_line(line)
        if rec is not None and rec.event == "synthesis_complete" and \
                rec.fields.get("status", "(none)") != "success":
            out.append(line)
    return out if len(out) == n else None


# --- writing ------------------------------------------------------------------------

def gzip_member(data: bytes, comment: bytes | None = None) -> bytes:
    """One complete gzip member (RFC 1952) holding ``data``."""
    flags = FCOMMENT if comment is not None else 0
    header = b"\x1f\x8b\x08" + bytes([flags]) + b"\x00\x00\x00\x00\x00\xff"
    if comment is not None:
        header += comment + b"\x00"
    body = deflate(data) if data else EMPTY_DEFLATE
    return header + body + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF,
                                       len(data) & 0xFFFFFFFF)


def index_member(index: FileIndex) -> bytes:
    payload = index.to_bytes()
    comment = INDEX_MAGIC + payload + b" " + str(len(payload)).zfill(LEN_DIGITS).encode()
    return gzip_member(b"", comment)


def check_block_bytes(block_bytes: int) -> int:
    """``block_bytes`` if a block writer may use it, else ValueError (see MIN_BLOCK_BYTES)."""
    if isinstance(block_bytes, bool) or not isinstance(block_bytes, int) or \
            block_bytes < MIN_BLOCK_BYTES:
        raise ValueError(f"block size must be an integer of at least {MIN_BLOCK_BYTES} "
                         f"bytes, not {block_bytes!r}")
    return block_bytes


def iter_blocks(src: Readable, block_bytes: int) -> Iterator[bytes]:
    """Chunks of about ``block_bytes`` cut where a new record starts (the byte after the
    newline is not a tab), so continuation lines stay with their record."""
    if block_bytes < 1:  # read(0) returns b"": the source would look empty
        raise ValueError(f"block size must be positive, not {block_bytes!r}")
    buf = b""
    while True:
        chunk = src.read(block_bytes)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= block_bytes:
            cut = _record_cut(buf, block_bytes)
            if cut < 0:
                break
            yield buf[:cut]
            buf = buf[cut:]
    if buf:
        yield buf


def _record_cut(buf: bytes, start: int) -> int:
    i = buf.find(b"\n", max(0, start - 1))
    while i >= 0:
        if i + 1 < len(buf) and buf[i + 1:i + 2] != b"\t":
            return i + 1
        if i + 1 >= len(buf):
            return -1
        i = buf.find(b"\n", i + 1)
    return -1


def _lines(block: bytes) -> list[str]:
    """Lines as grep and the readers see them: split on newline only."""
    text = block.decode("utf-8", "replace")
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n") if text else []


def write_block_gzip(src: Readable, dst: BinaryIO, block_bytes: int) -> FileIndex:
    """Compress ``src`` into ``dst`` as independent members plus the index member.
    ValueError (before anything is read or written) for ``block_bytes`` below
    ``MIN_BLOCK_BYTES``."""
    check_block_bytes(block_bytes)
    blocks: list[BlockStats] = []
    off = 0
    for block in iter_blocks(src, block_bytes):
        member = gzip_member(block)
        st = scan_lines(_lines(block))
        st.off, st.clen, st.ulen = off, len(member), len(block)
        st.crc = struct.unpack("<I", member[-8:-4])[0]  # the trailer's CRC-32 of the text
        dst.write(member)
        off += len(member)
        blocks.append(st)
    index = FileIndex(blocks, off)
    dst.write(index_member(index))
    return index


def compress_file(src: Path, dst: Path, block_bytes: int) -> FileIndex:
    """``src`` -> ``dst`` atomically: written to ``dst.part``, fsynced, renamed."""
    check_block_bytes(block_bytes)  # before a .part file exists
    part = dst.with_name(dst.name + ".part")
    with open(src, "rb") as fi, open(part, "wb") as fo:
        index = write_block_gzip(fi, fo, block_bytes)
        fo.flush()
        os.fsync(fo.fileno())
    os.replace(part, dst)
    return index
