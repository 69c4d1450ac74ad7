"""WeTextProcessing's Chinese TN grammar as ``wetext.Normalizer(lang="zh", operator="tn")``
applies it, with only the two graphs it uses loaded.

``import wetext`` reads all twenty FSTs of its wheel at import (English, Japanese, Chinese;
TN and ITN): 0.3 s of CPU and 38 MB of memory in the serving process, of which Chinese TN
needs its tagger and its verbaliser (1.6 MB of the 45 MB on disk). This module reads those
two with ``kaldifst`` (what wetext reads them with) from the wheel's own ``fsts`` directory,
and does what ``wetext.utils.normalize`` does between them for Chinese TN with the default
config: strip; if the text has a digit, tag, put each token's fields in the grammar's
order (``wetext.token_parser.TokenParser.reorder``, ported below), verbalise; strip.
``tests/pipeline/test_zh_grammar.py`` holds it equal to ``wetext.Normalizer`` on the
service texts' table and on generated text.

The token reordering is ported from wetext 0.1.8 (``token_parser.py``, Apache-2.0,
Copyright (c) 2024 Zhendong Peng), for Chinese TN only.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

# wetext.constants.TN_ORDERS: the fields of a token in the order the verbaliser reads them
TN_ORDERS: dict[str, list[str]] = {
    "date": ["year", "month", "day"],
    "fraction": ["denominator", "numerator"],
    "measure": ["denominator", "numerator", "value"],
    "money": ["value", "currency"],
    "time": ["noon", "hour", "minute", "second"],
}
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_DIGIT = re.compile(r"\d")


def fst_dir() -> Path:
    """The ``fsts`` directory of the installed ``wetext`` wheel, found without importing
    the package (its import loads every graph)."""
    spec = importlib.util.find_spec("wetext")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("wetext is not installed (pip install wetext)")
    return Path(next(iter(spec.submodule_search_locations))) / "fsts"


class _Tokens:
    """``TokenParser``'s reading of a tagger output ``name { key: "value" ... } ...``:
    one character at a time, as wetext reads it (its quirks included: a value keeps the
    backslash of an escape; a key given twice is written twice, with its last value)."""

    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    @property
    def ch(self) -> str | None:
        return self.text[self.i] if self.i < len(self.text) else None

    def step(self) -> None:
        self.i += 1

    def skip_spaces(self) -> bool:
        while self.ch == " ":
            self.step()
        return self.ch is not None

    def skip(self, chars: str) -> None:
        for c in chars:
            if self.ch == c:
                self.step()

    def key(self) -> str:
        start = self.i
        while self.ch is not None and self.ch in _KEY_CHARS:
            self.step()
        return self.text[start:self.i]

    def value(self) -> str:
        out: list[str] = []
        while self.ch is not None and self.ch != '"':
            escape = self.ch == "\\"
            out.append(self.ch)
            self.step()
            if escape and self.ch is not None:
                out.append(self.ch)
                self.step()
        return "".join(out)

    def tokens(self) -> list[tuple[str, list[str], dict[str, str]]]:
        found = []
        while self.skip_spaces():
            name = self.key()
            self.skip(" { ")
            order: list[str] = []
            members: dict[str, str] = {}
            while self.skip_spaces():
                if self.ch == "}":
                    self.step()
                    break
                k = self.key()
                self.skip(': "')
                members[k] = self.value()
                order.append(k)
                self.skip('"')
            found.append((name, order, members))
        return found


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def reorder(tagged: str) -> str:
    """``TokenParser("zh", "tn").reorder(tagged)``: each token's fields in ``TN_ORDERS``'
    order (then the others as they came), unless it says ``preserve_order: "true"``."""
    if not tagged:
        raise ValueError("nothing to reorder")
    out = []
    for name, order, members in _Tokens(tagged).tokens():
        canonical = TN_ORDERS.get(name)
        if canonical is not None and members.get("preserve_order") != "true":
            order = canonical + [k for k in order if k not in canonical]
        out.append(name + " {" + "".join(f' {k}: "{_escape(members[k])}"'
                                         for k in order if k in members) + " }")
    return " ".join(out)


class ZhNormalizer:
    """The Chinese TN grammar: ``normalize(text)`` is
    ``wetext.Normalizer(lang="zh", operator="tn").normalize(text)``."""

    def __init__(self, fsts: Path | None = None) -> None:
        import kaldifst

        d = (fsts or fst_dir()) / "zh" / "tn"
        self._tagger: Any = kaldifst.TextNormalizer(str(d / "tagger.fst"))
        self._verbalizer: Any = kaldifst.TextNormalizer(str(d / "verbalizer.fst"))

    def normalize(self, text: str) -> str:
        text = text.strip()
        if not _DIGIT.search(text):
            return text
        tagged = self._tagger(text).strip()
        return str(self._verbalizer(reorder(tagged))).strip()
