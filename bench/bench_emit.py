"""Request-thread cost of logging one typical synthesis (8 records) with ttsops' event API
and sink, against the same loop not logging at all, and against stdlib ``logging``
writing the same lines synchronously to a file (what the seed's app does).

    python bench/bench_emit.py [--requests 20000] [--runs 7]

Prints the median over runs of the per-request cost in microseconds. Target: ttsops'
added cost <= 100 us per request (median).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time

from ttsops import events
from ttsops.logsink import LogSink

STAGES = ("text_normalize", "llm_prompt_gen", "llm_inference", "llm_postproc", "audio_render")


def one_request(log: events.EventLogger | None, i: int) -> int:
    """The work a request does besides logging is stood in for by building its values."""
    sid = f"ts_{i:08x}"
    acc = 0
    if log is None:
        for n, _ in enumerate(STAGES):
            acc += n
        return acc + len(sid)
    with events.context(request_id=f"req-{i}"):
        log.info("synthesis_start", id=sid, text="今天天气真好", text_len=6, lang="zh",
                 voice="alloy", format="mp3", engine="espeak", cache_hit=False)
        elapsed = 0
        for n, stage in enumerate(STAGES):
            elapsed += 10 + n
            log.info("stage_time", id=sid, stage=stage, duration_ms=10 + n, elapsed_ms=elapsed)
        log.info("audio_metrics", id=sid, duration_ms=1520, rms=0.0241, peak=0.89,
                 spectral_centroid=2150.0, silence_ratio=0.12, clipped_ratio=0.0)
        log.info("synthesis_complete", id=sid, status="success", duration_ms=523, queue_ms=3,
                 text_len=6, audio_size_kb=124, rtf=0.34, cache_hit=False, cache_saved=True,
                 model_stage="audio_render")
    return acc


def stdlib_request(lg: logging.Logger, i: int) -> None:
    sid = f"ts_{i:08x}"
    lg.info(f"synthesis_start: id={sid}, text=\"今天天气真好\", text_len=6, lang=zh, "
            "voice=alloy, format=mp3, engine=espeak, cache_hit=false")
    elapsed = 0
    for n, stage in enumerate(STAGES):
        elapsed += 10 + n
        lg.info(f"stage_time: id={sid}, stage={stage}, duration_ms={10 + n}, "
                f"elapsed_ms={elapsed}")
    lg.info(f"audio_metrics: id={sid}, duration_ms=1520, rms=0.0241, peak=0.89, "
            "spectral_centroid=2150, silence_ratio=0.12, clipped_ratio=0")
    lg.info(f"synthesis_complete: id={sid}, status=success, duration_ms=523, queue_ms=3, "
            "text_len=6, audio_size_kb=124, rtf=0.34, cache_hit=false, cache_saved=true, "
            "model_stage=audio_render")


def timed(fn, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    base, ours, std = [], [], []
    with tempfile.TemporaryDirectory() as d:
        sink = LogSink(d + "/ttsops")
        events.set_sink(sink)
        log = events.get_logger("ttsops.pipeline")
        lg = logging.getLogger("bench.stdlib")
        lg.propagate = False
        fh = logging.FileHandler(d + "/stdlib.log", encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
        lg.addHandler(fh)
        lg.setLevel(logging.INFO)
        for _ in range(args.runs):
            base.append(timed(lambda i: one_request(None, i), args.requests))
            ours.append(timed(lambda i: one_request(log, i), args.requests))
            sink.flush(120)  # let the writer catch up so runs don't overlap
            std.append(timed(lambda i: stdlib_request(lg, i), args.requests))
        sink.close()
    b, o, s = (statistics.median(x) for x in (base, ours, std))
    print(f"requests per run: {args.requests}, runs: {args.runs}, 8 records per request")
    print(f"baseline (no logging):             {b:8.2f} us/request")
    print(f"ttsops event API + queued sink:    {o:8.2f} us/request  "
          f"(added {o - b:.2f} us; target <= 100)")
    print(f"stdlib logging, sync FileHandler:  {s:8.2f} us/request")
    print(f"ratio ttsops / stdlib-sync:        {o / s:8.2f}")


if __name__ == "__main__":
    main()
