from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ttsops.pipeline import metrics as M

SR = 22050


def tone(freq: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("freq", [100.0, 250.0, 440.0, 1000.0, 3150.0, 7000.0])
@pytest.mark.parametrize("sr", [16000, 22050, 24000, 48000])
def test_pure_tone_centroid_is_its_frequency(freq, sr):
    c = M.spectral_centroid(tone(freq, 1.0, sr), sr)
    assert c == pytest.approx(freq, rel=0.01, abs=2.0)


def test_two_tones_centroid_is_the_magnitude_weighted_mean():
    x = tone(500, amp=0.3) + tone(2000, amp=0.1)
    assert M.spectral_centroid(x, SR) == pytest.approx((0.3 * 500 + 0.1 * 2000) / 0.4, rel=0.02)


def test_rms_peak_duration_of_a_sine():
    m = M.measure(tone(440, 2.0, amp=0.5), SR)
    assert m["rms"] == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)
    assert m["peak"] == pytest.approx(0.5, rel=1e-3)
    assert m["duration_ms"] == pytest.approx(2000.0)
    assert m["silence_ratio"] == 0.0


def test_silence_ratio_counts_quiet_frames():
    x = np.concatenate([tone(440, 1.0), np.zeros(SR * 3, np.float32)])
    assert M.silence_ratio(x, SR) == pytest.approx(0.75, abs=0.01)
    assert M.measure(np.zeros(SR, np.float32), SR)["spectral_centroid"] == 0.0


def test_clipped_ratio():
    x = np.clip(tone(440, amp=2.0), -1.0, 1.0)
    r = M.clipped_ratio(x)
    assert 0.5 < r < 0.9  # most of a 2x overdriven sine sits at full scale
    assert M.clipped_ratio(tone(440, amp=0.5)) == 0.0
    assert M.measure(x, SR, clipped=r)["clipped_ratio"] == pytest.approx(r, abs=1e-6)


def test_empty_audio():
    m = M.measure(np.zeros(0, np.float32), SR)
    assert m["duration_ms"] == 0.0 and m["rms"] == 0.0 and m["silence_ratio"] == 1.0


def test_the_metrics_import_no_scipy():
    """Every worker process measures its first synthesis (warm-up) before it is ready: the
    metrics use NumPy's FFT, so that start does not pay scipy.fft's ~0.4 s of imports."""
    code = ("import sys, numpy as np\n"
            "from ttsops.pipeline.metrics import measure\n"
            "t = np.arange(22050) / 22050\n"
            "m = measure(np.sin(2 * np.pi * 440 * t).astype(np.float32), 22050)\n"
            "assert abs(m['spectral_centroid'] - 440) < 5, m\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'scipy'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout
