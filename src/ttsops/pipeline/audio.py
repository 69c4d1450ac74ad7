"""Audio post-processing for the llm_postproc stage: small functions on float32 mono.

``guard_finite`` (NaN/Inf -> SCIPY_FFT_INVALID) must run first: every later step
(resampling, FFT metrics) would turn a few bad samples into garbage everywhere.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

from ..errors import TTSError
from .types import SPEED_MAX, SPEED_MIN

FRAME_S = 0.02  # analysis frame for loudness and silence (20 ms)
VOICED_FLOOR_DB = -40.0  # frames this far below the loudest frame are pauses, not speech


def is_silent(x: np.ndarray) -> bool:
    """True when ``x`` would be all zeros as 16-bit PCM (no sample reaches half a step);
    NaN/Inf are not silence (``guard_finite`` refuses them)."""
    if x.size == 0:
        return True
    half_step = 0.5 if np.issubdtype(x.dtype, np.integer) else 0.5 / 32768.0
    return bool(np.max(np.abs(x)) < half_step)


def guard_finite(x: np.ndarray) -> np.ndarray:
    """Refuse audio holding NaN or Inf: SCIPY_FFT_INVALID (the request fails cleanly)."""
    x = np.asarray(x)
    if x.ndim != 1:
        x = x.reshape(-1)
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(x.size - np.count_nonzero(finite))
        nan = int(np.count_nonzero(np.isnan(x)))
        raise TTSError("SCIPY_FFT_INVALID",
                       f"{bad} of {x.size} samples are not finite ({nan} NaN, {bad - nan} Inf)")
    return x


@lru_cache(maxsize=16)
def _lowpass(up: int, down: int) -> np.ndarray:
    """resample_poly's own default filter (Kaiser beta 5, 10 zero crossings per side),
    designed once per ratio instead of once per call."""
    from scipy.signal import firwin

    max_rate = max(up, down)
    return firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) from src to dst rate."""
    if src_rate == dst_rate or x.size == 0:
        return x
    from scipy.signal import resample_poly

    g = gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    y = resample_poly(x, up, down, window=_lowpass(up, down))
    return y.astype(np.float32, copy=False)


def check_speed(speed: float) -> float:
    if not (SPEED_MIN <= speed <= SPEED_MAX) or speed != speed:
        raise TTSError("SPEED_OUT_OF_RANGE", f"got {speed}", param="speed")
    return float(speed)


def split_speed(speed: float, native: tuple[float, float] | None) -> tuple[float, float]:
    """(speed for the engine, residual factor for ``time_stretch``). ``native`` is the
    range the engine does itself; None: the engine does the whole range."""
    if native is None:
        return speed, 1.0
    lo, hi = native
    eng = min(max(speed, lo), hi)
    return eng, speed / eng


def time_stretch(x: np.ndarray, rate: float, sr: int) -> np.ndarray:
    """Change duration by 1/rate keeping pitch (WSOLA: overlap-add of 40 ms Hann frames,
    each shifted within +-10 ms to the offset that best continues the previous one)."""
    if abs(rate - 1.0) < 1e-3 or x.size == 0:
        return x
    n = max(64, int(sr * 0.04)) // 2 * 2
    hs = n // 2  # synthesis hop
    ha = hs * rate  # analysis hop
    tol = n // 4
    win = np.hanning(n).astype(np.float32)
    out_len = round(x.size / rate)
    pad = np.concatenate([np.zeros(tol, np.float32), x.astype(np.float32),
                          np.zeros(n + tol + int(ha) + 2, np.float32)])
    frames = out_len // hs + 1
    y = np.zeros(frames * hs + n, np.float32)
    norm = np.zeros_like(y)
    prev = 0  # position (in x) of the previous frame
    for k in range(frames):
        nominal = round(k * ha)
        if k == 0:
            best = nominal
        else:
            template = pad[tol + prev + hs: tol + prev + hs + n]  # natural continuation
            lo = nominal  # candidate starts nominal-tol .. nominal+tol (in pad coordinates)
            region = pad[lo: lo + n + 2 * tol]
            if region.size < n + 2 * tol or not template.any():
                best = nominal
            else:
                corr = np.correlate(region, template, mode="valid")
                best = nominal - tol + int(np.argmax(corr))
        best = max(0, best)
        seg = pad[tol + best: tol + best + n]
        if seg.size < n:
            break
        y[k * hs: k * hs + n] += seg * win
        norm[k * hs: k * hs + n] += win
        prev = best
    norm[norm < 1e-3] = 1.0
    return (y / norm)[:out_len]


def frame_rms(x: np.ndarray, sr: int) -> np.ndarray:
    """RMS of consecutive 20 ms frames (a last partial frame is left out)."""
    n = max(1, int(sr * FRAME_S))
    m = x.size // n
    if m == 0:
        if not x.size:
            return np.zeros(1, np.float32)
        return np.sqrt(np.dot(x, x) / x.size).reshape(1).astype(np.float32)
    f = x[: m * n].reshape(m, n)
    return np.sqrt(np.einsum("ij,ij->i", f, f) / np.float32(n))


def normalize_loudness(x: np.ndarray, sr: int, target_dbfs: float = -20.0,
                       peak_dbfs: float = -1.0) -> tuple[np.ndarray, float]:
    """Scale so the voiced frames' RMS is ``target_dbfs``, never letting the peak exceed
    ``peak_dbfs`` (clipping guard); then hard-limit to [-1, 1]. Returns (audio, gain).
    Silence stays silence (no gain on audio without voiced frames)."""
    if x.size == 0:
        return x, 1.0
    rms = frame_rms(x, sr)
    top = float(rms.max())
    if top < 1e-5:  # below -100 dBFS: nothing to normalise
        return x, 1.0
    voiced = rms[rms >= top * 10 ** (VOICED_FLOOR_DB / 20)]
    active = float(np.sqrt(np.mean(voiced * voiced)))
    gain = 10 ** (target_dbfs / 20) / active
    peak = max(float(x.max()), -float(x.min()))
    ceiling = 10 ** (peak_dbfs / 20)
    if peak * gain > ceiling:
        gain = ceiling / peak
    y = x * np.float32(gain)
    np.clip(y, -1.0, 1.0, out=y)
    return y, gain


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float [-1, 1] to little-endian s16 (values beyond full scale saturate)."""
    y = np.multiply(x, np.float32(32767.0), dtype=np.float32)
    np.rint(y, out=y)
    np.clip(y, -32768, 32767, out=y)
    return y.astype("<i2")
