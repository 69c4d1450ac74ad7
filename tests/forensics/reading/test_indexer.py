"""logs index: indexes foreign and old files once, leaves damaged ones alone, refuses to
work under a running writer; progress bars go to stderr only."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import shutil
import subprocess
import zlib

import pytest

from console import TTSOPS
from ttsops import indexformat, logindex
from ttsops.forensics.reading import indexer
from ttsops.indexformat import LEN_DIGITS
from ttsops.logindex import INDEX_MAGIC, gzip_member, read_index
from ttsops.logsink import LogSink

from ..forensics_helpers import cli, ttsops


def _sink_dir(d, n=3000, failed=False):
    sink = LogSink(d, max_bytes=40_000, block_bytes=4096, backup_count=1000)
    for i in range(n):
        status = "failed" if failed and i % 97 == 0 else "success"
        sink.submit((1718150400.0 + i, "t", "ERROR" if i % 97 == 0 else "INFO",
                     "synthesis_complete", {"id": f"ts_{i:08x}", "status": status,
                                            "error_code": "X" if i % 97 == 0 else "-"}, []))
    sink.close()
    os.unlink(d / ".app.log.lock")  # a copy of the files, no writer
    return sorted(d.glob("app.log.*.gz"))


def _as_version1(p):
    """The same blocks with the index of the first release (one JSON document)."""
    idx = read_index(p)
    data = p.read_bytes()[:idx.data_len]
    doc = {"version": 1, "data_len": idx.data_len,
           "blocks": [{k: v for k, v in b.to_json().items()
                       if k not in ("lcodes", "status", "fcodes", "examples")}
                      for b in idx.blocks]}
    payload = base64.b64encode(zlib.compress(json.dumps(doc).encode()))
    comment = INDEX_MAGIC + payload + b" " + str(len(payload)).zfill(LEN_DIGITS).encode()
    p.write_bytes(data + gzip_member(b"", comment))
    old = read_index(p, legacy=True)
    assert old is not None and old.version == 1
    assert read_index(p) is None  # no checksum: not trusted for answers


def test_foreign_old_damaged_and_current_files(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    files = _sink_dir(d)
    assert len(files) >= 5
    text = {p.name: gzip.decompress(p.read_bytes()) for p in files}
    foreign, old, damaged, current = files[0], files[1], files[2], files[3]
    foreign.write_bytes(gzip.compress(text[foreign.name]))  # plain gzip, no index
    _as_version1(old)
    old_prefix = old.read_bytes()[:read_index(old, legacy=True).data_len]
    cut = damaged.read_bytes()
    damaged.write_bytes(cut[: len(cut) // 2])
    junk = d / "app.log.99.gz"
    junk.write_bytes(b"not gzip at all\n")
    rc, out, err = cli("index", str(d), "--json", "--no-progress", "--jobs", "2")
    assert rc == 3  # answered, but some files could not be indexed
    res = {os.path.basename(r["path"]): r for r in json.loads(out)["files"]}
    assert res[foreign.name]["status"] == "indexed"
    assert res[old.name]["status"] == "reindexed"
    assert res[damaged.name]["status"] == "damaged"
    assert res[current.name]["status"] == "up to date"
    assert res[junk.name]["status"] == "not gzip"
    assert "truncated" in err and "left as it is" in err
    # indexed files: the same text, an index of the current version
    for p in (foreign, old, current):
        idx = read_index(p)
        assert idx is not None and idx.version == 3 and all(b.counted for b in idx.blocks)
        assert subprocess.run(["zcat", str(p)], capture_output=True).stdout == text[p.name]
    assert old.read_bytes().startswith(old_prefix)  # its blocks were kept
    assert damaged.read_bytes() == cut[: len(cut) // 2]  # untouched
    assert junk.read_bytes() == b"not gzip at all\n"
    assert not list(d.glob("*.part"))


def test_refuses_while_a_writer_runs_and_accepts_explicit_copies(tmp_path):
    d = tmp_path / "live"
    sink = LogSink(d, max_bytes=20_000, block_bytes=4096, backup_count=1000)
    for i in range(2000):
        sink.submit((1718150400.0 + i, "t", "INFO", "e", {"i": str(i)}, []))
    sink.flush()
    if sink.compressor is not None:  # the last rotation's compression renames files: let
        sink.compressor.join(60)     # it finish before they are copied (it raced, in CI)
    try:
        rc, _out, err = cli("index", str(d), "--no-progress")
        assert rc == 2 and "a ttsops writer is running" in err
        copy = tmp_path / "copy"
        copy.mkdir()
        for p in d.glob("app.log.*.gz"):
            shutil.copy(p, copy / p.name)
        rc, out, _ = cli("index", str(copy), "--json", "--no-progress")
        assert rc == 0
        assert json.loads(out)["summary"]["up to date"] == len(list(copy.glob("*.gz")))
    finally:
        sink.close()


def test_progress_bar_on_stderr_only(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    _sink_dir(d, 2000)
    env = {**os.environ, "TTSOPS_LOGS_PROGRESS_BYTES": "1"}
    import subprocess as sp

    res = sp.run([*TTSOPS, "logs", "window", "--dir", str(d),
                  "--progress", "--json"], capture_output=True, text=True, env=env,
                 timeout=120)
    assert res.returncode == 0, res.stderr
    json.loads(res.stdout)  # stdout is the answer alone
    import re

    # the finished bar: everything planned was read ("3.6/3.6 kB")
    assert re.search(r"reading logs .* (\S+)/\1 [kM]?B", res.stderr), res.stderr
    quiet = ttsops("logs", "window", "--dir", str(d), "--json")  # not a terminal: no bar
    assert quiet.returncode == 0 and "reading logs" not in quiet.stderr


def _plain_dir(tmp_path, n=1500):
    """Rotated files recompressed by plain gzip (no index): ``logs index`` rewrites them."""
    d = tmp_path / "plain"
    d.mkdir()
    files = _sink_dir(d, n)
    text = {}
    for p in files:
        text[p.name] = gzip.decompress(p.read_bytes())
        p.write_bytes(gzip.compress(text[p.name]))
        assert read_index(p) is None
    return d, files, text


def test_a_block_size_below_1024_is_refused_and_no_file_is_touched(tmp_path):
    """``--block-bytes 0`` (or negative) once rewrote every file as an empty gzip file
    and reported success."""
    d, files, text = _plain_dir(tmp_path)
    before = {p.name: p.read_bytes() for p in files}
    for flags in (("--block-bytes", "0"), ("--block-bytes", "-5"),
                  ("--block-bytes", "1023"), ("--force", "--block-bytes", "0")):
        rc, _out, err = cli("index", str(d), "--no-progress", *flags)
        assert rc == 2, (flags, err)
        assert {p.name: p.read_bytes() for p in files} == before
        assert not list(d.glob("*.part"))
    with pytest.raises(ValueError):
        indexer.index_file(str(files[0]), 0)
    with pytest.raises(indexer.IndexError_):
        indexer.run(files, block_bytes=0)
    assert {p.name: p.read_bytes() for p in files} == before
    # the indexed (current) files are refused as well, with --force
    rc, _out, _err = cli("index", str(d), "--no-progress", "--block-bytes", "1024")
    assert rc == 0
    indexed = {p.name: p.read_bytes() for p in files}
    rc, _out, _err = cli("index", str(d), "--no-progress", "--force", "--block-bytes", "0")
    assert rc == 2 and {p.name: p.read_bytes() for p in files} == indexed
    for p in files:
        assert gzip.decompress(p.read_bytes()) == text[p.name]


def _lossy(kind):
    """A block writer that loses data in a way its own count does not show."""
    real = logindex.write_block_gzip

    def writer(src, dst, block_bytes):
        if kind == "reads nothing":  # what a block size of 0 did
            return real(io.BytesIO(b""), dst, block_bytes)
        if kind == "stops early":  # consumes (and writes) only its first block
            return real(io.BytesIO(src.read(block_bytes)), dst, block_bytes)
        data = bytearray()
        while chunk := src.read(1 << 16):
            data += chunk
        if kind == "alters a byte":  # same length, other text
            data[len(data) // 2] ^= 0x20
            return real(io.BytesIO(bytes(data)), dst, block_bytes)
        if kind == "index lies":  # writes half, its index counts the whole
            half = bytes(data[: len(data) // 2])
            member = logindex.gzip_member(half)
            dst.write(member)
            st = logindex.scan_lines(half.decode().split("\n"))
            st.off, st.clen, st.ulen = 0, len(member), len(data)
            idx = logindex.FileIndex([st], len(member))
            dst.write(logindex.index_member(idx))
            return idx
        raise AssertionError(kind)
    return writer


@pytest.mark.parametrize("kind", ["reads nothing", "stops early", "alters a byte",
                                  "index lies"])
def test_index_file_never_replaces_a_file_with_one_that_lost_data(tmp_path, monkeypatch,
                                                                   kind):
    """The check before the rename does not trust the writer's own count: both files are
    decompressed again and must give the same length and CRC-32."""
    _d, files, text = _plain_dir(tmp_path, 1200)
    p = files[0]
    before = p.read_bytes()
    monkeypatch.setattr(indexer, "write_block_gzip", _lossy(kind))
    r = indexer.index_file(str(p), 4096)
    assert r.status == "error", r
    assert "left as it is" in r.detail
    assert p.read_bytes() == before and gzip.decompress(before) == text[p.name]
    assert not list(p.parent.glob("*.part"))


def test_a_file_renamed_away_while_indexed_is_not_overwritten(tmp_path, monkeypatch):
    """A rotation renames the file being indexed (app.log.1.gz -> app.log.2.gz) and puts
    the next one at its name: the copy of the first must not replace the second."""
    _d, files, text = _plain_dir(tmp_path, 1200)
    p, other = files[0], files[1]
    theirs = other.read_bytes()
    real_verify = indexer._verify

    def verify_then_rotate(original, part, new):
        bad = real_verify(original, part, new)
        moved = original.with_name("moved-away.gz")
        os.replace(original, moved)  # the rotator's renames, after the check
        shutil.copyfile(other, original)
        return bad

    monkeypatch.setattr(indexer, "_verify", verify_then_rotate)
    r = indexer.index_file(str(p), 4096)
    assert r.status == "moved", r
    assert p.read_bytes() == theirs
    assert gzip.decompress(p.with_name("moved-away.gz").read_bytes()) == text[p.name]
    assert not list(p.parent.glob("*.part"))


def test_the_check_passes_an_honest_writer(tmp_path):
    _d, files, text = _plain_dir(tmp_path, 1200)
    r = indexer.index_file(str(files[0]), 4096)
    assert r.status == "indexed" and r.text_bytes == len(text[files[0].name])
    assert gzip.decompress(files[0].read_bytes()) == text[files[0].name]
    assert indexer.gunzip_sum(files[0]) == (len(text[files[0].name]),
                                            zlib.crc32(text[files[0].name]))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(files[0].read_bytes()[:-30])
    with pytest.raises(ValueError):
        indexer.gunzip_sum(cut)


def test_logrotate_dateext_files_are_indexed_too(tmp_path):
    """logrotate's dateext names (app.log-YYYYMMDD.gz) are read by every logs command, so
    `logs index DIR` gives them an index as well (it used to pass them over in silence);
    an uncompressed app.log-YYYYMMDD is left alone."""
    d = tmp_path / "logs"
    d.mkdir()
    files = _sink_dir(d)
    text = {}
    for day, p in zip(("20240610", "20240611"), files[:2], strict=True):
        data = gzip.decompress(p.read_bytes())
        dst = d / f"app.log-{day}.gz"
        dst.write_bytes(gzip.compress(data))  # whole-file gzip, as logrotate writes it
        text[dst.name] = data
        p.unlink()
    plain = d / "app.log-20240612"
    plain.write_bytes(b"2024-06-12 00:00:00,000 - app - INFO - x: a=1\n")
    assert [p.name for p in indexer.candidates([str(d)], [])][:2] == sorted(text)
    rc, out, _err = cli("index", str(d), "--json", "--no-progress")
    assert rc == 0
    res = {os.path.basename(r["path"]): r["status"] for r in json.loads(out)["files"]}
    for name, data in text.items():
        assert res[name] == "indexed"
        assert read_index(d / name) is not None
        assert subprocess.run(["zcat", str(d / name)], capture_output=True).stdout == data
    assert plain.name not in res


def _as_other_grammar(p, monkeypatch):
    """The same blocks with a version 3 index another parser made (grammar 0: before the
    stamp) whose counts disagree with this parser's reading: every ERROR code renamed."""
    from ttsops import indexformat

    idx = read_index(p)
    blocks = idx.blocks
    for b in blocks:
        b.lcodes = type(b.lcodes)({f"{k}, free text": n for k, n in b.lcodes.items()})
    data = p.read_bytes()[:idx.data_len]
    with monkeypatch.context() as m:
        m.setattr(indexformat, "GRAMMAR", 0)
        p.write_bytes(data + logindex.index_member(logindex.FileIndex(blocks, idx.data_len)))
    old = read_index(p, legacy=True)
    assert old is not None and old.version == 3 and old.grammar == 0


