from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from ttsops.errors import TTSError
from ttsops.pipeline import encode as E
from ttsops.pipeline.audio import to_int16
from ttsops.pipeline.metrics import spectral_centroid

SR = 22050
HAVE_FFMPEG = shutil.which("ffmpeg") is not None


def tone(freq: float = 440.0, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return to_int16((0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32))


def ffmpeg_decode(data: bytes, sr: int) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1",
                          "-ar", str(sr), "pipe:1"], input=data, capture_output=True, check=True)
    return np.frombuffer(out.stdout, "<i2").astype(np.float32) / 32768


@pytest.mark.parametrize("fmt,sr", [("wav", SR), ("flac", SR), ("mp3", SR), ("mp3", 24000),
                                    ("opus", 24000), ("opus", 48000)])
def test_soundfile_formats_round_trip(fmt, sr):
    x = tone(440, 1.5, sr)
    data = E.encode(x, sr, fmt)
    y, got_sr = sf.read(io.BytesIO(data), dtype="float32")
    assert got_sr == sr
    assert abs(y.size / sr - 1.5) < 0.1
    assert abs(spectral_centroid(y, sr) - 440) < 30


def test_wav_and_flac_are_lossless():
    x = tone(440, 0.5)
    for fmt in ("wav", "flac"):
        y, _ = sf.read(io.BytesIO(E.encode(x, SR, fmt)), dtype="int16")
        assert np.array_equal(y, x)


def test_pcm_is_raw_s16le():
    x = tone(440, 0.1)
    data = E.encode(x, SR, "pcm")
    assert len(data) == 2 * x.size
    assert np.array_equal(np.frombuffer(data, "<i2"), x)


def av_decode(data: bytes) -> tuple[np.ndarray, int]:
    """Decode with PyAV (FFmpeg's own decoders): the reference for aac, a second opinion
    for the others."""
    import av

    with av.open(io.BytesIO(data)) as box:
        frames = [f.to_ndarray().reshape(-1) for f in box.decode(audio=0)]
        rate = box.streams.audio[0].sample_rate
    y = np.concatenate(frames).astype(np.float32)
    return y, rate


def test_aac_needs_no_ffmpeg_binary(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no ffmpeg anywhere
    assert E.check_format("AAC") == "aac"
    data = E.encode(tone(440, 1.0), SR, "aac")
    assert data[:2] in (b"\xff\xf1", b"\xff\xf9")  # ADTS sync word
    y, rate = av_decode(data)
    assert rate == SR
    assert abs(y.size / SR - 1.0) < 0.1
    assert abs(spectral_centroid(y, SR) - 440) < 40


@pytest.mark.parametrize("fmt,sr", [("mp3", SR), ("opus", 24000), ("aac", SR), ("flac", SR)])
def test_compressed_formats_decode_with_ffmpeg_too(fmt, sr):
    y, rate = av_decode(E.encode(tone(440, 1.5, sr), sr, fmt))
    assert rate == (48000 if fmt == "opus" else sr)  # FFmpeg decodes Opus at 48 kHz
    assert abs(y.size / rate - 1.5) < 0.1
    assert abs(spectral_centroid(y, rate) - 440) < 40


def test_mp3_has_no_gap_between_writes():
    """One LAME encoder for the whole stream: writing in pieces gives the same file as
    writing it at once (no encoder restart, no padding between pieces)."""
    x = tone(440, 2.0)
    enc = E.StreamEncoder("mp3", SR)
    sent = b"".join(enc.write(p) for p in np.array_split(x, 7))
    tail, whole = enc.close()
    assert sent + tail == whole == E.encode(x, SR, "mp3")


def test_unknown_format():
    with pytest.raises(TTSError) as ei:
        E.check_format("ogg-vorbis")
    assert ei.value.code == "FORMAT_UNSUPPORTED"


def test_an_encoder_refusing_a_rate_is_audio_encode_failed():
    # output_rate() keeps requests from asking for this; the encoder itself still maps it
    with pytest.raises(TTSError) as ei:
        E.encode(tone(), 22050, "opus")
    assert ei.value.code == "AUDIO_ENCODE_FAILED"
    assert "Opus" in ei.value.message
    with pytest.raises(TTSError) as ei:
        E.encode(tone(), 7000, "mp3")
    assert ei.value.code == "AUDIO_ENCODE_FAILED"


def test_output_rate_defaults_and_validation():
    assert E.output_rate("wav", 22050, None) == 22050
    assert E.output_rate("pcm", 22050, None) == 24000
    assert E.output_rate("opus", 22050, None) == 24000
    assert E.output_rate("mp3", 22050, None) == 22050
    assert E.output_rate("mp3", 23000, None) == 24000
    assert E.output_rate("wav", 22050, 16000) == 16000
    for fmt, rate in [("opus", 22050), ("mp3", 7000), ("wav", 96000), ("flac", 100)]:
        with pytest.raises(TTSError) as ei:
            E.output_rate(fmt, 22050, rate)
        assert ei.value.code == "INVALID_REQUEST"
        assert ei.value.param == "sample_rate"


@pytest.mark.parametrize("fmt,sr", [("mp3", SR), ("opus", 24000), ("wav", SR), ("pcm", 24000),
                                    ("flac", SR), ("aac", SR)])
def test_stream_encoder_chunks_concatenate_to_a_playable_file(fmt, sr):
    segs = [tone(f, 0.6, sr) for f in (300, 500, 700)]
    enc = E.StreamEncoder(fmt, sr)
    chunks = [enc.write(s) for s in segs]
    tail, whole = enc.close()
    chunks.append(tail)
    streamed = b"".join(chunks)
    assert sum(1 for c in chunks[:3] if c) >= 2, "bytes must flow before the end"
    if fmt == "pcm":
        assert streamed == whole == np.concatenate(segs).tobytes()
        return
    for data in (whole, streamed):
        if fmt == "wav" and data is streamed:
            y = np.frombuffer(data[44:], "<i2")  # streaming header: unknown length
            assert y.size == sum(s.size for s in segs)
            continue
        if fmt == "aac" or (fmt == "flac" and data is streamed):
            # libsndfile has no aac, and reads a FLAC whose STREAMINFO says "length
            # unknown" (allowed by the format; FFmpeg and browsers play it) as endless
            y, got = av_decode(data)
        else:
            y, got = sf.read(io.BytesIO(data), dtype="float32")
        assert got == sr
        assert abs(y.size / sr - 1.8) < 0.15, (fmt, y.size / sr)


def test_wav_stream_header_is_parsed_by_ffmpeg():
    if not HAVE_FFMPEG:
        pytest.skip("no ffmpeg")
    x = tone(440, 0.5)
    data = E.wav_stream_header(SR) + x.tobytes()
    y = ffmpeg_decode(data, SR)
    assert abs(y.size - x.size) < 50
