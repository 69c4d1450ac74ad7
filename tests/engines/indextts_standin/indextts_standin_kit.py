"""Builds what an IndexTTS-2 installation has, for the stand-in: a checkpoint directory
(config.yaml + the files it names), reference recordings and a voices TOML file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent  # put on sys.path: ``import indextts`` finds the stand-in


def make_checkpoints(root: Path, *, load_seconds: float = 0.0, corrupt: bool = False,
                     max_mel_tokens: int = 1500) -> Path:
    d = root / "checkpoints"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(
        "version: 2.0\n"
        "gpt_checkpoint: gpt.pth\n"
        "s2mel_checkpoint: s2mel.pth\n"
        "bpe_model: bpe.model\n"
        f"load_seconds: {load_seconds}\n"
        f"max_mel_tokens: {max_mel_tokens}\n", encoding="utf-8")
    (d / "gpt.pth").write_bytes(b"PK\x03\x04truncated" if corrupt else b"STANDIN-GPT\0")
    (d / "s2mel.pth").write_bytes(b"STANDIN-S2MEL\0")
    (d / "bpe.model").write_bytes(b"STANDIN-BPE\0")
    return d


def reference(path: Path, f0: float, seconds: float = 2.0, sr: int = 24000) -> Path:
    """A voiced reference recording: harmonics of ``f0`` with a syllable envelope."""
    t = np.arange(int(seconds * sr)) / sr
    env = 0.5 * (1 - np.cos(2 * np.pi * 4 * t))
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * env * 0.2
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), sr)
    return path


def make_voices(root: Path) -> Path:
    """voices.toml with two voices (relative paths), an emotion default and an alias."""
    refs = root / "refs"
    reference(refs / "narrator.wav", 110.0)
    reference(refs / "bright.wav", 220.0)
    toml = root / "voices.toml"
    toml.write_text(
        '[voices.narrator]\n'
        'audio = "refs/narrator.wav"\n'
        'description = "low narrator"\n'
        'gender = "male"\n'
        '\n'
        '[voices.bright]\n'
        'audio = "refs/bright.wav"\n'
        'languages = ["zh", "en"]\n'
        'emotion = "happy"\n'
        'emo_alpha = 0.5\n'
        '\n'
        '[aliases]\n'
        'alloy = "narrator"\n', encoding="utf-8")
    return toml
