"""The directory summary of checked indexes (``logindex_summary``) answers as opening each
file's index answers; a file changed, rotated, re-indexed or deleted and replaced is never
answered from its old entry; a damaged summary is ignored (and rewritten); concurrent
writers leave a whole summary; a query reports a tampered index with or without one."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttsops import logindex_summary as summ
from ttsops.indexformat import bloom_key
from ttsops.indexread import IndexDamaged, read_index
from ttsops.logindex import write_block_gzip


def _lines(tag: str, n: int, minute: int = 0) -> list[str]:
    out = []
    for i in range(n):
        lvl = "ERROR" if i % 7 == 0 else "INFO"
        out.append(f"2024-06-12 14:{minute + i // 60 % 60:02d}:{i % 60:02d},000 - app - "
                   f"{lvl} - synthesis_complete: request_id=r{tag}{i}, id={tag}_{i:06x}, "
                   f"status={'failed' if lvl == 'ERROR' else 'success'}"
                   + (", error_code=SCIPY_FFT_INVALID" if lvl == "ERROR" else ""))
    return out


def _write(path: Path, lines: list[str], block: int = 2048) -> Path:
    src = io.BytesIO(("\n".join(lines) + "\n").encode())
    with open(path, "wb") as f:
        write_block_gzip(src, f, block)
    return path


def _view(idx, keys: list[str]) -> tuple | str | None:
    """Everything a query asks of an index."""
    if isinstance(idx, IndexDamaged):
        return "damaged"
    if idx is None:
        return None
    span = idx.span  # asked first: told without the totals where they are kept apart
    assert span == (idx.total.first_ts, idx.total.last_ts)
    return (idx.data_len, idx.nblocks, idx.members, idx.grammar, idx.keeps_failed, span,
            idx.total.to_json(), [b.to_json() for b in idx.blocks],
            [idx.may_contain_key(bloom_key(k)) for k in keys])


def _via_summary(paths: list[Path], keys: list[str]) -> tuple[list, int]:
    """What each file's index answers through its directory's summary (then saved), and
    how many were answered from the summary."""
    views, hits = [], 0
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            s = summ.summary_for(str(p))
            views.append(_view(_or_damaged(s.index, str(p), fd), keys))
        finally:
            os.close(fd)
    hits = sum(s.hits for s in summ._open.values())
    summ.save_all()
    return views, hits


def _or_damaged(read, *args):
    try:
        return read(*args)
    except IndexDamaged as e:
        return e


def _plain(paths: list[Path], keys: list[str]) -> list:
    return [_view(_or_damaged(read_index, p), keys) for p in paths]


def _wait_old(paths: list[Path]) -> None:
    """Until every file is older than the summary's racy margin (a state, not a guess)."""
    while True:
        now = time.time_ns()
        newest = max(p.stat().st_mtime_ns for p in paths)
        if now - newest >= summ.RACY_NS:
            return
        time.sleep((summ.RACY_NS - (now - newest)) / 1e9 + 0.01)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    summ._open.clear()
    yield
    summ._open.clear()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.tuples(st.integers(1, 300), st.sampled_from([1024, 2048, 8192])),
                      min_size=1, max_size=5),
       others=st.lists(st.text("abcdef0123456789_", min_size=1, max_size=10), max_size=10))
def test_the_summary_answers_as_opening_each_index(tmp_path, monkeypatch, files, others):
    monkeypatch.setattr(summ, "RACY_NS", 0)  # nothing here changes after it is entered
    d = tmp_path / f"d{time.monotonic_ns()}"
    d.mkdir()
    paths = [_write(d / f"app.log.{i + 1}.gz", _lines(f"f{i}", n, minute=i), block)
             for i, (n, block) in enumerate(files)]
    keys = [f"f{i}_{j:06x}" for i, (n, _b) in enumerate(files) for j in range(0, n, 13)]
    keys += others
    want = _plain(paths, keys)
    first, hits0 = _via_summary(paths, keys)  # enters them
    again, hits1 = _via_summary(paths, keys)  # answers from the summary
    assert first == want and again == want
    assert hits0 == 0 and hits1 == len(paths)


