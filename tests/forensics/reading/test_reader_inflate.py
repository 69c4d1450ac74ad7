"""Inflating in pieces of at most ``_inflate.INFLATE_OUT`` bytes of text (cache-sized, for
speed) reads the same text and reports the same damage, whatever the piece size: whole-
file gzip as the stdlib's rotator writes it (one member), several members, members of
other writers, truncation and corruption anywhere."""

from __future__ import annotations

import gzip
import os
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttsops.forensics.reading import _inflate
from ttsops.forensics.reading._inflate import stream_gz
from ttsops.forensics.reading.reader import ReadCounters
from ttsops.forensics.reading.sources import LogFile


def _text(n: int) -> bytes:
    out = []
    for i in range(n):
        out.append(f"2024-06-12 14:{i // 60 % 60:02d}:{i % 60:02d},000 - root - INFO - "
                   f"stage_time: stage=llm_inference, id=ts_{i:08x}, duration_ms={i * 7}, "
                   f"text_len={i % 300} chars\n")
        if i % 11 == 0:
            out.append("Traceback (most recent call last):\n  File \"x.py\", line 1\n")
    return "".join(out).encode()


def _read(path: str) -> tuple[bytes, list[tuple[str, object]]]:
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        f = LogFile(path, "file", 0, "x", True, fd, st.st_size, (st.st_dev, st.st_ino))
        problems: list = []
        data = b"".join(stream_gz(f, problems, ReadCounters()))
        return data, [(p.message, p.hole) for p in problems]
    finally:
        os.close(fd)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 400), min_size=1, max_size=3), st.integers(0, 3),
       st.integers(0, 10**9), st.sampled_from(["none", "truncate", "corrupt", "junk"]))
def test_piece_size_never_changes_what_is_read(tmp_path, members, level, where, damage):
    data = b"".join(gzip.compress(_text(n), compresslevel=level or 1) for n in members)
    if damage == "truncate":
        data = data[:max(1, where % len(data))]
    elif damage == "corrupt":
        i = 10 + where % max(1, len(data) - 20)
        data = data[:i] + bytes([data[i] ^ 0x55]) + data[i + 1:]
    elif damage == "junk":
        data += zlib.compress(b"not gzip at all") + b"\x00" * (where % 5)
    p = tmp_path / "app.log.1.gz"
    p.write_bytes(data)
    results = []
    saved = _inflate.INFLATE_OUT
    try:
        for piece in (1 << 30, 1 << 18, 4096, 97):
            _inflate.INFLATE_OUT = piece
            results.append(_read(str(p)))
    finally:
        _inflate.INFLATE_OUT = saved
    assert all(r == results[0] for r in results[1:])
    if damage == "none":  # and it is the text zcat prints
        assert results[0] == (gzip.decompress(data), [])
