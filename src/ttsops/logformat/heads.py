"""The record head (``TIMESTAMP - LOGGER - LEVEL - event``) and the field grammar as
regular-expression text, for the fast paths that match many lines at once: the byte
and head-only paths (``logformat.fastparse``, ``forensics.analyses.window``; Python ``re``) and
the vectorised path (``forensics.reading.vector``; Polars' Rust regex, which spells a code point
``\\x{2028}``).

They accept the canonical form only -- what ttsops writes, and what the stdlib's
``%(asctime)s - %(name)s - %(levelname)s - %(message)s`` writes for a message
``event: key=value, ...`` -- and hand every other line to ``parse.parse`` (level
aliases, unstructured lines, lenient fields, JSON), so that every path gives what the
line parser gives (property tests check it).
"""

from __future__ import annotations

from .escape import BARE_CLASS
from .record import LEVELS, NAME
from .timestamps import TS_ASCII, TS_RE

LEVEL_ALT = "|".join(LEVELS)  # the canonical level words (no aliases)
BARE = BARE_CLASS + "+"  # a bare value (Python re)
QUOTED = r'"(?:[^"\\]|\\.)*"'  # a quoted value, escapes not yet decoded (Python re)

# Python re, on "\n"-joined text (re.M): every line ``fastparse.head_parse`` accepts, and
# only those; groups: the line, its timestamp, level, event
HEADS_MULTILINE = (rf"^(({TS_ASCII}) - [^ \n]+ - ({LEVEL_ALT}) - ({NAME})"
                   r"(?::(?: [^\n]*)?)?)$")

# Polars (Rust regex)
RUST_TS = TS_RE
RUST_TS_ASCII = r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}"
RUST_BARE = r'[^\s,"=\\\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]+'
RUST_QUOTED = r'"(?:[^"\\,\x00-\x1f]|\\.)*"'
RUST_HEAD = rf"^({RUST_TS_ASCII}) - [^ ]+ - (?:{LEVEL_ALT}) - "
