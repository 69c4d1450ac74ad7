"""The block index's data model and its encoding: ``BlockStats`` per block, ``FileIndex``
per file, the bloom filter of ids and the framing constants (the format is described in
``logindex``, which writes it; ``indexread`` reads and checks it)."""

from __future__ import annotations

import binascii
import json
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from .plain import Plain

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any


def b64encode(data: bytes) -> bytes:
    """``base64.b64encode`` (binascii's own: the base64 module is not loaded)."""
    return binascii.b2a_base64(data, newline=False)


def b64decode(data: bytes | str) -> bytes:
    """``base64.b64decode`` (non-strict, as it is)."""
    return binascii.a2b_base64(data)


INDEX_MAGIC = b"TTSOPS-INDEX/1 "  # the framing; the payload carries its own version
INDEX_VERSION = 3
# The reading an index's counts, ids and skipped lines were made with: bump it whenever
# ``logformat`` changes what a line parses to (a level alias, a dialect, how a code is
# cut from free text). A version 3 index stamped with another grammar (or none: those
# written before the stamp) describes another parser's reading, so its counts and blooms
# are not trusted for answers (``indexread``) and ``logs index`` computes it anew.
# Sidecars (parsed records) carry it in their identity for the same reason.
GRAMMAR = 1
EXAMPLES_PER_BLOCK = 5
FCOMMENT = 0x10
EMPTY_DEFLATE = b"\x03\x00"
TAIL = b"\x00" + EMPTY_DEFLATE + b"\x00" * 8  # comment NUL, empty block, crc, isize
LEN_DIGITS = 12
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
        return f"{self.nbits}:" + b64encode(bytes(self.bits)).decode()

    @classmethod
    def decode(cls, text: str) -> Bloom:
        n, b = text.split(":", 1)
        return cls(int(n), bytearray(b64decode(b)))


try:  # the C module itself: hashlib's import also loads OpenSSL, slower to start
    from _blake2 import blake2b as _blake2b
except ImportError:  # pragma: no cover
    from hashlib import blake2b as _blake2b


def bloom_key(key: str) -> tuple[int, int]:
    d = _blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    h1, h2 = struct.unpack("<QQ", d)
    return h1, h2


# --- statistics of a run of lines ----------------------------------------------------

def _counter(d: dict[str, int]) -> Counter[str]:
    """``Counter(d)`` for a dict decoded from JSON, without ``Counter.update``'s checks
    (which are most of its cost: an index's totals hold ten of them, for each of ~200
    files a month)."""
    c: Counter[str] = Counter()
    dict.update(c, d)
    return c


class BlockStats(Plain):
    FIELDS = ("off", "clen", "ulen", "lines", "records", "skipped", "first_ts", "last_ts",
                 "levels", "events", "codes", "stages", "cache", "ids", "bloom", "lcodes",
                 "status", "fcodes", "examples", "crc", "failed")  # loaded: not shown
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
        # the head lines of its synthesis_complete records whose status is not success
        # (``logs patterns --where status=failed`` answers the block from them); None
        # when not kept: an index written before, or a block with a synthesis_complete
        # record without an id (one the patterns' join does not count)
        self.failed: list[str] | None = []

    @property
    def counted(self) -> bool:
        """True when the block's counts can stand in for reading it (version 2)."""
        return self.lcodes is not None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "off": self.off, "clen": self.clen, "ulen": self.ulen, "lines": self.lines,
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
        if self.failed is not None:
            d["failed"] = self.failed
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BlockStats:
        b = cls(d["off"], d["clen"], d["ulen"], d["lines"], d["records"], d["skipped"],
                d["first_ts"], d["last_ts"], _counter(d["levels"]), _counter(d["events"]),
                _counter(d["codes"]), d["stages"], _counter(d["cache"]))
        b.bloom = Bloom.decode(d["bloom"]) if d.get("bloom") else None
        b.loaded = True
        if "lcodes" in d:
            b.lcodes, b.status, b.fcodes = (_counter(d["lcodes"]), _counter(d["status"]),
                                            _counter(d["fcodes"]))
            b.examples = list(d.get("examples", ()))
        else:
            b.lcodes = b.status = b.fcodes = None
        b.crc = d.get("crc")
        failed = d.get("failed")
        b.failed = [str(x) for x in failed] if isinstance(failed, list) else None
        return b

    def may_contain(self, key: str) -> bool:
        return self.bloom is None or key in self.bloom

    def may_contain_key(self, key: tuple[int, int]) -> bool:
        return self.bloom is None or self.bloom.has_key(key)


