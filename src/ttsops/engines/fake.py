"""A deterministic fake engine for testing the pipeline's, workers' and server's own logic
(never as evidence that speech works).

It "speaks" a sine (440 Hz unless told otherwise) of 60 ms per character at 24 kHz.
Directives in the text make it misbehave, so that tests can reach every path through the
real pipeline, workers and HTTP server:

    #nan  #inf       output contains NaN / Inf (-> SCIPY_FFT_INVALID in llm_postproc)
    #raise           infer() raises RuntimeError (-> ENGINE_FAILED in llm_inference)
    #raise_prepare   prepare() raises (-> ENGINE_FAILED in llm_prompt_gen)
    #exit            infer() ends the process with os._exit(3) (worker tests)
    #segv            infer() kills the process with SIGSEGV (worker tests)
    #sleep=MS        infer() sleeps MS milliseconds (timeouts, queueing)
    #freq=HZ         sine frequency
    #clip            amplitude 1.5 (clipped_ratio > 0)
    #silence         all zeros

``settings.fake_delay_ms`` adds a sleep to every infer(); ``fake_load_ms`` /
``fake_load_fail`` make load() slow or fail with MODEL_LOAD_FAILED.
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import TTSError
from .base import Engine, EngineInfo, VoiceInfo

SAMPLE_RATE = 24000
MS_PER_CHAR = 60.0
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage",
          "shimmer", "verse", "marin", "cedar")
_DIRECTIVE = re.compile(r"#(nan|inf|raise_prepare|raise|exit|segv|clip|silence|"
                        r"sleep=\d+(?:\.\d+)?|freq=\d+(?:\.\d+)?)")


@dataclass
class FakeInput:
    text: str  # without directives
    directives: dict[str, float] = field(default_factory=dict)


def parse_directives(text: str) -> FakeInput:
    d: dict[str, float] = {}
    for m in _DIRECTIVE.finditer(text):
        key, _, value = m.group(1).partition("=")
        d[key] = float(value) if value else 1.0
    return FakeInput(_DIRECTIVE.sub("", text).strip(), d)


class FakeEngine(Engine):
    name = "fake"

    def __init__(self, delay_ms: float = 0.0, load_ms: float = 0.0,
                 load_fail: bool = False) -> None:
        self.delay_ms = delay_ms
        self.load_ms = load_ms
        self.load_fail = load_fail
        self.loaded = False

    def describe(self) -> EngineInfo:
        return EngineInfo(name=self.name, version="1", sample_rate=SAMPLE_RATE,
                          languages=("zh", "en"), concurrent_safe=True, device="cpu",
                          model="sine")

    def load(self) -> EngineInfo:
        if self.load_ms:
            time.sleep(self.load_ms / 1000.0)
        if self.load_fail:
            raise TTSError("MODEL_LOAD_FAILED", "fake engine told to fail (fake_load_fail)",
                           engine=self.name)
        self.loaded = True
        return self.describe()

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(v, ("zh", "en"), "fake sine voice") for v in VOICES]

    def prepare(self, text: str, lang: str, voice: str) -> FakeInput:
        p = parse_directives(text)
        if "raise_prepare" in p.directives:
            raise RuntimeError("fake engine: prepare failed as told (#raise_prepare)")
        return p

    def infer(self, prepared: FakeInput, lang: str, voice: str, speed: float) -> np.ndarray:
        d = prepared.directives
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000.0)
        if "sleep" in d:
            time.sleep(d["sleep"] / 1000.0)
        if "exit" in d:
            os._exit(3)
        if "segv" in d:
            os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(5)  # the signal is delivered asynchronously
        if "raise" in d:
            raise RuntimeError("fake engine: inference failed as told (#raise)")
        chars = max(len(prepared.text), 4)
        n = int(SAMPLE_RATE * chars * MS_PER_CHAR / 1000.0 / speed)
        freq = d.get("freq", 440.0)
        amp = 1.5 if "clip" in d else 0.0 if "silence" in d else 0.5
        t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
        x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        if "clip" in d:
            x = np.clip(x, -1.0, 1.0)
        if "nan" in d:
            x[n // 2] = np.nan
        if "inf" in d:
            x[n // 3] = np.inf
        return x
