"""The language of each part of a text: script first, then a detector where a script is
shared.

Rules (docs/readme/synthesis.md, "Languages"):

1. Letters are grouped in runs of one script (``scripts.letter_runs``); digits,
   punctuation, spaces and symbols go with the run before them.
2. In a sentence that holds kana, Han characters are Japanese kanji (``ja``); elsewhere
   Han is Chinese (``zh``). Hangul is Korean, Thai Thai, Greek Greek, and so on
   (``scripts.SCRIPTS``).
3. Shared scripts: all the letters of a text in one shared script are one language.
   First letters only one language uses (``TELLTALE``: Vietnamese ơ ư đ ạ..ỹ, Serbian
   ј љ њ ћ ђ џ, Ukrainian і ї є ґ, Urdu ے ٹ ڈ ڑ ں ھ ہ, Persian پ چ ژ گ ک ی...); then
   lingua (low-accuracy mode, its models ship in the wheel) among the languages of that
   script the engine has voices for (``SHARED`` and the engine's list); its answer counts
   only over at least ``MIN_LETTERS`` letters and with confidence >= ``MIN_CONFIDENCE``,
   and Latin text with a word only English has (``ENGLISH_WORDS``: the, and, you,
   with...) is English; otherwise the script's default: English for Latin (short Latin
   text -- names, brands, "OK" -- is English far more often than not), Russian for
   Cyrillic, Hindi for Devanagari, Arabic for Arabic script.
4. Latin words in a text that also holds another script go with the run around them:
   eSpeak NG's voices read Latin words in English by themselves, without a pause
   (``我用iPhone打电话`` is one ``zh`` run, as is ``Hello, 我是小明``).
5. Neighbouring runs of the same language merge.

``runs(text, lang)`` returns ``[(lang, text), ...]``, whose texts concatenate to ``text``;
a ``lang`` given by the request (``resolve``) makes the whole text one run. ``label(runs)``
is what the records' ``lang`` field says: the one language, or the languages by share of
letters, main first, joined by ``+`` (``ru+zh``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Collection
from functools import cache
from typing import Any

import regex

from .scripts import SCRIPTS, letter_runs, script_name

DEFAULT_LANG = "en"  # a text without letters
MIN_LETTERS = 12
MIN_CONFIDENCE = 0.75

# ISO 639-1 codes lingua and eSpeak NG both know, by shared script
SHARED: dict[str, tuple[str, tuple[str, ...]]] = {  # script -> (default, candidates)
    "Latin": ("en", ("en", "af", "az", "bs", "ca", "cs", "cy", "da", "de", "es", "et",
                     "eu", "fi", "fr", "ga", "hr", "hu", "id", "is", "it", "lt", "lv",
                     "ms", "nb", "nl", "pl", "pt", "ro", "sk", "sl", "sq", "sv", "sw",
                     "tr", "vi")),
    "Cyrillic": ("ru", ("ru", "uk", "bg", "mk", "sr", "be", "kk")),
    "Devanagari": ("hi", ("hi", "mr")),
    "Arabic": ("ar", ()),
}
TELLTALE: dict[str, list[tuple[str, regex.Pattern[str]]]] = {
    "Latin": [("vi", regex.compile(r"[ơưđƠƯĐ\u1ea0-\u1ef9]"))],
    "Cyrillic": [("sr", regex.compile(r"[јљњћђџЈЉЊЋЂЏ]")),
                 ("uk", regex.compile(r"[іїєґІЇЄҐ]")), ("be", regex.compile(r"[ўЎ]")),
                 ("mk", regex.compile(r"[ѓќѕЃЌЅ]")),
                 ("kk", regex.compile(r"[әғқңөұүһӘҒҚҢӨҰҮҺ]"))],
    "Arabic": [("ur", regex.compile(r"[\u06d2\u0679\u0688\u0691\u06ba\u06be\u06c1]")),
               ("fa", regex.compile(r"[\u067e\u0686\u0698\u06af\u06a9\u06cc]"))],
}
# words only English has among the Latin candidates: one of them makes Latin text English
# (lingua's low-accuracy mode took "raise the engine fails" for Irish at 0.75)
ENGLISH_WORDS = frozenset((
    "the", "and", "you", "your", "with", "from", "this", "that", "are", "will", "have", "has",
    "what", "please", "thanks", "thank", "our", "would", "should", "there", "their", "been",
    "which", "hello", "order", "shipped", "arrive", "tomorrow", "today"))
_WORD = regex.compile(r"[a-z']+")
_SENTENCE = regex.compile(r"[^。！？!?\n]*[。！？!?\n]*")

# request lang values -> our codes (anything else: its primary subtag, lowercased)
ALIASES = {
    "zh": "zh", "cmn": "zh", "zh-cn": "zh", "zh-hans": "zh", "zh-sg": "zh", "zh-tw": "zh",
    "zh-hant": "zh", "chinese": "zh", "mandarin": "zh", "yue": "yue", "zh-hk": "yue",
    "zh-yue": "yue", "cantonese": "yue", "english": "en", "eng": "en", "no": "nb",
    "nob": "nb", "iw": "he", "in": "id", "jpn": "ja", "kor": "ko", "rus": "ru", "ara": "ar",
    "fil": "tl",
}

NAMES = {  # for messages
    "zh": "Chinese", "yue": "Cantonese", "en": "English", "ja": "Japanese", "ko": "Korean",
    "ar": "Arabic", "fa": "Persian", "ur": "Urdu", "ru": "Russian", "uk": "Ukrainian",
    "hi": "Hindi", "th": "Thai", "he": "Hebrew", "el": "Greek", "km": "Khmer", "lo": "Lao",
    "bo": "Tibetan", "mn": "Mongolian", "dv": "Dhivehi", "syr": "Syriac", "fr": "French",
    "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese", "vi": "Vietnamese",
    "am": "Amharic", "my": "Burmese", "ka": "Georgian", "hy": "Armenian", "bn": "Bengali",
}


def name(code: str) -> str:
    base = code.split("-")[0]
    return f"{NAMES[base]} ({code})" if base in NAMES else code


def resolve(lang: str | None) -> str | None:
    """A request's ``lang`` as our code; None for absent/``auto`` (detect)."""
    if lang is None or not lang.strip() or lang.strip().lower() == "auto":
        return None
    key = lang.strip().lower().replace("_", "-")
    if key in ALIASES:
        return ALIASES[key]
    base = key.split("-")[0]
    return ALIASES.get(base, base)


