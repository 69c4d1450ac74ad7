"""The audio cache and its health reporter, alone and inside the real pipeline."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from pathlib import Path

import pytest

from ttsops import cache as cache_mod
from ttsops.cache import MB, AudioCache, CacheEntry, cache_key
from ttsops.cache_health import CacheHealthReporter
from ttsops.config import Settings
from ttsops.pipeline.runner import Pipeline
from ttsops.pipeline.types import SynthesisRequest


def entry(n: int = 1000, fill: bytes = b"a") -> CacheEntry:
    return CacheEntry(fill * n, "mp3", 22050, 1234.5, {"rms": 0.1, "duration_ms": 1234.5})


def events(items, name):
    return [i for i in items if i[3] == name]


def pipeline(tmp_path, **kw) -> Pipeline:
    s = Settings(cache_dir=tmp_path / "cache", log_dir=tmp_path / "logs", **kw)
    return Pipeline(settings=s)


# --- keys ----------------------------------------------------------------------------
def test_key_depends_on_every_part():
    base = ("hello", "alloy", "en", 1.0, "mp3", 22050, "espeak", "1.52.0")
    k = cache_key(*base)
    assert len(k) == 64
    for i, other in enumerate(["hullo", "nova", "zh", 1.25, "wav", 24000, "fake", "1.53.0"]):
        changed = list(base)
        changed[i] = other
        assert cache_key(*changed) != k, i
    assert cache_key(*base) == k


# --- storage -------------------------------------------------------------------------
def test_put_get_round_trip_and_no_temp_files(tmp_path):
    c = AudioCache(tmp_path / "c")
    assert c.get("ab" * 32) is None
    assert c.put("ab" * 32, entry())
    got = c.get("ab" * 32)
    assert got == entry()
    files = [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["ab" * 32 + ".tts"]
    assert c.usage() == (files[0].stat().st_size, 1)


def test_a_new_instance_finds_existing_entries(tmp_path):
    AudioCache(tmp_path / "c").put("cd" * 32, entry())
    c2 = AudioCache(tmp_path / "c")
    assert c2.usage()[1] == 1
    assert c2.get("cd" * 32) == entry()


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupt_entry_is_detected(tmp_path, captured, damage):
    c = AudioCache(tmp_path / "c")
    key = "ef" * 32
    c.put(key, entry(5000))
    f = next((tmp_path / "c").rglob("*.tts"))
    raw = bytearray(f.read_bytes())
    if damage == "flip":
        raw[-100] ^= 0xFF
    elif damage == "truncate":
        raw = raw[:-10]
    else:
        raw = bytearray(b"not a cache entry at all")
    f.write_bytes(bytes(raw))
    assert c.get(key) is None
    (w,) = events(captured, "cache_corrupt")
    assert w[2] == "WARNING" and w[4]["warning_code"] == "CACHE_CORRUPT"
    assert not f.exists()  # removed, so the recomputed audio takes its place
    assert c.usage() == (0, 0)


# --- the verified in-memory copies ----------------------------------------------------
def _damage_in_place(f: Path, offset: int = -100) -> None:
    """Flip one byte without changing the file's inode, size or mtime (bit rot)."""
    st = f.stat()
    with open(f, "r+b") as fh:
        fh.seek(offset, os.SEEK_END)
        b = fh.read(1)
        fh.seek(offset, os.SEEK_END)
        fh.write(bytes([b[0] ^ 0xFF]))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns


def test_memory_serves_the_verified_bytes_without_reading_the_file(tmp_path, monkeypatch):
    c = AudioCache(tmp_path / "c")
    key = "a1" * 32
    c.put(key, entry(5000))
    assert c.memory_usage() == (0, 0)  # a write is verified when first read, not before
    first = c.get(key)
    assert first == entry(5000) and c.memory_usage() == (5000, 1)
    reads: list[str] = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: reads.append(str(a[0]))
                        or real_open(*a, **k))
    again = c.get(key)
    assert again is first and reads == []  # the same verified object, no file read
    assert c.hits == 2


