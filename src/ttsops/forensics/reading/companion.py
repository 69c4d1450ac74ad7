"""Companion tables of a sidecar: what an analysis made of one file's records once, kept
beside the file's sidecar so that a later run reads that instead of the records.

A companion is named by its sidecar's key (the file version's hash, ``sidecar.identity``)
and the analysis's name (``<key>.<name>.ttc``) and is looked up in the sidecar's own
directory, then in the user's cache (``sidecar.cache_dir``). It is used only together
with a valid sidecar of the same key (the caller has checked that sidecar): a file
changed, replaced or rotated into another identity has another key, so its companion is
never found, and a sidecar that fails a check leaves its companion unread. Inside, the
companion holds its format version, the analysis's own version (``tag``: what it was made
by; another tag is not used), the key and the sidecar's row count, all checked.

The format: ``MAGIC``, the length of a JSON header (8 bytes, little-endian), the header
(the checks, the analysis's values, each table's offset, length, format and row count,
and the CRC-32 of what follows), then each table: Parquet (zstd) from ``BIG`` rows, else
an Arrow IPC stream (``ipc-stream``: Polars reads or writes a small one in ~0.01 ms; an
IPC file, ``ipc``, which the first companions hold and which is still read, took
~0.3-0.6 ms, a query plan each). A table is read when asked for (``Tables``). Writes are
atomic (a temporary file renamed over the name) and never required: anything that goes
wrong only means the next run makes the tables again. Companions not written for 30 days
go when sidecars are written into their directory (``_sidecar_store``'s pruning).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ._sidecar_store import cache_dir, put

MAGIC = b"TTSOPS-COMPANION\n"
VERSION = "2"
BIG = 1000  # rows from which a table is kept as Parquet


def _name(key: str, name: str) -> str:
    return f"{key}.{name}.ttc"


def places(sidecar: Path) -> list[Path]:
    """Where a companion of the sidecar at ``sidecar`` is looked for and written: beside
    it, then the user's cache."""
    out = [sidecar.parent]
    c = cache_dir()
    if c != sidecar.parent:
        out.append(c)
    return out


def load(sidecar: Path, key: str, name: str, tag: str, rows: int,
         ) -> tuple[Tables, dict[str, Any]] | None:
    """The tables and values of the companion ``name`` of the sidecar at ``sidecar``
    (key ``key``, ``rows`` records), made by ``tag``; None when there is none or it
    fails a check."""
    for d in places(sidecar):
        p = d / _name(key, name)
        if not p.is_file():
            continue
        got = _read(p, key, name, tag, rows)
        if got is not None:
            return got
    return None


def _read(p: Path, key: str, name: str, tag: str, rows: int,
          ) -> tuple[Tables, dict[str, Any]] | None:
    try:
        buf = p.read_bytes()
        if not buf.startswith(MAGIC):
            return None
        at = len(MAGIC)
        n = int.from_bytes(buf[at:at + 8], "little")
        head = json.loads(buf[at + 8:at + 8 + n])
        if (head.get("version"), head.get("key"), head.get("name"), head.get("tag"),
                head.get("rows")) != (VERSION, key, name, tag, rows):
            return None
        start = at + 8 + n
        if zlib.crc32(memoryview(buf)[start:]) != head.get("crc32"):
            return None  # (damaged)
        index = {str(t): (start + int(off), int(length), str(fmt), int(height))
                 for t, (off, length, fmt, height) in head["tables"].items()}
        if any(lo + length > len(buf) for lo, length, _f, _h in index.values()):
            return None
        return Tables(buf, index, p), head["values"]
    except Exception:
        return None


class Tables(Mapping[str, Any]):
    """A companion's tables, each read when first asked for (``rows``: its row count
    without reading it). A table that cannot be read raises ``Damaged``."""

    def __init__(self, buf: bytes, index: dict[str, tuple[int, int, str, int]],
                 path: Path | None = None) -> None:
        self.path = path  # (removed when a table is found damaged: made again next time)
        self.buf = buf
        self.index = index
        self.got: dict[str, Any] = {}

    def rows(self, t: str) -> int:
        return self.index[t][3]

    def __getitem__(self, t: str) -> Any:
        df = self.got.get(t)
        if df is None:
            import polars as pl

            lo, length, fmt, height = self.index[t]
            data = io.BytesIO(self.buf[lo:lo + length])
            try:
                df = (pl.read_parquet(data) if fmt == "parquet" else
                      pl.read_ipc_stream(data) if fmt == "ipc-stream" else pl.read_ipc(data))
                if df.height != height:
                    raise ValueError(f"{t}: {df.height} rows, not {height}")
            except Exception as e:
                if self.path is not None:
                    with contextlib.suppress(OSError):
                        self.path.unlink()
                raise Damaged(t) from e
            self.got[t] = df
        return df

    def __contains__(self, t: object) -> bool:
        return t in self.index  # (without reading it)

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


class Damaged(Exception):
    """A companion's table that cannot be read (its checks passed: a damaged file)."""


def save(sidecar: Path, key: str, name: str, tag: str, rows: int, tables: dict[str, Any],
         values: dict[str, Any]) -> Path | None:
    """Write the companion atomically into the first of ``places`` that takes it; None if
    none did. ``values``: JSON-able."""
    try:
        blobs: list[bytes] = []
        index: dict[str, tuple[int, int, str, int]] = {}
        off = 0
        for t, df in tables.items():
            b = io.BytesIO()
            # (large tables as Parquet, read faster; the small ones as an Arrow IPC stream)
            fmt = "parquet" if df.height >= BIG else "ipc-stream"
            if fmt == "parquet":
                df.write_parquet(b, compression="zstd")
            else:
                df.write_ipc_stream(b, compression="uncompressed")
            blob = b.getvalue()
            index[t] = (off, len(blob), fmt, df.height)
            off += len(blob)
            blobs.append(blob)
        crc = 0
        for blob in blobs:
            crc = zlib.crc32(blob, crc)
        head = json.dumps({"version": VERSION, "key": key, "name": name, "tag": tag,
                           "rows": rows, "tables": index, "values": values,
                           "crc32": crc}).encode()
        data = b"".join([MAGIC, len(head).to_bytes(8, "little"), head, *blobs])
    except Exception:
        return None
    return put(places(sidecar), _name(key, name), key, lambda: os.stat(sidecar).st_mode,
               lambda fh: fh.write(data))
