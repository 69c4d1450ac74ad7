"""Audio metrics for the ``audio_metrics`` record: what an SRE greps for when users say
"the voice sounds muffled / too quiet / clipped / full of gaps".

* ``rms``, ``peak``: linear, full scale = 1.0
* ``spectral_centroid`` (Hz): magnitude-weighted mean frequency over all frames
  (``numpy.fft.rfft`` of Hann-windowed frames); a pure tone's centroid is its frequency.
  NumPy's FFT, not scipy.fft: the same pocketfft, without scipy.fft's ~0.4 s of imports in
  every worker process and ``ttsops synth``
* ``silence_ratio``: share of 20 ms frames whose RMS is below -40 dBFS
* ``clipped_ratio``: share of the engine's samples at or beyond full scale (measured on the
  raw engine output: after the clipping guard nothing is clipped any more)
* ``duration_ms``: of the audio
"""

from __future__ import annotations

import numpy as np

from .audio import frame_rms

CENTROID_FRAME = 2048
SILENCE_DBFS = -40.0
CLIP_LEVEL = 0.999


def spectral_centroid(x: np.ndarray, sr: int, frame: int = CENTROID_FRAME) -> float:
    if x.size == 0:
        return 0.0
    n = min(frame, x.size)
    m = x.size // n
    frames = x[: m * n].reshape(m, n).astype(np.float32)
    mag = np.abs(np.fft.rfft(frames * np.hanning(n).astype(np.float32), axis=1))
    total = float(mag.sum())
    if total <= 0.0:
        return 0.0
    freqs = np.arange(mag.shape[1], dtype=np.float64) * (sr / n)
    return float((mag.sum(axis=0) * freqs).sum() / total)


def silence_ratio(x: np.ndarray, sr: int) -> float:
    if x.size == 0:
        return 1.0
    rms = frame_rms(x, sr)
    return float(np.count_nonzero(rms < 10 ** (SILENCE_DBFS / 20)) / rms.size)


def clipped_ratio(raw: np.ndarray) -> float:
    if raw.size == 0:
        return 0.0
    n = np.count_nonzero(raw >= CLIP_LEVEL) + np.count_nonzero(raw <= -CLIP_LEVEL)
    return float(n / raw.size)


def measure(x: np.ndarray, sr: int, clipped: float = 0.0) -> dict[str, float]:
    """All metrics of the delivered audio ``x`` (float32 at ``sr``); ``clipped`` is
    ``clipped_ratio`` of the raw engine output."""
    if x.size:
        rms = float(np.sqrt(np.dot(x, x) / x.size))
        peak = max(float(x.max()), -float(x.min()))
    else:
        rms = peak = 0.0
    return {
        "duration_ms": round(1000.0 * x.size / sr, 1) if sr else 0.0,
        "rms": round(rms, 5),
        "peak": round(peak, 5),
        "spectral_centroid": round(spectral_centroid(x, sr), 1),
        "silence_ratio": round(silence_ratio(x, sr), 4),
        "clipped_ratio": round(clipped, 6),
    }
