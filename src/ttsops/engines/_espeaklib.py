"""The eSpeak NG library of the ``espeakng-loader`` wheel through ctypes: one handle per
process (``EspeakLib.get()``), every call under its lock. Shared by the espeak engine and
piper's phonemizer (``piper._espeak_handle``); private to ``ttsops.engines``."""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

# espeak_AUDIO_OUTPUT / options / parameters / flags (speak_lib.h)
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
P_RATE, P_VOLUME, P_PITCH, P_RANGE = 1, 2, 3, 4
CHARS_UTF8 = 1
POS_CHARACTER = 1
PHONEMES_IPA = 0x02
CALLBACK_MS = 400  # audio handed to the callback per call (fewer, larger chunks)
DEFAULT_RATE = 175  # words per minute at speed 1.0


def lib_version() -> str:
    """The bundled library's version from its file name (no load needed)."""
    import espeakng_loader

    d = Path(espeakng_loader.get_library_path()).parent
    best = ""
    for p in d.glob("libespeak-ng.so.*"):
        v = p.name.removeprefix("libespeak-ng.so.")
        if v.count(".") > best.count("."):
            best = v
    return best or "unknown"


def default_data_path() -> str:
    import espeakng_loader

    return espeakng_loader.get_data_path()


AudioCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                       ctypes.c_void_p)
EVENT_WORD, EVENT_END = 1, 5  # espeak_EVENT_TYPE: a word starts, a clause ends


class Event(ctypes.Structure):
    """speak_lib.h's espeak_EVENT (the id union as 8 bytes)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_int64)]


class EspeakLib:
    """The process-wide library handle: one per process, every call under ``lock``."""

    lock = threading.RLock()
    _instance: EspeakLib | None = None

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib = self.lib
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                              ctypes.c_int]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_Terminate.restype = ctypes.c_int
        self.chunks: list[bytes] = []
        # word marks of the last synth: ("w" word start | "e" clause end, char offset, ms)
        self.marks: list[tuple[str, int, float]] = []
        self.callback = AudioCallback(self._on_audio)  # keep a reference: C holds the pointer
        self.data_path: str | None = None
        self.sample_rate = 0
        self.voice: str | None = None  # the voice loaded last (set_voice)

    @classmethod
    def get(cls) -> EspeakLib:
        with cls.lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_audio(self, wav: Any, n: int, events: Any) -> int:
        if n > 0 and wav:
            self.chunks.append(ctypes.string_at(wav, 2 * n))
        if events:
            ev = ctypes.cast(events, ctypes.POINTER(Event))
            i = 0
            while ev[i].type != 0:  # espeakEVENT_LIST_TERMINATED
                if ev[i].type in (EVENT_WORD, EVENT_END):  # text_position counts from 1
                    self.marks.append(("w" if ev[i].type == EVENT_WORD else "e",
                                       ev[i].text_position - 1, float(ev[i].audio_position)))
                i += 1
        return 0  # 0: go on

    def initialize(self, data_path: str) -> int:
        with self.lock:
            if self.data_path == data_path and self.sample_rate > 0:
                return self.sample_rate
            if self.data_path is not None:
                self.lib.espeak_Terminate()
            self.voice = None
            # espeak_Initialize wants the directory that contains espeak-ng-data
            parent = os.path.dirname(os.path.abspath(data_path).rstrip("/"))
            sr = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, CALLBACK_MS,
                                            parent.encode(), INITIALIZE_DONT_EXIT)
            self.data_path = data_path
            self.sample_rate = sr
            if sr > 0:
                self.lib.espeak_SetSynthCallback(self.callback)
            return sr

    def version(self) -> str:
        with self.lock:
            path = ctypes.c_char_p()
            v = self.lib.espeak_Info(ctypes.byref(path))
            return v.decode() if v else "unknown"

    def set_voice(self, name: str, pitch: int = 50, prange: int = 50, rate: int = DEFAULT_RATE
                  ) -> None:
        # loading a voice costs ~0.6 ms: only when it changes (a stream sets the same
        # voice for every sentence); the parameters below are set every time
        if name != self.voice:
            self.voice = None
            err = self.lib.espeak_SetVoiceByName(name.encode())
            if err != 0:
                raise RuntimeError(f"espeak_SetVoiceByName({name!r}) failed with {err}")
            self.voice = name
        self.lib.espeak_SetParameter(P_RATE, rate, 0)
        self.lib.espeak_SetParameter(P_PITCH, pitch, 0)
        self.lib.espeak_SetParameter(P_RANGE, prange, 0)

    def phonemes(self, text: str, voice: str) -> str:
        """IPA phonemes of ``text`` read by ``voice``, clauses joined by ' | '."""
        with self.lock:
            self.set_voice(voice)
            buf = ctypes.create_string_buffer(text.encode("utf-8"))
            ptr = ctypes.c_void_p(ctypes.addressof(buf))
            out = []
            while ptr.value:
                r = self.lib.espeak_TextToPhonemes(ctypes.byref(ptr), CHARS_UTF8, PHONEMES_IPA)
                if r:
                    out.append(r.decode("utf-8", "replace").strip())
            return " | ".join(x for x in out if x)

    def synth(self, text: str, voice: str, pitch: int, prange: int, rate: int) -> np.ndarray:
        with self.lock:
            self.set_voice(voice, pitch, prange, rate)
            self.chunks, self.marks = [], []
            data = text.encode("utf-8") + b"\0"
            err = self.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8,
                                        None, None)
            chunks, self.chunks = self.chunks, []
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with {err}")
        pcm = np.frombuffer(b"".join(chunks), dtype=np.int16)
        return pcm.astype(np.float32) * np.float32(1 / 32768)
