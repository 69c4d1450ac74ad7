from __future__ import annotations

import gzip
import io
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.config import Settings
from ttsops.logindex import (
    MIN_BLOCK_BYTES,
    BlockStats,
    Bloom,
    compress_file,
    iter_blocks,
    read_block,
    read_index,
    scan_lines,
    write_block_gzip,
)


def _log_lines(n: int) -> list[str]:
    out = []
    for i in range(n):
        lvl = "ERROR" if i % 10 == 0 else "INFO"
        out.append(f"2024-06-12 14:{i // 60 % 60:02d}:{i % 60:02d},000 - app - {lvl} - "
                   f"synthesis_complete: request_id=r{i}, id=ts_{i:08x}, status="
                   f"{'failed' if lvl == 'ERROR' else 'success'}"
                   + (", error_code=SCIPY_FFT_INVALID" if lvl == "ERROR" else ""))
        if lvl == "ERROR":
            out += ["\tTraceback (most recent call last):", "\tValueError: x"]
    return out


def _write(tmp_path, lines, block=2048):
    src = io.BytesIO(("\n".join(lines) + "\n").encode())
    path = tmp_path / "app.log.1.gz"
    with open(path, "wb") as f:
        idx = write_block_gzip(src, f, block)
    return path, idx


def test_block_gzip_is_plain_gzip_and_index_matches_a_full_scan(tmp_path):
    lines = _log_lines(500)
    path, idx = _write(tmp_path, lines)
    assert subprocess.run(["gzip", "-t", str(path)]).returncode == 0
    zcat = subprocess.run(["zcat", str(path)], capture_output=True, text=True, check=True)
    assert zcat.stdout == "\n".join(lines) + "\n"
    assert gzip.decompress(path.read_bytes()).decode() == zcat.stdout
    got = read_index(path)
    assert got is not None and len(got.blocks) == len(idx.blocks) > 5
    full = scan_lines(lines)
    total = got.total
    assert (total.lines, total.records, total.levels, total.codes, total.events) == \
        (full.lines, full.records, full.levels, full.codes, full.events)
    assert (total.first_ts, total.last_ts) == (full.first_ts, full.last_ts)
    # every block decodes alone, starts at a record and holds what its stats say
    joined = []
    for b in got.blocks:
        text = read_block(path, b).decode()
        assert not text.startswith("\t")
        st = scan_lines(text.splitlines())
        assert (st.records, st.levels, st.first_ts, st.last_ts) == \
            (b.records, b.levels, b.first_ts, b.last_ts)
        assert all(b.may_contain(i) for i in st.ids)
        joined.append(text)
    assert "".join(joined) == zcat.stdout


def test_index_survives_rename_and_copy_but_not_tampering(tmp_path):
    path, _ = _write(tmp_path, _log_lines(100))
    moved = tmp_path / "app.log.7.gz"
    path.rename(moved)
    assert read_index(moved) is not None
    data = moved.read_bytes()
    (tmp_path / "appended.gz").write_bytes(data + gzip.compress(b"more\n"))
    assert read_index(tmp_path / "appended.gz") is None  # stale: the last member changed
    (tmp_path / "plain.gz").write_bytes(gzip.compress(b"x\n"))
    assert read_index(tmp_path / "plain.gz") is None
    (tmp_path / "cut.gz").write_bytes(data[:-5])
    assert read_index(tmp_path / "cut.gz") is None
    (tmp_path / "empty.gz").write_bytes(b"")
    assert read_index(tmp_path / "empty.gz") is None


def test_blocks_cut_only_at_record_starts():
    lines = _log_lines(300)
    data = ("\n".join(lines) + "\n").encode()
    blocks = list(iter_blocks(io.BytesIO(data), 700))
    assert b"".join(blocks) == data
    assert all(not b.startswith(b"\t") for b in blocks) and len(blocks) > 10


@settings(max_examples=50)
@given(st.sets(st.text(min_size=1, max_size=20), min_size=1, max_size=300))
def test_bloom_has_no_false_negatives(keys):
    b = Bloom.sized(len(keys))
    for k in keys:
        b.add(k)
    again = Bloom.decode(b.encode())
    assert all(k in again for k in keys)


def test_bloom_false_positive_rate_is_low():
    b = Bloom.sized(1000)
    for i in range(1000):
        b.add(f"ts_{i:08x}")
    fp = sum(f"req-{i}" in b for i in range(10000))
    assert fp < 300  # ~1% expected at 10 bits per key


def test_block_writers_refuse_tiny_blocks_before_writing_anything(tmp_path):
    """A block size of 0 once read nothing and wrote a valid, empty gzip file in place of
    the log (``logs index --block-bytes 0``). Below the service setting's own bound
    nothing is read and nothing written."""
    assert Settings.model_fields["log_block_bytes"].metadata[0].ge == MIN_BLOCK_BYTES
    data = ("\n".join(_log_lines(200)) + "\n").encode()
    for bad in (0, -1, -4096, MIN_BLOCK_BYTES - 1):
        src, dst = io.BytesIO(data), io.BytesIO()
        with pytest.raises(ValueError, match="at least 1024"):
            write_block_gzip(src, dst, bad)
        assert dst.getvalue() == b"" and src.tell() == 0
        plain = tmp_path / "app.log.0"
        plain.write_bytes(data)
        with pytest.raises(ValueError):
            compress_file(plain, tmp_path / "app.log.0.gz", bad)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["app.log.0"]
    for bad in (0, -1):
        with pytest.raises(ValueError):
            list(iter_blocks(io.BytesIO(data), bad))
    dst = io.BytesIO()
    idx = write_block_gzip(io.BytesIO(data), dst, MIN_BLOCK_BYTES)
    assert gzip.decompress(dst.getvalue()) == data and idx.total.ulen == len(data)


def test_a_block_keeps_the_head_lines_of_its_syntheses_that_did_not_succeed():
    """``failed``: exactly the synthesis_complete heads whose status is not success (what
    ``logs patterns --where status=failed`` reads instead of the block), not a line that
    only mentions them, not a continuation line; none kept when a synthesis_complete has
    no id (the patterns' join does not count it, the index's count of the event does)."""
    head = "2024-06-12 10:00:0{},000 - app - {} - synthesis_complete: id={}, status={}, text_len=9"
    lines = [head.format(1, "INFO", "a", "success"),
             head.format(2, "ERROR", "b", "failed") + ", error_code=DISK_FULL",
             "\t" + head.format(3, "INFO", "c", "failed"),  # a traceback line
             "2024-06-12 10:00:04,000 - app - INFO - note: "
             "msg=\"synthesis_complete status=failed\"",
             head.format(5, "INFO", "d", "timeout"),
             "2024-06-12 10:00:06,000 - app - INFO - synthesis_complete: id=e"]  # no status
    st = scan_lines(lines)
    assert st.failed == [lines[1], lines[4], lines[5]]
    assert st.status == {"success": 1, "failed": 1, "timeout": 1, "(none)": 1}
    back = BlockStats.from_json(st.to_json())
    assert back.failed == st.failed
    assert scan_lines(lines[:1]).failed == []
    no_id = scan_lines([*lines, "2024-06-12 10:00:07,000 - app - INFO - synthesis_complete: "
                                "status=success"])
    assert no_id.failed is None and "failed" not in no_id.to_json()
    older = st.to_json()
    del older["failed"]  # an index written before blocks kept them
    assert BlockStats.from_json(older).failed is None
