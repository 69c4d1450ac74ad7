"""The workers' lives, with real spawned processes around the real fake engine: how many,
readiness, load failures (model_load_failed with traceback, never ready) and load
timeouts, a worker killed while idle, a reload (SIGHUP) that swaps every worker and one
that fails and keeps the old ones. Waits are on the pool's state, not on the clock."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from ttsops.config import Settings
from ttsops.errors import TTSError
from ttsops.workers import WorkerState, default_worker_count

from .poolkit import make_pool, ready_pool, records, until, wait_ready


def test_default_worker_count_follows_settings():
    assert default_worker_count(Settings(workers=3)) == 3
    assert default_worker_count(Settings(workers=0)) == (os.cpu_count() or 1)


def test_idle_worker_killed_from_outside_is_restarted(sink):
    async def main() -> None:
        async with ready_pool(sink, workers=1) as pool:
            w = pool.workers[0]
            pid, proc = w.pid, w.proc
            os.kill(pid, signal.SIGKILL)
            # the killed process (the pool may have put a new one in w.proc already)
            await until(lambda: not proc.is_alive(), "the worker is dead")
            out, _ = await asyncio.wait_for(pool.run("next"), 30)  # never ENGINE_CRASHED
            assert out["pid"] != pid

    asyncio.run(main())
    assert any(r.event == "worker_restarted" for r in records(sink))


def test_load_failure_is_logged_with_traceback_and_never_ready(sink):
    async def main() -> None:
        pool = make_pool(sink, workers=1, fake_load_fail=True)
        await pool.start()
        try:
            await until(lambda: pool.last_load_error is not None, "the load failed")
            assert not pool.ready
            # (the state follows once the failed process has exited)
            await until(lambda: pool.workers[0].state == WorkerState.FAILED, "failed state")
            assert pool.status()["states"] == ["failed"]
            with pytest.raises(TTSError) as exc:
                await pool.run("x")
            assert exc.value.code == "MODEL_LOAD_FAILED" and exc.value.status == 503
        finally:
            await pool.stop()

    asyncio.run(main())
    failed = [r for r in records(sink) if r.event == "model_load_failed"]
    assert failed, "no model_load_failed record"
    r = failed[0]
    assert r.level == "ERROR" and r.get("engine") == "fake"
    assert r.get("error_code") == "MODEL_LOAD_FAILED"
    assert r.num("duration_ms") is not None
    assert any("Traceback" in line for line in r.traceback)
    assert any("fake.py" in line for line in r.traceback)


def test_a_failed_load_is_known_before_its_process_is_joined(sink, monkeypatch):
    """The worker logs model_load_failed and tells the pool; the pool then joins its
    process, which can take seconds (a loaded machine; an engine half loaded). Readiness
    must say MODEL_LOAD_FAILED at once, not ENGINE_NOT_READY until the join is over (it
    did: a user who saw the record and asked /readyz got the wrong code). The worker's
    first join is made to last 5 s, as a slowly exiting process makes it."""
    import threading
    import time
    from multiprocessing.process import BaseProcess

    real_join = BaseProcess.join
    joined = threading.Event()
    slowed: list[BaseProcess] = []

    def slow_join(self: BaseProcess, timeout: float | None = None) -> None:
        if self.name.startswith("ttsops-worker") and not slowed:
            slowed.append(self)
            time.sleep(5.0)
            real_join(self, timeout)
            joined.set()
            return
        real_join(self, timeout)

    monkeypatch.setattr(BaseProcess, "join", slow_join)

    async def main() -> None:
        pool = make_pool(sink, workers=1, fake_load_fail=True)
        await pool.start()
        try:
            await until(lambda: pool.last_load_error is not None, "the load failed")
            assert not joined.is_set(), "the error was known only once the process was joined"
            with pytest.raises(TTSError) as exc:
                await pool.run("x")
            assert exc.value.code == "MODEL_LOAD_FAILED"
            await until(lambda: pool.workers[0].state == WorkerState.FAILED, "failed state")
        finally:
            await pool.stop()

    asyncio.run(main())
    assert slowed, "the pool never joined the failed worker's process"
    assert [r for r in records(sink) if r.event == "model_load_failed"]


def test_a_failed_load_is_retried_after_its_back_off(sink):
    """The next attempt is at ``retry_at`` (1 s after the first failure), its own field:
    the worker is started again (worker_restarted, reason load_retry)."""
    async def main() -> None:
        pool = make_pool(sink, workers=1, fake_load_fail=True)
        await pool.start()
        try:
            w = pool.workers[0]
            await until(lambda: w.state == WorkerState.FAILED, "the load failed")
            assert w.retry_at > 0 and w.load_failures == 1
            await until(lambda: w.load_failures == 2, "the retry failed too")
        finally:
            await pool.stop()

    asyncio.run(main())
    recs = records(sink)
    assert [r.get("reason") for r in recs if r.event == "worker_restarted"][:1] == [
        "load_retry"]
    assert len([r for r in recs if r.event == "model_load_failed"]) >= 2


def test_load_timeout_kills_the_worker_and_says_so(sink):
    async def main() -> None:
        pool = make_pool(sink, workers=1, fake_load_ms=20000, model_load_timeout_s=1.0)
        await pool.start()
        try:
            await until(lambda: pool.last_load_error is not None, "the load timed out")
            assert pool.last_load_error[0] == "MODEL_LOAD_TIMEOUT" and not pool.ready
            with pytest.raises(TTSError) as exc:
                await pool.run("x")
            assert exc.value.code == "MODEL_LOAD_TIMEOUT"
        finally:
            await pool.stop()

    asyncio.run(main())
    failed = [r for r in records(sink) if r.event == "model_load_failed"]
    assert failed and failed[0].get("error_code") == "MODEL_LOAD_TIMEOUT"
    assert failed[0].num("duration_ms") >= 1000


def _catches_sigterm(pid: int | None) -> bool:
    """The process has a handler for SIGTERM (``/proc/PID/status``, SigCgt): a worker sets
    one while it loads the engine."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(x.split()[1], 16) for x in f if x.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(mask & (1 << (signal.SIGTERM - 1)))