# --- lingua, built once per script on first use ----------------------------------------
_lock = threading.Lock()


@cache
def _detector(codes: tuple[str, ...]) -> Any:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    langs = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in codes]
    return LanguageDetectorBuilder.from_languages(*langs).with_low_accuracy_mode().build()


def _lingua(script: str, text: str, codes: tuple[str, ...] | None = None
            ) -> tuple[str, float]:
    with _lock:  # building is not worth doing twice; detection itself is thread-safe
        det = _detector(codes or SHARED[script][1])
    values = det.compute_language_confidence_values(text)
    if not values:
        return SHARED[script][0], 0.0
    top = values[0]
    code = top.language.iso_code_639_1.name.lower()
    return code, float(top.value)


def warm(supported: Collection[str] | None = None) -> None:
    """Build the detectors and load their models now (server start), not in a request:
    those ``shared_language`` asks for an engine speaking ``supported`` (None: every
    language), the same candidates, so that a request finds them built. A script of which
    the engine speaks one language at most needs none (~0.3 s and ~15 MB each)."""
    for script, sample in (("Latin", "the quick brown fox jumps"),
                           ("Cyrillic", "съешь же ещё этих мягких"),
                           ("Devanagari", "नमस्ते दुनिया")):
        candidates = _candidates(script, None if supported is None else tuple(supported))
        if len(candidates) >= 2:
            _lingua(script, sample, candidates)