def level_code(level: str, fields: dict[str, str]) -> str | None:
    """The code a record counts under at its level, as ``logs window`` counts it:
    ERROR/CRITICAL by error_code, WARNING by warning_code (else error_code); None for
    other levels."""
    if level in ("ERROR", "CRITICAL"):
        return fields.get("error_code") or "(no code)"
    if level == "WARNING":
        return fields.get("warning_code") or fields.get("error_code") or "(no code)"
    return None


def merge_stats(blocks: Iterable[BlockStats]) -> BlockStats:
    """The totals of several blocks (offsets and blooms left out)."""
    t = BlockStats()
    t.failed = None  # a block's own (not summed)
    for b in blocks:
        tl, ts, tf = t.lcodes, t.status, t.fcodes  # None together: t not counted
        if b.counted and tl is not None and ts is not None and tf is not None:
            tl.update(b.lcodes)
            ts.update(b.status)
            tf.update(b.fcodes)
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
                 members: list[tuple[int, ...]] | None = None,
                 grammar: int = GRAMMAR, keeps_failed: bool = True,
                 load_total: Callable[[], BlockStats] | None = None,
                 span: tuple[str | None, str | None] | None = None) -> None:
        self._blocks = blocks
        self._load_total = load_total
        # (first, last) record time of the file, known without decoding its totals
        self._span = span
        self.nblocks = len(blocks) if blocks is not None else (nblocks or 0)
        self.data_len = data_len  # compressed bytes before the index member
        self._total = total
        self._load = load_blocks
        self._probe = probe
        self.version = version
        self.grammar = grammar  # the reading its counts come from (``GRAMMAR``)
        # its blocks keep their failed syntheses' lines (``BlockStats.failed``): False
        # for an index written before they were (``logs index`` adds them)
        self.keeps_failed = keeps_failed
        # (offset, length, text length, text CRC-32) of each data member, checked against
        # the data when read (version 3); None when not known
        # a version 3 index read from a file: its checked parts (``indexread.v3_parts``),
        # which the directory summary keeps (``logindex_summary``)
        self.parts: tuple | None = None
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
            self._total = self._load_total() if self._load_total is not None else \
                merge_stats(self.blocks)
        return self._total

    @property
    def span(self) -> tuple[str | None, str | None]:
        """(first, last) record time of the file: its totals' ``first_ts``, ``last_ts``,
        without decoding the totals where they are known apart."""
        if self._span is None:
            t = self.total
            self._span = (t.first_ts, t.last_ts)
        return self._span

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
        for k in ("off", "clen", "bloom", "crc", "failed"):
            head.pop(k, None)
        head.update(version=INDEX_VERSION, grammar=GRAMMAR, failed_lines=self.keeps_failed,
                    data_len=self.data_len,
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
        f = b64encode(bytes(fb.bits))
        blocks = b64encode(zlib.compress(json.dumps(
            [b.to_json() for b in self.blocks]).encode(), 6))
        head.update(crc_f=checksum(f), crc_b=checksum(blocks))
        h = b64encode(zlib.compress(json.dumps(head).encode(), 6))
        return b"3;%012d;%012d;%012d;%08x;" % (len(h), len(f), fb.nbits, checksum(h)) + \
            h + f + blocks


V2_HEAD = 2 + 3 * 13  # "2;" + three "<12 digits>;"
V3_HEAD = V2_HEAD + 9  # and "<crc32 of H: 8 hex digits>;"


def checksum(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF
