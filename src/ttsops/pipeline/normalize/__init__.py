"""The text front end: which language each part of a text is in, what is dropped, and how
Chinese numbers, dates, amounts, units and codes are read.

* ``scripts``: the script of each letter (Unicode ``Script`` via the ``regex`` module) and
  the emoji rule (emoji are dropped, in every language).
* ``language``: language runs of a text -- script first, then a detector (lingua) where a
  script is shared by several languages (Latin, Cyrillic, Devanagari), letters for Arabic
  script; aliases of request ``lang`` values.
* ``zh_rules``: our rules that run before WeTextProcessing (phone numbers and codes digit
  by digit with 幺, thousands separators, currencies, units, negative percentages...).
* ``zh``: Chinese normalisation: our rules, then WeTextProcessing's Chinese TN grammar
  (``wetext``: compiled FSTs shipped in the wheel, no download), then symbol naming.
"""

from __future__ import annotations

from collections.abc import Collection


def warm(languages: Collection[str] | None = None) -> None:
    """Load the Chinese grammar and the language detectors now (the server does it in a
    thread at start-up), so that the first request does not pay for it (~0.5 s).
    ``languages``: the engine's; only what a request to it can use is loaded (the grammar
    if it speaks Chinese, the detectors its shared-script languages ask); None: all."""
    from . import language, zh

    if languages is None or "zh" in languages:
        zh.warm()
    language.warm(languages)
