"""Encoding for the audio_render stage: wav, flac, mp3, opus (Ogg) through
soundfile/libsndfile, pcm as raw s16le, aac through an ``ffmpeg`` binary when present.

Any encoder failure is ``AUDIO_ENCODE_FAILED`` (the original exception chained, so
``synthesis_failed`` carries its traceback).
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from typing import Any

import numpy as np

from ..errors import TTSError
from .types import FORMATS, STREAMABLE_FORMATS

MPEG_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
MIN_RATE, MAX_RATE = 8000, 48000
PCM_RATE = 24000  # OpenAI's pcm: 24 kHz s16le mono
OPUS_RATE = 24000

# mp3: constant bitrate (about 64 kbit/s at 22.05/24 kHz mono): decoders then know the
# length of a streamed file without its header frame; VBR streams are misread by some.
_MP3_OPTS = {"bitrate_mode": "CONSTANT", "compression_level": 0.6}
# soundfile (format, subtype) per response format
_SF = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "opus": ("OGG", "OPUS"),
}


def ffmpeg_binary(path: str) -> str | None:
    return shutil.which(path)


def check_format(fmt: str, ffmpeg_path: str) -> str:
    """The format if this process can produce it, else FORMAT_UNSUPPORTED with a hint."""
    f = (fmt or "").strip().lower()
    if f not in FORMATS:
        raise TTSError("FORMAT_UNSUPPORTED", f"{fmt!r}; use one of {', '.join(FORMATS)}",
                       param="response_format")
    if f == "aac" and ffmpeg_binary(ffmpeg_path) is None:
        raise TTSError("FORMAT_UNSUPPORTED",
                       f"aac needs an ffmpeg binary ({ffmpeg_path!r} not found on PATH; "
                       "install ffmpeg or set TTSOPS_FFMPEG_PATH); mp3 and opus work without",
                       param="response_format")
    return f


def output_rate(fmt: str, engine_rate: int, requested: int | None) -> int:
    """The sample rate of the response: the requested one if the format allows it (else
    INVALID_REQUEST), otherwise the engine's own where the format can carry it."""
    allowed: tuple[int, ...] | None = (MPEG_RATES if fmt == "mp3" else
                                       OPUS_RATES if fmt == "opus" else None)
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
    if fmt == "mp3" and engine_rate not in MPEG_RATES:
        return 24000
    return min(max(engine_rate, MIN_RATE), MAX_RATE)


def _sf_encode(samples: np.ndarray, sr: int, fmt: str) -> bytes:
    import soundfile as sf

    container, subtype = _SF[fmt]
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format=container, subtype=subtype,
             **(_MP3_OPTS if fmt == "mp3" else {}))
    return buf.getvalue()


def _aac_encode(samples: np.ndarray, sr: int, ffmpeg_path: str) -> bytes:
    exe = ffmpeg_binary(ffmpeg_path)
    if exe is None:
        raise TTSError("FORMAT_UNSUPPORTED", f"ffmpeg {ffmpeg_path!r} not found",
                       param="response_format")
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "s16le", "-ar",
           str(sr), "-ac", "1", "-i", "pipe:0", "-c:a", "aac", "-b:a", "64k", "-f", "adts",
           "pipe:1"]
    proc = subprocess.run(cmd, input=samples.astype("<i2").tobytes(), capture_output=True,
                          timeout=120, check=False)
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode("utf-8", "replace").strip()[-300:]
        raise RuntimeError(f"ffmpeg exited {proc.returncode}: {err or 'no output'}")
    return proc.stdout


def encode(samples: np.ndarray, sr: int, fmt: str, ffmpeg_path: str = "ffmpeg") -> bytes:
    """Encode s16 mono ``samples`` at ``sr`` as ``fmt``; AUDIO_ENCODE_FAILED on failure."""
    try:
        if fmt == "pcm":
            return samples.astype("<i2").tobytes()
        if fmt == "aac":
            return _aac_encode(samples, sr, ffmpeg_path)
        return _sf_encode(samples, sr, fmt)
    except TTSError:
        raise
    except Exception as e:
        raise TTSError("AUDIO_ENCODE_FAILED", f"{fmt} at {sr} Hz: {e}"[:300]) from e


def wav_stream_header(sr: int) -> bytes:
    """A 16-bit mono WAV header with unknown length (0xFFFFFFFF), for streaming."""
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16) + b"data" +
            struct.pack("<I", 0xFFFFFFFF))


class StreamEncoder:
    """Encodes segment by segment: ``write(samples)`` returns the bytes ready to send,
    ``close()`` returns (the last bytes to send, the complete seekable file).

    mp3/opus use one continuous libsndfile encoder; the bytes sent are what it wrote so
    far (libsndfile may rewrite a header at close: the complete file has it right).
    pcm/wav stream s16le (wav after a streaming header). flac/aac are encoded at close.
    """

    def __init__(self, fmt: str, sr: int, ffmpeg_path: str = "ffmpeg") -> None:
        self.fmt = fmt
        self.sr = sr
        self.ffmpeg_path = ffmpeg_path
        self.parts: list[np.ndarray] = []
        self.sent = 0
        self.buf: io.BytesIO | None = None
        self.sf: Any = None
        try:
            if fmt in ("mp3", "opus"):
                import soundfile as sf

                container, subtype = _SF[fmt]
                self.buf = io.BytesIO()
                self.sf = sf.SoundFile(self.buf, "w", sr, 1, subtype, format=container,
                                       **(_MP3_OPTS if fmt == "mp3" else {}))
        except Exception as e:
            raise TTSError("AUDIO_ENCODE_FAILED", f"{fmt} at {sr} Hz: {e}"[:300]) from e

    @property
    def streaming(self) -> bool:
        return self.fmt in STREAMABLE_FORMATS

    def _new_bytes(self) -> bytes:
        assert self.buf is not None
        view = self.buf.getbuffer()
        out = bytes(view[self.sent:])
        del view
        self.sent += len(out)
        return out

    def write(self, samples: np.ndarray) -> bytes:
        self.parts.append(samples)
        try:
            if self.sf is not None:
                self.sf.write(samples)
                return self._new_bytes()
        except Exception as e:
            raise TTSError("AUDIO_ENCODE_FAILED", f"{self.fmt}: {e}"[:300]) from e
        if self.fmt == "pcm":
            return samples.astype("<i2").tobytes()
        if self.fmt == "wav":
            head = wav_stream_header(self.sr) if len(self.parts) == 1 else b""
            return head + samples.astype("<i2").tobytes()
        return b""

    def close(self) -> tuple[bytes, bytes]:
        if self.sf is not None:
            try:
                self.sf.close()
            except Exception as e:
                raise TTSError("AUDIO_ENCODE_FAILED", f"{self.fmt}: {e}"[:300]) from e
            assert self.buf is not None
            whole = self.buf.getvalue()
            return whole[self.sent:], whole
        allx = (np.concatenate(self.parts) if self.parts else np.zeros(0, "<i2")).astype("<i2")
        whole = encode(allx, self.sr, self.fmt, self.ffmpeg_path)
        if self.fmt == "pcm":
            return b"", whole
        if self.fmt == "wav":
            return (wav_stream_header(self.sr) if not self.parts else b""), whole
        return whole, whole  # flac, aac: one chunk at the end
