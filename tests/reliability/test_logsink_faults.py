"""The log writer on file systems that misbehave, for real: a disk with a few KB left (a
write stops half-way), a directory made read-only while rotating, a rotated file whose
compression failed. Whatever happens, every line is whole, none is lost, none doubled,
and the writer thread survives."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from ttsops import events
from ttsops.logsink import LogSink

from .kit import fill_up, gzip_ok, read_log, read_only, tmpfs, wait_for

PAYLOAD = "x" * 180  # lines of ~300 bytes: a batch is many KB


def _emit(n0: int, n: int) -> None:
    log = events.get_logger("t")
    for i in range(n0, n0 + n):
        log.info("tick", seq=i, pad=PAYLOAD)


def _seqs(d: Path) -> list[int]:
    for _ in range(20):  # a rotation may move a file between listing and opening it
        try:
            return [int(r.fields["seq"]) for r in read_log(d) if r.event == "tick"]
        except FileNotFoundError:
            time.sleep(0.01)
    raise AssertionError("the log kept moving")


def _unparsable(d: Path) -> list[str]:
    bad = []
    for p in d.glob("app.log*"):
        if p.suffix in (".gz", ".lock"):
            continue
        bad += [ln for ln in p.read_text(errors="replace").splitlines()
                if not ln[:4].isdigit()]
    return bad


def test_a_write_that_stops_half_way_is_cut_back_not_torn_or_doubled(tmp_path):
    mnt = tmp_path / "fs"
    with tmpfs(mnt, "256k") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        sink = LogSink(mnt, max_bytes=10 << 20)
        events.set_sink(sink)
        _emit(0, 50)
        sink.flush()
        spare = mnt / "spare"
        spare.write_bytes(b"\0" * 8192)
        filler = fill_up(mnt)
        spare.unlink()  # 8 KB left: the next batch (~60 KB) stops part-way
        _emit(50, 200)
        sink.flush()
        wait_for(lambda: sink.fail_since is not None, 30, "the writer to meet the full disk",
                 every=0.01)
        assert sink.thread.is_alive()
        filler.unlink()
        _emit(250, 10)
        sink.flush()
        wait_for(lambda: sink.fail_since is None, 5, "the writer to recover")
        sink.close()
        assert _unparsable(mnt) == []
        assert _seqs(mnt) == list(range(260))  # in order, once each
        rec = [r for r in read_log(mnt) if r.event == "log_write_recovered"]
        assert len(rec) == 1 and rec[0].get("dropped") == "0"


def test_rotation_into_a_read_only_directory_keeps_writing(tmp_path, monkeypatch):
    monkeypatch.setattr("ttsops.logsink.ROTATE_RETRY_S", 0.5, raising=False)
    d = tmp_path / "logs"
    sink = LogSink(d, max_bytes=8192, block_bytes=4096)
    events.set_sink(sink)
    _emit(0, 30)
    sink.flush()
    with read_only(d) as ro:
        if not ro:
            sink.close()
            pytest.skip("cannot bind-mount read-only here (needs root)")
        _emit(30, 200)  # crosses the rotation size many times: rename gets EROFS
        sink.flush()
        # still written, to the open app.log, while rotation waits
        wait_for(lambda: len([r for r in read_log(d) if r.event == "tick"]) == 230, 30,
                 "all 230 records in app.log", every=0.02)
        assert sink.thread.is_alive()
    time.sleep(0.6)
    _emit(230, 200)
    sink.flush()
    time.sleep(0.3)
    sink.close()
    assert gzip_ok(d) == []
    assert _seqs(d) == list(range(430))
    failed = [r for r in read_log(d) if r.event == "log_rotate_failed"]
    assert failed and "Read-only" in failed[0].get("error")
    assert any(d.glob("app.log.*.gz"))  # rotation resumed once writable


def test_a_rotated_file_whose_compression_failed_is_never_overwritten(tmp_path, monkeypatch):
    monkeypatch.setattr("ttsops.logsink.ROTATE_RETRY_S", 0.5, raising=False)
    d = tmp_path / "logs"
    sink = LogSink(d, max_bytes=8192, block_bytes=4096)
    events.set_sink(sink)
    obstacle = d / "app.log.0.gz.part"
    obstacle.mkdir()  # compression cannot write its .part: app.log.0 stays uncompressed
    for k in range(6):  # several rotations while the first pending file is stuck
        _emit(k * 40, 40)
        sink.flush()
        time.sleep(0.2)
    assert sink.thread.is_alive()
    assert (d / "app.log.0").exists()
    os.rmdir(obstacle)
    time.sleep(0.6)
    _emit(240, 40)
    sink.flush()
    time.sleep(0.3)
    sink.close()
    assert gzip_ok(d) == []
    assert _seqs(d) == list(range(280))
    assert [r for r in read_log(d) if r.event == "log_rotate_failed"]


def test_log_directory_removed_loses_nothing_written_after_and_says_so(tmp_path):
    d = tmp_path / "logs"
    sink = LogSink(d)
    events.set_sink(sink)
    _emit(0, 20)
    sink.flush()
    shutil.rmtree(d)
    for k in range(10):  # lines keep coming while the directory is gone
        _emit(20 + k * 10, 10)
        sink.flush()
        time.sleep(0.03)
    sink.flush()
    recs = read_log(d)
    # what was written before the removal went with it; everything after is there
    assert [int(r.fields["seq"]) for r in recs if r.event == "tick"] == list(range(20, 120))
    reopened = [r for r in recs if r.event == "log_file_reopened"]
    assert len(reopened) == 1 and reopened[0].get("reason") == "removed"
    with pytest.raises(RuntimeError, match="exactly one writer"):
        LogSink(d)  # the recreated directory is locked again
    sink.close()


def test_the_log_read_back_while_the_writer_rotates_has_each_record_once_in_order(tmp_path):
    """kit.read_log on a live log (the drills wait for records this way): files move to
    the next name and app.log.0 vanishes once compressed while it reads; each read must
    still be a prefix of what was written, in order, nothing twice, nothing skipped."""
    d = tmp_path / "logs"
    sink = LogSink(d, max_bytes=4096, block_bytes=1024, backup_count=100000)
    events.set_sink(sink)
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():  # bursts of ~12 KB (3 rotations), then a pause in
            _emit(i, 40)           # which a read can finish (on a loaded machine the
            i += 40                # writer may still be rotating well after a burst)
            time.sleep(0.4)

    t = threading.Thread(target=produce)
    t.start()
    reads = []
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            seqs = [int(r.fields["seq"]) for r in read_log(d) if r.event == "tick"]
            whole = seqs[:-1]  # the last line may be one the writer is writing right now
            assert whole == list(range(len(whole)))
            reads.append(len(seqs))
    finally:
        stop.set()
        t.join()
        sink.close()
    assert len(reads) > 5 and reads[-1] > reads[0]
    assert len(list(d.glob("app.log.*.gz"))) >= 10
