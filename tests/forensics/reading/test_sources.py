"""Sources and reading: discovery order, snapshots under rotation, damaged and foreign
input (truncated gz, corrupt member, binary junk, not-gzip, unreadable, empty dir)."""

from __future__ import annotations

import os
import random
import shutil
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttsops.forensics.reading.scan import Query, Scan, grep_lines
from ttsops.forensics.reading.sources import SourceError, open_snapshot
from ttsops.logline import Record, iter_records, render
from ttsops.logsink import LogSink

from ..forensics_helpers import cli, cli_json, ttsops


def _write(d, n, *, max_bytes=20_000, block=4_096, start=1718150400.0, fmt="text",
           prefix="ts_"):
    sink = LogSink(d, max_bytes=max_bytes, block_bytes=block, backup_count=10_000, fmt=fmt)
    for i in range(n):
        tb = ["Traceback (most recent call last):", f"  boom {i}"] if i % 50 == 7 else []
        sink.submit((start + i * 0.25, "t", "ERROR" if tb else "INFO", "synthesis_start",
                     {"id": f"{prefix}{i:08x}", "seq": str(i), "text": "a, b=c \"d\""}, tb))
    sink.close()
    return d


def _seqs(snap_or_dir, **q):
    snap = open_snapshot([snap_or_dir]) if not hasattr(snap_or_dir, "files") else snap_or_dir
    with snap:
        return [int(r.fields["seq"]) for r in Scan(snap, Query(**q)).records()], snap.problems


def test_discovery_order_pending_and_dedupe(tmp_path):
    d = _write(tmp_path / "a", 2000)
    names = [f.name for f in open_snapshot([d]).files]
    nums = [int(n.split(".")[2]) for n in names if n.endswith(".gz")]
    assert nums == sorted(nums, reverse=True) and names[-1] == "app.log"
    # a pending app.log.0 (rotated, not yet compressed) sits between .1.gz and app.log
    shutil.copy(d / "app.log", d / "app.log.0")
    assert [f.name for f in open_snapshot([d]).files][-2:] == ["app.log.0", "app.log"]
    os.unlink(d / "app.log.0")
    seqs, problems = _seqs(d)
    assert seqs == list(range(2000)) and not problems
    # the same file through --dir and --files is read once
    with open_snapshot([d], [d / "app.log.1.gz"]) as snap:
        assert len(snap.files) == len(names)


