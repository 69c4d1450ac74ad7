"""Companion tables (``reading.companion``): what is saved is loaded back, every table the
same frame, small ones as an Arrow IPC stream and large ones as Parquet; a companion
whose small tables are Arrow IPC files (as the first companions were written) is still
read; one whose checks fail is not."""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import polars as pl
import pytest

from ttsops.forensics.reading import companion


def _tables() -> dict[str, pl.DataFrame]:
    n = companion.BIG
    return {
        "small": pl.DataFrame({"seq": [3, 1, 2], "id": ["a", None, "c"],
                               "v": [1.5, None, float("nan")]}),
        "empty": pl.DataFrame({"id": []}, schema={"id": pl.Utf8}),
        "big": pl.DataFrame({"seq": list(range(n)), "id": [f"r{i}" for i in range(n)]}),
    }


@pytest.fixture
def side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    p = tmp_path / "k.parquet"
    p.touch()
    return p


def _formats(p: Path) -> dict[str, str]:
    buf = p.read_bytes()
    at = len(companion.MAGIC)
    n = int.from_bytes(buf[at:at + 8], "little")
    return {t: v[2] for t, v in json.loads(buf[at + 8:at + 8 + n])["tables"].items()}


def test_saved_tables_load_back(side: Path) -> None:
    want = _tables()
    p = companion.save(side, "k", "x", "tag1", 7, want, {"a": [1, 2]})
    assert p is not None
    assert _formats(p) == {"small": "ipc-stream", "empty": "ipc-stream", "big": "parquet"}
    got = companion.load(side, "k", "x", "tag1", 7)
    assert got is not None
    tables, values = got
    assert values == {"a": [1, 2]}
    assert sorted(tables) == sorted(want)
    for t, df in want.items():
        assert tables.rows(t) == df.height
        assert tables[t].equals(df, null_equal=True), t
    # (another tag, row count or key: not read)
    assert companion.load(side, "k", "x", "tag2", 7) is None
    assert companion.load(side, "k", "x", "tag1", 8) is None
    assert companion.load(side, "j", "x", "tag1", 7) is None


def test_tables_kept_as_ipc_files_are_read(side: Path) -> None:
    """A companion as written before the IPC stream (its small tables Arrow IPC files)."""
    want = _tables()
    blobs, index, off = [], {}, 0
    for t, df in want.items():
        b = io.BytesIO()
        fmt = "parquet" if df.height >= companion.BIG else "ipc"
        df.write_parquet(b) if fmt == "parquet" else df.write_ipc(b)
        blobs.append(b.getvalue())
        index[t] = (off, len(blobs[-1]), fmt, df.height)
        off += len(blobs[-1])
    crc = 0
    for blob in blobs:
        crc = zlib.crc32(blob, crc)
    head = json.dumps({"version": companion.VERSION, "key": "k", "name": "x", "tag": "t",
                       "rows": 7, "tables": index, "values": {}, "crc32": crc}).encode()
    (side.parent / "k.x.ttc").write_bytes(b"".join(
        [companion.MAGIC, len(head).to_bytes(8, "little"), head, *blobs]))
    got = companion.load(side, "k", "x", "t", 7)
    assert got is not None
    for t, df in want.items():
        assert got[0][t].equals(df, null_equal=True), t
