"""Text cleaning for the text_normalize stage: one small function per concern.

* ``clean``: Unicode NFKC (Thai/Lao SARA AM kept whole), control/format/private/unassigned
  characters removed (counted, for the ``text_sanitized`` WARNING), whitespace collapsed.
  Idempotent; the result holds no control characters except ``\\n`` (a sentence boundary).
* ``speakable``: whether anything is left to read (a letter, digit or symbol).
* ``read_numbers_zh``: Chinese numbers, amounts, dates, units, phones, codes, symbols
  (``normalize.zh``). Languages: ``normalize.language``; emoji: ``normalize.scripts``.
* ``split_sentences``: long text into segments of at most ``max_chars`` (no truncation).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ..errors import TTSError

# Cc (controls), Cf (format: zero-width, bidi marks, BOM...), Co (private use),
# Cn (unassigned, incl. noncharacters). Cs (lone surrogates) is invalid input instead.
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn"})
_SPACE_LIKE = {"\t": " ", "\n": "\n", "\r": "\n", "\v": "\n", "\f": "\n", "\x85": "\n",
               "\u2028": "\n", "\u2029": "\n"}
_WS_RUN = re.compile(r"[ \n]+")


@dataclass
class Cleaned:
    text: str
    removed: int  # characters dropped (not counting whitespace folding)
    kinds: tuple[str, ...]  # Unicode categories of what was dropped


def _drop(text: str, kinds: set[str]) -> tuple[str, int]:
    out: list[str] = []
    removed = 0
    for ch in text:
        rep = _SPACE_LIKE.get(ch)
        if rep is not None:
            out.append(rep)
            continue
        cat = unicodedata.category(ch)
        if cat in _DROP_CATEGORIES:
            removed += 1
            kinds.add(cat)
            continue
        out.append(ch)
    return "".join(out), removed


# NFKC splits Thai SARA AM (and its Lao twin) into NIKHAHIT + SARA AA, which no reader
# (eSpeak NG's Thai voice included) takes for the vowel: put them back together
_RECOMPOSE = {"\u0e4d\u0e32": "\u0e33", "\u0ecd\u0eb2": "\u0eb3"}


def _nfkc(text: str) -> str:
    out = unicodedata.normalize("NFKC", text)
    for split, whole in _RECOMPOSE.items():
        out = out.replace(split, whole)
    return out


def _fold_ws(text: str) -> str:
    return _WS_RUN.sub(lambda m: "\n" if "\n" in m.group() else " ", text).strip(" \n")


def clean(text: str) -> Cleaned:
    """Normalise and sanitise ``text``. Raises ``TEXT_INVALID`` for lone surrogates
    (bytes that were not UTF-8, e.g. from a command line)."""
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        bad = sum(1 for ch in text if "\ud800" <= ch <= "\udfff")
        raise TTSError("TEXT_INVALID", f"{bad} byte(s) are not valid UTF-8", param="input")
    kinds: set[str] = set()
    removed = 0
    cur = text
    # drop -> NFKC until stable: dropping a format character can bring a base letter and
    # a combining mark together, which NFKC then composes (idempotence needs the loop).
    for _ in range(4):
        dropped, n = _drop(cur, kinds)
        removed += n
        nxt = _fold_ws(_nfkc(dropped))
        if nxt == cur:
            break
        cur = nxt
    return Cleaned(cur, removed, tuple(sorted(kinds)))


def speakable(text: str) -> bool:
    """Whether the text holds anything to say: a letter, a number or a symbol (a symbol
    the voice cannot say ends as AUDIO_SILENT; emoji are dropped before this)."""
    return any(unicodedata.category(ch)[0] in "LNS" for ch in text)


# --- numbers (Chinese) ----------------------------------------------------------------
def read_numbers_zh(text: str) -> str:
    """Chinese text as it should be read: numbers, amounts, dates, times, units, phone
    numbers, codes and symbols (``normalize.zh``)."""
    from .normalize.zh import normalize_zh

    return normalize_zh(text)


# --- sentences ------------------------------------------------------------------------
_SENT_END = re.compile(r"(?<=[。！？!?；;…\n])|(?<=[.:])(?=\s)")
_CLAUSE_END = re.compile(r"(?<=[，,、：:）)\]」』\"'])")


def _hard_split(piece: str, max_chars: int) -> list[str]:
    """A piece longer than max_chars without sentence ends: at clause marks, then spaces,
    then anywhere."""
    out: list[str] = []
    for splitter in (_CLAUSE_END, re.compile(r"(?<= )")):
        parts = [p for p in splitter.split(piece) if p]
        if len(parts) > 1:
            for p in _pack(parts, max_chars):
                out.extend(_hard_split(p, max_chars) if len(p) > max_chars else [p])
            return out
    return [piece[i:i + max_chars] for i in range(0, len(piece), max_chars)]


def _pack(parts: list[str], max_chars: int) -> list[str]:
    out: list[str] = []
    cur = ""
    for p in parts:
        if cur and len(cur) + len(p) > max_chars:
            out.append(cur)
            cur = ""
        cur += p
    if cur:
        out.append(cur)
    return out


def split_sentences(text: str, max_chars: int) -> list[str]:
    """Segments of at most ``max_chars`` characters, cut at sentence ends where possible
    and packed greedily; ``"".join`` of the result equals ``text`` up to whitespace at the
    cuts. Never drops text."""
    if len(text) <= max_chars:
        return [text]
    pieces: list[str] = []
    for s in _SENT_END.split(text):
        if not s:
            continue
        pieces.extend(_hard_split(s, max_chars) if len(s) > max_chars else [s])
    segs = [p.strip(" \n") for p in _pack(pieces, max_chars)]
    return [s for s in segs if s]

