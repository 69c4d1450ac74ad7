"""Chinese text normalisation: what a listener should hear for numbers, amounts, dates,
times, units, phone numbers, codes and symbols.

``normalize_zh(text)``: our rules (``zh_rules.PRE``), then WeTextProcessing's Chinese TN
grammar (the ``wetext`` wheel: the compiled FSTs IndexTTS uses, read with kaldifst; no
pynini, no download; only the two graphs of Chinese TN are loaded: ``zh_grammar``), clause
by clause and only for clauses with a digit or a symbol it reads, then ``zh_rules.POST``
and the symbol rule: the symbols of ``zh_rules.SYMBOLS`` are named in Chinese, every other
symbol (``★ → ■ ✓`` ...) is dropped -- eSpeak NG's Mandarin voice would otherwise say
nothing or an English name.
"""

from __future__ import annotations

import threading
import unicodedata
from typing import Any

import regex

from . import zh_rules

_CLAUSE = regex.compile(r"[^。！？!?；;，,\n]+[。！？!?；;，,\n]*|[。！？!?；;，,\n]+")
_NEEDS_GRAMMAR = regex.compile(r"[\d%‰°℃℉¥$€£]")
_lock = threading.Lock()
_normalizer: Any = None


def _grammar() -> Any:
    global _normalizer
    with _lock:
        if _normalizer is None:
            from .zh_grammar import ZhNormalizer

            _normalizer = ZhNormalizer()
        return _normalizer


def warm() -> None:
    """Load the grammar now (server start) rather than in the first request."""
    _grammar().normalize("1")


def _symbol(ch: str) -> str:
    named = zh_rules.SYMBOLS.get(ch)
    if named is not None:
        return named
    return " " if unicodedata.category(ch)[0] == "S" else ch


def read_symbols(text: str) -> str:
    """Name the symbols of ``zh_rules.SYMBOLS`` in Chinese; drop the others."""
    if not any(unicodedata.category(ch)[0] == "S" or ch in zh_rules.SYMBOLS for ch in text):
        return text
    out = "".join(_symbol(ch) for ch in text)
    return regex.sub(r" {2,}", " ", out).strip(" ")


def _with_grammar(clause: str) -> str:
    if not _NEEDS_GRAMMAR.search(clause):
        return clause
    core = clause.strip(" \n")  # the grammar drops the newlines (sentence ends) around it
    head, tail = clause[:len(clause) - len(clause.lstrip(" \n"))], \
        clause[len(clause.rstrip(" \n")):]
    try:
        return head + str(_grammar().normalize(core)) + tail
    except Exception:  # the grammar is a reading aid: on a failure the engine reads the
        return clause  # digits itself (never observed; kept so one clause cannot fail all)


def normalize_zh(text: str) -> str:
    """``text`` (Chinese, cleaned) as it should be read (see the module docstring)."""
    text = zh_rules.apply(zh_rules.PRE, text)
    if _NEEDS_GRAMMAR.search(text):
        text = "".join(_with_grammar(m.group()) for m in _CLAUSE.finditer(text))
    text = zh_rules.apply(zh_rules.POST, text)
    return read_symbols(text)