def test_a_changed_rotated_reindexed_or_deleted_file_is_never_answered_from_its_old_entry(
        tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    a, b, c, e = (d / f"app.log.{i}.gz" for i in (1, 2, 3, 4))
    for p, tag in ((a, "a"), (b, "b"), (c, "c"), (e, "e")):
        _write(p, _lines(tag, 200))
    keys = [f"{t}_{j:06x}" for t in "abcenwxz" for j in range(0, 200, 9)]
    _wait_old([a, b, c, e])
    _via_summary([a, b, c, e], keys)
    views, hits = _via_summary([a, b, c, e], keys)
    assert hits == 4 and views == _plain([a, b, c, e], keys)

    # a: rewritten in place (same inode, same size): one character of its id filter
    ino, size = a.stat().st_ino, a.stat().st_size
    f_off = read_index(a).parts[2]
    with open(a, "r+b") as f:
        f.seek(f_off + 5)
        ch = f.read(1)
        f.seek(f_off + 5)
        f.write(b"A" if ch != b"A" else b"B")
    assert (a.stat().st_ino, a.stat().st_size) == (ino, size)
    # b: rotated: renamed (the same file, answered from its entry) and a new one in its place
    moved = d / "app.log.5.gz"
    os.rename(b, moved)
    _write(b, _lines("n", 150))
    # c: re-indexed (a new file renamed over it)
    _write(d / "tmp.gz", _lines("x", 120))
    os.replace(d / "tmp.gz", c)
    # e: deleted, and another written under its name (its inode may be reused)
    os.unlink(e)
    _write(e, _lines("z", 200))

    paths = [a, b, c, e, moved]
    views, hits = _via_summary(paths, keys)
    assert views == _plain(paths, keys)
    assert hits == 1  # only the renamed file: every other one was opened and checked
    assert views[0] == "damaged"
    assert views[1][-1] != views[4][-1]  # the filters tell the old and the new ids apart
    # the new summary holds the files as they are now, and nothing of the old ones
    got = summ.read_summary(summ.summary_path(str(d)))
    assert got is not None
    ids = {(p.stat().st_dev, p.stat().st_ino): (p.name, p.stat().st_size) for p in paths}
    assert set(got) <= set(ids)
    for key, (name, stamp, _parts, _doc) in got.items():
        assert (name, stamp[0]) == ids[key]


@pytest.mark.parametrize("damage", ["truncated", "flipped", "garbage", "empty",
                                    "other version", "a directory"])
def test_a_damaged_summary_is_ignored_and_rewritten(tmp_path, monkeypatch, damage):
    monkeypatch.setattr(summ, "RACY_NS", 0)
    d = tmp_path / "logs"
    d.mkdir()
    paths = [_write(d / f"app.log.{i}.gz", _lines(f"t{i}", 100, minute=i)) for i in (1, 2)]
    keys = [f"t{i}_{j:06x}" for i in (1, 2) for j in range(0, 100, 5)] + ["nope"]
    want = _plain(paths, keys)
    _via_summary(paths, keys)
    where = Path(summ.summary_path(str(d)))
    raw = where.read_bytes()
    if damage == "truncated":
        where.write_bytes(raw[:len(raw) // 2])
    elif damage == "flipped":
        where.write_bytes(raw[:-100] + bytes([raw[-100] ^ 0x40]) + raw[-99:])
    elif damage == "garbage":
        where.write_bytes(os.urandom(len(raw)))
    elif damage == "empty":
        where.write_bytes(b"")
    elif damage == "other version":
        doc = summ.decode(raw)
        assert doc is not None
        body = __import__("marshal").dumps(((0, 0), doc), 4)
        where.write_bytes(summ.MAGIC + b"%08x" % (__import__("zlib").crc32(body)) + body)
    else:
        where.unlink()
        where.mkdir()
    assert summ.read_summary(str(where)) is None
    views, hits = _via_summary(paths, keys)
    assert views == want and hits == 0
    if damage != "a directory":  # rewritten whole: the next query answers from it
        views, hits = _via_summary(paths, keys)
        assert views == want and hits == 2


_WRITER = """
import os, sys
from ttsops import logindex_summary as summ
summ.RACY_NS = 0
paths = sys.argv[2:]
for round in range(int(sys.argv[1])):
    for p in paths[round % len(paths):] + paths[:round % len(paths)]:
        fd = os.open(p, os.O_RDONLY)
        s = summ.summary_for(p)
        s.index(p, fd)
        os.close(fd)
    s.dirty = True
    summ.save_all()
"""


def test_concurrent_writers_leave_a_whole_summary(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    paths = [_write(d / f"app.log.{i}.gz", _lines(f"c{i}", 60, minute=i)) for i in range(6)]
    keys = [f"c{i}_{j:06x}" for i in range(6) for j in range(0, 60, 7)]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, "40",
                                 *map(str, paths[i:] + paths[:i])], env=env)
               for i in range(4)]
    where = summ.summary_path(str(d))
    seen = 0
    while any(w.poll() is None for w in writers):  # read while they write
        if os.path.exists(where):
            got = summ.read_summary(where)
            assert got is not None, "a reader met a partly written summary"
            seen += 1
    assert all(w.wait() == 0 for w in writers)
    got = summ.read_summary(where)
    assert got is not None and len(got) == len(paths)
    assert not [n for n in os.listdir(os.path.dirname(where)) if n.endswith(".tmp")]
    summ.RACY_NS, racy = 0, summ.RACY_NS
    try:
        views, hits = _via_summary(paths, keys)
    finally:
        summ.RACY_NS = racy
    assert hits == len(paths) and views == _plain(paths, keys)


def test_a_query_reports_a_tampered_index_with_a_summary_in_the_cache(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    paths = [_write(d / f"app.log.{i}.gz", _lines(f"q{i}", 120, minute=i)) for i in (1, 2)]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    cmd = ["ttsops", "logs", "trace", "q1_000007", "--dir", str(d), "--json"]
    _wait_old(paths)

    def run() -> dict:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    first = run()
    assert os.path.exists(summ.summary_path(str(d)))
    assert run() == first  # answered through the summary
    # tamper with the id filter of app.log.1.gz: one base64 character of the index
    raw = bytearray(paths[0].read_bytes())
    idx = read_index(paths[0])
    assert idx is not None and idx.parts is not None
    f_off = idx.parts[2]
    raw[f_off + 5] = ord("A") if raw[f_off + 5] != ord("A") else ord("B")
    paths[0].write_bytes(bytes(raw))
    for _ in range(2):  # the damage told every time, the answer from the data
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 3, r.stderr  # answered from the readable part
        assert "app.log.1.gz: its block index is damaged" in r.stderr
        got = json.loads(r.stdout)
        assert got["records"] == first["records"]
