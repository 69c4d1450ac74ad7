"""Text cleaning for the text_normalize stage: one small function per concern.

* ``clean``: Unicode NFKC, control/format/private/unassigned characters removed (counted,
  for the ``text_sanitized`` WARNING), whitespace collapsed. Idempotent; the result holds
  no control characters except ``\\n`` (a sentence boundary).
* ``detect_lang`` / ``normalize_lang``: ``zh`` when the text holds Han characters (mixed
  Chinese/English text is ``zh``: the engine reads the Latin words in English), else ``en``.
* ``read_numbers_zh``: Arabic numbers read the Chinese way (dates, times, long digit runs,
  ranges, then cn2an for the rest). English numbers are left to the engine.
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
        nxt = _fold_ws(unicodedata.normalize("NFKC", dropped))
        if nxt == cur:
            break
        cur = nxt
    return Cleaned(cur, removed, tuple(sorted(kinds)))


def speakable(text: str) -> bool:
    """Whether the text holds anything to say: a letter, a number or a symbol."""
    return any(unicodedata.category(ch)[0] in "LNS" for ch in text)


# --- language -----------------------------------------------------------------------
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_LANG_ALIASES = {
    "zh": "zh", "zh-cn": "zh", "zh-hans": "zh", "zh-sg": "zh", "zh-tw": "zh",
    "zh-hant": "zh", "cmn": "zh", "chinese": "zh", "mandarin": "zh",
    "en": "en", "en-us": "en", "en-gb": "en", "eng": "en", "english": "en",
}


def detect_lang(text: str) -> str:
    """``zh`` when the text holds any Han character (mixed text included), else ``en``."""
    return "zh" if _HAN.search(text) else "en"


def normalize_lang(lang: str | None, text: str, supported: tuple[str, ...]) -> str:
    """The request's language as ``zh``/``en``; detected from the text when absent."""
    if lang is None or not lang.strip() or lang.strip().lower() == "auto":
        code = detect_lang(text)
    else:
        code = _LANG_ALIASES.get(lang.strip().lower().replace("_", "-"), "")
    if not code or code not in supported:
        raise TTSError("LANG_UNSUPPORTED", f"{lang!r}; supported: {', '.join(supported)}",
                       param="lang")
    return code


# --- numbers (Chinese) ----------------------------------------------------------------
_DIGITS_ZH = "零一二三四五六七八九"
_DATE = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_TIME = re.compile(r"(?<!\d)(\d{1,2}):(\d{2})(?::(\d{2}))?(?!\d)")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?=年)")
_LONG_DIGITS = re.compile(r"(?<![\d.])\d{7,}(?![\d.])")
_RANGE = re.compile(r"(?<=\d)\s*[-~～]\s*(?=\d)")


def _digit_by_digit(s: str) -> str:
    return "".join(_DIGITS_ZH[int(c)] for c in s)


def _time_zh(m: re.Match[str]) -> str:
    out = f"{int(m[1])}点"
    if int(m[2]) or m[3]:
        out += f"{int(m[2])}分"
    if m[3]:
        out += f"{int(m[3])}秒"
    return out


def read_numbers_zh_old(text: str) -> str:
    """Arabic numerals in Chinese text as words: ``2024-06-12`` -> 二零二四年六月十二日,
    ``3:30`` -> 三点三十分, phone numbers digit by digit, ``3-5`` -> 三至五, then cn2an for
    integers, decimals, percentages and fractions."""
    if not any(c.isdigit() for c in text):
        return text
    import cn2an  # lazy: ~0.2 s to import

    text = _DATE.sub(lambda m: f"{m[1]}年{int(m[2])}月{int(m[3])}日", text)
    text = _TIME.sub(_time_zh, text)
    text = _YEAR.sub(lambda m: _digit_by_digit(m[1]), text)
    text = _LONG_DIGITS.sub(lambda m: _digit_by_digit(m[0]), text)
    text = _RANGE.sub("至", text)
    try:
        return str(cn2an.transform(text, "an2cn"))
    except Exception:  # cn2an is a reading aid: on a form it cannot handle, the engine reads
        return text    # the digits itself


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


def read_numbers_zh(text: str) -> str:
    """Chinese text as it should be read: numbers, amounts, dates, times, units, phone
    numbers, codes and symbols (``normalize.zh``)."""
    from .normalize.zh import normalize_zh

    return normalize_zh(text)
