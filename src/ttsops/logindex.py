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
first few unparsable lines.

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

import binascii
import json
import os
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from .plain import Plain

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, BinaryIO


def _deflate(data: bytes) -> bytes:
    """Raw deflate of a block (the writer's; isal, imported here: the readers of an
    index never compress)."""
    try:  # isal is several times faster than zlib and releases the GIL
        from isal import isal_zlib as z

        c = z.compressobj(2, z.DEFLATED, -15)
    except ImportError:  # pragma: no cover - isal is a hard dependency; zlib keeps it working
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _b64encode(data: bytes) -> bytes:
    """``base64.b64encode`` (binascii's own: the base64 module is not loaded)."""
    return binascii.b2a_base64(data, newline=False)


def _b64decode(data: bytes | str) -> bytes:
    """``base64.b64decode`` (non-strict, as it is)."""
    return binascii.a2b_base64(data)


INDEX_MAGIC = b"TTSOPS-INDEX/1 "  # the framing; the payload carries its own version
INDEX_VERSION = 3
EXAMPLES_PER_BLOCK = 5
_FCOMMENT = 0x10
_EMPTY_DEFLATE = b"\x03\x00"
_TAIL = b"\x00" + _EMPTY_DEFLATE + b"\x00" * 8  # comment NUL, empty block, crc, isize
_LEN_DIGITS = 12
# the fields that carry an id (``logs trace`` matches these, by equality, and nothing else):
# the synthesis id, request id and W3C trace id of every record, the synthesis request id
# a web page report names (webui_event), the synthesis a dead or killed worker was running
ID_KEYS = ("id", "request_id", "trace_id", "synthesis_request_id", "job")
# the smallest gzip member a block writer accepts: TTSOPS_LOG_BLOCK_BYTES's own bound
# (config.Settings.log_block_bytes, ge=1024). Smaller blocks only bloat the index; a
# block size of 0 read nothing and wrote an empty file in place of the log.
MIN_BLOCK_BYTES = 1024


# --- bloom filter -------------------------------------------------------------------

