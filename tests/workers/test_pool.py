"""The worker pool's own logic with real spawned processes around the real fake engine:
queueing (queue_ms, QUEUE_FULL), timeouts (SYNTHESIS_TIMEOUT, worker replaced), crashes
(ENGINE_CRASHED for that job only, worker restarted), jobs handed ahead to a busy worker,
streaming order, records travelling with the answer. Records are read back from a real
log written by the real sink. Waits are on the pool's state, not on the clock."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from ttsops import events
from ttsops.config import Settings
from ttsops.errors import TTSError
from ttsops.workers import WorkerPool

from .poolkit import handed_ahead, ready_pool, records, taken, until, wait_ready


def test_runs_jobs_and_logs_engine_load(sink):
    async def main() -> None:
        async with ready_pool(sink, workers=2) as pool:
            out, queue_ms = await pool.run("hello")
            assert out["samples"] > 0 and out["pid"] in pool.pids()
            assert queue_ms >= 0
            assert pool.info.name == "fake" and len(pool.voices) > 3

    asyncio.run(main())
    loads = [r for r in records(sink) if r.event == "engine_load"]
    assert len(loads) == 2
    assert {r.get("worker") for r in loads} == {"0", "1"}
    assert all(r.get("engine") == "fake" and r.num("duration_ms") is not None for r in loads)


def test_a_free_worker_takes_the_job_not_a_busy_ones_pipe(sink):
    """Two syntheses at once on two free workers: each runs on a worker of its own. The
    second one was sometimes handed ahead behind the first on the busy worker (its serving
    thread polls for a next job every few ms) while the other worker stayed idle, so a
    short synthesis waited for a long one: seen as a SIGTERM test's quick request cut."""

    async def main() -> None:
        async with ready_pool(sink, workers=2) as pool:
            for _ in range(3):
                long = asyncio.create_task(pool.run("#sleep=1000 long"))
                short = asyncio.create_task(pool.run("#sleep=10 short"))
                (s_out, s_queue), (l_out, _) = await asyncio.gather(short, long)
                assert s_out["pid"] != l_out["pid"], ("both ran on one worker", s_queue)
                assert s_queue < 1000.0, s_queue

    asyncio.run(main())


def test_a_worker_coming_back_takes_the_job_not_a_busy_ones_pipe(sink):
    """One worker crashed and is loading again while the other runs a long synthesis: a
    short one that arrives now waits for the restarted worker, not in the busy worker's
    pipe behind the long one. (Handed ahead because no other worker was READY at that
    instant, it waited for the whole long synthesis while the restarted worker idled: a
    quick request cut at SIGTERM, seen when the second worker of a new server had not
    finished loading.)"""

    async def main() -> None:
        async with ready_pool(sink, workers=2, fake_load_ms=300) as pool:
            with pytest.raises(TTSError) as exc:
                await pool.run("#exit boom")
            assert exc.value.code == "ENGINE_CRASHED"
            assert pool.ready_count == 1  # the crashed one is loading again
            long = asyncio.create_task(pool.run("#sleep=4000 long"))
            await taken(pool)
            short = asyncio.create_task(pool.run("#sleep=10 short"))
            (s_out, s_queue), (l_out, _) = await asyncio.gather(short, long)
            assert s_out["pid"] != l_out["pid"], ("ran behind the long one", s_queue)
            assert s_queue < 3000.0, s_queue

    asyncio.run(main())


def test_queue_wait_is_measured_and_full_queue_is_refused(sink):
    async def main() -> None:
        async with ready_pool(sink, workers=1, queue_size=1) as pool:
            first = asyncio.create_task(pool.run("#sleep=600 a"))
            await taken(pool)
            second = asyncio.create_task(pool.run("b"))
            await until(lambda: pool.waiting == 1, "the second job waits")
            with pytest.raises(TTSError) as exc:
                await pool.run("c")
            assert exc.value.code == "QUEUE_FULL"
            assert exc.value.context["retry_after"] >= 1
            assert exc.value.context["stage"] == "text_normalize"  # no worker took it
            (_, q1), (_, q2) = await first, await second
            assert q1 < 100
            assert q2 >= 350  # waited for the first job's 600 ms sleep

    asyncio.run(main())


