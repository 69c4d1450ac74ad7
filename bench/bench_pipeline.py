"""Pipeline cost per format against the engine's own synthesis time, same texts, same run.

Baseline ("engine"): ``engine.prepare`` + ``engine.infer`` called directly for every segment
of every text (the segments the pipeline itself makes), nothing else.
Measured ("pipeline"): ``Pipeline.run`` end to end for the same texts and each format: text
cleaning, the engine, post-processing (NaN guard, resampling, loudness, metrics),
encoding and every log record (into a real log sink); the cache is off so every run
synthesises.

Both are timed over the whole text set per repetition; the medians over ``--runs``
repetitions are reported, as real-time factors (processing time / audio duration) and as
the pipeline's overhead over the engine. The process is pinned to one core by default
(``--cores``), the log writer thread included.

    python bench/bench_pipeline.py [--runs 7] [--engine espeak] [--formats wav,mp3,...]

Targets (issue 3): the pipeline adds <= 50% to the engine's time for wav; mp3 RTF < 0.05.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

TEXTS = [
    "今天天气真好",
    "Hello, this is a short English sentence.",
    "我们明天下午三点在会议室开会，请大家准时参加，并带上上周的项目报告。",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. "
    "How vexingly quick daft zebras jump!",
    "语音合成服务的日志应该能够回答三个问题：哪个请求出了问题，哪个阶段最慢，"
    "以及在故障发生之前出现了哪些警告。这段文字用来测量较长的中文段落的合成速度。" * 2,
    "Observability is not about collecting every number; it is about being able to answer "
    "the questions you did not know you would have. Logs, metrics and traces each help, "
    "but only if they share identifiers and a vocabulary. " * 2,
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--engine", default="espeak")
    ap.add_argument("--formats", default="wav,pcm,flac,mp3,opus,aac")
    ap.add_argument("--cores", type=int, default=1, help="pin to this many cores (0: no pin)")
    args = ap.parse_args()
    if args.cores and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[: args.cores]
        os.sched_setaffinity(0, set(cpus))

    from ttsops import logsink
    from ttsops.config import Settings
    from ttsops.pipeline.runner import Pipeline
    from ttsops.pipeline.types import SynthesisRequest

    tmp = Path(tempfile.mkdtemp(prefix="ttsops-bench-"))
    settings = Settings(engine=args.engine, log_dir=tmp / "logs", cache_enabled=False)
    sink = logsink.setup(settings)
    pipe = Pipeline(settings=settings, cache=False)
    engine = pipe.engine
    formats = args.formats.split(",")

    jobs = []  # (lang, voice, segments) exactly as the pipeline segments them
    for t in TEXTS:
        job = pipe.front(SynthesisRequest(t, format="wav"))
        assert not isinstance(job, type(None))
        jobs.append((job.lang, job.voice, job.segments))
    speed = 1.0

    def engine_pass() -> tuple[float, float]:
        t0 = time.perf_counter()
        samples = 0
        for lang, voice, segs in jobs:
            for s in segs:
                samples += engine.infer(engine.prepare(s, lang, voice), lang, voice, speed).size
        return time.perf_counter() - t0, samples / pipe.info.sample_rate

    def pipeline_pass(fmt: str) -> tuple[float, float]:
        t0 = time.perf_counter()
        audio_s = 0.0
        for t in TEXTS:
            r = pipe.run(SynthesisRequest(t, format=fmt))
            audio_s += r.duration_ms / 1000.0
        return time.perf_counter() - t0, audio_s

    for fmt in formats:  # warm-up: imports, filter design, encoder start-up
        pipeline_pass(fmt)
    engine_pass()

    eng_times: list[float] = []
    pipe_times: dict[str, list[float]] = {f: [] for f in formats}
    audio_s = 0.0
    pipe_audio: dict[str, float] = {}
    for _ in range(args.runs):
        dt, audio_s = engine_pass()
        eng_times.append(dt)
        for fmt in formats:
            dt, pipe_audio[fmt] = pipeline_pass(fmt)
            pipe_times[fmt].append(dt)
    sink.flush()

    eng = statistics.median(eng_times)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"ttsops pipeline benchmark: engine={pipe.info.name} {pipe.info.version}, "
          f"{len(TEXTS)} texts ({sum(len(t) for t in TEXTS)} chars, {audio_s:.1f} s of audio), "
          f"median of {args.runs} runs, {cores} core(s)")
    print(f"baseline = engine alone (prepare+infer): {eng * 1000:.1f} ms, "
          f"RTF {eng / audio_s:.4f}")
    print(f"{'format':<7}{'pipeline ms':>13}{'RTF':>9}{'vs engine':>11}{'overhead':>10}")
    for fmt in formats:
        p = statistics.median(pipe_times[fmt])
        rtf = p / pipe_audio[fmt]
        print(f"{fmt:<7}{p * 1000:>13.1f}{rtf:>9.4f}{p / eng:>10.2f}x{(p / eng - 1) * 100:>9.0f}%")
    if "wav" in formats:
        over = statistics.median(pipe_times["wav"]) / eng - 1
        print(f"target wav: pipeline adds <= 50% to the engine: {over * 100:.0f}% -> "
              f"{'met' if over <= 0.5 else 'NOT met'}")
    if "mp3" in formats:
        rtf = statistics.median(pipe_times["mp3"]) / pipe_audio["mp3"]
        print(f"target mp3: RTF < 0.05: {rtf:.4f} -> {'met' if rtf < 0.05 else 'NOT met'}")
    logsink.shutdown()


if __name__ == "__main__":
    main()
