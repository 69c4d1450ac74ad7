from __future__ import annotations

import numpy as np
import pytest

from ttsops.errors import TTSError
from ttsops.pipeline import audio as A
from ttsops.pipeline.metrics import spectral_centroid

SR = 22050


def tone(freq: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_guard_finite_refuses_nan_and_inf(bad):
    x = tone(440)
    x[100] = bad
    with pytest.raises(TTSError) as ei:
        A.guard_finite(x)
    assert ei.value.code == "SCIPY_FFT_INVALID"
    assert "1 of" in ei.value.message


def test_guard_finite_passes_and_converts_dtype():
    y = A.guard_finite(tone(440).astype(np.float64))
    assert y.dtype == np.float32


@pytest.mark.parametrize("dst", [16000, 24000, 44100, 48000])
def test_resample_keeps_frequency_and_duration(dst):
    x = tone(440, 2.0)
    y = A.resample(x, SR, dst)
    assert abs(y.size - 2.0 * dst) <= 1
    inner = y[dst // 10: -dst // 10]  # leave out the filter's edge transients
    spec = np.abs(np.fft.rfft(inner * np.hanning(inner.size)))
    freqs = np.fft.rfftfreq(inner.size, 1 / dst)
    assert abs(freqs[np.argmax(spec)] - 440) < 1.0
    # images/aliases above the source's Nyquist stay more than 60 dB down
    above = spec[freqs > SR / 2]
    if above.size:
        assert 20 * np.log10(above.max() / spec.max()) < -60


def test_resample_same_rate_is_identity():
    x = tone(440)
    assert A.resample(x, SR, SR) is x


@pytest.mark.parametrize("speed", [0.25, 4.0, 1.0, 2.5])
def test_check_speed_accepts_the_range(speed):
    assert A.check_speed(speed) == speed


@pytest.mark.parametrize("speed", [0.2, 4.01, 0.0, -1.0, float("nan"), float("inf")])
def test_check_speed_refuses_outside(speed):
    with pytest.raises(TTSError) as ei:
        A.check_speed(speed)
    assert ei.value.code == "SPEED_OUT_OF_RANGE"


def test_split_speed():
    assert A.split_speed(0.25, (0.5, 4.0)) == (0.5, 0.5)
    assert A.split_speed(2.0, (0.5, 4.0)) == (2.0, 1.0)
    assert A.split_speed(0.3, None) == (0.3, 1.0)


@pytest.mark.parametrize("rate", [0.5, 0.25, 2.0, 3.0])
def test_time_stretch_changes_duration_not_pitch(rate):
    x = tone(300, 1.0)
    y = A.time_stretch(x, rate, SR)
    assert abs(y.size - x.size / rate) <= 2
    assert abs(spectral_centroid(y, SR) - 300) < 15


def test_normalize_loudness_hits_target_and_respects_peak():
    quiet = tone(440, 1.0, amp=0.01)
    y, gain = A.normalize_loudness(quiet, SR, target_dbfs=-20.0, peak_dbfs=-1.0)
    rms_db = 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    assert abs(rms_db - -20.0) < 0.2
    assert gain > 1
    # a peaky signal: the peak ceiling wins over the loudness target
    spiky = np.zeros(SR, np.float32)
    spiky[::500] = 0.5
    y, _ = A.normalize_loudness(spiky, SR, target_dbfs=-3.0, peak_dbfs=-1.0)
    assert np.max(np.abs(y)) <= 10 ** (-1 / 20) + 1e-6


def test_normalize_loudness_leaves_silence_alone_and_clips_guarded():
    z = np.zeros(1000, np.float32)
    y, gain = A.normalize_loudness(z, SR)
    assert gain == 1.0 and not y.any()
    loud = tone(440, amp=3.0)  # beyond full scale from a misbehaving engine
    y, _ = A.normalize_loudness(loud, SR)
    assert np.max(np.abs(y)) <= 1.0


def test_to_int16_saturates():
    assert A.to_int16(np.array([2.0, -2.0, 0.0], np.float32)).tolist() == [32767, -32768, 0]


def test_is_silent_means_all_zeros_as_16_bit_pcm():
    assert A.is_silent(np.zeros(100, np.float32)) and A.is_silent(np.zeros(100, np.int16))
    assert A.is_silent(np.zeros(0, np.float32))
    assert A.is_silent(np.full(100, 0.4 / 32768, np.float32))  # rounds to 0 in int16
    assert not A.is_silent(np.full(100, 0.6 / 32768, np.float32))  # rounds to 1
    one = np.zeros(100, np.int16)
    one[50] = -1
    assert not A.is_silent(one)
    assert not A.is_silent(tone(440.0, 0.1))
    assert not A.is_silent(np.array([0.0, np.nan], np.float32))  # guard_finite's to refuse
