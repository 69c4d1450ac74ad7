"""The text front (text_normalize) against the engine's own synthesis, same texts, same run.

Baseline ("engine"): ``engine.prepare`` + ``engine.infer`` (eSpeak NG) for every segment of
every text, as bench_pipeline.py does. Measured ("front"): the text_normalize steps alone
(cleaning, emoji, language runs with lingua, the Chinese reading with WeTextProcessing's
grammar, voice, segments), without the front memo, for the same texts. Also reported:
the one-off loading of the grammar and of the detectors (what the server does at start).
Medians over ``--runs`` repetitions.

    python bench/bench_text.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

TEXTS = [
    "您好，您的订单号：20240612001234已发货，预计3-5天送达，运费12.50元，"
    "客服热线400-820-8820。",
    "本月成交额12,345,678元，同比下降-3%，好评率99.9%，面积20m²，电池5000mAh。",
    "今天天气真好，我们去公园散步吧。",
    "Your order has shipped and will arrive tomorrow. Thank you for shopping with us.",
    "Merci pour votre commande, le colis arrivera demain.",
    "Спасибо! 您的订单已发货，预计明天送达。",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    from ttsops.config import Settings
    from ttsops.pipeline import normalize
    from ttsops.pipeline.runner import Pipeline
    from ttsops.pipeline.stages import FRONT_STEPS, FrontState
    from ttsops.pipeline.types import SynthesisRequest

    t0 = time.perf_counter()
    normalize.warm()
    warm_ms = (time.perf_counter() - t0) * 1000
    d = Path(tempfile.mkdtemp())
    pipe = Pipeline(settings=Settings(engine="espeak", cache_dir=d / "c", log_dir=d / "l"),
                    cache=False)

    def front(text: str) -> FrontState:
        st = FrontState()
        for step in FRONT_STEPS:
            step(SynthesisRequest(text, format="wav"), st, pipe)
        return st

    states = [front(t) for t in TEXTS]
    fronts, engines = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        for text in TEXTS:
            front(text)
        fronts.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        for st in states:
            for seg, lang in zip(st.segments, st.segment_langs, strict=True):
                pipe.engine.infer(pipe.engine.prepare(seg, lang, "alloy"), lang, "alloy", 1.0)
        engines.append((time.perf_counter() - t) * 1000)
    f, e = statistics.median(fronts), statistics.median(engines)
    print(f"texts: {len(TEXTS)}, runs: {args.runs}; one-off load of grammar+detectors: "
          f"{warm_ms:.0f} ms")
    print(f"baseline = engine alone (prepare+infer): {e:.1f} ms")
    print(f"front (text_normalize steps):            {f:.1f} ms = {f / e:.2f}x the engine")


if __name__ == "__main__":
    main()