def _candidates(script: str, supported: tuple[str, ...] | None) -> tuple[str, ...]:
    """The languages of a shared ``script`` that lingua chooses among for an engine
    speaking ``supported`` (None: all of them)."""
    candidates = SHARED[script][1]
    if supported is not None:
        candidates = tuple(c for c in candidates if c in supported)
    return candidates


def shared_language(script: str, text: str, supported: tuple[str, ...] | None = None) -> str:
    """The language of ``text``, all of it letters of a shared ``script``, among the
    ``supported`` languages (all of ``SHARED`` when None; an engine that speaks only
    English of the Latin languages gets English without asking lingua)."""
    for code, pattern in TELLTALE.get(script, ()):
        if pattern.search(text):
            return code
    default = SHARED[script][0]
    candidates = _candidates(script, supported)
    if len(candidates) < 2 or sum(1 for ch in text if ch.isalpha()) < MIN_LETTERS:
        return default
    if script == "Latin" and not ENGLISH_WORDS.isdisjoint(_WORD.findall(text.lower())):
        return "en"
    code, conf = _lingua(script, text, candidates)
    return code if conf >= MIN_CONFIDENCE else default


# --- runs -------------------------------------------------------------------------------
def _japanese_sentences(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in _SENTENCE.finditer(text):
        if m.group() and regex.search(r"[\p{Script=Hiragana}\p{Script=Katakana}]", m.group()):
            spans.append((m.start(), m.end()))
    return spans


def runs(text: str, lang: str | None = None, supported: tuple[str, ...] | None = None
         ) -> list[tuple[str, str]]:
    """``[(lang, text), ...]`` covering ``text`` in order (see the module docstring);
    ``supported``: the engine's languages, the candidates for shared scripts."""
    code = resolve(lang)
    if code is not None:
        return [(code, text)]
    letters = list(letter_runs(text))
    if not letters:
        return [(DEFAULT_LANG, text)]
    ja_spans = _japanese_sentences(text) if any(r.script == "Kana" for r in letters) else []

    def script_of(r: Any) -> str:
        if r.script == "Han" and any(a <= r.start < b for a, b in ja_spans):
            return "Kana"
        return str(r.script)

    scripts = [script_of(r) for r in letters]
    share = set(scripts)
    mixed = any(s != "Latin" for s in share)
    # the language of each shared script, told from all its letters together
    shared: dict[str, str] = {}
    for s in set(scripts):
        if s in SHARED:
            joined = " ".join(text[r.start:r.end] for sc, r in zip(scripts, letters,
                                                                   strict=True) if sc == s)
            shared[s] = shared_language(s, joined, supported)
    langs: list[str | None] = []
    for s, r in zip(scripts, letters, strict=True):
        if s == "Latin" and mixed:
            langs.append(None)  # rule 4: goes with its neighbour
        elif s in shared:
            langs.append(shared[s])
        elif s == "Other":
            langs.append(f"und-{script_name(text[r.start])}")
        else:
            langs.append(SCRIPTS[s])
    for i, lg in enumerate(langs):  # rule 4: Latin takes the language before (or after) it
        if lg is None:
            langs[i] = next((x for x in reversed(langs[:i]) if x), None) or \
                next((x for x in langs[i + 1:] if x), DEFAULT_LANG)
    out: list[tuple[str, str]] = []
    cut = 0
    for i, (lg, r) in enumerate(zip(langs, letters, strict=True)):
        if i and lg != langs[i - 1]:
            out.append((str(langs[i - 1]), text[cut:r.start]))
            cut = r.start
    out.append((str(langs[-1]), text[cut:]))
    return out


def label(parts: list[tuple[str, str]]) -> str:
    """The records' ``lang``: one code, or codes by share of letters joined by ``+``."""
    share: Counter[str] = Counter()
    first: dict[str, int] = {}
    for i, (lg, t) in enumerate(parts):
        share[lg] += sum(1 for ch in t if ch.isalpha()) or 0
        first.setdefault(lg, i)
    order = sorted(share, key=lambda lg: (-share[lg], first[lg]))
    return "+".join(order)
