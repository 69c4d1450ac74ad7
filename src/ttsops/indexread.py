"""Reading a file's embedded block index and checking it (``IndexDamaged`` when it fails a
check); the format is described in ``logindex``."""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable

from .indexformat import (
    FCOMMENT,
    GRAMMAR,
    INDEX_MAGIC,
    LEN_DIGITS,
    TAIL,
    V2_HEAD,
    V3_HEAD,
    BlockStats,
    Bloom,
    FileIndex,
    b64decode,
    checksum,
)


class IndexDamaged(ValueError):
    """The index does not match itself or the data it describes: not to be used."""


def read_index(path: str | os.PathLike[str], fd: int | None = None, *,
               legacy: bool = False) -> FileIndex | None:
    """The embedded index of a block-gzip file: None when there is none (no index member,
    not ours, one of version 1/2, which carry no checksum, or one whose counts another
    parser made (``indexformat.GRAMMAR``) - unless ``legacy``);
    ``IndexDamaged`` when there is one that fails its checks (see the module docstring).

    With ``fd`` (an open descriptor of the file) the file is read through it, now and
    when the lazily loaded parts are asked for later."""
    own = fd is None
    frame = b""
    try:
        if own:
            fd = os.open(path, os.O_RDONLY)
        assert fd is not None
        size = os.fstat(fd).st_size
        tail_len = len(TAIL) + LEN_DIGITS
        if size < tail_len + 10:
            return None
        read = _EndReader(fd, size)  # the index member is read in one go when it can be
        tail = read(tail_len, size - tail_len)
        if tail[LEN_DIGITS:] != TAIL or not tail[:LEN_DIGITS].isdigit():
            return None
        plen = int(tail[:LEN_DIGITS])
        start = size - tail_len - 1 - plen - len(INDEX_MAGIC) - 10
        if start < 0:
            return None
        head = read(10 + len(INDEX_MAGIC) + V3_HEAD, start)
        if head[:4] != b"\x1f\x8b\x08" + bytes([FCOMMENT]) or \
                head[10:10 + len(INDEX_MAGIC)] != INDEX_MAGIC:
            return None
        pstart = start + 10 + len(INDEX_MAGIC)
        frame = head[10 + len(INDEX_MAGIC):]
        if frame[:2] == b"3;":
            idx = _read_v3(path, fd, own, start, pstart, plen, frame, read)
            # counts made by another parser (``GRAMMAR``): not trusted for answers
            return idx if legacy or idx.grammar == GRAMMAR else None
        if not legacy:
            return None  # no checksum: not trusted for answers (``logs index`` upgrades it)
        if frame[:2] == b"2;":
            return _read_v2(path, fd, own, start, pstart, plen, frame)
        payload = os.pread(fd, plen, pstart)
        doc = json.loads(zlib.decompress(b64decode(payload)))
        # one JSON document: version 1 (and early version 2 builds): read, not current
        if doc.get("version") not in (1, 2) or doc["data_len"] != start:
            return None
        return FileIndex([BlockStats.from_json(b) for b in doc["blocks"]], doc["data_len"],
                         version=1)
    except IndexDamaged:
        raise
    except (OSError, ValueError, KeyError, TypeError, zlib.error) as e:
        if frame[:2] == b"3;":
            raise IndexDamaged(f"the index cannot be decoded ({type(e).__name__})") from None
        return None
    finally:
        if own and fd is not None:
            try:  # noqa: SIM105 - no contextlib import on the query path (start-up)
                os.close(fd)
            except OSError:
                pass


def _opener(path: str | os.PathLike[str], fd: int, own: bool) -> Callable[[], tuple[int, bool]]:
    def opened() -> tuple[int, bool]:
        if not own:
            return fd, False
        return os.open(path, os.O_RDONLY), True
    return opened


def _pread(opened: Callable[[], tuple[int, bool]], n: int, off: int) -> bytes:
    f, close = opened()
    try:
        return os.pread(f, n, off)
    finally:
        if close:
            os.close(f)