def test_a_pool_stopped_while_its_engine_loads_ends_the_load(sink):
    """The loading process ends its load on the stop and exits by itself (its own exit
    code, 3), where it used to go on loading until the stop's timeout killed it (-9);
    nothing is logged as a load failure."""
    async def main() -> None:
        pool = make_pool(sink, workers=1, fake_load_ms=60000)
        await pool.start()
        proc = pool.workers[0].proc
        assert proc is not None and pool.workers[0].state == WorkerState.STARTING
        await until(lambda: _catches_sigterm(proc.pid), "the worker is loading the engine")
        await pool.stop(timeout=30)
        assert proc.exitcode == 3, proc.exitcode

    asyncio.run(main())
    assert not [r for r in records(sink) if r.event == "model_load_failed"]


def test_reload_swaps_every_worker_and_keeps_serving(sink):
    async def main() -> None:
        async with ready_pool(sink, workers=2) as pool:
            old = set(pool.pids())
            assert pool.reload()
            assert not pool.reload()  # one reload at a time
            await until(lambda: not pool.life.reloading, "the reload is over", 60)
            await wait_ready(pool)
            assert not old & set(pool.pids())
            out, _ = await pool.run("after the reload")
            assert out["pid"] in pool.pids()

    asyncio.run(main())
    recs = records(sink)
    assert len([r for r in recs if r.event == "worker_reloaded"]) == 2
    assert [r.event for r in recs if r.event.startswith("reload_")] == [
        "reload_start", "reload_complete"]


def test_a_reload_that_fails_to_load_keeps_the_old_workers(sink):
    async def main() -> None:
        async with ready_pool(sink, workers=1) as pool:
            old = pool.pids()
            pool.settings.fake_load_fail = True  # what the new process will load with
            assert pool.reload()
            await until(lambda: not pool.life.reloading, "the reload is over", 60)
            assert pool.pids() == old and pool.ready
            out, _ = await pool.run("still served")
            assert out["pid"] == old[0]

    asyncio.run(main())
    recs = records(sink)
    (failed,) = [r for r in recs if r.event == "reload_failed"]
    assert failed.get("error_code") == "MODEL_LOAD_FAILED"
    assert not [r for r in recs if r.event == "worker_reloaded"]


def test_a_worker_gets_the_settings_values_and_never_imports_pydantic(sink):
    """The settings cross to a worker as plain values: the worker runs the engine they
    name with the values they hold, and its process never maps pydantic's core (12.6 MB
    and 0.12-0.19 s of CPU per worker start when the model itself was sent)."""
    from ttsops.workers import WorkerPool

    async def main() -> None:
        pool = WorkerPool(Settings(engine="fake", fake_load_ms=30), workers=1,
                          log_queue=sink.mp_queue())
        await pool.start()
        try:
            await wait_ready(pool)
            assert pool.info is not None and pool.info.name == "fake"
            with open(f"/proc/{pool.workers[0].pid}/maps", encoding="utf-8") as fh:
                maps = fh.read()
            assert "python3" in maps or "libpython" in maps or ".so" in maps
            assert "pydantic" not in maps
        finally:
            await pool.stop()

    asyncio.run(main())
    loads = [r for r in records(sink) if r.event == "engine_load"]
    assert loads and float(loads[0].get("duration_ms")) >= 30  # fake_load_ms arrived
