"""Stand-in ``IndexTTS2`` (see the package docstring). Behaviour the tests rely on:

* the constructor reads ``cfg_path`` (flat ``key: value`` lines) and opens the files it
  names in ``model_dir`` (``gpt_checkpoint``, ``s2mel_checkpoint``, ``bpe_model``) like the
  real one does -- a missing file raises FileNotFoundError, a GPT checkpoint that does not
  start with ``STANDIN`` raises the RuntimeError torch gives for a truncated file;
  ``load_seconds`` in the config makes loading that slow;
* ``infer`` reads the reference recording(s) with soundfile, raises the CUDA
  out-of-memory RuntimeError when the text contains ``CUDA_OOM``, warns like the real
  model when the text has more tokens than ``max_mel_tokens`` allows, prints the phase
  times, and records every call in ``calls``; it raises if it is ever entered while
  another call on the same instance is running (``max_in_flight`` stays 1 otherwise).
"""

from __future__ import annotations

import os
import re
import threading
import time
import warnings
from typing import Any

import numpy as np
import soundfile as sf

SR = 22050
EMOTION_PITCH = (1.25, 1.1, 0.85, 1.15, 0.95, 0.8, 1.3, 1.0)  # happy .. calm


def _read_cfg(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8") as fh:  # FileNotFoundError like OmegaConf.load
        out = {}
        for line in fh:
            key, sep, value = line.partition(":")
            if sep and not line.startswith((" ", "#")):
                out[key.strip()] = value.strip()
        return out


class TextTokenizer:
    """Characters for CJK, lower-cased words for Latin text, punctuation kept."""

    unk_token_id = 2
    _TOKEN = re.compile(r"[\u4e00-\u9fff]|[a-z0-9']+|[^\sa-z0-9'\u4e00-\u9fff]")

    def tokenize(self, text: str) -> list[str]:
        return self._TOKEN.findall(text.lower())

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        out = []
        for t in tokens:
            known = t.isascii() or "\u4e00" <= t[0] <= "\u9fff" or t in "，。！？、；："
            out.append(3 + sum(map(ord, t)) % 12000 if known else self.unk_token_id)
        return out


class IndexTTS2:
    def __init__(self, cfg_path: str = "checkpoints/config.yaml",
                 model_dir: str = "checkpoints", use_fp16: bool = False,
                 device: str | None = None, use_cuda_kernel: bool | None = None,
                 use_deepspeed: bool = False) -> None:
        self.device = device or "cpu"
        self.use_fp16 = False if self.device == "cpu" else use_fp16
        self.use_cuda_kernel = bool(use_cuda_kernel)
        self.use_deepspeed = use_deepspeed
        self.cfg = _read_cfg(cfg_path)
        self.model_dir = model_dir
        for key in ("gpt_checkpoint", "s2mel_checkpoint", "bpe_model"):
            with open(os.path.join(model_dir, self.cfg[key]), "rb") as fh:
                head = fh.read(16)
            if key == "gpt_checkpoint" and not head.startswith(b"STANDIN"):
                raise RuntimeError("PytorchStreamReader failed reading zip archive: failed "
                                   "finding central directory")
            print(f">> {key} restored from:", os.path.join(model_dir, self.cfg[key]))
        time.sleep(float(self.cfg.get("load_seconds", "0") or 0))
        self.max_mel_tokens = int(self.cfg.get("max_mel_tokens", "1500"))
        self.tokenizer = TextTokenizer()
        self.model_version = self.cfg.get("version")
        self.calls: list[dict[str, Any]] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._guard = threading.Lock()

    def _ref_pitch(self, path: str) -> float:
        x, sr = sf.read(path, dtype="float32", always_2d=True)  # raises if missing
        x = x.mean(axis=1)
        if x.size < 64:
            return 120.0
        spec = np.abs(np.fft.rfft(x[: sr]))
        f = np.fft.rfftfreq(min(x.size, sr), 1.0 / sr)
        band = (f > 60) & (f < 400)
        return float(f[band][np.argmax(spec[band])]) if band.any() else 120.0

    def infer(self, spk_audio_prompt: str, text: str, output_path: str | None,
              emo_audio_prompt: str | None = None, emo_alpha: float = 1.0,
              emo_vector: list[float] | None = None, use_emo_text: bool = False,
              emo_text: str | None = None, use_random: bool = False,
              interval_silence: int = 200, verbose: bool = False,
              max_text_tokens_per_segment: int = 120, **generation_kwargs: Any) -> Any:
        with self._guard:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            overlapping = self._in_flight > 1
        try:
            if overlapping:
                raise RuntimeError("stand-in IndexTTS2.infer entered while another call "
                                   "was running")
            return self._infer(spk_audio_prompt, text, output_path, emo_audio_prompt,
                               emo_alpha, emo_vector, use_emo_text, emo_text, use_random,
                               interval_silence, max_text_tokens_per_segment)
        finally:
            with self._guard:
                self._in_flight -= 1

    def _infer(self, spk_audio_prompt: str, text: str, output_path: str | None,
               emo_audio_prompt: str | None, emo_alpha: float,
               emo_vector: list[float] | None, use_emo_text: bool, emo_text: str | None,
               use_random: bool, interval_silence: int, max_tokens: int) -> Any:
        print(">> starting inference...")
        t0 = time.perf_counter()
        self.calls.append(dict(spk_audio_prompt=spk_audio_prompt, text=text,
                               output_path=output_path, emo_audio_prompt=emo_audio_prompt,
                               emo_alpha=emo_alpha, emo_vector=emo_vector,
                               use_emo_text=use_emo_text, emo_text=emo_text,
                               use_random=use_random, interval_silence=interval_silence,
                               max_text_tokens_per_segment=max_tokens))
        f0 = self._ref_pitch(spk_audio_prompt)
        if emo_audio_prompt is not None:
            self._ref_pitch(emo_audio_prompt)
        if "CUDA_OOM" in text:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; "
                               "23.65 GiB total capacity)")
        if use_emo_text:  # the real model asks its Qwen emotion classifier
            emo_vector = [0.0] * 7 + [1.0]
        if emo_vector is not None:
            scale = max(0.0, min(1.0, emo_alpha))
            emo_vector = [v * scale for v in emo_vector]
            w = np.asarray(emo_vector, dtype=np.float64)
            if w.sum() > 0:
                f0 *= float(np.dot(w, EMOTION_PITCH) / w.sum())
        tokens = self.tokenizer.tokenize(text)
        if len(tokens) * 8 > self.max_mel_tokens:
            warnings.warn(f"WARN: generation stopped due to exceeding `max_mel_tokens` "
                          f"({self.max_mel_tokens}). Input text tokens: {len(tokens)}.",
                          category=RuntimeWarning, stacklevel=2)
            tokens = tokens[: self.max_mel_tokens // 8]
        time.sleep(0.03)  # long enough for overlapping calls to meet
        gen = time.perf_counter() - t0
        syll = int(0.16 * SR)
        t = np.arange(syll) / SR
        env = np.hanning(syll)
        parts = []
        for i, tok in enumerate(tokens):
            if not any(ch.isalnum() or "\u4e00" <= ch <= "\u9fff" for ch in tok):
                parts.append(np.zeros(int(0.08 * SR)))
                continue
            f = f0 * (1.0 + 0.08 * np.sin(i * 1.7))
            tone = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 6))
            parts.append(0.3 * env * tone)
        wav = np.concatenate(parts) if parts else np.zeros(int(0.2 * SR))
        pcm = np.clip(np.round(wav * 32767), -32767, 32767).astype(np.int16)
        print(f">> gpt_gen_time: {gen:.2f} seconds")
        print(">> gpt_forward_time: 0.01 seconds")
        print(">> s2mel_time: 0.02 seconds")
        print(">> bigvgan_time: 0.01 seconds")
        if output_path:
            sf.write(output_path, pcm, SR)
            return output_path
        return (SR, pcm.reshape(-1, 1))