class Bloom:
    """A plain bloom filter, ~1% false positives at the sized capacity."""

    K = 7

    def __init__(self, nbits: int, bits: bytearray | None = None) -> None:
        self.nbits = max(64, nbits)
        self.bits = bits if bits is not None else bytearray((self.nbits + 7) // 8)

    @classmethod
    def sized(cls, n: int) -> Bloom:
        return cls(int(max(n, 1) * 10))

    def _positions(self, key: str) -> Iterator[int]:
        h1, h2 = bloom_key(key)
        for i in range(self.K):
            yield (h1 + i * h2) % self.nbits

    def has_key(self, key: tuple[int, int]) -> bool:
        """``key in self`` for a key hashed once with ``bloom_key`` (many blocks, one id)."""
        h1, h2 = key
        n, bits = self.nbits, self.bits
        for i in range(self.K):
            p = (h1 + i * h2) % n
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
        return True

    def add(self, key: str) -> None:
        for p in self._positions(key):
            self.bits[p >> 3] |= 1 << (p & 7)

    def __contains__(self, key: str) -> bool:
        return all(self.bits[p >> 3] & (1 << (p & 7)) for p in self._positions(key))

    def encode(self) -> str:
        return f"{self.nbits}:" + _b64encode(bytes(self.bits)).decode()

    @classmethod
    def decode(cls, text: str) -> Bloom:
        n, b = text.split(":", 1)
        return cls(int(n), bytearray(_b64decode(b)))


try:  # the C module itself: hashlib's import also loads OpenSSL, slower to start
    from _blake2 import blake2b as _blake2b
except ImportError:  # pragma: no cover
    from hashlib import blake2b as _blake2b


def bloom_key(key: str) -> tuple[int, int]:
    d = _blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    h1, h2 = struct.unpack("<QQ", d)
    return h1, h2


# --- statistics of a run of lines ----------------------------------------------------

class BlockStats(Plain):
    FIELDS = ("off", "clen", "ulen", "lines", "records", "skipped", "first_ts", "last_ts",
                 "levels", "events", "codes", "stages", "cache", "ids", "bloom", "lcodes",
                 "status", "fcodes", "examples", "crc")  # loaded: not shown
    __slots__ = COMPARE = (*FIELDS, "loaded")

    def __init__(self, off: int = 0, clen: int = 0, ulen: int = 0, lines: int = 0,
                 records: int = 0, skipped: int = 0, first_ts: str | None = None,
                 last_ts: str | None = None, levels: Counter[str] | None = None,
                 events: Counter[str] | None = None, codes: Counter[str] | None = None,
                 stages: dict[str, list[float]] | None = None,
                 cache: Counter[str] | None = None, ids: set[str] | None = None,
                 bloom: Bloom | None = None) -> None:
        self.off = off  # compressed offset of the member
        self.clen = clen  # compressed length
        self.ulen = ulen  # uncompressed length
        self.lines = lines
        self.records = records
        self.skipped = skipped
        self.first_ts = first_ts
        self.last_ts = last_ts
        self.levels: Counter[str] = Counter() if levels is None else levels
        self.events: Counter[str] = Counter() if events is None else events
        self.codes: Counter[str] = Counter() if codes is None else codes
        # stage -> [n, sum_ms]
        self.stages: dict[str, list[float]] = {} if stages is None else stages
        self.cache: Counter[str] = Counter() if cache is None else cache  # hit / miss
        self.ids: set[str] = set() if ids is None else ids
        self.bloom = bloom
        # version 2: what a window count needs (None in a version 1 index)
        self.lcodes: Counter[str] | None = Counter()  # "LEVEL:code" -> n
        self.status: Counter[str] | None = Counter()  # complete status -> n
        self.fcodes: Counter[str] | None = Counter()  # failed complete code -> n
        self.examples: list[str] = []  # first unparsable lines
        self.loaded = False  # read from an index (ids unknown)
        self.crc: int | None = None  # CRC-32 of the block's text (version 3)

    @property
    def counted(self) -> bool:
        """True when the block's counts can stand in for reading it (version 2)."""
        return self.lcodes is not None

    def to_json(self) -> dict[str, Any]:
        d = {"off": self.off, "clen": self.clen, "ulen": self.ulen, "lines": self.lines,
             "records": self.records, "skipped": self.skipped, "first_ts": self.first_ts,
             "last_ts": self.last_ts, "levels": dict(self.levels),
             "events": dict(self.events), "codes": dict(self.codes),
             "stages": self.stages, "cache": dict(self.cache),
             "bloom": self.bloom.encode() if self.bloom else None,
             "lcodes": dict(self.lcodes or {}), "status": dict(self.status or {}),
             "fcodes": dict(self.fcodes or {})}
        if self.examples:
            d["examples"] = self.examples
        if self.crc is not None:
            d["crc"] = self.crc
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BlockStats:
        b = cls(d["off"], d["clen"], d["ulen"], d["lines"], d["records"], d["skipped"],
                d["first_ts"], d["last_ts"], Counter(d["levels"]), Counter(d["events"]),
                Counter(d["codes"]), d["stages"], Counter(d["cache"]))
        b.bloom = Bloom.decode(d["bloom"]) if d.get("bloom") else None
        b.loaded = True
        if "lcodes" in d:
            b.lcodes, b.status, b.fcodes = (Counter(d["lcodes"]), Counter(d["status"]),
                                            Counter(d["fcodes"]))
            b.examples = list(d.get("examples", ()))
        else:
            b.lcodes = b.status = b.fcodes = None
        b.crc = d.get("crc")
        return b

    def may_contain(self, key: str) -> bool:
        return self.bloom is None or key in self.bloom

    def may_contain_key(self, key: tuple[int, int]) -> bool:
        return self.bloom is None or self.bloom.has_key(key)


def __getattr__(name: str) -> object:
    """``norm_ts``, kept importable from here (it lives in ``logformat.timestamps``;
    loaded when asked for: reading an index needs no timestamp grammar)."""
    if name == "norm_ts":
        from .logformat.timestamps import norm_ts

        return norm_ts
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def level_code(level: str, fields: dict[str, str]) -> str | None:
    """The code a record counts under at its level, as ``logs window`` counts it:
    ERROR/CRITICAL by error_code, WARNING by warning_code (else error_code); None for
    other levels."""
    if level in ("ERROR", "CRITICAL"):
        return fields.get("error_code") or "(no code)"
    if level == "WARNING":
        return fields.get("warning_code") or fields.get("error_code") or "(no code)"
    return None


def scan_lines(lines: Iterable[str]) -> BlockStats:
    """Statistics of a run of log lines, with the parser the readers use (the fast path
    ``logformat.fastparse``, property-tested equal to ``logformat.parse``)."""
    from .logformat.fastparse import iter_records as records
    from .logformat.timestamps import norm_ts
    from .logline import ReadStats
    st = BlockStats()
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
    st.lines, st.records, st.skipped = rs.lines, rs.records, rs.skipped
    st.examples = rs.skipped_examples[:EXAMPLES_PER_BLOCK]
    st.bloom = Bloom.sized(len(st.ids))
    for i in st.ids:
        st.bloom.add(i)
    return st


def merge_stats(blocks: Iterable[BlockStats]) -> BlockStats:
    """The totals of several blocks (offsets and blooms left out)."""
    t = BlockStats()
    for b in blocks:
        if b.counted and t.counted:
            t.lcodes.update(b.lcodes)  # type: ignore[union-attr,arg-type]
            t.status.update(b.status)  # type: ignore[union-attr,arg-type]
            t.fcodes.update(b.fcodes)  # type: ignore[union-attr,arg-type]
        else:
            t.lcodes = t.status = t.fcodes = None
        t.ulen += b.ulen
        t.lines += b.lines
        t.records += b.records
        t.skipped += b.skipped
        t.levels.update(b.levels)
        t.events.update(b.events)
        t.codes.update(b.codes)
        t.cache.update(b.cache)
        for s, (n, ms) in b.stages.items():
            acc = t.stages.setdefault(s, [0, 0.0])
            acc[0] += n
            acc[1] += ms
        if b.first_ts and (t.first_ts is None or b.first_ts < t.first_ts):
            t.first_ts = b.first_ts
        if b.last_ts and (t.last_ts is None or b.last_ts > t.last_ts):
            t.last_ts = b.last_ts
    return t


class FileIndex:
    """The index of one file: per-block statistics, the file's totals and (version 2) a
    file-wide bloom filter of ids. Read from a file, the block list is decoded only when
    asked for (``blocks``) and the file bloom is probed with a few small reads, so a query
    touches only the indexes of the files that matter to it."""

    def __init__(self, blocks: list[BlockStats] | None = None, data_len: int = 0, *,
                 total: BlockStats | None = None,
                 load_blocks: Callable[[], list[BlockStats]] | None = None,
                 probe: Callable[[tuple[int, int]], bool] | None = None,
                 version: int = INDEX_VERSION, nblocks: int | None = None,
                 members: list[tuple[int, ...]] | None = None) -> None:
        self._blocks = blocks
        self.nblocks = len(blocks) if blocks is not None else (nblocks or 0)
        self.data_len = data_len  # compressed bytes before the index member
        self._total = total
        self._load = load_blocks
        self._probe = probe
        self.version = version
        # (offset, length, text length, text CRC-32) of each data member, checked against
        # the data when read (version 3); None when not known
        self.members = members if members is not None else (
            [(b.off, b.clen, b.ulen, b.crc) for b in blocks]
            if blocks is not None and all(b.crc is not None for b in blocks) else None)

    @property
    def blocks(self) -> list[BlockStats]:
        if self._blocks is None:
            assert self._load is not None
            self._blocks = self._load()
        return self._blocks

    @property
    def total(self) -> BlockStats:
        if self._total is None:
            self._total = merge_stats(self.blocks)
        return self._total

    def may_contain_key(self, key: tuple[int, int]) -> bool:
        """False when no block of the file can hold the id (file-wide bloom)."""
        return True if self._probe is None else self._probe(key)

    def to_bytes(self) -> bytes:
        """The payload of the index member (version 3)::

            3;<len H:12>;<len F:12>;<nbits F:12>;<crc32 H:8 hex>;H F B

        H = base64(zlib(json totals, with the members table and the CRC-32 of F and of
        B)), F = base64(file bloom bits), B = base64(zlib(json blocks)). Fixed-width
        lengths let a reader fetch H alone, and decode B only when it needs the blocks."""
        t = merge_stats(self.blocks)
        head = t.to_json()
        for k in ("off", "clen", "bloom", "crc"):
            head.pop(k, None)
        head.update(version=INDEX_VERSION, data_len=self.data_len,
                    nblocks=len(self.blocks),
                    members=[[b.off, b.clen, b.ulen, b.crc] for b in self.blocks])
        ids: set[str] = set()
        for b in self.blocks:
            ids |= b.ids
        fb = Bloom.sized(len(ids))
        for i in ids:
            fb.add(i)
        if any(b.loaded for b in self.blocks):  # ids not known: no file bloom (nbits 0)
            fb = Bloom(64)
            fb.nbits = 0
        f = _b64encode(bytes(fb.bits))
        blocks = _b64encode(zlib.compress(json.dumps(
            [b.to_json() for b in self.blocks]).encode(), 6))
        head.update(crc_f=_crc(f), crc_b=_crc(blocks))
        h = _b64encode(zlib.compress(json.dumps(head).encode(), 6))
        return b"3;%012d;%012d;%012d;%08x;" % (len(h), len(f), fb.nbits, _crc(h)) + \
            h + f + blocks


# --- writing ------------------------------------------------------------------------

def gzip_member(data: bytes, comment: bytes | None = None) -> bytes:
    """One complete gzip member (RFC 1952) holding ``data``."""
    flags = _FCOMMENT if comment is not None else 0
    header = b"\x1f\x8b\x08" + bytes([flags]) + b"\x00\x00\x00\x00\x00\xff"
    if comment is not None:
        header += comment + b"\x00"
    body = _deflate(data) if data else _EMPTY_DEFLATE
    return header + body + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF,
                                       len(data) & 0xFFFFFFFF)