def _all_reindexed(d, detail: str) -> None:
    """``logs index`` on ``d`` reindexes every file (blocks kept), saying ``detail``."""
    rc, out, _ = cli("index", str(d), "--json", "--no-progress")
    assert rc == 0
    res = json.loads(out)["files"]
    assert {r["status"] for r in res} == {"reindexed"}
    assert all(detail in r["detail"] for r in res)


def test_an_index_another_parser_made_is_not_trusted_and_is_made_anew(tmp_path, monkeypatch):
    d = tmp_path / "logs"
    d.mkdir()
    files = _sink_dir(d)
    args = ["window", "--dir", str(d), "--since", "2024-06-12 00:00:00", "--until",
            "2024-06-13 00:00:00", "--json"]
    rc, out, _ = cli(*args, "--no-index")
    assert rc == 0
    truth = json.loads(out)["error_codes"]
    assert truth == {"X": sum(1 for i in range(3000) if i % 97 == 0)}
    for p in files:
        _as_other_grammar(p, monkeypatch)
        assert read_index(p) is None  # counts of another parser: not for answers
    rc, out, _ = cli(*args)
    assert rc == 0
    got = json.loads(out)
    assert got["error_codes"] == truth and got["read"]["blocks_from_index"] == 0
    _all_reindexed(d, "another parser")
    for p in files:
        idx = read_index(p)
        assert idx is not None and idx.grammar == indexformat.GRAMMAR
    rc, out, _ = cli(*args)
    assert rc == 0
    got = json.loads(out)
    assert got["error_codes"] == truth and got["read"]["blocks_from_index"] > 0


