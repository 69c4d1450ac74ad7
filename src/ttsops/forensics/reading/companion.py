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
(the checks, the analysis's values, and each table's offset and length), then each
table as an Arrow IPC file (zstd). Writes are atomic (a temporary file renamed over the
name) and never required: anything that goes wrong only means the next run makes the
tables again. Old companions go with the sidecars (``_sidecar_store``'s pruning of the
same directory).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ._sidecar_store import cache_dir

MAGIC = b"TTSOPS-COMPANION\n"
VERSION = "1"


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
         ) -> tuple[dict[str, Any], dict[str, Any]] | None:
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
          ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    try:
        import polars as pl

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
        tables: dict[str, Any] = {}
        for t, (off, length) in head["tables"].items():
            lo = start + int(off)
            if lo + int(length) > len(buf):
                return None
            tables[t] = pl.read_ipc(io.BytesIO(buf[lo:lo + int(length)]))
        return tables, head["values"]
    except Exception:
        return None


def save(sidecar: Path, key: str, name: str, tag: str, rows: int, tables: dict[str, Any],
         values: dict[str, Any]) -> Path | None:
    """Write the companion atomically into the first of ``places`` that takes it; None if
    none did. ``values``: JSON-able."""
    try:
        blobs: list[bytes] = []
        index: dict[str, tuple[int, int]] = {}
        off = 0
        for t, df in tables.items():
            b = io.BytesIO()
            df.write_ipc(b, compression="zstd")
            blob = b.getvalue()
            index[t] = (off, len(blob))
            off += len(blob)
            blobs.append(blob)
        head = json.dumps({"version": VERSION, "key": key, "name": name, "tag": tag,
                           "rows": rows, "tables": index, "values": values}).encode()
        data = b"".join([MAGIC, len(head).to_bytes(8, "little"), head, *blobs])
    except Exception:
        return None
    for d in places(sidecar):
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=d)
            try:
                with contextlib.suppress(OSError):
                    os.fchmod(fd, os.stat(sidecar).st_mode & 0o644 | 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, d / _name(key, name))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            return d / _name(key, name)
        except Exception:
            continue
    return None
