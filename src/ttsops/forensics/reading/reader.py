"""One log file's bytes as text chunks that hold whole records.

* An indexed block-gzip file is read block by block (one gzip member each, cut at
  record boundaries by the writer): blocks outside the time window, or whose bloom
  filter holds none of the wanted ids, are not even decompressed.
* Any other gzip file is streamed member by member; a plain file in large reads.
  Chunks are cut where a line that is not a continuation (tab-led) starts.
* Damage never raises: a truncated member, corrupt data or a file that is not gzip at
  all becomes a ``Problem``; everything before it is returned, and after corruption
  reading resumes at the next gzip member when there is one.
* Chunks are bytes (``iter_byte_chunks``, ``file_units``): the scan searches literals in
  the raw bytes and decodes only what it keeps. ``file_units`` splits a file into units
  that ``parallel.ReadAhead`` reads on several threads (runs of index blocks; an unindexed
  file is one unit).
"""


from __future__ import annotations

import os
from collections.abc import Iterator

from ...logindex import BlockStats, IndexDamaged, bloom_key
from ...plain import Plain
from ._inflate import stream_gz, stream_plain, zlib_module
from .logfiles import LogFile, Problem
from .parallel import Unit

SEGMENT_BYTES = 8 << 20  # uncompressed bytes of index blocks per read-ahead unit


class ReadCounters(Plain):
    """What a scan cost: for --stats, tests and the query planner (``vars()`` of it is
    its fields, for the JSON answers)."""

    FIELDS = ("files", "blocks_read", "blocks_skipped", "blocks_from_index",
              "bytes_compressed", "bytes_text")

    def __init__(self, files: int = 0, blocks_read: int = 0, blocks_skipped: int = 0,
                 blocks_from_index: int = 0, bytes_compressed: int = 0,
                 bytes_text: int = 0) -> None:
        self.files = files
        self.blocks_read = blocks_read
        self.blocks_skipped = blocks_skipped
        self.blocks_from_index = blocks_from_index  # answered from the index's counts
        self.bytes_compressed = bytes_compressed
        self.bytes_text = bytes_text

    def add(self, other: ReadCounters) -> None:
        for k in self.FIELDS:
            setattr(self, k, getattr(self, k) + getattr(other, k))


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def select_blocks(f: LogFile, counters: ReadCounters, since: str | None,
                  until: str | None, ids: tuple[str, ...] | None,
                  exclude: frozenset[int] = frozenset()) -> list[tuple[int, BlockStats]]:
    """(number, block) of the index blocks that may hold records of the window and ids;
    ``exclude``: blocks answered from the index (counted, not read)."""
    index = f.get_index()
    assert index is not None
    out: list[tuple[int, BlockStats]] = []
    keys = [bloom_key(x) for x in ids] if ids else None
    # the file's time span: skip the whole file without its block list (or its totals)
    first, last = index.span
    if (since is not None and last is not None and last < since) or \
            (until is not None and first is not None and first >= until) or \
            (keys and not any(index.may_contain_key(k) for k in keys)):
        counters.blocks_skipped += index.nblocks
        return out
    for i, b in enumerate(index.blocks):
        if i in exclude:
            counters.blocks_from_index += 1
            continue
        if (since is not None and b.last_ts is not None and b.last_ts < since) or \
                (until is not None and b.first_ts is not None and b.first_ts >= until) or \
                (b.first_ts is None and b.skipped == 0) or \
                (keys and not any(b.may_contain_key(k) for k in keys)):
            counters.blocks_skipped += 1
            continue
        out.append((i, b))
    return out


