"""Gzip inflation and cutting text into whole-record chunks, for ``reader``.

The inflate module (isal's when installed, else zlib) is chosen once, when first data is
read; a damaged gzip stream becomes ``Problem``s with the times bounding the hole, and
reading resumes at the next member. ``Cutter`` hands out pieces that end where a record
starts. Private to the reading layer: ``reader`` (and ``coverage``, ``indexer``) use it.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Generator, Iterator

from .logfiles import Problem

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

    from .logfiles import LogFile
    from .reader import ReadCounters

_ZLIB: list[Any] = []


def zlib_module(small: bool = False) -> tuple[Any, tuple[type[BaseException], ...]]:
    """(the inflate module, the errors it raises): isal's (several times faster than
    zlib, and it releases the GIL), imported when first data is read -- an answer from
    the index inflates nothing. ``small``: the caller's whole read is a few blocks
    (``SMALL_READ``), which the standard zlib, loaded already, inflates in less time than
    importing isal takes -- unless isal is loaded already."""
    if small and not _ZLIB:
        return zlib, (zlib.error,)
    if not _ZLIB:
        try:
            from isal import isal_zlib as z

            _ZLIB.extend((z, (zlib.error, z.error)))
        except ImportError:  # pragma: no cover
            _ZLIB.extend((zlib, (zlib.error,)))
    return _ZLIB[0], _ZLIB[1]


READ_BYTES = 1 << 20  # text per chunk handed out
# a read of at most this many compressed bytes (a query's window ends, a trace's blocks)
# is inflated by the standard zlib: importing isal costs ~2-3 ms, inflating 1 MiB of text
# with zlib ~1-2 ms more than with isal
SMALL_READ = 256 << 10
INFLATE_OUT = 256 << 10  # text per inflate call (cache-sized pieces: 2x faster)
GZ_READ = 192 << 10  # compressed bytes per read of an unindexed .gz (~1.5 MiB of text)
MAX_PENDING = 16 << 20
GZ_MAGIC = b"\x1f\x8b\x08"




def record_cut(buf: bytes | bytearray) -> int:
    """Index just after the last newline that is followed by a record start (a byte
    that is not a tab), or -1. The bytes before it are whole records."""
    i = buf.rfind(b"\n", 0, len(buf) - 1)
    while i >= 0:
        if buf[i + 1] != 9:  # not "\t"
            return i + 1
        i = buf.rfind(b"\n", 0, i)
    return -1


class Cutter:
    """Turns decompressed pieces into whole-record chunks, copying as little as it can:
    a piece that ends with a newline is handed out as it is once the next piece turns out
    to start a record (block gzip: every member does); otherwise the piece is cut after
    its last record start and the tail carried over (one copy). Pieces without any
    record start are held (up to ``MAX_PENDING``)."""

    def __init__(self, counters: ReadCounters, target: int = READ_BYTES) -> None:
        self.pending: list[bytes] = []  # not yet handed out, in order
        self.size = 0
        self.counters = counters
        self.target = target  # text per chunk handed out (about)

    def _out(self, data: bytes) -> bytes:
        self.counters.bytes_text += len(data)
        return data

    def feed(self, data: bytes) -> bytes | None:
        if not data:
            return None
        out = None
        if self.pending and self.pending[-1].endswith(b"\n") and data[0] != 9:
            # everything pending ends where a record starts: hand it out whole
            out = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
            self.pending, self.size = [], 0
            if len(out) < self.target // 4:  # too small to bother: keep collecting
                self.pending, self.size = [out], len(out)
                out = None
        self.pending.append(data)
        self.size += len(data)
        if out is not None or self.size < self.target or data.endswith(b"\n"):
            return self._out(out) if out is not None else None
        cut = record_cut(data)
        if cut <= 0:
            if self.size < MAX_PENDING:
                return None
            buf = b"".join(self.pending)
            cut = buf.rfind(b"\n") + 1 or len(buf)  # junk without records
            self.pending = [buf[cut:]] if cut < len(buf) else []
            self.size = len(buf) - cut
            return self._out(buf[:cut])
        head = self.pending[:-1]
        joined = b"".join((*head, memoryview(data)[:cut])) if head else data[:cut]
        rest = data[cut:]
        self.pending, self.size = ([rest], len(rest)) if rest else ([], 0)
        return self._out(joined)

    def finish(self, keep_partial: bool) -> bytes | None:
        """The rest; a last line without its newline is kept only when ``keep_partial``
        (a damaged member's or a line still being written is dropped)."""
        data = b"".join(self.pending)
        self.pending, self.size = [], 0
        if not data.endswith(b"\n") and not keep_partial:
            nl = data.rfind(b"\n")
            data = data[:nl + 1] if nl >= 0 else b""
        if not data:
            return None
        return self._out(data)


# the header of every data member ``logindex.gzip_member`` writes (no flags, no time)
BLOCK_SIG = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
WINDOW = 8 << 20
MEMBER_SLACK = 64 << 10


def block_members(f: LogFile, counters: ReadCounters, cutter: Cutter,
                   size: int) -> Generator[bytes, None, int]:
    """A block-gzip file without its index (lost, or ignored with --no-index): members
    are found by their header and each inflated in one call -- no stream state, no
    copies. Returns the offset where it stopped (the index member, anything unexpected,
    damage), from which the careful stream reader goes on; ``size`` when done."""
    _z, _ZERRORS = zlib_module()
    pos = 0
    bufsize = (1 << 20) + MEMBER_SLACK  # the sink's default block size, then the last's
    while pos < size:
        win = os.pread(f.fd, WINDOW, pos)
        if not win.startswith(BLOCK_SIG):
            return pos
        counters.bytes_compressed += len(win)
        starts = []
        i = 0
        while i >= 0:
            starts.append(i)
            i = win.find(BLOCK_SIG, i + 1)
        last = pos + len(win) >= size
        ends = starts[1:] + ([len(win)] if last else [])
        if not ends:  # one member larger than the window: the stream reader takes it
            counters.bytes_compressed -= len(win)
            return pos
        mv = memoryview(win)
        for a, b in zip(starts, ends, strict=False):
            # fast: one call into an output buffer of about a member's size (no growing
            # and copying); it is this whole member when the gzip trailer's ISIZE in the
            # segment's last 4 bytes is the length inflated (trailing bytes would be
            # ignored by decompress: those segments go the careful way below)
            try:
                out = _z.decompress(mv[a:b], 31, bufsize)
            except _ZERRORS:
                out = None
            if out is not None and b - a >= 18 and \
                    int.from_bytes(mv[b - 4:b], "little") == len(out) & 0xFFFFFFFF:
                bufsize = len(out) + MEMBER_SLACK
                chunk = cutter.feed(out)
                if chunk:
                    yield chunk
                continue
            d = _z.decompressobj(31)
            try:
                out = d.decompress(mv[a:b])
            except _ZERRORS:
                counters.bytes_compressed -= len(win) - a
                return pos + a
            if not d.eof or (d.unused_data and b < len(win)):
                counters.bytes_compressed -= len(win) - a
                return pos + a  # not one whole member: let the stream reader judge
            chunk = cutter.feed(out)
            if chunk:
                yield chunk
            if d.unused_data:  # more after the last data member (the index member)
                if last and not d.unused_data.strip(b"\x00"):
                    return size  # zero padding at the end (tape-style): ignored
                rest = b - len(d.unused_data)
                counters.bytes_compressed -= len(win) - rest
                return pos + rest
        pos += ends[-1]
        counters.bytes_compressed -= len(win) - ends[-1]
    return pos


_TS_TEXT = re.compile(rb"(?m)^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d{3})")
_TS_JSON = re.compile(rb'"(?:ts|asctime|timestamp|time)"\s*:\s*"(\d{4}-\d\d-\d\d[ T][^"]{8,})"')


EDGE_TEXT = 65536  # text looked at for the record time at an edge of a hole


def tail_text(chunks: list[bytes], rest: bytes | None) -> bytes:
    """The last ``EDGE_TEXT`` bytes of the text read: the chunks handed out, then
    ``rest`` (whatever the chunk size, the same bytes)."""
    return b"".join([*chunks, rest or b""])[-EDGE_TEXT:]


def edge_ts(buf: bytes | None, last: bool) -> str | None:
    """The first (or last) record time in ``buf`` (text or JSON lines), as log text;
    for the bounds of a hole left by damage."""
    if not buf:
        return None
    part = buf[-EDGE_TEXT:] if last else buf[:EDGE_TEXT]
    found: list[bytes] = []
    for rx in (_TS_TEXT, _TS_JSON):
        ms = rx.findall(part)
        if ms:
            found.append(ms[-1] if last else ms[0])
    if not found:
        return None
    from ...logformat.timestamps import norm_ts

    ts = [norm_ts(x.decode("ascii", "replace"))[:23] for x in found]
    return max(ts) if last else min(ts)


def stream_gz(f: LogFile, problems: list[Problem],
               counters: ReadCounters) -> Iterator[bytes]:
    """The chunks of a gzip file; a damaged region becomes a Problem whose ``hole``
    holds the times of the records just before and just after it."""
    last: list[bytes] = []  # the last chunks handed out (their last EDGE_TEXT bytes)
    hole: list[Problem | None] = [None]  # waits for the first record after the damage
    after: list[bytes] = []  # text read since the damage, until its first record time
    waiting: Problem | None = None  # the damage ``after`` is for
    for chunk in stream_gz_raw(f, problems, counters, last, hole):
        if hole[0] is not None:
            if hole[0] is not waiting:  # a new damage: its text starts here
                waiting, after = hole[0], []
            after.append(chunk)
            text = b"".join(after)[:EDGE_TEXT]
            first = edge_ts(text, last=False)
            if first is not None or len(text) >= EDGE_TEXT:
                h = hole[0].hole or (None, None)
                hole[0].hole = (h[0], first)
                hole[0] = None
                after = []
        last.append(chunk)
        while len(last) > 1 and sum(map(len, last)) - len(last[0]) >= EDGE_TEXT:
            del last[0]
        yield chunk


def stream_gz_raw(f: LogFile, problems: list[Problem], counters: ReadCounters,
                   last: list[bytes], hole: list[Problem | None]) -> Iterator[bytes]:
    _z, _ZERRORS = zlib_module()
    cutter = Cutter(counters, INFLATE_OUT)  # chunks of one piece: copies stay in cache
    size = os.fstat(f.fd).st_size
    pos = 0  # file offset of the next read
    if size and os.pread(f.fd, len(BLOCK_SIG), 0) == BLOCK_SIG:
        pos = yield from block_members(f, counters, cutter, size)
    member = pos  # file offset where the current member starts
    fed = 0  # bytes fed into the current decompressor
    d = _z.decompressobj(31)
    buf = b""
    # Text is inflated in pieces of at most INFLATE_OUT (cache-sized pieces whose memory
    # is reused: one big output per read faults in fresh pages, 2-3x slower), but handed
    # on per input as one call would have: the pieces of an input that turns out damaged
    # are dropped with it, so what is read does not depend on the piece size.
    more = False  # the last call filled its piece: the decompressor may hold more text
    held: list[bytes] = []  # pieces of the current input, handed on when it is done
    call_buf, call_fed = buf, fed  # the current input whole, and ``fed`` before it
    while True:
        if not buf and not more:
            try:
                buf = os.pread(f.fd, GZ_READ, pos)
            except OSError as e:
                problems.append(Problem(f.where, f"read error at byte {pos}: {e}"))
                break
            if not buf:
                break
            pos += len(buf)
            counters.bytes_compressed += len(buf)
            call_buf, call_fed = buf, fed
        try:
            out = d.decompress(buf, INFLATE_OUT)
        except _ZERRORS as e:
            held = []
            buf, fed = call_buf, call_fed
            rest = cutter.finish(keep_partial=False)
            if rest:
                yield rest
            before = edge_ts(tail_text(last, rest), last=True)
            nxt = find_member(f.fd, member + 1, size)
            what = "is not gzip data" if member == 0 and fed == 0 and pos <= READ_BYTES \
                and not buf.startswith(GZ_MAGIC) else f"is corrupt at the member starting at " \
                f"byte {member} ({e})"
            if nxt < 0:
                problems.append(Problem(f.where, f"{what}; read everything before it",
                                        hole=(before, None)))
                return
            problems.append(Problem(f.where, f"{what}; skipped {nxt - member} bytes to "
                                                 f"the next gzip member at byte {nxt}",
                                    hole=(before, None)))
            hole[0] = problems[-1]
            member = pos = nxt
            buf, fed, more = b"", 0, False
            call_buf, call_fed = buf, fed
            d = _z.decompressobj(31)
            continue
        tail = d.unconsumed_tail
        fed += len(buf) - len(tail)
        more = len(out) == INFLATE_OUT and not d.eof
        if out:
            held.append(out)
        if d.eof or not (tail or more):  # the input is done (as one call would be)
            for piece in held:
                chunk = cutter.feed(piece)
                if chunk:
                    yield chunk
            held = []
        if d.eof:
            buf = d.unused_data
            member = pos - len(buf)
            fed = 0
            d = _z.decompressobj(31)
            if buf and not buf.strip(b"\x00"):
                buf = b""  # zero padding after the last member (tape-style): ignored
            call_buf, call_fed = buf, fed
        else:
            buf = tail
    rest = cutter.finish(keep_partial=not fed)
    if rest:
        yield rest
    if fed:
        problems.append(Problem(f.where, f"truncated: the gzip member starting at byte "
                                             f"{member} ends at byte {size} before its end; "
                                             "read everything before the damage",
                                hole=(edge_ts(tail_text(last, rest), last=True), None)))


def find_member(fd: int, start: int, size: int) -> int:
    """Offset of the next gzip member header at or after ``start`` whose data inflates."""
    _z, _ZERRORS = zlib_module()
    pos = start
    while pos < size:
        block = os.pread(fd, READ_BYTES + 2, pos)
        if not block:
            return -1
        i = block.find(GZ_MAGIC)
        while i >= 0:
            cand = pos + i
            probe = os.pread(fd, 65536, cand)
            try:
                _z.decompressobj(31).decompress(probe)
                return cand
            except _ZERRORS:
                i = block.find(GZ_MAGIC, i + 1)
        pos += READ_BYTES
    return -1


def stream_plain(f: LogFile, counters: ReadCounters) -> Iterator[bytes]:
    cutter = Cutter(counters)
    pos = 0
    while True:
        data = os.pread(f.fd, READ_BYTES, pos)
        if not data:
            break
        pos += len(data)
        counters.bytes_compressed += len(data)
        chunk = cutter.feed(data)
        if chunk:
            yield chunk
    # the live file's last line may be half-written right now: leave it for next time
    rest = cutter.finish(keep_partial=f.role != "live")
    if rest:
        yield rest