class _EndReader:
    """``os.pread(fd, n, off)`` served from one read of the file's last bytes where it
    can be (the index member and the last block's trailer usually lie there): one system
    call for most of an index, not one per part.

    How much is read is learnt: the files of one directory have indexes of about one
    size, so each read takes what the last index needed (``want``) and a margin, at
    most ``END_READ``; what lies before it is read by its own ``pread`` (copying 64 KiB
    for a 27 KiB index took half of opening it, 200 times a month)."""

    END_READ = 1 << 16
    want = END_READ  # the bytes at the end the last index read needed (learnt)

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.start = max(0, size - min(self.END_READ, _EndReader.want))
        self.end = b""

    @staticmethod
    def needed(size: int, first: int) -> None:
        """An index read used the bytes from ``first`` to the end: the next read takes
        as much and a quarter more (never more than ``END_READ``)."""
        need = size - first
        _EndReader.want = min(_EndReader.END_READ, max(4096, need + need // 4 + 512))

    def __call__(self, n: int, off: int) -> bytes:
        if off >= self.start and n >= 0:
            if not self.end:
                self.end = os.pread(self.fd, self.size - self.start, self.start)
            i = off - self.start
            if i + n <= len(self.end):
                return self.end[i:i + n]
        return os.pread(self.fd, n, off)


def _read_v3(path: str | os.PathLike[str], fd: int, own: bool, start: int, pstart: int,
             plen: int, frame: bytes, read: Callable[[int, int], bytes]) -> FileIndex:
    """Version 3: every part checked against its CRC, the members table against the data
    (tiling, and each member's trailer), before anything is believed."""
    parts, fbits, raw_blocks = v3_parts(fd, start, pstart, plen, frame, read)
    if isinstance(read, _EndReader):  # the last block's trailer and the index member
        _EndReader.needed(read.size, start - 8)
    doc = parts[1]
    return v3_index(parts, lambda: doc, lambda: fbits, lambda: raw_blocks)


# What a checked version 3 index is made from, without its id filter and block list
# (read when first needed): (data_len, totals document, filter offset, filter length,
# filter bits, block list offset, block list length, members table, the filter's and
# the block list's CRC-32, grammar, keeps failed lines, first and last record time).
# The directory summary (``logindex_summary``) keeps these per file (the totals
# document apart, decoded only for the files whose totals a query needs), so a query
# does not open and check an unchanged file's index again.
V3Parts = tuple


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def plain_b64(text: bytes) -> bool:
    """``text`` is base64 as ``b64encode`` writes it: whole groups of 4 characters of the
    alphabet, ``=`` only as the last group's padding. Only then is byte j of what it
    decodes to byte j % 3 of its group j // 3 (a line break anywhere shifts the groups,
    whatever the text's length; ``b64decode`` skips it)."""
    body = text.rstrip(b"=")
    return len(text) % 4 == 0 and len(text) - len(body) <= 2 and \
        not body.translate(None, _B64_ALPHABET)


def v3_parts(fd: int, start: int, pstart: int, plen: int, frame: bytes,
             read: Callable[[int, int], bytes]) -> tuple[V3Parts, bytes, bytes]:
    """The checked parts of a version 3 index, its filter text and its raw block list;
    ``IndexDamaged`` when any check fails."""
    digits = (frame[2:14], frame[15:27], frame[28:40])
    if frame[14:15] != b";" or frame[27:28] != b";" or frame[40:41] != b";" or \
            frame[49:50] != b";" or not all(d.isdigit() for d in digits):
        raise IndexDamaged("the index frame is malformed")
    hl, fl, nbits = (int(d) for d in digits)
    if V3_HEAD + hl + fl > plen:
        raise IndexDamaged("the index's parts are longer than the index")
    h_off = pstart + V3_HEAD
    h = read(hl, h_off)
    if checksum(h) != int(frame[41:49], 16):
        raise IndexDamaged("the index's totals fail their checksum")
    doc = json.loads(zlib.decompress(b64decode(h)))
    if doc.get("version") != 3:
        raise IndexDamaged(f"unknown index version {doc.get('version')!r}")
    if doc["data_len"] != start:
        raise IndexDamaged(f"the index describes {doc['data_len']} bytes of data, the file "
                           f"holds {start}")
    f_off, b_off, b_len = h_off + hl, h_off + hl + fl, plen - V3_HEAD - hl - fl
    fbits = read(fl, f_off)
    if checksum(fbits) != doc["crc_f"]:
        raise IndexDamaged("the index's id filter fails its checksum")
    raw_blocks = read(b_len, b_off)
    if checksum(raw_blocks) != doc["crc_b"]:
        raise IndexDamaged("the index's block list fails its checksum")
    members = [tuple(map(int, m)) for m in doc["members"]]
    if len(members) != doc["nblocks"]:
        raise IndexDamaged("the index's member table and block count disagree")
    check_members(fd, members, start, read)
    clean = nbits > 0 and plain_b64(fbits)
    have = (len(fbits) // 4 * 3 - fbits[-2:].count(b"=")) if clean else \
        len(b64decode(fbits)) if nbits > 0 else 0
    if nbits > 0 and have * 8 < nbits:
        raise IndexDamaged("the index's id filter is shorter than it says")
    return (start, doc, f_off, fl, nbits, b_off, b_len, members, doc["crc_f"],
            doc["crc_b"], int(doc.get("grammar", 0)), bool(doc.get("failed_lines")),
            doc.get("first_ts"), doc.get("last_ts")), fbits, raw_blocks


def v3_index(parts: V3Parts, get_doc: Callable[[], dict],
             get_filter: Callable[[], bytes | None],
             get_blocks: Callable[[], bytes]) -> FileIndex:
    """The ``FileIndex`` of checked parts (``parts[1]`` not used: ``get_doc`` gives the
    totals document); the totals, the id filter's text (``get_filter``: None when it
    cannot be had as checked, then every probe answers "maybe") and the block list
    (``get_blocks``) are asked for when first needed."""
    start, _doc, _f_off, _fl, nbits, _b_off, _b_len, members, crc_f, crc_b, grammar, \
        keeps_failed, first_ts, last_ts = parts
    filt: list[tuple[bytes, bytes, bool] | None] = []

    def load_blocks() -> list[BlockStats]:
        raw_blocks = get_blocks()
        if checksum(raw_blocks) != crc_b:
            raise IndexDamaged("the index's block list fails its checksum")
        blocks = [BlockStats.from_json(b) for b in
                  json.loads(zlib.decompress(b64decode(raw_blocks)))]
        if [(b.off, b.clen, b.ulen, b.crc) for b in blocks] != members:
            raise IndexDamaged("the index's blocks disagree with its member table")
        return blocks

    def probe(key: tuple[int, int]) -> bool:
        if nbits <= 0:
            return True
        if not filt:
            # the filter's bits are probed in its base64 text where it is plain (what the
            # writer writes: ``b64encode``, no line breaks), a 4-character group per
            # probe, instead of decoding ~10 KB per file to answer a few probes;
            # anything else is decoded whole
            fbits = get_filter()
            if fbits is None or checksum(fbits) != crc_f:
                filt.append(None)
            else:
                clean = plain_b64(fbits)
                filt.append((fbits, b"" if clean else b64decode(fbits), clean))
        f = filt[0]
        if f is None:
            return True
        fbits, bloom_bits, clean = f
        h1, h2 = key
        for i in range(Bloom.K):
            p = (h1 + i * h2) % nbits
            j = p >> 3
            if clean:  # byte j is byte j % 3 of the group of 4 characters j // 3
                g = j // 3 * 4
                grp = b64decode(fbits[g:g + 4])
                if j % 3 >= len(grp):
                    return True
                byte = grp[j % 3]
            else:
                if j >= len(bloom_bits):
                    return True
                byte = bloom_bits[j]
            if not byte & (1 << (p & 7)):
                return False
        return True

    def load_total() -> BlockStats:
        return BlockStats.from_json({"off": 0, "clen": 0, **get_doc()})

    idx = FileIndex(None, start, load_total=load_total, load_blocks=load_blocks,
                    probe=probe, nblocks=len(members), members=members, grammar=grammar,
                    keeps_failed=keeps_failed, span=(first_ts, last_ts))
    idx.parts = parts
    return idx


def check_members(fd: int, members: list[tuple[int, ...]], data_len: int,
                  read: Callable[[int, int], bytes] | None = None) -> None:
    """The members tile ``[0, data_len)`` in order, and each one's gzip trailer (its last
    8 bytes: CRC-32 and length of its text) is what the table says: 8 bytes read per
    member. ``IndexDamaged`` otherwise."""
    pos = 0
    for n, (off, clen, ulen, crc) in enumerate(members):
        if off != pos or clen < 20 or ulen < 0:
            raise IndexDamaged(f"block {n} of the index does not follow the one before it")
        trailer = read(8, off + clen - 8) if read is not None else \
            os.pread(fd, 8, off + clen - 8)
        if len(trailer) != 8 or struct.unpack("<II", trailer) != (crc, ulen & 0xFFFFFFFF):
            raise IndexDamaged(f"block {n} (bytes {off}-{off + clen}) does not match its "
                               "entry in the index (gzip trailer CRC-32/length)")
        pos = off + clen
    if pos != data_len:
        raise IndexDamaged(f"the index's blocks end at byte {pos}, the data at {data_len}")


def _read_v2(path: str | os.PathLike[str], fd: int, own: bool, start: int, pstart: int,
             plen: int, head: bytes) -> FileIndex | None:
    """Version 2 (no checksum): for ``logs index``, which keeps its blocks and checks the
    result against the data itself."""
    hl, fl = int(head[2:14]), int(head[15:27])
    if head[14:15] != b";" or head[27:28] != b";" or head[40:41] != b";" or \
            V2_HEAD + hl + fl > plen:
        return None
    h_off = pstart + V2_HEAD
    doc = json.loads(zlib.decompress(b64decode(os.pread(fd, hl, h_off))))
    if doc.get("version") != 2 or doc["data_len"] != start:
        return None
    total = BlockStats.from_json({"off": 0, "clen": 0, **doc})
    b_off, b_len = h_off + hl + fl, plen - V2_HEAD - hl - fl
    opened = _opener(path, fd, own)

    def load_blocks() -> list[BlockStats]:
        return [BlockStats.from_json(b) for b in
                json.loads(zlib.decompress(b64decode(_pread(opened, b_len, b_off))))]

    return FileIndex(None, start, total=total, load_blocks=load_blocks, probe=None,
                     nblocks=int(doc["nblocks"]), version=2)


def read_block(path: str | os.PathLike[str], block: BlockStats) -> bytes:
    """The uncompressed bytes of one indexed block (one gzip member)."""
    with open(path, "rb") as f:
        f.seek(block.off)
        raw = f.read(block.clen)
    return zlib.decompress(raw, 31)
