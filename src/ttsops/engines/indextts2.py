"""IndexTTS-2 (``indextts.infer_v2.IndexTTS2``): zero-shot voice cloning from a reference
recording, with emotion control. Needs the user's ``indextts`` checkout (installed into
the same environment), its checkpoint directory and, in practice, a GPU.

    IndexTTS2(cfg_path, model_dir, use_fp16, device, use_cuda_kernel, use_deepspeed)
    .infer(spk_audio_prompt, text, output_path=None, emo_audio_prompt=, emo_alpha=,
           emo_vector=, use_emo_text=, emo_text=, use_random=, interval_silence=,
           max_text_tokens_per_segment=)  ->  (22050, int16 array of shape (n, 1))

Voices are named reference recordings from a TOML file (``settings.indextts_voices``); a
request names a voice, never a path::

    [voices.narrator]
    audio = "refs/narrator.wav"          # relative to the TOML file
    languages = ["zh", "en"]             # default: both
    description = "calm male narrator"
    gender = "male"
    # optional emotion defaults, overridden by a request's options
    emotion = "calm"                     # or emo_vector = [8 floats], emo_text = "..."
    emo_alpha = 0.6
    emo_voice = "narrator_happy"         # another voice's recording as emotion reference

    [aliases]                            # OpenAI voice names -> configured voices
    alloy = "narrator"

Request options (``SynthesisRequest.options``; checked by ``check_options``):
``emotion`` (one of ``EMOTIONS``), ``emo_vector`` (8 numbers 0..1.2 in ``EMOTIONS``
order), ``emo_alpha`` (0..1), ``emo_text`` (text the model's emotion classifier reads),
``emo_voice`` (a configured voice name), ``use_random`` (bool).

Stage mapping (the model runs all of its phases inside one ``infer`` call):

* llm_prompt_gen (``prepare``): the model's own text normaliser and BPE tokeniser
  (``model.tokenizer.tokenize``) -- token count and unknown tokens are recorded -- and the
  voice/emotion arguments resolved.
* llm_inference (``infer``): reference conditioning (cached per voice by the model), GPT
  semantic tokens, GPT latent, s2mel (flow matching) and the BigVGAN vocoder. Their own
  times, printed by the model, are parsed and written as one ``model_phases`` record
  (gpt_gen_ms, gpt_forward_ms, s2mel_ms, bigvgan_ms) beside the pipeline's stage_time.
* llm_postproc / audio_render: the pipeline's (int16 -> float32, loudness, encode).

``concurrent_safe=False``: the model keeps per-reference caches and one CUDA context, so
every call into it holds one lock, and the worker pool runs one worker per GPU; with
``device=auto`` worker N uses ``cuda:N`` (modulo the number of GPUs).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import multiprocessing
import os
import re
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import TTSError
from ..events import get_logger
from .base import Engine, EngineInfo, VoiceInfo
from .indextts_voices import EMOTIONS, OPTION_KEYS, RefVoice, check_options, load_voices

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["EMOTIONS", "OPTION_KEYS", "IndexInput", "IndexTTS2Engine", "RefVoice",
           "check_options", "checkpoint_files", "load_voices"]

log = get_logger("ttsops.engines.indextts2")

SAMPLE_RATE = 22050
INSTALL_HINT = ("install IndexTTS-2 into this environment (pip install 'ttsops[indextts]', "
                "then `pip install -e <your index-tts checkout>`), and set "
                "TTSOPS_INDEXTTS_MODEL_DIR to its checkpoints directory")
_PHASE = re.compile(r">>\s*(gpt_gen_time|gpt_forward_time|s2mel_time|bigvgan_time)\s*:\s*"
                    r"([0-9.]+)\s*seconds")


@dataclass
class IndexInput:
    """What ``prepare`` hands to ``infer`` (picklable): the text and the model's keyword
    arguments, all resolved; no path in it came from a request."""

    text: str
    voice: str
    kwargs: dict[str, Any]
    tokens: int = 0
    unknown_tokens: int = 0


# config.yaml keys naming files in the checkpoint directory (top level of the file)
CHECKPOINT_KEYS = ("gpt_checkpoint", "s2mel_checkpoint", "w2v_stat", "emo_matrix",
                   "spk_matrix", "qwen_emo_path", "bpe_model")


def checkpoint_files(cfg_path: Path) -> dict[str, str]:
    """The files config.yaml names, read without a YAML library (top-level ``key: value``
    lines, and ``bpe_model`` under ``dataset:``): checked before the minutes-long load."""
    out: dict[str, str] = {}
    for line in cfg_path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().partition(":")
        top = not line[:1].isspace()
        if sep and key in CHECKPOINT_KEYS and (top or key == "bpe_model"):
            value = value.split("#", 1)[0].strip().strip("'\"").rstrip("/")
            if value:
                out[key] = value
    return out


def _worker_index() -> int:
    """The index of this worker process (``ttsops-worker-N``, named by the pool), else 0."""
    m = re.fullmatch(r"ttsops-worker-(\d+)", multiprocessing.current_process().name or "")
    return int(m.group(1)) if m else 0


class IndexTTS2Engine(Engine):
    name = "indextts2"

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, *,
                 cfg_path: str | os.PathLike[str] | None = None,
                 voices_file: str | os.PathLike[str] | None = None, device: str = "auto",
                 fp16: bool = True, cuda_kernel: bool = False, deepspeed: bool = False,
                 max_text_tokens: int = 120, interval_silence_ms: int = 200,
                 load_timeout_s: float = 600.0) -> None:
        self.model_dir = Path(model_dir) if model_dir else None
        self.cfg_path = Path(cfg_path) if cfg_path else (
            self.model_dir / "config.yaml" if self.model_dir else None)
        self.voices_file = Path(voices_file) if voices_file else None
        self.device = device or "auto"
        self.fp16 = fp16
        self.cuda_kernel = cuda_kernel
        self.deepspeed = deepspeed
        self.max_text_tokens = max_text_tokens
        self.interval_silence_ms = interval_silence_ms
        self.load_timeout_s = load_timeout_s
        self.model: Any = None
        self.info: EngineInfo | None = None
        self._voices: dict[str, RefVoice] = {}
        self._aliases: dict[str, str] = {}
        self._lock = threading.Lock()  # one call into the model at a time
        self._resolved_device = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexTTS2Engine:
        return cls(settings.indextts_model_dir, cfg_path=settings.indextts_cfg,
                   voices_file=settings.indextts_voices, device=settings.device,
                   fp16=settings.indextts_fp16, cuda_kernel=settings.indextts_cuda_kernel,
                   deepspeed=settings.indextts_deepspeed,
                   max_text_tokens=settings.indextts_max_text_tokens,
                   interval_silence_ms=settings.indextts_interval_silence_ms,
                   load_timeout_s=settings.model_load_timeout_s)

    # --- description without loading ----------------------------------------------
    def describe(self) -> EngineInfo:
        self._read_voices(strict=False)
        return EngineInfo(
            name=self.name, version=f"{_indextts_version()}+{self._fingerprint()}",
            sample_rate=SAMPLE_RATE,
            languages=("zh", "en"), concurrent_safe=False,
            device=self._resolved_device or self.device,
            model=str(self.model_dir) if self.model_dir else "",
            extra={"native_speed": (1.0, 1.0), "options": list(OPTION_KEYS),
                   "emotions": list(EMOTIONS), "voices_file": str(self.voices_file or "")})

    def _read_voices(self, strict: bool) -> None:
        if self._voices or self.voices_file is None:
            return
        try:
            self._voices, self._aliases = load_voices(self.voices_file)
        except Exception:
            if strict:
                raise

    def _fingerprint(self) -> str:
        """Changes when the voices file, a reference recording or a checkpoint file
        changes: part of ``version``, so of every cache key (a re-recorded voice never
        serves the old recording's cached audio)."""
        h = hashlib.sha256()
        files: list[Path] = []
        if self.voices_file is not None and self.voices_file.is_file():
            h.update(self.voices_file.read_bytes())
            files += [v.audio for v in self._voices.values()]
        if self.cfg_path is not None and self.cfg_path.is_file() and self.model_dir:
            files.append(self.cfg_path)
            with contextlib.suppress(OSError):
                files += [self.model_dir / n for n in checkpoint_files(self.cfg_path).values()]
        for f in files:
            with contextlib.suppress(OSError):
                st = f.stat()
                h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
        return "v" + h.hexdigest()[:8]

    def voices(self) -> list[VoiceInfo]:
        self._read_voices(strict=False)
        out = [VoiceInfo(v.name, v.languages, v.description or "IndexTTS-2 reference voice",
                         v.gender) for v in self._voices.values()]
        for alias, target in self._aliases.items():
            if alias not in self._voices:
                v = self._voices[target]
                out.append(VoiceInfo(alias, v.languages, f"alias of {target}", v.gender))
        return out

    # --- lifecycle -----------------------------------------------------------------
    def _pick_device(self) -> str:
        if self.device not in ("auto", ""):
            return self.device
        try:
            import torch

            n = int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
        except Exception:
            n = 0
        return f"cuda:{_worker_index() % n}" if n else "cpu"

    def _check_files(self) -> None:
        if self.model_dir is None:
            raise FileNotFoundError("no checkpoint directory configured (set "
                                    "TTSOPS_INDEXTTS_MODEL_DIR)")
        if not self.model_dir.is_dir():
            raise FileNotFoundError(f"checkpoint directory {self.model_dir} does not exist")
        if self.cfg_path is None or not self.cfg_path.is_file():
            raise FileNotFoundError(f"config {self.cfg_path} does not exist")
        for key, name in checkpoint_files(self.cfg_path).items():
            if not (self.model_dir / name).exists():
                raise FileNotFoundError(f"{name} ({key} in {self.cfg_path.name}) is missing "
                                        f"in {self.model_dir}")
        if self.voices_file is None:
            raise FileNotFoundError("no voices file configured (set TTSOPS_INDEXTTS_VOICES "
                                    "to a TOML file naming reference recordings)")
        self._voices, self._aliases = {}, {}
        self._read_voices(strict=True)
        import soundfile as sf

        for v in self._voices.values():
            if not v.audio.is_file():
                raise FileNotFoundError(f"voice {v.name!r}: reference {v.audio} not found")
            try:
                sf.info(str(v.audio))
            except Exception as e:
                raise ValueError(f"voice {v.name!r}: reference {v.audio} is not readable "
                                 f"audio ({e})") from e

    def problem(self) -> str:
        """Why this engine cannot load, found without loading it ("" if none)."""
        if self.model_dir is None:
            return ("not configured: set TTSOPS_INDEXTTS_MODEL_DIR (the checkpoints) and "
                    "TTSOPS_INDEXTTS_VOICES (a TOML file of reference recordings)")
        try:
            self._check_files()
        except Exception as e:
            return str(e)
        return ""

    def load(self) -> EngineInfo:
        model = str(self.model_dir) if self.model_dir else ""
        ctx = {"engine": self.name, "model": model}
        try:
            self._check_files()
        except Exception as e:
            raise TTSError("MODEL_LOAD_FAILED", f"indextts2: {e}"[:500], **ctx) from e
        try:
            from indextts.infer_v2 import IndexTTS2
        except ImportError as e:
            raise TTSError("MODEL_LOAD_FAILED", f"indextts2: the indextts package is not "
                           f"importable ({e}); {INSTALL_HINT}", **ctx) from e
        device = self._pick_device()
        box: dict[str, Any] = {}
        kwargs: dict[str, Any] = dict(
            cfg_path=str(self.cfg_path), model_dir=str(self.model_dir),
            use_fp16=self.fp16 and device.startswith("cuda"), device=device,
            use_cuda_kernel=self.cuda_kernel, use_deepspeed=self.deepspeed)
        try:  # releases before DeepSpeed support have no use_deepspeed argument
            accepted = inspect.signature(IndexTTS2).parameters
            if "use_deepspeed" not in accepted and not self.deepspeed:
                kwargs.pop("use_deepspeed")
        except (TypeError, ValueError):
            pass

        def build() -> None:
            try:
                box["model"] = IndexTTS2(**kwargs)
            except BaseException as e:  # handed to the caller's thread
                box["error"] = e

        t0 = time.perf_counter()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            t = threading.Thread(target=build, name="indextts2-load", daemon=True)
            t.start()
            t.join(self.load_timeout_s)
        if t.is_alive():
            raise TTSError("MODEL_LOAD_TIMEOUT", f"indextts2: not loaded after "
                           f"{self.load_timeout_s:g} s (device {device}); the process "
                           "should be replaced", device=device, **ctx)
        if "error" in box:
            failure = box["error"]
            raise TTSError("MODEL_LOAD_FAILED",
                           f"indextts2: {type(failure).__name__}: {failure}"[:500],
                           device=device, **ctx) from failure
        self.model = box["model"]
        self._resolved_device = device
        info = self.describe()
        info.device = device
        model_version = getattr(self.model, "model_version", None)
        if model_version:
            info.version = f"{model_version}+{self._fingerprint()}"
        info.extra["load_ms"] = round((time.perf_counter() - t0) * 1000.0, 1)
        self.info = info
        return info

    def _loaded(self) -> Any:
        if self.model is None:
            with self._lock:
                if self.model is None:
                    self.load()
        return self.model

    def close(self) -> None:
        with self._lock:
            self.model = None
            self.info = None
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    # --- stages --------------------------------------------------------------------
    def resolve(self, voice: str) -> RefVoice:
        self._read_voices(strict=False)
        name = voice.strip().lower()
        name = self._aliases.get(name, name) if name not in self._voices else name
        if name not in self._voices:
            raise TTSError("VOICE_UNKNOWN", f"{voice!r}; IndexTTS-2 voices: "
                           f"{', '.join(sorted(self._voices))}", param="voice")
        return self._voices[name]

    def model_kwargs(self, ref: RefVoice, options: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``IndexTTS2.infer`` for a voice and its options."""
        opts = {**ref.defaults, **options}
        if any(k in options for k in ("emotion", "emo_vector", "emo_text")):
            for k in ("emotion", "emo_vector", "emo_text"):  # a request's choice wins
                if k not in options:
                    opts.pop(k, None)
        kw: dict[str, Any] = {"spk_audio_prompt": str(ref.audio), "output_path": None,
                              "interval_silence": self.interval_silence_ms,
                              "max_text_tokens_per_segment": self.max_text_tokens,
                              "verbose": False}
        if "emo_alpha" in opts:
            kw["emo_alpha"] = float(opts["emo_alpha"])
        if "emotion" in opts:
            kw["emo_vector"] = [1.0 if e == opts["emotion"] else 0.0 for e in EMOTIONS]
        elif "emo_vector" in opts:
            kw["emo_vector"] = list(opts["emo_vector"])
        elif "emo_text" in opts:
            kw["use_emo_text"] = True
            kw["emo_text"] = opts["emo_text"]
        if "emo_voice" in opts:
            kw["emo_audio_prompt"] = str(self.resolve(opts["emo_voice"]).audio)
        if opts.get("use_random"):
            kw["use_random"] = True
        return kw

    def check_options(self, options: dict[str, Any] | None) -> dict[str, Any]:
        return check_options(options, self._voices)

    def prepare(self, text: str, lang: str, voice: str,
                options: dict[str, Any] | None = None) -> IndexInput:
        model = self._loaded()
        ref = self.resolve(voice)
        if lang and lang not in ref.languages:
            raise TTSError("LANG_UNSUPPORTED", f"voice {ref.name!r} is configured for "
                           f"{', '.join(ref.languages)}", param="lang")
        kw = self.model_kwargs(ref, check_options(options, self._voices))
        tokens = unknown = 0
        tok = getattr(model, "tokenizer", None)
        if tok is not None:
            with self._lock:
                pieces = tok.tokenize(text)
                ids = tok.convert_tokens_to_ids(pieces)
            tokens = len(pieces)
            unk = getattr(tok, "unk_token_id", None)
            unknown = sum(1 for i in ids if i == unk) if unk is not None else 0
            if tokens == 0:
                raise TTSError("TEXT_EMPTY", "the model's tokenizer found no tokens",
                               param="input")
        return IndexInput(text, ref.name, kw, tokens, unknown)

    def infer(self, prepared: IndexInput, lang: str, voice: str, speed: float) -> np.ndarray:
        model = self._loaded()
        out = io.StringIO()
        t0 = time.perf_counter()
        with self._lock, warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stdout(out):
            warnings.simplefilter("always")
            result = model.infer(text=prepared.text, **prepared.kwargs)
        ms = (time.perf_counter() - t0) * 1000.0
        phases = {f"{m.group(1).removesuffix('_time')}_ms": round(float(m.group(2)) * 1000, 1)
                  for m in _PHASE.finditer(out.getvalue())}
        log.info("model_phases", engine=self.name, voice=prepared.voice,
                 text_tokens=prepared.tokens, unknown_tokens=prepared.unknown_tokens,
                 infer_ms=round(ms, 1), **phases)
        for w in caught:
            if issubclass(w.category, RuntimeWarning):
                log.warning("model_warning", engine=self.name, warning_code="MODEL_WARNING",
                            message=str(w.message)[:300])
        if not (isinstance(result, tuple) and len(result) == 2):
            raise RuntimeError(f"IndexTTS2.infer returned {type(result).__name__}, not "
                               "(sample_rate, samples)")
        sr, wav = result
        x = np.asarray(wav)
        if x.ndim == 2:  # (n, channels): mono is channel 0 ... or the mean of them
            x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
        x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
        if int(sr) != SAMPLE_RATE:
            from math import gcd

            from scipy.signal import resample_poly

            g = gcd(SAMPLE_RATE, int(sr))
            x = resample_poly(x, SAMPLE_RATE // g, int(sr) // g).astype(np.float32)
        return x


def _indextts_version() -> str:
    try:
        from importlib.metadata import version

        return f"indextts-{version('indextts')}"
    except Exception:
        return "indextts-2"