def test_a_damaged_file_is_still_detected_once_out_of_memory(tmp_path, captured):
    c = AudioCache(tmp_path / "c")
    key = "b2" * 32
    c.put(key, entry(5000))
    assert c.get(key) == entry(5000)  # verified and kept in memory
    f = c._file(key)
    _damage_in_place(f)
    # bit rot the stat cannot see: the bytes served are still the verified ones
    assert c.get(key) == entry(5000)
    assert not events(captured, "cache_corrupt")
    c.forget_memory()  # e.g. evicted from memory, or a restart
    assert c.get(key) is None
    (w,) = events(captured, "cache_corrupt")
    assert w[4]["warning_code"] == "CACHE_CORRUPT"
    assert not f.exists() and c.usage() == (0, 0) and c.memory_usage() == (0, 0)


@pytest.mark.parametrize("change", ["rewrite", "replace", "remove", "truncate"])
def test_a_file_changed_after_it_was_verified_is_read_again(tmp_path, captured, change):
    c = AudioCache(tmp_path / "c")
    key = "c3" * 32
    c.put(key, entry(5000))
    assert c.get(key) == entry(5000)
    f = c._file(key)
    st = f.stat()
    raw = bytearray(f.read_bytes())
    raw[-100] ^= 0xFF
    if change == "rewrite":  # same inode and size, new mtime
        _damage_in_place(f)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    elif change == "replace":  # another file renamed over it
        tmp = f.with_suffix(".new")
        tmp.write_bytes(bytes(raw))
        os.replace(tmp, f)
    elif change == "truncate":
        with open(f, "r+b") as fh:
            fh.truncate(len(raw) - 10)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    else:
        f.unlink()
    assert c.get(key) is None
    if change == "remove":
        assert not events(captured, "cache_corrupt") and c.misses == 1
    else:
        (w,) = events(captured, "cache_corrupt")
        assert w[4]["warning_code"] == "CACHE_CORRUPT"
    assert c.usage() == (0, 0) and c.memory_usage() == (0, 0)


def test_memory_is_bounded_least_recently_used_first(tmp_path):
    c = AudioCache(tmp_path / "c", memory_mb=25_000 / MB)  # room for two 10 kB entries
    keys = [f"d{i}" * 32 for i in range(3)]
    for k in keys:
        c.put(k, entry(10_000))
    c.get(keys[0])
    c.get(keys[1])
    c.get(keys[0])  # keys[0] is now the most recently used
    c.get(keys[2])  # pushes out keys[1]
    assert c.memory_usage() == (20_000, 2)
    assert set(c._mem) == {keys[0], keys[2]}
    assert AudioCache(tmp_path / "c2", memory_mb=0).memory_budget == 0
    c0 = AudioCache(tmp_path / "c", memory_mb=0)
    assert c0.get(keys[1]) == entry(10_000) and c0.memory_usage() == (0, 0)


def test_put_and_eviction_drop_the_memory_copy(tmp_path):
    c = AudioCache(tmp_path / "c", max_mb=0.05, high=0.9, low=0.5)
    key = "e4" * 32
    c.put(key, entry(10_000))
    assert c.get(key) == entry(10_000)
    c.put(key, entry(10_000, b"b"))  # the same key written again: the new bytes win
    assert c.memory_usage() == (0, 0)
    assert c.get(key) == entry(10_000, b"b")
    for i in range(4):  # over the high watermark: the oldest entries go, from memory too
        c.put(f"f{i}" * 32, entry(10_000))
    assert key not in c._mem and c.get(key) is None


def test_memory_hits_refresh_the_mtime_now_and_then(tmp_path, monkeypatch):
    c = AudioCache(tmp_path / "c")
    key = "a5" * 32
    c.put(key, entry())
    f = c._file(key)
    os.utime(f, (1000, 1000))
    assert c.get(key) is not None
    assert f.stat().st_mtime > 1000  # the first read refreshes it
    os.utime(f, (2000, 2000))  # changes the file's identity: read and verified again
    assert c.get(key) is not None and f.stat().st_mtime > 2000
    c._mem[key].touched -= cache_mod.TOUCH_S + 1  # a minute later
    mtime = f.stat().st_mtime_ns
    time.sleep(0.01)
    assert c.get(key) is not None
    assert f.stat().st_mtime_ns > mtime  # refreshed, and still served from memory
    assert c.get(key) is c.get(key)


