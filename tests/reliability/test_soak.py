"""Load and overload against the real server (see load.soak; bench/reliability.py runs
it for minutes): 50 concurrent clients that the queue holds, then 3 x the queue
capacity. Admitted requests wait a bounded time, the rest get an immediate 429
QUEUE_FULL with Retry-After, no 5xx, memory does not grow per request, and the log read
back from disk has every answered request and exactly one synthesis_complete per
synthesis."""

from __future__ import annotations

import statistics

import pytest

from .load import soak, trend

pytestmark = pytest.mark.slow


def test_fifty_clients_then_three_times_the_queue(tmp_path):
    r = soak(tmp_path, rounds=4, round_s=2.0, overload_s=3.0, warmup_s=4.0)
    q, workers = r["queue_size"], r["workers"]
    steady, over, after = r["steady"], r["overload"], r["after"]
    # 50 clients fit in the queue: every one answered 200
    assert set(steady.outcomes()) == {"200"} and len(steady.answered) > 100
    assert set(after.outcomes()) == {"200"}
    # overload: an admitted request waits for a worker at most about the work of a full
    # queue, not the work of everyone who asked (3 x as much). Counted in syntheses the
    # workers finished while it waited (its queue_ms in the log), not in milliseconds
    # against the phase's mean rate: a machine busy with other work for a moment slows
    # the workers and the wait alike, and a time bound then fails on a correct queue
    # (1570 ms against 1419 ms in CI with the suite's other processes beside it).
    outcomes = over.outcomes()
    assert set(outcomes) == {"200", "429 QUEUE_FULL"}, outcomes
    ok, refused = over.latency_ms(), over.latency_ms(ok=False)
    finished = r["overload_finished_while_queued"]
    # the queue and the jobs on the workers, with half as much again for where the log
    # places a wait (its end: the first stage's record on the worker; a worker slowed by
    # other processes begins late): 91 of 66 seen in CI, 172 with a queue of 160
    bound = 1.5 * (q + workers)
    assert bound < over.clients  # the bound can tell the difference
    assert len(r["overload_queue_ms"]) == ok["n"] and len(finished) == ok["n"]
    assert max(finished) <= bound, (max(finished), bound, statistics.median(finished))
    assert statistics.median(finished) >= 0.5 * q  # the queue was full: the count counts
    assert ok["max"] < 10_000
    # refused without waiting for a worker: quicker than the admitted ones (the server's
    # own time, from its http_request records), with a hint
    assert refused["n"] > ok["n"], (refused, ok)
    served = r["overload_http_ms"]
    assert len(served["429"]) == refused["n"] and len(served["200"]) == ok["n"], \
        {k: len(v) for k, v in served.items()}
    assert statistics.median(served["429"]) < statistics.median(served["200"]) / 2, \
        (statistics.median(served["429"]), statistics.median(served["200"]))
    assert all(x.retry_after and int(x.retry_after) >= 1 for x in over.answered
               if x.status == 429)
    assert not [x for x in over.shots + steady.shots if x.error]
    # memory: no growth per request (a kept request or its ~75 KB of audio would show in
    # every round). A one-off step - the allocator taking a new arena, the log rotation's
    # compressor - shows in one round only, so the median round is the one judged.
    rss, done = r["round_rss_kb"], r["round_syntheses"]
    per_synthesis_kb = [(b - a) / max(1, n)
                        for a, b, n in zip(rss[:-1], rss[1:], done[1:], strict=True)]
    assert statistics.median(per_synthesis_kb) < 8.0, (rss, done, per_synthesis_kb)
    t = trend(r["rss"])
    assert t["max_mb"] < t["min_mb"] + 60, t
    # the log: nothing lost
    assert r["log"]["lost"] == 0 and r["log"]["synthesis_complete"] == r["log"]["syntheses"]