def test_an_index_without_the_failed_lines_is_given_them_and_answers_the_same(tmp_path):
    """An index written before blocks kept their failed syntheses' lines is still read
    (its blocks decompressed for ``patterns --where status=failed``); ``logs index`` adds
    the lines, keeping the blocks, and the answer stays the same."""
    d = tmp_path / "logs"
    d.mkdir()
    files = _sink_dir(d, failed=True)
    args = ["patterns", "--dir", str(d), "--where", "status=failed", "--by", "error_code",
            "--json"]
    rc, out, _ = cli(*args, "--no-index")
    assert rc == 0
    truth = json.loads(out)
    assert truth["matching"] > 0
    for p in files:
        idx = read_index(p)
        blocks = idx.blocks
        for b in blocks:
            b.failed = None
        data = p.read_bytes()[:idx.data_len]
        p.write_bytes(data + logindex.index_member(
            logindex.FileIndex(blocks, idx.data_len, keeps_failed=False)))
        old = read_index(p)
        assert old is not None and not old.keeps_failed
        assert all(b.failed is None for b in old.blocks)
    rc, out, _ = cli(*args)
    assert rc == 0 and json.loads(out) == truth
    _all_reindexed(d, "failed syntheses' lines added")
    for p in files:
        idx = read_index(p)
        assert idx is not None and idx.keeps_failed
        assert sum(len(b.failed or ()) for b in idx.blocks) == \
            sum(n for b in idx.blocks for s, n in b.status.items() if s != "success")
    rc, out, _ = cli(*args)
    assert rc == 0 and json.loads(out) == truth