def test_lru_eviction_from_high_to_low_watermark(tmp_path, captured):
    c = AudioCache(tmp_path / "c", max_mb=0.1, high=0.9, low=0.5)  # ~105 KB budget
    size = 10_000
    keys = [f"{i:02x}" * 32 for i in range(9)]
    for k in keys:
        assert c.put(k, entry(size))
    used, n = c.usage()
    assert n == 9 and used < 0.9 * c.budget
    c.get(keys[0])  # recently used: survives
    time.sleep(0.01)
    assert c.put("ff" * 32, entry(size))  # crosses the high watermark
    used, n = c.usage()
    assert used <= 0.5 * c.budget
    assert c.get(keys[0]) is not None
    assert c.get("ff" * 32) is not None
    assert c.get(keys[1]) is None  # the least recently used went first
    (ev,) = events(captured, "cache_evict")
    assert int(ev[4]["evicted"]) >= 4 and ev[4]["reason"] == "budget"
    on_disk = sum(p.stat().st_size for p in (tmp_path / "c").rglob("*.tts"))
    assert on_disk == c.usage()[0]


def test_recency_survives_a_restart(tmp_path):
    c = AudioCache(tmp_path / "c", max_mb=0.1, high=0.9, low=0.3)
    keys = [f"{i:02x}" * 32 for i in range(8)]
    for i, k in enumerate(keys):
        c.put(k, entry(10_000))
        os.utime(c._file(k), (1000 + i, 1000 + i))  # old, in order of writing
    c2 = AudioCache(tmp_path / "c", max_mb=0.1, high=0.9, low=0.3)
    assert c2.get(keys[0]) is not None  # a hit refreshes the mtime
    c2.evict(int(0.3 * c2.budget))
    c3 = AudioCache(tmp_path / "c")
    assert c3.get(keys[0]) is not None and c3.get(keys[1]) is None


# --- write failures ------------------------------------------------------------------
def test_enospc_at_the_write_call(tmp_path, captured, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_mod, "_write_all", full)
    c = AudioCache(tmp_path / "c")
    assert c.put("aa" * 32, entry()) is False
    (w,) = events(captured, "cache_write_failed")
    assert w[2] == "WARNING" and w[4]["warning_code"] == "CACHE_WRITE_FAILED"
    assert w[4]["errno"] == "ENOSPC"
    assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]  # no temp left
    assert c.usage() == (0, 0)


def test_full_disk_still_returns_audio_through_the_pipeline(tmp_path, captured, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_mod, "_write_all", full)
    p = pipeline(tmp_path)
    r = p.run(SynthesisRequest("今天天气真好", format="mp3"))
    assert len(r.audio) > 1000 and not r.cache_saved
    sid = r.id
    (w,) = [i for i in events(captured, "cache_write_failed") if i[4].get("id") == sid]
    assert w[4]["warning_code"] == "CACHE_WRITE_FAILED"
    (c,) = [i for i in events(captured, "synthesis_complete") if i[4]["id"] == sid]
    assert c[4]["status"] == "success" and c[4]["cache_saved"] == "false"


def test_unwritable_cache_dir_still_returns_audio(tmp_path, captured):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    p = pipeline(tmp_path)
    r = p.run(SynthesisRequest("Hello", format="wav"))
    assert r.audio and not r.cache_saved
    assert events(captured, "cache_write_failed")


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str):
    path.mkdir()
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot mount: {e}")
    if p.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {p.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=20)


