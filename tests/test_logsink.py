from __future__ import annotations

import contextlib
import gzip
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from logsink_helpers import crashing_writer, forwarding_writer
from ttsops import events
from ttsops.logindex import compress_file, read_index, scan_lines
from ttsops.logline import iter_records
from ttsops.logsink import LogSink, finish_rotation, rotated_name


def all_lines(d: Path) -> list[str]:
    """Oldest first: app.log.N.gz ... app.log.1.gz, then app.log."""
    gz = sorted(d.glob("app.log.*.gz"), key=lambda p: -int(p.name.split(".")[2]))
    out: list[str] = []
    for p in gz:
        out += gzip.decompress(p.read_bytes()).decode().splitlines()
    live = d / "app.log"
    if live.exists():
        out += live.read_text().splitlines()
    return out


def until(pred, what: str, timeout: float = 30.0) -> None:
    """Wait for a condition (not a fixed time: a loaded machine is slow, a quiet one fast)."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_multi_process_writers_lose_and_tear_nothing_across_rotations(tmp_path):
    # ~45 rotations (each costs a compression and an index; the records only as many as
    # that takes: 50k, not the 200k and ~170 rotations it once wrote for the same checks)
    sink = LogSink(tmp_path, max_bytes=150_000, block_bytes=32_000, backup_count=1000)
    events.set_sink(sink)
    ctx = mp.get_context("spawn")
    mpq = sink.mp_queue(ctx)
    nproc, per = 4, 12_500
    procs = [ctx.Process(target=forwarding_writer, args=(mpq, p, per)) for p in range(nproc)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    sink.flush(60)
    sink.close()
    rotated = list(tmp_path.glob("app.log.*.gz"))
    assert len(rotated) >= 20
    for p in rotated:
        assert subprocess.run(["gzip", "-t", str(p)]).returncode == 0
        idx = read_index(p)
        assert idx is not None, p
        full = scan_lines(gzip.decompress(p.read_bytes()).decode().splitlines())
        t = idx.total
        assert (t.lines, t.records, t.levels, t.events, t.codes, t.first_ts, t.last_ts) == (
            full.lines, full.records, full.levels, full.events, full.codes, full.first_ts,
            full.last_ts)
        assert all(any(b.may_contain(i) for b in idx.blocks) for i in full.ids)
    seen = Counter()
    last_seq: dict[str, int] = {}
    for rec in iter_records(all_lines(tmp_path)):
        assert rec.fields["text"] == '今天天气真好, "quoted"'
        seen[(rec.logger, rec.fields["seq"])] += 1
        seq = int(rec.fields["seq"])
        assert seq > last_seq.get(rec.logger, -1)  # per-process order kept
        last_seq[rec.logger] = seq
    assert len(seen) == nproc * per and set(seen.values()) == {1}
    assert not list(tmp_path.glob("app.log.0*"))


def _lines(n, start=0):
    return "".join(f"2024-06-12 14:00:00,000 - t - INFO - tick: seq={i}\n"
                   for i in range(start, start + n))


def _seqs(d: Path) -> list[int]:
    return [int(r.fields["seq"]) for r in iter_records(all_lines(d))]


def test_recovery_after_crash_before_compression_finished(tmp_path):
    (tmp_path / "app.log.1.gz").write_bytes(gzip.compress(_lines(10).encode()))
    (tmp_path / "app.log.0").write_text(_lines(10, 10))
    (tmp_path / "app.log.0.gz.part").write_bytes(b"\x1f\x8b\x08truncated")
    (tmp_path / "app.log").write_text(_lines(5, 20))
    LogSink(tmp_path).close()
    assert _seqs(tmp_path) == list(range(25))
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "app.log", "app.log.1.gz", "app.log.2.gz"]


def test_recovery_after_crash_between_compress_and_unlink(tmp_path):
    (tmp_path / "app.log.0").write_text(_lines(10))
    compress_file(tmp_path / "app.log.0", tmp_path / "app.log.0.gz", 1 << 20)
    LogSink(tmp_path).close()
    assert _seqs(tmp_path) == list(range(10))  # not doubled


def test_recovery_after_crash_in_the_middle_of_the_rename_cascade(tmp_path):
    # before the crash: 1,2,3,4 existed; 4->5 and 3->4 were done, then the crash
    for n, start in [(1, 30), (2, 20), (4, 10), (5, 0)]:
        (tmp_path / rotated_name(n)).write_bytes(gzip.compress(_lines(10, start).encode()))
    (tmp_path / "app.log.0").write_text(_lines(10, 40))
    finish_rotation(tmp_path, keep=100, block_bytes=1 << 20)
    assert sorted(int(p.name.split(".")[2]) for p in tmp_path.glob("app.log.*.gz")) == \
        [1, 2, 3, 4, 5]
    assert _seqs(tmp_path) == list(range(50))


def test_keep_count_drops_the_oldest(tmp_path):
    sink = LogSink(tmp_path, max_bytes=5000, block_bytes=1024, backup_count=3)
    events.set_sink(sink)
    log = events.get_logger("t")
    for i in range(2000):
        log.info("tick", seq=i, pad="y" * 40)
    sink.close()
    names = sorted(p.name for p in tmp_path.glob("app.log.*.gz"))
    assert names == ["app.log.1.gz", "app.log.2.gz", "app.log.3.gz"]
    seqs = _seqs(tmp_path)
    assert seqs == list(range(seqs[0], 2000))  # the newest, contiguous


def test_sigkill_during_rotations_leaves_no_corrupt_gz_and_no_gap(tmp_path):
    ctx = mp.get_context("spawn")
    written = 0
    for round_ in range(3):
        p = ctx.Process(target=crashing_writer, args=(str(tmp_path), written, 1_000_000))
        p.start()
        # killed once it has rotated a few times, at a different point of a rotation each
        # round (it rotates every few ms); not after a fixed time, which a loaded machine
        # may spend starting the process
        before = len(list(tmp_path.glob("app.log.*.gz")))
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("app.log.*.gz"))) < before + 3 + round_:
            assert p.is_alive() and time.monotonic() < deadline, "the writer never rotated"
            time.sleep(0.01)
        time.sleep(0.003 * round_)
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        LogSink(tmp_path, max_bytes=20_000, block_bytes=4_000, backup_count=10_000).close()
        for gz in tmp_path.glob("app.log.*.gz"):
            assert subprocess.run(["gzip", "-t", str(gz)]).returncode == 0, gz
        seqs = _seqs(tmp_path)
        # one writer, FIFO: what reached the disk is a gap-free prefix, nothing doubled
        assert seqs == list(range(len(seqs)))
        assert len(seqs) > written
        written = len(seqs)
    assert len(list(tmp_path.glob("app.log.*.gz"))) > 3


@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip()}); "
                    "the injected-ENOSPC variant covers the logic")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def test_full_log_disk_degrades_and_recovers(tiny_fs):
    sink = LogSink(tiny_fs, max_bytes=10 << 20, block_bytes=1 << 20)
    events.set_sink(sink)
    log = events.get_logger("t")
    filler = tiny_fs / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as f:
        f.write(b"\0" * (1 << 20))  # fill the disk
    t0 = time.perf_counter()
    for i in range(500):
        log.info("tick", seq=i)
    assert time.perf_counter() - t0 < 2.0  # emitting never waits on the full disk
    sink.flush()
    # the writer met the full disk and holds the lines (it retries every POLL_S)
    until(lambda: sink.fail_since is not None and sink.held, "the writer to hold lines")
    filler.unlink()  # space again
    for i in range(500, 510):
        log.info("tick", seq=i)
    sink.flush()
    until(lambda: sink.fail_since is None and not sink.held, "the held lines written")
    sink.flush()
    sink.close()
    recs = list(iter_records((tiny_fs / "app.log").read_text().splitlines()))
    seqs = [int(r.fields["seq"]) for r in recs if r.event == "tick"]
    assert seqs == list(range(510))  # held and written after recovery, nothing lost
    rec = [r for r in recs if r.event == "log_write_recovered"]
    assert len(rec) == 1 and rec[0].fields["dropped"] == "0"
    assert "No space left" in rec[0].fields["error"]


def test_injected_write_error_is_held_and_retried(tmp_path, monkeypatch):
    sink = LogSink(tmp_path)
    events.set_sink(sink)
    log = events.get_logger("t")
    sink.flush()
    real = sink.fh

    class Failing:
        def __init__(self) -> None:
            self.fails = 3

        def write(self, s):
            if self.fails:
                self.fails -= 1
                raise OSError(28, "No space left on device")
            return real.write(s)

        def __getattr__(self, name):
            return getattr(real, name)

    sink.fh = Failing()
    for i in range(20):
        log.info("tick", seq=i)
    sink.close()
    recs = list(iter_records((tmp_path / "app.log").read_text().splitlines()))
    assert [int(r.fields["seq"]) for r in recs if r.event == "tick"] == list(range(20))


def test_log_dir_removed_while_running_is_recreated(tmp_path):
    d = tmp_path / "logs"
    sink = LogSink(d)
    events.set_sink(sink)
    log = events.get_logger("t")
    log.info("before")
    sink.flush()
    shutil.rmtree(d)
    # the writer looks for its file about once a second and opens a new one
    until(lambda: (d / "app.log").exists(), "app.log recreated")
    log.info("after")
    sink.flush()
    log.info("after2")
    sink.flush()
    sink.close()
    events_ = [r.event for r in iter_records((d / "app.log").read_text().splitlines())]
    assert "after2" in events_


def test_second_writer_is_refused(tmp_path):
    sink = LogSink(tmp_path)
    try:
        with pytest.raises(RuntimeError, match="exactly one writer"):
            LogSink(tmp_path)
    finally:
        sink.close()
