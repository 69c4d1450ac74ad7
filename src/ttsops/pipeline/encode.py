"""Encoding for the audio_render stage, every format through one continuous encoder.

* pcm: raw s16le; wav: a 16-bit header then s16le (a streaming header of unknown length
  while streaming; the complete file is libsndfile's); flac: libsndfile (soundfile).
* mp3: LAME through ``lameenc`` (constant 64 kbit/s, LAME quality 7: LAME's own "fast"
  setting; the LAME in PyAV's wheel is about 3x slower here at the same setting).
* opus (Ogg) and aac (ADTS): libopus and FFmpeg's native AAC encoder from the PyAV (``av``)
  wheel; no ffmpeg binary is needed. opus: 32 kbit/s, complexity 0 (speech at 24 kHz),
  100 ms Ogg pages so that bytes leave as each sentence is encoded; aac: 64 kbit/s with
  FFmpeg's fast coder.

``StreamEncoder`` is the encoder: ``write(samples)`` returns the bytes ready to send,
``close()`` the last bytes and the complete file. ``encode()`` is the same encoder fed
everything at once, so a streamed file and a whole one are made alike.

Any encoder failure is ``AUDIO_ENCODE_FAILED`` (the original exception chained, so
``synthesis_failed`` carries its traceback).
"""

from __future__ import annotations

import io
import struct
from typing import Any, Protocol

import numpy as np

from ..errors import TTSError
from .types import FORMATS

MPEG_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
MIN_RATE, MAX_RATE = 8000, 48000
PCM_RATE = 24000  # OpenAI's pcm: 24 kHz s16le mono
OPUS_RATE = 24000

MP3_KBPS = 64
MP3_QUALITY = 7  # LAME: 0 best/slowest .. 9 worst/fastest; 7 is its "fast" preset
OPUS_BPS = 32000
OPUS_COMPLEXITY = 0  # 0..10; speech at 32 kbit/s loses little, and it is 4x faster than 10
OPUS_PAGE_US = 100_000  # Ogg page duration: bytes leave at least every 100 ms of audio
AAC_BPS = 64000
# PyAV (codec, container format, sample format, codec options, container options)
_AV = {
    "opus": ("libopus", "ogg", "s16", {"compression_level": str(OPUS_COMPLEXITY)},
             {"page_duration": str(OPUS_PAGE_US)}),
    "aac": ("aac", "adts", "fltp", {"aac_coder": "fast"}, {}),
}
_BITRATE = {"opus": OPUS_BPS, "aac": AAC_BPS}


def check_format(fmt: str, ffmpeg_path: str | None = None) -> str:
    """The format, lower-cased, if it is one of FORMATS, else FORMAT_UNSUPPORTED.
    (``ffmpeg_path`` is accepted for old callers and ignored: aac needs no binary.)"""
    f = (fmt or "").strip().lower()
    if f not in FORMATS:
        raise TTSError("FORMAT_UNSUPPORTED", f"{fmt!r}; use one of {', '.join(FORMATS)}",
                       param="response_format")
    return f


def output_rate(fmt: str, engine_rate: int, requested: int | None) -> int:
    """The sample rate of the response: the requested one if the format allows it (else
    INVALID_REQUEST), otherwise the engine's own where the format can carry it."""
    allowed: tuple[int, ...] | None = (MPEG_RATES if fmt == "mp3" else
                                       OPUS_RATES if fmt == "opus" else
                                       AAC_RATES if fmt == "aac" else None)
    if requested:
        ok = requested in allowed if allowed else MIN_RATE <= requested <= MAX_RATE
        if not ok:
            span = ", ".join(map(str, allowed)) if allowed else f"{MIN_RATE}..{MAX_RATE}"
            raise TTSError("INVALID_REQUEST", f"sample_rate {requested} not possible for "
                           f"{fmt} ({span})", param="sample_rate")
        return requested
    if fmt == "pcm":
        return PCM_RATE
    if fmt == "opus":
        return OPUS_RATE
    if fmt in ("mp3", "aac") and engine_rate not in MPEG_RATES:
        return 24000
    return min(max(engine_rate, MIN_RATE), MAX_RATE)


def wav_stream_header(sr: int) -> bytes:
    """A 16-bit mono WAV header with unknown length (0xFFFFFFFF), for streaming."""
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16) + b"data" +
            struct.pack("<I", 0xFFFFFFFF))


def _sf_encode(samples: np.ndarray, sr: int, fmt: str) -> bytes:
    """wav/flac as a whole file through libsndfile (as before the stream encoders)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, sr, format=fmt.upper(), subtype="PCM_16")
    return buf.getvalue()


class _Codec(Protocol):
    def write(self, pcm: np.ndarray) -> bytes: ...
    def close(self) -> bytes: ...


class _Pcm:
    def write(self, pcm: np.ndarray) -> bytes:
        return pcm.astype("<i2", copy=False).tobytes()

    def close(self) -> bytes:
        return b""


class _Lame:
    def __init__(self, sr: int) -> None:
        import lameenc

        self.enc = lameenc.Encoder()
        self.enc.set_bit_rate(MP3_KBPS)
        self.enc.set_in_sample_rate(sr)
        self.enc.set_out_sample_rate(sr)
        self.enc.set_channels(1)
        self.enc.set_quality(MP3_QUALITY)

    def write(self, pcm: np.ndarray) -> bytes:
        return bytes(self.enc.encode(pcm.astype("<i2", copy=False).tobytes()))

    def close(self) -> bytes:
        return bytes(self.enc.flush())


class _Collect:
    """A write-only, unseekable file for PyAV's muxer: bytes are taken as they come."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, b: Any) -> int:
        self.chunks.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