def test_a_real_full_filesystem(tmp_path, captured):
    with small_tmpfs(tmp_path / "small", "64k") as mnt:
        # fill the filesystem to the last block
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC
        finally:
            os.close(fd)
        s = Settings(cache_dir=mnt / "cache", log_dir=tmp_path / "logs")
        p = Pipeline(settings=s)
        r = p.run(SynthesisRequest("The disk is full but the audio still comes back.",
                                   format="wav"))
        assert len(r.audio) > 10_000 and not r.cache_saved
        (w,) = events(captured, "cache_write_failed")
        assert w[4]["errno"] in ("ENOSPC", "EDQUOT")
        # the health reporter sees the full disk and warns
        rep = CacheHealthReporter(p.cache, mnt / "cache", interval_s=60, warn_percent=90)
        out = rep.report_once()
        assert out["used_percent"] > 90
        (u,) = events(captured, "cache_dir_usage")
        assert u[2] == "WARNING" and u[4]["action"] == "warn"
        # space comes back: the next synthesis is cached again
        os.unlink(mnt / "filler")
        r2 = p.run(SynthesisRequest("Now there is room again.", format="wav"))
        assert r2.cache_saved


# --- health reporter -----------------------------------------------------------------
def test_cache_health_record(tmp_path, captured):
    c = AudioCache(tmp_path / "c")
    c.put("ab" * 32, entry(50_000))
    rep = CacheHealthReporter(c, interval_s=300, warn_percent=100)
    out = rep.report_once()
    (h,) = events(captured, "cache_health")
    _t, logger, level, _e, f, _tb = h
    assert logger == "ttsops.cache" and level == "INFO"
    assert f["path"] == str(tmp_path / "c")
    assert f["used"].endswith("MB") and f["total"].endswith("MB") and f["usage"].endswith("%")
    st = os.statvfs(tmp_path)
    total_mb = st.f_blocks * st.f_frsize // MB
    assert abs(int(f["total"][:-2]) - total_mb) <= 1
    assert float(f["cache_mb"]) == pytest.approx(c.usage()[0] / MB, abs=0.01)
    assert f["cache_entries"] == "1"
    assert not events(captured, "cache_dir_usage") and "action" not in out


def test_cache_dir_usage_warning_evicts_above_threshold(tmp_path, captured):
    c = AudioCache(tmp_path / "c", max_mb=0.2, high=1.0, low=0.1)
    for i in range(6):
        c.put(f"{i:02x}" * 32, entry(20_000))
    before = c.usage()[0]
    assert before > c.low * c.budget
    rep = CacheHealthReporter(c, interval_s=300, warn_percent=0.001)  # any disk is "full"
    out = rep.report_once()
    assert out["action"] == "evict"
    (h,) = events(captured, "cache_health")
    assert h[2] == "WARNING"
    (u,) = events(captured, "cache_dir_usage")
    assert u[2] == "WARNING" and u[4]["warning_code"] == "CACHE_DIR_USAGE_HIGH"
    assert float(u[4]["threshold"]) == 0.001 and float(u[4]["used_percent"]) > 0.001
    assert c.usage()[0] <= c.low * c.budget < before
    (ev,) = events(captured, "cache_evict")
    assert ev[4]["reason"] == "disk"
    # nothing of its own left to free: warn only
    rep.report_once()
    assert events(captured, "cache_dir_usage")[-1][4]["action"] == "warn"


def test_reporter_thread_reports_periodically(tmp_path, captured):
    rep = CacheHealthReporter(AudioCache(tmp_path / "c"), interval_s=0.05, warn_percent=100)
    rep.start()
    try:
        deadline = time.time() + 10
        while len(events(captured, "cache_health")) < 3 and time.time() < deadline:
            time.sleep(0.02)
    finally:
        rep.stop()
    n = len(events(captured, "cache_health"))
    assert n >= 3
    time.sleep(0.2)
    assert len(events(captured, "cache_health")) == n  # stopped means stopped


def test_reporter_from_settings(tmp_path):
    s = Settings(cache_dir=tmp_path / "c", cache_health_interval_s=12, cache_disk_warn_percent=80)
    rep = CacheHealthReporter.from_settings(s, AudioCache.from_settings(s))
    assert rep.interval == 12 and rep.threshold == 80 and rep.path == tmp_path / "c"
    assert AudioCache.from_settings(s.model_copy(update={"cache_enabled": False})) is None