def test_timeout_replaces_the_stuck_worker(sink):
    async def main() -> None:
        async with ready_pool(sink, workers=1, request_timeout_s=0.8) as pool:
            old = pool.pids()
            with pytest.raises(TTSError) as exc:
                await pool.run("#sleep=20000 stuck")
            assert exc.value.code == "SYNTHESIS_TIMEOUT"
            assert exc.value.context["stage"] == "llm_prompt_gen"  # taken; nothing timed
            await wait_ready(pool)
            assert pool.pids() != old
            out, _ = await pool.run("after")
            assert out["pid"] == pool.pids()[0]

    asyncio.run(main())
    recs = records(sink)
    killed = [r for r in recs if r.event == "worker_killed"]
    restarted = [r for r in recs if r.event == "worker_restarted"]
    assert len(killed) == 1 and killed[0].get("reason") == "timeout"
    assert len(restarted) == 1 and restarted[0].get("reason") == "timeout"


@pytest.mark.parametrize("directive,exitcode", [("#exit", "3"), ("#segv", "-11")])
def test_crash_fails_only_its_job_and_restarts(sink, directive, exitcode):
    async def main() -> None:
        async with ready_pool(sink, workers=2) as pool:
            ok = asyncio.create_task(pool.run("#sleep=300 fine"))
            await taken(pool)  # on one worker: the crash goes to the other
            with pytest.raises(TTSError) as exc:
                await pool.run(f"{directive} boom")
            assert exc.value.code == "ENGINE_CRASHED"
            out, _ = await ok
            assert out["samples"] > 0
            await wait_ready(pool)
            out, _ = await pool.run("again")
            assert out["samples"] > 0

    asyncio.run(main())
    recs = records(sink)
    died = [r for r in recs if r.event == "worker_died"]
    assert len(died) == 1 and died[0].get("exitcode") == exitcode
    assert died[0].get("error_code") == "ENGINE_CRASHED"
    assert [r.get("reason") for r in recs if r.event == "worker_restarted"] == ["died"]


@pytest.mark.parametrize("directive,exitcode", [("#sleep=400 #exit", "3"),
                                               ("#sleep=400 #segv", "-11")])
def test_the_job_handed_ahead_to_a_dying_worker_is_run_by_its_successor(
        sink, directive, exitcode):
    """One worker: the second job is sent while the first runs; the first crashes the
    worker. Only the first fails; the second runs on the restarted worker."""
    async def main() -> None:
        async with ready_pool(sink, workers=1) as pool:
            old = pool.pids()
            crash = asyncio.create_task(pool.run(f"{directive} boom"))
            await taken(pool)
            behind = asyncio.create_task(pool.run("#sleep=50 behind"))
            await handed_ahead(pool)
            assert pool.waiting == 1 and not pool.queue.pending  # handed ahead, not started
            with pytest.raises(TTSError) as exc:
                await crash
            assert exc.value.code == "ENGINE_CRASHED"
            out, queue_ms = await asyncio.wait_for(behind, 30)
            assert out["samples"] > 0 and out["pid"] not in old
            assert queue_ms >= 250  # waited for the crash and the new worker
            assert pool.waiting == 0

    asyncio.run(main())
    recs = records(sink)
    died = [r for r in recs if r.event == "worker_died"]
    assert len(died) == 1 and died[0].get("exitcode") == exitcode


def test_the_job_handed_ahead_of_a_stuck_one_is_not_lost(sink):
    timeout = 6.0

    async def main() -> None:
        # the second job is handed ahead half-way through the first one's timeout; it may
        # wait a whole timeout itself: half of it for the stuck job, half for the
        # replacement worker to load (3 s of margin either side on a loaded machine)
        async with ready_pool(sink, workers=1, request_timeout_s=timeout) as pool:
            stuck = asyncio.create_task(pool.run("#sleep=20000 stuck"))
            await taken(pool)
            await asyncio.sleep(timeout / 2)  # the scenario itself: time passes
            assert not stuck.done()
            behind = asyncio.create_task(pool.run("behind"))
            await handed_ahead(pool)
            assert pool.waiting == 1 and not pool.queue.pending  # handed ahead to the worker
            with pytest.raises(TTSError) as exc:
                await stuck
            assert exc.value.code == "SYNTHESIS_TIMEOUT"
            out, _ = await asyncio.wait_for(behind, 30)
            assert out["samples"] > 0 and out["pid"] == pool.pids()[0]

    asyncio.run(main())
    assert [r.get("reason") for r in records(sink) if r.event == "worker_killed"] == ["timeout"]