def read_blocks(f: LogFile, blocks: list[tuple[int, BlockStats]], problems: list[Problem],
                counters: ReadCounters, small: bool = False) -> Iterator[bytes]:
    """The uncompressed bytes of each block (one pread + one inflate each); ``small``:
    part of a read of a few blocks in all (``_inflate.zlib_module``)."""
    if not blocks:  # all answered from the index: inflate nothing, import nothing
        return
    _z, _ZERRORS = zlib_module(small)
    for i, b in blocks:
        try:
            raw = os.pread(f.fd, b.clen, b.off)
            # an output buffer of the block's size: no growing and copying (~2x faster)
            data = _z.decompress(raw, 31, b.ulen + 64)
        except _ZERRORS as e:
            problems.append(Problem(f.where, f"block {i} (bytes {b.off}-{b.off + b.clen})"
                                    f" is corrupt ({e}); its {b.lines} lines skipped, "
                                    "the other blocks read", b.lines,
                                    hole=(b.first_ts, b.last_ts)))
            continue
        except OSError as e:
            problems.append(Problem(f.where, f"read error in block {i}: {e}", b.lines,
                                    hole=(b.first_ts, b.last_ts)))
            continue
        counters.blocks_read += 1
        counters.bytes_compressed += len(raw)
        counters.bytes_text += len(data)
        if data:
            yield data


def _guarded(f: LogFile, problems: list[Problem], it: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from it
    except OSError as e:
        problems.append(Problem(f.where, f"read error: {e}"))


def file_units(f: LogFile, *, since: str | None = None, until: str | None = None,
               ids: tuple[str, ...] | None = None, use_index: bool = True,
               segment_bytes: int = SEGMENT_BYTES,
               exclude: frozenset[int] = frozenset()) -> list[Unit[bytes]]:
    """The file as units of work for ``parallel.ReadAhead``, in order. Each unit's
    ``state["counters"]`` holds what reading it cost; ``unit.problems`` what went wrong.
    An indexed file is cut into runs of blocks (pruned by window and ids); any other
    file is one unit."""
    head = ReadCounters(files=1)
    blocks: list[tuple[int, BlockStats]] | None = None
    if f.gz and use_index and f.get_index() is not None:
        try:
            blocks = select_blocks(f, head, since, until, ids, exclude)
        except IndexDamaged as e:  # its block list disagrees with its checked table
            f.index_damaged(str(e))
            head = ReadCounters(files=1)
    if blocks is not None:
        runs: list[list[tuple[int, BlockStats]]] = [[]]
        size = 0
        for ib in blocks:
            if runs[-1] and size + ib[1].ulen > segment_bytes:
                runs.append([])
                size = 0
            runs[-1].append(ib)
            size += ib[1].ulen
        units: list[Unit[bytes]] = []
        for n, run in enumerate(runs):
            c = head if n == 0 else ReadCounters()

            def go(u: Unit[bytes], run: list[tuple[int, BlockStats]] = run,
                   c: ReadCounters = c) -> Iterator[bytes]:
                return _guarded(f, u.problems, read_blocks(f, run, u.problems, c,
                                                           bool(u.state.get("small"))))
            units.append(Unit((f, n), go, state={"counters": c, "file": f,
                                                 "bytes": sum(b.clen for _, b in run)}))
        return units

    def whole(u: Unit[bytes]) -> Iterator[bytes]:
        it = stream_gz(f, u.problems, head) if f.gz else stream_plain(f, head)
        return _guarded(f, u.problems, it)
    return [Unit((f, 0), whole, state={"counters": head, "file": f, "bytes": f.size})]


def iter_byte_chunks(f: LogFile, problems: list[Problem], counters: ReadCounters, *,
                     since: str | None = None, until: str | None = None,
                     ids: tuple[str, ...] | None = None,
                     use_index: bool = True) -> Iterator[bytes]:
    """Byte chunks of whole records of ``f``, in this thread; index blocks are pruned by
    window and ids. Without an index no pruning happens here (the scan filters lines)."""
    for u in file_units(f, since=since, until=until, ids=ids, use_index=use_index):
        try:
            yield from u.run(u)
        finally:
            problems.extend(u.problems)
            counters.add(u.state["counters"])


def iter_chunks(f: LogFile, problems: list[Problem], counters: ReadCounters, *,
                since: str | None = None, until: str | None = None,
                ids: tuple[str, ...] | None = None, use_index: bool = True) -> Iterator[str]:
    """Text chunks of whole records of ``f`` (``iter_byte_chunks`` decoded)."""
    for b in iter_byte_chunks(f, problems, counters, since=since, until=until, ids=ids,
                              use_index=use_index):
        yield _decode(b)
