"""Scripts of letters and the emoji rule.

``letter_runs(text)`` yields maximal runs of letters of one script (``Script`` property of
Unicode, through the ``regex`` module); digits, punctuation, spaces and symbols are
``Common`` and belong to no run. Han characters are ``Han``; hiragana, katakana and the
prolonged sound mark ー are ``Kana``.

Emoji rule: emoji (``Extended_Pictographic``: 😀 🎉 ❤ © ® ™ ...) and their components
(variation selector-16, keycap, skin tones, regional indicators, tags) are dropped from
every text, in every language: a listener never hears "grinning face".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import regex

# script name (as in the Unicode Script property) -> language spoken in it, when only one
# language is read in that script here; shared scripts map to None (see language.py)
SCRIPTS: dict[str, str | None] = {
    "Han": "zh", "Kana": "ja", "Hangul": "ko", "Latin": None, "Cyrillic": None,
    "Arabic": None, "Devanagari": None, "Greek": "el", "Hebrew": "he", "Thai": "th",
    "Georgian": "ka", "Armenian": "hy", "Bengali": "bn", "Gurmukhi": "pa",
    "Gujarati": "gu", "Oriya": "or", "Tamil": "ta", "Telugu": "te", "Kannada": "kn",
    "Malayalam": "ml", "Sinhala": "si", "Myanmar": "my", "Ethiopic": "am",
    "Cherokee": "chr",
    # scripts of languages no engine voice here reads: named in LANG_UNSUPPORTED
    "Khmer": "km", "Lao": "lo", "Tibetan": "bo", "Mongolian": "mn", "Thaana": "dv",
    "Syriac": "syr", "Tifinagh": "zgh", "Javanese": "jv", "Balinese": "ban",
    "Sundanese": "su", "Yi": "ii", "Canadian_Aboriginal": "iu", "Ol_Chiki": "sat",
    "Tai_Le": "tdd", "New_Tai_Lue": "khb", "Tai_Tham": "nod", "Tai_Viet": "blt",
    "Nko": "nqo", "Vai": "vai", "Bopomofo": "zh",
}

_ORDER = [s for s in SCRIPTS if s not in ("Kana",)]
_LETTERS = regex.compile(
    r"(?P<Kana>[\p{Script=Hiragana}\p{Script=Katakana}\u30fc\uff70]+)|"
    + "|".join(rf"(?P<{s}>[\p{{Script={s}}}\p{{M}}]+)" for s in _ORDER)
    + r"|(?P<Other>\p{L}[\p{L}\p{M}]*)")

EMOJI = regex.compile(r"[\p{Extended_Pictographic}\U0001F1E6-\U0001F1FF"
                      r"\U0001F3FB-\U0001F3FF\uFE0F\u20E3\U000E0020-\U000E007F]+")


class LetterRun(NamedTuple):
    script: str  # a key of SCRIPTS, or "Other"
    start: int
    end: int


def letter_runs(text: str) -> Iterator[LetterRun]:
    for m in _LETTERS.finditer(text):
        name = m.lastgroup or "Other"
        yield LetterRun(name, m.start(), m.end())


def drop_emoji(text: str) -> tuple[str, int]:
    """``text`` without emoji, and how many characters were dropped. An emoji between
    two words leaves a space so that the words stay apart."""
    n = 0

    def sub(m: regex.Match[str]) -> str:
        nonlocal n
        n += len(m.group())
        return " "

    out = EMOJI.sub(sub, text)
    if not n:
        return text, 0
    out = regex.sub(r"[ ]{2,}", " ", out)
    out = regex.sub(r" (?=[\p{Po}\p{Pe}\p{Pf}])", "", out)  # no space before 。, ! ) ...
    out = regex.sub(r" *\n *", "\n", out).strip(" \n")
    return out, n


def script_name(ch: str) -> str:
    """A human name for the script of a letter outside ``SCRIPTS`` (for messages)."""
    import unicodedata

    try:
        return unicodedata.name(ch).split(" ")[0].title()
    except ValueError:
        return f"U+{ord(ch):04X}"
