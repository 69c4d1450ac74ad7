"""Reading a block-gzip file without its index, member by member: whatever the file holds
(members of other writers appended, a member bigger than the read window, a damaged
member, the index member, zero padding), the text read equals what zcat prints, or the
damage is reported and the rest read."""

from __future__ import annotations

import gzip
import io
import os
import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttsops.forensics.reading import _inflate
from ttsops.forensics.reading._inflate import stream_gz
from ttsops.forensics.reading.reader import ReadCounters
from ttsops.forensics.reading.sources import LogFile
from ttsops.logindex import write_block_gzip


def _read(path) -> tuple[bytes, list]:
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        f = LogFile(path, "file", 0, path.name, True, fd, st.st_size, (st.st_dev, st.st_ino))
        problems: list = []
        data = b"".join(stream_gz(f, problems, ReadCounters()))
        return data, problems
    finally:
        os.close(fd)


def _text(n: int, seed: int) -> bytes:
    out = []
    for i in range(n):
        out.append(f"2024-06-12 14:{i // 60 % 60:02d}:{i % 60:02d},{seed % 1000:03d} - app - "
                   f"INFO - e: i={i}, pad={'x' * (i * 7 % 90)}\n")
        if i % 13 == 0:
            out.append("\tTraceback line\n")
    return "".join(out).encode()


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)
@given(st.integers(1, 400), st.integers(1024, 5000), st.booleans(), st.booleans(),
       st.integers(0, 3), st.sampled_from([1 << 20, 3000, 700]))
def test_member_reader_equals_zcat(tmp_path, n, block, index, foreign, pad, window):
    text = _text(n, n)
    buf = io.BytesIO()
    write_block_gzip(io.BytesIO(text), buf, block)
    data = buf.getvalue()
    if not index:  # cut the index member off (an index lost)
        from ttsops.logindex import read_index

        p0 = tmp_path / "x.gz"
        p0.write_bytes(data)
        data = data[:read_index(p0).data_len]
    if foreign:
        data += gzip.compress(b"2024-06-12 15:00:00,000 - other - INFO - e: from=elsewhere\n")
    data += b"\x00" * pad * 512
    p = tmp_path / "app.log.1.gz"
    p.write_bytes(data)
    old = _inflate.WINDOW
    _inflate.WINDOW = window
    try:
        got, problems = _read(p)
    finally:
        _inflate.WINDOW = old
    want = subprocess.run(["zcat", str(p)], capture_output=True).stdout
    assert problems == []
    assert got == want


def test_a_damaged_member_is_reported_and_the_rest_read(tmp_path):
    text = _text(3000, 1)
    buf = io.BytesIO()
    idx = write_block_gzip(io.BytesIO(text), buf, 4096)
    data = bytearray(buf.getvalue())
    victim = idx.blocks[5]
    data[victim.off + 40: victim.off + 60] = b"\xff" * 20  # inside its deflate data
    p = tmp_path / "app.log.1.gz"
    p.write_bytes(bytes(data))
    got, problems = _read(p)
    assert len(problems) == 1 and "corrupt" in problems[0].message
    lines = got.decode().splitlines()
    assert len(lines) > 0.9 * len(text.decode().splitlines())
    assert set(lines) <= set(text.decode().splitlines())


def test_junk_between_members_is_reported_not_skipped_silently(tmp_path):
    """A member followed by bytes that are not a member (before the next one): inflating
    the member alone would ignore them; the reader must notice (the gzip trailer is not
    where the segment ends) and report the damage, as zcat does."""
    text = _text(3000, 2)
    buf = io.BytesIO()
    idx = write_block_gzip(io.BytesIO(text), buf, 4096)
    data = buf.getvalue()
    cut = idx.blocks[3].off + idx.blocks[3].clen  # the end of member 3
    p = tmp_path / "app.log.1.gz"
    p.write_bytes(data[:cut] + b"JUNK-NOT-GZIP" + data[cut:idx.data_len])
    got, problems = _read(p)
    zcat = subprocess.run(["zcat", str(p)], capture_output=True)
    assert zcat.returncode != 0  # gzip itself calls it damage
    assert len(problems) == 1, problems
    assert got.startswith(text[:len(got) // 2]) and len(got) >= 0.9 * len(text)
