"""Piper voices (VITS exported to ONNX) through onnxruntime: any ``.onnx`` voice with its
``.onnx.json`` config, found in ``settings.piper_voice_dir``.

Stages: ``prepare`` (llm_prompt_gen) turns the segment into eSpeak NG IPA phonemes -- with
the library embedded in the ``espeakng-loader`` wheel, through the eSpeak engine's own
process-wide handle and lock (``_espeaklib.EspeakLib``) -- keeps the clause punctuation the way
Piper does (``,`` ``:`` ``;`` followed by a space, ``.`` ``!`` ``?`` ending a sentence),
decomposes the phonemes to code points (NFD) and maps them through the voice's
``phoneme_id_map`` (``^`` first, ``_`` after every phoneme, ``$`` last), one id list per
sentence. ``infer`` (llm_inference) runs the model once per sentence with
``input``/``input_lengths``/``scales`` = [noise_scale, length_scale / speed, noise_w]
(and ``sid`` for multi-speaker voices) and joins the sentences.

Voice names are the ``.onnx`` file stems in lower case (``en_us-joe-medium``); a
multi-speaker voice also offers ``<stem>:<speaker>`` for every speaker of its
``speaker_id_map`` (the bare stem speaks with speaker 0).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import TTSError
from .base import Engine, EngineInfo, VoiceInfo

if TYPE_CHECKING:
    from ..config import Settings

BOS, EOS, PAD = "^", "$", "_"
NATIVE_SPEED = (0.5, 2.0)  # length_scale range that still sounds natural; the rest is
#                             time-stretched by the pipeline
# clause punctuation Piper keeps as "phonemes" (Latin and CJK full-width forms)
_PUNCT = {".": ".", "!": "!", "?": "?", ",": ",", ":": ":", ";": ";",
          "。": ".", "！": "!", "？": "?", "，": ",", "：": ":", "；": ";", "、": ",",
          "…": "."}
# a run of clause marks ends a clause when it is CJK (no spaces there) or is followed by
# a space or the end (so "1.5", "3:30" and "e.g" stay inside their clause)
_CLAUSE_END = re.compile(r"[。！？，：；、…]+[.!?,:;]*\s*|[.!?,:;…]+(?:\s+|$)")
_LANG_SWITCH = re.compile(r"\([^)]*\)")  # "(en)" / "(cmn)" flags around foreign words
_SENTENCE_END = {".", "!", "?"}


@dataclass
class PiperVoice:
    """One voice file: its config and, once loaded, its ONNX session."""

    key: str  # lower-case file stem
    model_path: Path
    config_path: Path
    config: dict[str, Any]
    session: Any = None
    input_names: tuple[str, ...] = ()

    @property
    def sample_rate(self) -> int:
        return int(self.config.get("audio", {}).get("sample_rate", 22050))

    @property
    def espeak_voice(self) -> str:
        return str(self.config.get("espeak", {}).get("voice", "en-us"))

    @property
    def language(self) -> str:
        lang = self.config.get("language", {})
        fam = lang.get("family") or str(lang.get("code", "")).split("_")[0]
        return fam or self.espeak_voice.split("-")[0]

    @property
    def speakers(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in (self.config.get("speaker_id_map") or {}).items()}

    @property
    def num_speakers(self) -> int:
        return int(self.config.get("num_speakers", 1) or 1)


@dataclass
class PiperInput:
    """What ``prepare`` hands to ``infer`` (picklable)."""

    voice: str  # voice key (file stem)
    speaker_id: int | None
    phonemes: list[str]  # one string per sentence, as spoken
    ids: list[list[int]]  # one id list per sentence
    missing: list[str] = field(default_factory=list)  # phonemes not in the id map (skipped)


def find_voices(voice_dir: str | os.PathLike[str]) -> list[tuple[Path, Path]]:
    """(model, config) pairs under ``voice_dir`` (recursively), sorted by name. A model
    without its config is skipped (``load`` reports it)."""
    out = []
    for model in sorted(Path(voice_dir).rglob("*.onnx")):
        for cfg in (model.with_name(model.name + ".json"), model.with_suffix(".json")):
            if cfg.is_file():
                out.append((model, cfg))
                break
    return out


def clauses(text: str) -> list[tuple[str, str]]:
    """(clause text, Piper punctuation or "") in order; the punctuation is the first
    clause mark of a run (``?!`` -> ``?``)."""
    out = []
    pos = 0
    for m in _CLAUSE_END.finditer(text):
        out.append((text[pos:m.start()], _PUNCT.get(m.group(0)[0], "")))
        pos = m.end()
    if text[pos:].strip():
        out.append((text[pos:], ""))
    return out


def phonemes_to_ids(phonemes: list[str], id_map: dict[str, list[int]]
                    ) -> tuple[list[int], list[str]]:
    """Piper's id sequence: BOS PAD (phoneme PAD)* EOS; unknown phonemes are skipped and
    returned."""
    ids = [*id_map[BOS], *id_map[PAD]]
    missing: list[str] = []
    for p in phonemes:
        if p not in id_map:
            missing.append(p)
            continue
        ids.extend(id_map[p])
        ids.extend(id_map[PAD])
    ids.extend(id_map[EOS])
    return ids, missing


class PiperEngine(Engine):
    name = "piper"

    def __init__(self, voice_dir: str | os.PathLike[str] | None = None, *,
                 device: str = "cpu", threads: int = 1,
                 espeak_data_path: str | os.PathLike[str] | None = None) -> None:
        self.voice_dir = Path(voice_dir) if voice_dir else None
        self.device = device or "cpu"
        self.threads = threads
        self.espeak_data_path = str(espeak_data_path) if espeak_data_path else None
        self._voices: dict[str, PiperVoice] = {}
        self._names: dict[str, tuple[str, int | None]] = {}  # request name -> (key, sid)
        self._espeak: Any = None
        self.info: EngineInfo | None = None
        self._lock = threading.Lock()  # guards lazy loading only; sessions are thread-safe

    @classmethod
    def from_settings(cls, settings: Settings) -> PiperEngine:
        return cls(settings.piper_voice_dir, device=settings.device,
                   threads=settings.piper_threads, espeak_data_path=settings.espeak_data_path)

    # --- description without loading ----------------------------------------------
    def _scan(self) -> None:
        if self._voices or self.voice_dir is None or not self.voice_dir.is_dir():
            return
        for model, cfg in find_voices(self.voice_dir):
            try:
                config = json.loads(cfg.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # reported by load()
            key = model.name.removesuffix(".onnx").lower()
            self._voices[key] = PiperVoice(key, model, cfg, config)
        self._names = {}
        for key, v in self._voices.items():
            self._names[key] = (key, 0 if v.num_speakers > 1 else None)
            if v.num_speakers > 1:
                for spk, sid in v.speakers.items():
                    self._names[f"{key}:{spk.lower()}"] = (key, sid)

    def describe(self) -> EngineInfo:
        self._scan()
        rates = {v.sample_rate for v in self._voices.values()}
        langs = tuple(sorted({v.language for v in self._voices.values()})) or ("en",)
        return EngineInfo(
            name=self.name, version=f"{_ort_version()}+{self._fingerprint()}",
            sample_rate=max(rates) if rates else 22050,
            languages=langs, concurrent_safe=True, device=self._device_name(),
            model=str(self.voice_dir) if self.voice_dir else "",
            extra={"native_speed": NATIVE_SPEED, "voices": sorted(self._voices)})

    def problem(self) -> str:
        """Why this engine cannot load, found without loading it ("" if none)."""
        if self.voice_dir is None:
            return ("not configured: set TTSOPS_PIPER_VOICE_DIR to a directory of Piper "
                    "voices (.onnx + .onnx.json)")
        if not self.voice_dir.is_dir():
            return f"voice directory {self.voice_dir} does not exist"
        self._scan()
        if not self._voices:
            return f"no Piper voices (*.onnx + *.onnx.json) in {self.voice_dir}"
        return ""

    def _fingerprint(self) -> str:
        """Changes when a voice file changes: part of ``version``, so of every cache key
        (a replaced voice never serves the old voice's cached audio)."""
        h = hashlib.sha256()
        for key, v in sorted(self._voices.items()):
            st = v.model_path.stat()
            h.update(f"{key}:{st.st_size}:{st.st_mtime_ns}:".encode())
            h.update(json.dumps(v.config, sort_keys=True).encode())
        return "v" + h.hexdigest()[:8]

    def _device_name(self) -> str:
        return "cuda" if self.device.startswith("cuda") else "cpu"

    def voices(self) -> list[VoiceInfo]:
        self._scan()
        out = []
        for name, (key, sid) in self._names.items():
            v = self._voices[key]
            q = v.config.get("audio", {}).get("quality", "")
            desc = f"Piper {v.config.get('dataset', key)} ({q}, {v.sample_rate} Hz)"
            if sid is not None and ":" in name:
                desc += f", speaker {name.split(':', 1)[1]}"
            out.append(VoiceInfo(name, (v.language,), desc.strip()))
        return out

    # --- lifecycle -----------------------------------------------------------------
    def load(self) -> EngineInfo:
        model = str(self.voice_dir) if self.voice_dir else ""
        if self.voice_dir is None:
            raise TTSError("MODEL_LOAD_FAILED", "piper: no voice directory configured; set "
                           "TTSOPS_PIPER_VOICE_DIR to a directory of .onnx + .onnx.json "
                           "voices", engine=self.name, model=model)
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise TTSError("MODEL_LOAD_FAILED", f"piper: onnxruntime is not installed ({e}); "
                           "pip install 'ttsops[piper]'", engine=self.name, model=model) from e
        try:
            if not self.voice_dir.is_dir():
                raise FileNotFoundError(f"voice directory {self.voice_dir} does not exist")
            orphans = [p.name for p in self.voice_dir.rglob("*.onnx")
                       if not p.with_name(p.name + ".json").is_file()
                       and not p.with_suffix(".json").is_file()]
            if orphans:
                raise FileNotFoundError(f"no .onnx.json config beside {', '.join(orphans)}")
            self._voices = {}
            self._scan()
            if not self._voices:
                raise FileNotFoundError(f"no Piper voices (*.onnx + *.onnx.json) in "
                                        f"{self.voice_dir}")
            opts = ort.SessionOptions()
            if self.threads > 0:
                opts.intra_op_num_threads = self.threads
                opts.inter_op_num_threads = 1
            # a provider by name, or (name, its options)
            providers: list[str | tuple[str, dict[str, int]]] = ["CPUExecutionProvider"]
            if self.device.startswith("cuda"):
                if "CUDAExecutionProvider" not in ort.get_available_providers():
                    raise RuntimeError(f"device {self.device!r} asked for, but onnxruntime "
                                       "has no CUDAExecutionProvider (install "
                                       "onnxruntime-gpu)")
                dev = self.device.partition(":")[2] or "0"
                providers = [("CUDAExecutionProvider", {"device_id": int(dev)}),
                             "CPUExecutionProvider"]
            for v in self._voices.values():
                self._check_config(v)
                v.session = ort.InferenceSession(str(v.model_path), sess_options=opts,
                                                 providers=providers)
                v.input_names = tuple(i.name for i in v.session.get_inputs())
                if "input" not in v.input_names or "input_lengths" not in v.input_names:
                    raise ValueError(f"{v.model_path.name} is not a Piper model: inputs "
                                     f"{list(v.input_names)}")
            self._espeak = _espeak_handle(self.espeak_data_path)
        except TTSError:
            raise
        except Exception as e:
            raise TTSError("MODEL_LOAD_FAILED", f"piper: {type(e).__name__}: {e}"[:500],
                           engine=self.name, model=model) from e
        self.info = self.describe()
        return self.info

    @staticmethod
    def _check_config(v: PiperVoice) -> None:
        cfg = v.config
        id_map = cfg.get("phoneme_id_map")
        if not isinstance(id_map, dict) or not all(k in id_map for k in (BOS, EOS, PAD)):
            raise ValueError(f"{v.config_path.name}: phoneme_id_map with ^ $ _ is missing")
        ptype = cfg.get("phoneme_type", "espeak")
        if ptype not in ("espeak", "text"):
            raise ValueError(f"{v.config_path.name}: phoneme_type {ptype!r} is not supported "
                             "(espeak or text)")

    def _loaded(self) -> None:
        if self.info is None:
            with self._lock:
                if self.info is None:
                    self.load()

    def close(self) -> None:
        for v in self._voices.values():
            v.session = None
        self.info = None

    # --- stages --------------------------------------------------------------------
    def resolve(self, voice: str) -> tuple[PiperVoice, int | None]:
        self._scan()
        key = self._names.get(voice.strip().lower())
        if key is None:
            raise TTSError("VOICE_UNKNOWN", f"{voice!r}; Piper voices: "
                           f"{', '.join(sorted(self._names))}", param="voice")
        return self._voices[key[0]], key[1]

    def phonemize(self, text: str, voice: PiperVoice) -> list[list[str]]:
        """Sentences of phonemes (code points), punctuation kept as Piper expects."""
        if voice.config.get("phoneme_type", "espeak") == "text":
            return [list(unicodedata.normalize("NFD", text))]
        sentences: list[list[str]] = []
        current: list[str] = []
        for body, punct in clauses(text):
            ph = ""
            if body.strip():
                ph = self._espeak.phonemes(body, voice.espeak_voice).replace(" | ", " ")
                ph = _LANG_SWITCH.sub("", ph).strip()
            if not ph and not current:
                continue  # punctuation alone at the start of a sentence
            if current and current[-1] != " " and ph:
                current.append(" ")
            current.extend(unicodedata.normalize("NFD", ph + punct))
            if punct in _SENTENCE_END:
                sentences.append(current)
                current = []
            elif punct:
                current.append(" ")
        while current and current[-1] == " ":
            current.pop()
        if current:
            sentences.append(current)
        return sentences

    def prepare(self, text: str, lang: str, voice: str) -> PiperInput:
        self._loaded()
        v, sid = self.resolve(voice)
        if lang and lang != v.language:
            raise TTSError("LANG_UNSUPPORTED", f"voice {voice!r} speaks {v.language!r}, the "
                           f"text is {lang!r}", param="lang")
        id_map = v.config["phoneme_id_map"]
        phonemes, ids, missing = [], [], []
        for sent in self.phonemize(text, v):
            seq, miss = phonemes_to_ids(sent, id_map)
            phonemes.append("".join(sent))
            ids.append(seq)
            missing.extend(miss)
        if not ids:
            raise TTSError("TEXT_EMPTY", "no phonemes in the text", param="input")
        return PiperInput(v.key, sid, phonemes, ids, sorted(set(missing)))

    def infer(self, prepared: PiperInput, lang: str, voice: str, speed: float) -> np.ndarray:
        self._loaded()
        v = self._voices[prepared.voice]
        inf = v.config.get("inference", {})
        speed = min(max(float(speed), NATIVE_SPEED[0]), NATIVE_SPEED[1])
        scales = np.array([float(inf.get("noise_scale", 0.667)),
                           float(inf.get("length_scale", 1.0)) / speed,
                           float(inf.get("noise_w", 0.8))], dtype=np.float32)
        parts = []
        for seq in prepared.ids:
            feed: dict[str, np.ndarray] = {
                "input": np.array([seq], dtype=np.int64),
                "input_lengths": np.array([len(seq)], dtype=np.int64),
            }
            if "scales" in v.input_names:
                feed["scales"] = scales
            if "sid" in v.input_names:
                feed["sid"] = np.array([prepared.speaker_id or 0], dtype=np.int64)
            out = v.session.run(None, feed)[0]
            parts.append(np.asarray(out, dtype=np.float32).reshape(-1))
        if not parts:
            return np.zeros(0, np.float32)
        audio = np.concatenate(parts) if len(parts) > 1 else parts[0]
        rate = self.info.sample_rate if self.info else v.sample_rate
        if v.sample_rate != rate:  # voices of several rates in one directory
            from math import gcd

            from scipy.signal import resample_poly

            g = gcd(rate, v.sample_rate)
            audio = resample_poly(audio, rate // g, v.sample_rate // g)
        return audio.astype(np.float32, copy=False)


def _ort_version() -> str:
    try:
        from importlib.metadata import version

        return f"onnxruntime-{version('onnxruntime')}"
    except Exception:
        return "unknown"


def _espeak_handle(data_path: str | None) -> Any:
    """The eSpeak engine's process-wide library handle, initialised (shared lock)."""
    from ._espeaklib import EspeakLib, default_data_path

    data = data_path or default_data_path()
    if not Path(data, "phontab").is_file():
        raise FileNotFoundError(f"no eSpeak NG data (phontab) in {data}")
    lib = EspeakLib.get()
    sr = lib.initialize(data)
    if sr <= 0:
        raise RuntimeError(f"espeak_Initialize({data!r}) returned {sr}")
    return lib