def test_jobs_behind_a_stream_wait_their_turn_in_order(sink):
    async def main() -> None:
        async with ready_pool(sink, workers=1) as pool:
            done: list[str] = []

            async def run(job: str) -> None:
                await pool.run(job)
                done.append(job)

            async def stream(job: str) -> None:
                async for _ in pool.stream(job):
                    pass
                done.append(job)

            tasks = [asyncio.create_task(run("#sleep=150 a"))]
            await taken(pool)
            tasks.append(asyncio.create_task(stream("#sleep=50 s1|#sleep=50 s2")))
            await until(lambda: pool.waiting == 1, "the stream waits")
            tasks.append(asyncio.create_task(run("b")))
            await asyncio.gather(*tasks)
            assert done == ["#sleep=150 a", "#sleep=50 s1|#sleep=50 s2", "b"]

    asyncio.run(main())


def _pipeline_job(text: str) -> Any:
    from ttsops.pipeline.runner import Pipeline
    from ttsops.pipeline.types import SynthesisRequest

    front = Pipeline(settings=Settings(engine="fake"), cache=False, load=False)
    return front.front(SynthesisRequest(text=text, format="wav"))


def test_a_jobs_records_are_written_before_its_answer_returns(sink):
    """The worker's records of a job travel with the job's answer: when ``run`` returns,
    every stage_time of that synthesis is already with the log writer, so records the
    main process writes next (synthesis_complete) always follow them."""
    log = events.get_logger("ttsops.test")

    async def main() -> list[str]:
        pool = WorkerPool(Settings(engine="fake"), workers=1, log_queue=sink.mp_queue())
        await pool.start()
        ids = []
        try:
            await wait_ready(pool)
            for text in ("one.", "two.", "three."):
                with events.context(request_id="req-rec"):
                    job = _pipeline_job(text)
                    await pool.run(job)
                    log.info("after_answer", id=job.id)
                ids.append(job.id)
        finally:
            await pool.stop()
        return ids

    ids = asyncio.run(main())
    recs = records(sink)
    for sid in ids:
        mine = [r for r in recs if r.get("id") == sid]
        assert [r.get("stage") for r in mine if r.event == "stage_time"][1:] == [
            "llm_prompt_gen", "llm_inference", "llm_postproc", "audio_render"]
        assert mine[-1].event == "after_answer"
        assert all(r.get("request_id") == "req-rec" for r in mine)


def test_records_sent_before_a_crash_are_kept(sink):
    async def main() -> str:
        pool = WorkerPool(Settings(engine="fake"), workers=1, log_queue=sink.mp_queue())
        await pool.start()
        try:
            await wait_ready(pool)
            job = _pipeline_job("#segv boom")
            with pytest.raises(TTSError) as exc:
                await pool.run(job)
            assert exc.value.code == "ENGINE_CRASHED"
            assert exc.value.context["stage"] == "llm_inference"  # after llm_prompt_gen
            return job.id
        finally:
            await pool.stop()

    sid = asyncio.run(main())
    recs = records(sink)
    stages = [r.get("stage") for r in recs if r.event == "stage_time" and r.get("id") == sid]
    assert stages[-1:] == ["llm_prompt_gen"]  # the stage before the one that crashed
    (died,) = [r for r in recs if r.event == "worker_died"]
    assert died.get("job") == sid


def test_then_runs_on_the_answer_with_the_requests_log_context(sink):
    seen: list[Any] = []

    def then(value: Any, queue_ms: float) -> str:
        seen.append((value["samples"] > 0, queue_ms >= 0, threading.current_thread().name,
                     events.current("request_id")))
        return "finished"

    def broken(value: Any, queue_ms: float) -> str:
        raise OSError("the cache write went wrong")

    async def main() -> None:
        async with ready_pool(sink, workers=1) as pool:
            with events.context(request_id="req-then"):
                out, queue_ms = await pool.run("hello", then=then)
            assert out == "finished" and queue_ms >= 0
            with pytest.raises(OSError):
                await pool.run("hello", then=broken)
            out, _ = await pool.run("still serving")
            assert out["samples"] > 0

    asyncio.run(main())
    assert seen == [(True, True, "ttsops-pool-0", "req-then")]


def test_stream_yields_parts_in_order(sink):
    async def main() -> list[tuple[str, Any]]:
        async with ready_pool(sink, workers=1) as pool:
            return [x async for x in pool.stream("ab|abcdef|abcdefghijkl")]

    out = asyncio.run(main())
    assert out[0][0] == "queued"
    sizes = [v["samples"] for k, v in out[1:]]
    assert len(sizes) == 3 and sizes[0] < sizes[1] < sizes[2]
