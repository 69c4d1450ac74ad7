"""IndexTTS-2's reference voices (the voices TOML file) and its emotion options, checked
without the model: what ``indextts2.IndexTTS2Engine`` reads and checks before a load."""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TTSError

EMOTIONS = ("happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised",
            "calm")
OPTION_KEYS = ("emotion", "emo_vector", "emo_alpha", "emo_text", "emo_voice", "use_random")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class RefVoice:
    name: str
    audio: Path
    languages: tuple[str, ...] = ("zh", "en")
    description: str = ""
    gender: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)  # emotion options



def load_voices(path: str | os.PathLike[str]) -> tuple[dict[str, RefVoice], dict[str, str]]:
    """Voices and aliases from the TOML file; raises ValueError with the offending entry."""
    p = Path(path)
    data = tomllib.loads(p.read_text(encoding="utf-8"))
    table = data.get("voices")
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{p}: no [voices.<name>] tables")
    voices: dict[str, RefVoice] = {}
    for raw_name, entry in table.items():
        name = str(raw_name).strip().lower()
        if not _NAME.match(name):
            raise ValueError(f"{p}: voice name {raw_name!r}: use letters, digits, _ . -")
        if not isinstance(entry, dict) or "audio" not in entry:
            raise ValueError(f"{p}: voice {name!r} has no audio = \"<reference.wav>\"")
        audio = Path(str(entry["audio"])).expanduser()
        if not audio.is_absolute():
            audio = p.parent / audio
        langs = entry.get("languages", ["zh", "en"])
        if isinstance(langs, str):
            langs = [langs]
        defaults = {k: entry[k] for k in OPTION_KEYS if k in entry}
        voices[name] = RefVoice(name, audio, tuple(str(x).lower() for x in langs),
                                str(entry.get("description", "")), entry.get("gender"),
                                defaults)
    aliases = {str(k).strip().lower(): str(v).strip().lower()
               for k, v in (data.get("aliases") or {}).items()}
    for alias, target in aliases.items():
        if target not in voices:
            raise ValueError(f"{p}: alias {alias!r} points to unknown voice {target!r}")
    for v in voices.values():  # defaults are checked like request options
        check_options(v.defaults, voices, where=f"{p}: voice {v.name!r}: ")
    return voices, aliases


def check_options(options: dict[str, Any] | None, voices: dict[str, RefVoice] | None = None,
                  where: str = "") -> dict[str, Any]:
    """Validated emotion options; raises INVALID_REQUEST naming the bad option."""
    out: dict[str, Any] = {}
    for key, value in (options or {}).items():
        param = f"options.{key}"

        def bad(msg: str, key: str = key, param: str = param) -> TTSError:
            return TTSError("INVALID_REQUEST", f"{where}{key}: {msg}", param=param)

        if key not in OPTION_KEYS:
            raise bad(f"unknown option; known: {', '.join(OPTION_KEYS)}")
        if key == "emotion":
            if not isinstance(value, str) or value.strip().lower() not in EMOTIONS:
                raise bad(f"one of {', '.join(EMOTIONS)}")
            out[key] = value.strip().lower()
        elif key == "emo_vector":
            if (not isinstance(value, (list, tuple)) or len(value) != len(EMOTIONS)
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                               for x in value)):
                raise bad(f"{len(EMOTIONS)} numbers ({', '.join(EMOTIONS)})")
            vec = [float(x) for x in value]
            if not all(math.isfinite(x) and 0.0 <= x <= 1.2 for x in vec):
                raise bad("every weight must be between 0 and 1.2")
            out[key] = vec
        elif key == "emo_alpha":
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(float(value)) or not 0.0 <= float(value) <= 1.0:
                raise bad("a number between 0 and 1")
            out[key] = float(value)
        elif key == "emo_text":
            if not isinstance(value, str) or not value.strip() or len(value) > 500:
                raise bad("non-empty text of at most 500 characters")
            out[key] = value.strip()
        elif key == "emo_voice":
            name = str(value).strip().lower() if isinstance(value, str) else ""
            if not name or (voices is not None and name not in voices):
                known = ", ".join(sorted(voices or {}))
                raise bad(f"a configured voice name ({known})")
            out[key] = name
        elif key == "use_random":
            if not isinstance(value, bool):
                raise bad("true or false")
            out[key] = value
    if sum(k in out for k in ("emotion", "emo_vector", "emo_text")) > 1:
        raise TTSError("INVALID_REQUEST", f"{where}give one of emotion, emo_vector, emo_text",
                       param="options")
    return out
