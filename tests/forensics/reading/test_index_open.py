"""Opening a file's block index cheaply gives what opening it the plain way gives:

* the id filter probed in its base64 text, a group of four characters per probe, answers
  as the filter decoded whole (and a filter written with line breaks, which that cannot
  probe, is decoded whole and answers the same);
* the bytes read at the end of a file are learnt from the index read before: an index
  larger than the last one is still read whole and alike;
* units with nothing to read run in the consuming thread, in order, with the same items.
"""

from __future__ import annotations

import base64
import io
import threading
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttsops.forensics.reading.parallel import ReadAhead, Unit
from ttsops.indexformat import INDEX_MAGIC, LEN_DIGITS, V3_HEAD, Bloom, bloom_key
from ttsops.indexread import _EndReader, read_index
from ttsops.logindex import gzip_member, write_block_gzip


def _lines(ids: list[str]) -> list[str]:
    return [f"2024-06-12 14:{i // 60 % 60:02d}:{i % 60:02d},000 - app - INFO - "
            f"synthesis_complete: request_id=r{i}, id={sid}, status=success"
            for i, sid in enumerate(ids)]


def _write(path: Path, ids: list[str], block: int = 4096) -> Path:
    src = io.BytesIO(("\n".join(_lines(ids)) + "\n").encode())
    with open(path, "wb") as f:
        write_block_gzip(src, f, block)
    return path


def _filter_text(path: Path) -> tuple[bytes, int, bytes, int]:
    """(the data, where the index member starts, its id filter's text, its bit count)."""
    raw = path.read_bytes()
    idx = read_index(path)
    assert idx is not None
    member = raw[idx.data_len:]
    comment = member[10:member.index(b"\x00", 10)]
    payload = comment[len(INDEX_MAGIC):-(LEN_DIGITS + 1)]
    hl, fl, nbits = int(payload[2:14]), int(payload[15:27]), int(payload[28:40])
    return raw[:idx.data_len], idx.data_len, payload[V3_HEAD + hl:V3_HEAD + hl + fl], nbits


def _whole(fbits: bytes, nbits: int, key: tuple[int, int]) -> bool:
    """The filter decoded whole, probed as ``Bloom.has_key`` does."""
    return Bloom(nbits, bytearray(base64.b64decode(fbits))).has_key(key)


keys = st.lists(st.text("abcdefgh0123456789_-", min_size=1, max_size=12), min_size=1,
                max_size=40, unique=True)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(present=keys, absent=keys)
def test_the_filter_probed_in_its_text_answers_as_the_whole_filter(tmp_path, present, absent):
    path = _write(tmp_path / "app.log.1.gz", present)
    _data, _start, fbits, nbits = _filter_text(path)
    idx = read_index(path)
    assert idx is not None and nbits > 0
    for k in [*present, *absent]:
        key = bloom_key(k)
        assert idx.may_contain_key(key) == _whole(fbits, nbits, key)
    assert all(idx.may_contain_key(bloom_key(k)) for k in present)  # no false negative


@pytest.mark.parametrize("extra", range(4))
def test_a_filter_written_with_line_breaks_is_decoded_whole(tmp_path, extra):
    """Whatever its length: ``extra`` line breaks more at its end make each length modulo
    4 (one of them a whole number of 4-character groups, not group-aligned)."""
    ids = [f"ts_{i:08x}" for i in range(300)]
    path = _write(tmp_path / "app.log.1.gz", ids)
    raw = path.read_bytes()
    data, start, fbits, nbits = _filter_text(path)
    member = raw[start:]
    comment = member[10:member.index(b"\x00", 10)]
    payload = comment[len(INDEX_MAGIC):-(LEN_DIGITS + 1)]
    hl, fl = int(payload[2:14]), int(payload[15:27])
    h, b = payload[V3_HEAD:V3_HEAD + hl], payload[V3_HEAD + hl + fl:]
    import json

    head = json.loads(zlib.decompress(base64.b64decode(h)))
    # a line break every 76 characters
    wrapped = base64.encodebytes(base64.b64decode(fbits)) + b"\n" * extra
    assert b"\n" in wrapped[:-1]
    head["crc_f"] = zlib.crc32(wrapped)
    h2 = base64.b64encode(zlib.compress(json.dumps(head).encode()))
    new = b"3;%012d;%012d;%012d;%08x;" % (len(h2), len(wrapped), nbits, zlib.crc32(h2)) + \
        h2 + wrapped + b
    comment = INDEX_MAGIC + new + b" " + str(len(new)).zfill(LEN_DIGITS).encode()
    path.write_bytes(data + gzip_member(b"", comment))
    idx = read_index(path)
    assert idx is not None
    for k in [*ids, *(f"req-{i}" for i in range(300))]:
        key = bloom_key(k)
        assert idx.may_contain_key(key) == _whole(fbits, nbits, key)


def test_an_index_larger_than_the_last_one_read_is_read_alike(tmp_path):
    small = _write(tmp_path / "app.log.1.gz", [f"ts_{i:08x}" for i in range(20)])
    big = _write(tmp_path / "app.log.2.gz", [f"ts_{i:08x}" for i in range(6000)], 65536)
    _EndReader.want = _EndReader.END_READ
    fresh = read_index(big)
    assert read_index(small) is not None
    assert _EndReader.want < 8192  # learnt from the small index
    again = read_index(big)  # its index lies mostly before the bytes read at the end
    assert fresh is not None and again is not None
    assert again.total.to_json() == fresh.total.to_json()
    assert again.members == fresh.members and len(again.members) > 1
    assert [b.to_json() for b in again.blocks] == [b.to_json() for b in fresh.blocks]
    assert all(again.may_contain_key(bloom_key(f"ts_{i:08x}")) for i in range(6000))


def _units(sizes: list[int]) -> list[Unit[int]]:
    def run(u: Unit[int]) -> list[int]:
        u.state["thread"] = threading.get_ident()
        return list(range(u.state["bytes"] % 7 + (1 if u.state["bytes"] else 0)))
    return [Unit(i, run, state={"bytes": n}) for i, n in enumerate(sizes)]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([0, 0, 0, 5, 12, 1000]), max_size=30))
def test_units_with_nothing_to_read_run_in_the_consumer_in_order(sizes):
    plain = [(u.key, x) for u, x in ReadAhead(_units(sizes), 1).items()]
    units = _units(sizes)
    threaded = [(u.key, x) for u, x in ReadAhead(units, 2).items()]
    assert threaded == plain
    me = threading.get_ident()
    assert all(u.state["thread"] == me for u in units if not u.state["bytes"])