def test_missing_and_empty_directories(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        open_snapshot([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    with pytest.raises(SourceError, match="no readable log files"):
        open_snapshot([tmp_path / "empty"])


def test_truncated_gz_reports_and_answers_the_rest(tmp_path):
    d = _write(tmp_path, 3000)
    victim = d / "app.log.3.gz"
    full = victim.read_bytes()
    victim.write_bytes(full[: len(full) // 2])
    seqs, problems = _seqs(d)
    assert len(problems) == 1 and "truncated" in problems[0].message
    assert "app.log.3.gz" in problems[0].path
    # everything else is there, once, in order; the damaged file up to the damage
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert seqs[-1] == 2999 and 2500 < len(seqs) < 3000


def test_corrupt_member_is_skipped_to_the_next_member(tmp_path):
    d = _write(tmp_path, 3000)
    victim = d / "app.log.2.gz"
    data = bytearray(victim.read_bytes())
    i = data.find(b"\x1f\x8b\x08", 100)  # the second member
    for k in range(i + 20, i + 60):
        data[k] ^= 0x5A
    victim.write_bytes(bytes(data))
    for no_index in (False, True):
        seqs, problems = _seqs(d, use_index=not no_index)
        assert problems and "corrupt" in problems[0].message
        assert seqs[-1] == 2999 and len(seqs) > 2700 and len(set(seqs)) == len(seqs)


def test_binary_junk_not_gzip_and_unreadable(tmp_path):
    d = _write(tmp_path, 500)
    rnd = random.Random(1)
    (d / "app.log.90.gz").write_bytes(bytes(rnd.getrandbits(8) for _ in range(5000)))
    (d / "app.log.91.gz").mkdir()  # cannot be read as a file
    with open(d / "app.log", "ab") as f:  # junk and foreign lines in the live file
        f.write(b"\x00\xff\xfe garbage \x80\n")
        f.write(b"INFO:     127.0.0.1:5000 - \"POST /v1/audio/speech HTTP/1.1\" 200 OK\n")
    seqs, problems = _seqs(d)
    assert seqs == list(range(500))
    msgs = " | ".join(str(p) for p in problems)
    assert "app.log.90.gz" in msgs and "not gzip" in msgs
    assert "app.log.91.gz" in msgs and "cannot open" in msgs
    res = ttsops("logs", "window", "--dir", str(d))
    assert res.returncode == 3
    assert "Traceback" not in res.stderr and "not gzip data" in res.stderr
    assert "unparsable lines: 2" in res.stdout


def test_cli_errors_are_messages_not_tracebacks(tmp_path):
    for args, code, msg in [
        (["window", "--dir", str(tmp_path / "nope")], 2, "does not exist"),
        (["window", "--dir", str(tmp_path)], 2, "no readable log files"),
        (["window", "--dir", str(tmp_path), "--since", "yesterday-ish"], 2, "cannot read time"),
        (["window", "--dir", str(tmp_path), "--since", "2h", "--until", "3h"], 2, "not before"),
    ]:
        res = ttsops("logs", *args)
        assert res.returncode == code, (args, res.stderr)
        assert msg in res.stderr and "Traceback" not in res.stderr
    d = _write(tmp_path / "x", 100)
    res = ttsops("logs", "patterns", "--dir", str(d), "--where", "text_len<abc")
    assert res.returncode == 2 and "needs a number" in res.stderr


def test_rotation_while_reading_loses_and_doubles_nothing(tmp_path):
    sink = LogSink(tmp_path, max_bytes=30_000, block_bytes=4_096, backup_count=10_000)
    for i in range(3000):
        sink.submit((1718150400.0 + i, "t", "INFO", "tick", {"seq": str(i)}, []))
    sink.flush()
    snap = open_snapshot([tmp_path])
    it = Scan(snap, Query()).records()
    first = [int(next(it).fields["seq"]) for _ in range(10)]
    # the writer rotates many times underneath the open reader
    for i in range(3000, 9000):
        sink.submit((1718150400.0 + i, "t", "INFO", "tick", {"seq": str(i)}, []))
    sink.flush()
    while sink.compressor is not None and sink.compressor.is_alive():
        sink.compressor.join()
    rest = [int(r.fields["seq"]) for r in it]
    snap.close()
    sink.close()
    seqs = first + rest
    assert len(set(seqs)) == len(seqs)
    assert seqs[:3000] == list(range(3000))  # everything of the snapshot
    assert seqs == list(range(len(seqs)))  # and what came after only as a prefix, in order


def test_concurrent_writer_and_snapshots(tmp_path):
    sink = LogSink(tmp_path, max_bytes=8_000, block_bytes=2_048, backup_count=10_000)
    stop = threading.Event()

    def write():
        i = 0
        while not stop.is_set() and i < 20_000:
            sink.submit((1718150400.0 + i, "t", "INFO", "tick", {"seq": str(i)}, []))
            i += 1
            if i % 500 == 0:
                sink.flush()
    th = threading.Thread(target=write)
    th.start()
    try:
        for _ in range(5):
            seqs, problems = _seqs(tmp_path)
            assert not problems
            assert seqs == list(range(len(seqs)))  # a prefix: no gap, no duplicate
    finally:
        stop.set()
        th.join()
        sink.close()


def test_json_and_text_lines_mixed(tmp_path):
    _write(tmp_path, 300, fmt="json", max_bytes=10_000)
    _write(tmp_path, 300, fmt="text", max_bytes=10_000, start=1718150400.0 + 300,
           prefix="tx_")
    with open_snapshot([tmp_path]) as snap:
        recs = list(Scan(snap, Query()).records())
    assert len(recs) == 600 and sum(1 for r in recs if r.traceback) == 12
    rep = cli_json("trace", "tx_0000012b", "ts_00000007", "--dir", str(tmp_path))
    assert [r["fields"]["id"] for r in rep["records"]] == ["ts_00000007", "tx_0000012b"]
    assert rep["records"][0]["traceback"] == ["Traceback (most recent call last):", "  boom 7"]


def test_several_directories_are_merged_by_time(tmp_path):
    a = _write(tmp_path / "host-a", 400, start=1718150400.0)
    b = _write(tmp_path / "host-b", 400, start=1718150400.1, prefix="tb_")
    with open_snapshot([a, b]) as snap:
        recs = list(Scan(snap, Query()).records())
    assert len(recs) == 800
    assert [r.ts for r in recs] == sorted(r.ts for r in recs)
    rc, out, _ = cli("trace", "tb_00000010", "--dir", str(a), "--dir", str(b))
    assert rc == 0 and "host-b" in out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["a1", "b22", "c", "zz"]),
                          st.text(alphabet="ab, =\"\n\\x", max_size=12),
                          st.booleans()), max_size=30),
       st.sampled_from(["a1", "b22", "zz", "\"", "x"]),
       st.sampled_from([(), ("a",), ("b", "2")]))
def test_grep_lines_selects_exactly_the_records_containing_the_needle(items, needle, require):
    recs = [Record(f"2024-06-12 00:00:{i % 60:02d},000", "t", "INFO", "ev",
                   {"id": k, "text": v}, ["Traceback:", f"  at {k}"] if tb else [])
            for i, (k, v, tb) in enumerate(items)]
    text = "\n".join(render(r) for r in recs) + ("\n" if recs else "")
    got = list(iter_records(grep_lines(text, [needle], require)))
    want = [r for r in recs if needle in render(r)
            and all(x in render(r).split("\n")[0] for x in require)]
    assert got == want