class _Av:
    def __init__(self, fmt: str, sr: int) -> None:
        import av

        codec, container, self.sample_fmt, opts, copts = _AV[fmt]
        self.sr = sr
        self.sink = _Collect()
        self.box = av.open(self.sink, mode="w", format=container, options=copts)
        self.stream: Any = self.box.add_stream(codec, rate=sr, layout="mono", options=opts)
        self.stream.codec_context.bit_rate = _BITRATE[fmt]
        self.pts = 0
        self.av = av

    def _mux(self, frame: Any) -> None:
        for packet in self.stream.encode(frame):
            self.box.mux(packet)

    def write(self, pcm: np.ndarray) -> bytes:
        if pcm.size:
            x = pcm.astype("<i2", copy=False).reshape(1, -1)
            if self.sample_fmt == "fltp":
                x = x.astype(np.float32) * np.float32(1 / 32768)
            frame = self.av.AudioFrame.from_ndarray(x, format=self.sample_fmt, layout="mono")
            frame.sample_rate = self.sr
            frame.pts = self.pts
            self.pts += pcm.size
            self._mux(frame)
        return self.sink.take()

    def close(self) -> bytes:
        self._mux(None)
        self.box.close()
        return self.sink.take()


class _Sf:
    """flac through libsndfile: one SoundFile over a buffer; the bytes sent are what it
    wrote so far (it rewrites the STREAMINFO at close: the complete file has it right,
    the streamed one says 'length unknown', which FLAC allows)."""

    def __init__(self, sr: int) -> None:
        import soundfile as sf

        self.buf = io.BytesIO()
        self.sf = sf.SoundFile(self.buf, "w", sr, 1, "PCM_16", format="FLAC")
        self.sent = 0

    def _new(self) -> bytes:
        view = self.buf.getbuffer()
        out = bytes(view[self.sent:])
        del view
        self.sent += len(out)
        return out

    def write(self, pcm: np.ndarray) -> bytes:
        self.sf.write(pcm)
        return self._new()

    def close(self) -> bytes:
        self.sf.close()
        return self._new()

    def whole(self) -> bytes:
        return self.buf.getvalue()


def _codec(fmt: str, sr: int) -> _Codec:
    if fmt in ("pcm", "wav"):
        return _Pcm()
    if fmt == "mp3":
        if sr not in MPEG_RATES:
            raise ValueError(f"MPEG audio has no {sr} Hz")
        return _Lame(sr)
    if fmt == "flac":
        return _Sf(sr)
    if fmt in _AV:
        if fmt == "opus" and sr not in OPUS_RATES:
            raise ValueError(f"Opus has no {sr} Hz")
        return _Av(fmt, sr)
    raise ValueError(f"no encoder for {fmt!r}")


class StreamEncoder:
    """One continuous encoder per synthesis: ``write(samples)`` (s16 mono at ``sr``)
    returns the bytes ready to send; ``close()`` returns (the last bytes to send, the
    complete file). Concatenating everything sent is a playable file of the format;
    for wav it starts with a streaming header (unknown length) where the complete file
    has the exact one, for flac the STREAMINFO of the complete file has the length.
    ``ffmpeg_path`` is accepted for old callers and ignored."""

    def __init__(self, fmt: str, sr: int, ffmpeg_path: str | None = None) -> None:
        self.fmt = fmt
        self.sr = sr
        self.sent: list[bytes] = []
        self.samples = 0
        self.head = fmt == "wav"
        try:
            self.codec = _codec(fmt, sr)
        except Exception as e:
            raise TTSError("AUDIO_ENCODE_FAILED", f"{fmt} at {sr} Hz: {e}"[:300]) from e

    @property
    def streaming(self) -> bool:
        return True

    def _keep(self, data: bytes) -> bytes:
        if data:
            self.sent.append(data)
        return data

    def write(self, samples: np.ndarray) -> bytes:
        try:
            data = self.codec.write(samples)
        except Exception as e:
            raise TTSError("AUDIO_ENCODE_FAILED", f"{self.fmt}: {e}"[:300]) from e
        self.samples += samples.size
        if self.head:
            self.head = False
            data = wav_stream_header(self.sr) + data
        return self._keep(data)

    def close(self) -> tuple[bytes, bytes]:
        try:
            tail = self.codec.close()
        except Exception as e:
            raise TTSError("AUDIO_ENCODE_FAILED", f"{self.fmt}: {e}"[:300]) from e
        if self.head:  # nothing was written: a wav still gets its header
            self.head = False
            tail = wav_stream_header(self.sr) + tail
        self._keep(tail)
        streamed = b"".join(self.sent)
        if self.fmt == "wav":
            return tail, _sf_encode(np.frombuffer(streamed, "<i2", offset=44), self.sr, "wav")
        if isinstance(self.codec, _Sf):
            return tail, self.codec.whole()
        return tail, streamed


def encode(samples: np.ndarray, sr: int, fmt: str, ffmpeg_path: str | None = None) -> bytes:
    """Encode s16 mono ``samples`` at ``sr`` as ``fmt``; AUDIO_ENCODE_FAILED on failure."""
    if fmt == "pcm":
        return samples.astype("<i2", copy=False).tobytes()
    if fmt in ("wav", "flac"):
        try:
            return _sf_encode(samples, sr, fmt)
        except Exception as e:
            raise TTSError("AUDIO_ENCODE_FAILED", f"{fmt} at {sr} Hz: {e}"[:300]) from e
    enc = StreamEncoder(fmt, sr)
    enc.write(samples)
    return enc.close()[1]