def index_member(index: FileIndex) -> bytes:
    payload = index.to_bytes()
    comment = INDEX_MAGIC + payload + b" " + str(len(payload)).zfill(_LEN_DIGITS).encode()
    return gzip_member(b"", comment)


def check_block_bytes(block_bytes: int) -> int:
    """``block_bytes`` if a block writer may use it, else ValueError (see MIN_BLOCK_BYTES)."""
    if isinstance(block_bytes, bool) or not isinstance(block_bytes, int) or \
            block_bytes < MIN_BLOCK_BYTES:
        raise ValueError(f"block size must be an integer of at least {MIN_BLOCK_BYTES} "
                         f"bytes, not {block_bytes!r}")
    return block_bytes


def iter_blocks(src: BinaryIO, block_bytes: int) -> Iterator[bytes]:
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


def write_block_gzip(src: BinaryIO, dst: BinaryIO, block_bytes: int) -> FileIndex:
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


# --- reading ------------------------------------------------------------------------

_V2_HEAD = 2 + 3 * 13  # "2;" + three "<12 digits>;"
_V3_HEAD = _V2_HEAD + 9  # and "<crc32 of H: 8 hex digits>;"


class IndexDamaged(ValueError):
    """The index does not match itself or the data it describes: not to be used."""


def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def read_index(path: str | os.PathLike[str], fd: int | None = None, *,
               legacy: bool = False) -> FileIndex | None:
    """The embedded index of a block-gzip file: None when there is none (no index member,
    not ours, or one of version 1/2, which carry no checksum - unless ``legacy``);
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
        tail_len = len(_TAIL) + _LEN_DIGITS
        if size < tail_len + 10:
            return None
        read = _EndReader(fd, size)  # the index member is read in one go when it can be
        tail = read(tail_len, size - tail_len)
        if tail[_LEN_DIGITS:] != _TAIL or not tail[:_LEN_DIGITS].isdigit():
            return None
        plen = int(tail[:_LEN_DIGITS])
        start = size - tail_len - 1 - plen - len(INDEX_MAGIC) - 10
        if start < 0:
            return None
        head = read(10 + len(INDEX_MAGIC) + _V3_HEAD, start)
        if head[:4] != b"\x1f\x8b\x08" + bytes([_FCOMMENT]) or \
                head[10:10 + len(INDEX_MAGIC)] != INDEX_MAGIC:
            return None
        pstart = start + 10 + len(INDEX_MAGIC)
        frame = head[10 + len(INDEX_MAGIC):]
        if frame[:2] == b"3;":
            return _read_v3(path, fd, own, start, pstart, plen, frame, read)
        if not legacy:
            return None  # no checksum: not trusted for answers (``logs index`` upgrades it)
        if frame[:2] == b"2;":
            return _read_v2(path, fd, own, start, pstart, plen, frame)
        payload = os.pread(fd, plen, pstart)
        doc = json.loads(zlib.decompress(_b64decode(payload)))
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
    """``os.pread(fd, n, off)`` served from one read of the file's last ``END_READ``
    bytes where it can be (the index member and the last block's trailer usually lie
    there): one system call for most of an index, not one per part."""

    END_READ = 1 << 16

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.start = max(0, size - self.END_READ)
        self.end = b""

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
    digits = (frame[2:14], frame[15:27], frame[28:40])
    if frame[14:15] != b";" or frame[27:28] != b";" or frame[40:41] != b";" or \
            frame[49:50] != b";" or not all(d.isdigit() for d in digits):
        raise IndexDamaged("the index frame is malformed")
    hl, fl, nbits = (int(d) for d in digits)
    if _V3_HEAD + hl + fl > plen:
        raise IndexDamaged("the index's parts are longer than the index")
    h_off = pstart + _V3_HEAD
    h = read(hl, h_off)
    if _crc(h) != int(frame[41:49], 16):
        raise IndexDamaged("the index's totals fail their checksum")
    doc = json.loads(zlib.decompress(_b64decode(h)))
    if doc.get("version") != 3:
        raise IndexDamaged(f"unknown index version {doc.get('version')!r}")
    if doc["data_len"] != start:
        raise IndexDamaged(f"the index describes {doc['data_len']} bytes of data, the file "
                           f"holds {start}")
    f_off, b_off, b_len = h_off + hl, h_off + hl + fl, plen - _V3_HEAD - hl - fl
    fbits = read(fl, f_off)
    if _crc(fbits) != doc["crc_f"]:
        raise IndexDamaged("the index's id filter fails its checksum")
    raw_blocks = read(b_len, b_off)
    if _crc(raw_blocks) != doc["crc_b"]:
        raise IndexDamaged("the index's block list fails its checksum")
    members = [tuple(int(x) for x in m) for m in doc["members"]]
    if len(members) != doc["nblocks"]:
        raise IndexDamaged("the index's member table and block count disagree")
    check_members(fd, members, start, read)
    total = BlockStats.from_json({"off": 0, "clen": 0, **doc})
    bloom_bits = _b64decode(fbits) if nbits > 0 else b""
    if nbits > 0 and len(bloom_bits) * 8 < nbits:
        raise IndexDamaged("the index's id filter is shorter than it says")

    def load_blocks() -> list[BlockStats]:
        blocks = [BlockStats.from_json(b) for b in
                  json.loads(zlib.decompress(_b64decode(raw_blocks)))]
        if [(b.off, b.clen, b.ulen, b.crc) for b in blocks] != members:
            raise IndexDamaged("the index's blocks disagree with its member table")
        return blocks

    def probe(key: tuple[int, int]) -> bool:
        if nbits <= 0:
            return True
        h1, h2 = key
        for i in range(Bloom.K):
            p = (h1 + i * h2) % nbits
            if not bloom_bits[p >> 3] & (1 << (p & 7)):
                return False
        return True

    return FileIndex(None, start, total=total, load_blocks=load_blocks, probe=probe,
                     nblocks=int(doc["nblocks"]), members=members)


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
            _V2_HEAD + hl + fl > plen:
        return None
    h_off = pstart + _V2_HEAD
    doc = json.loads(zlib.decompress(_b64decode(os.pread(fd, hl, h_off))))
    if doc.get("version") != 2 or doc["data_len"] != start:
        return None
    total = BlockStats.from_json({"off": 0, "clen": 0, **doc})
    b_off, b_len = h_off + hl + fl, plen - _V2_HEAD - hl - fl
    opened = _opener(path, fd, own)

    def load_blocks() -> list[BlockStats]:
        return [BlockStats.from_json(b) for b in
                json.loads(zlib.decompress(_b64decode(_pread(opened, b_len, b_off))))]

    return FileIndex(None, start, total=total, load_blocks=load_blocks, probe=None,
                     nblocks=int(doc["nblocks"]), version=2)


def read_block(path: str | os.PathLike[str], block: BlockStats) -> bytes:
    """The uncompressed bytes of one indexed block (one gzip member)."""
    with open(path, "rb") as f:
        f.seek(block.off)
        raw = f.read(block.clen)
    return zlib.decompress(raw, 31)
