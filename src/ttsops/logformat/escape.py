"""Quoting and escaping of values and traceback lines (the writer's side, and its inverse).

A value is bare unless it is empty or holds a space, comma, quote, ``=``, backslash or
any character that could end or disguise a line; then it is double-quoted with
``\\" \\\\ \\n \\r \\t \\uXXXX`` escapes (``,`` and ``=`` as ``\\u002c`` and ``\\u003d``,
so that naive tools such as ``awk -F', '`` never see a field boundary inside a value).
"""

from __future__ import annotations

import re
import unicodedata

BARE_CLASS = r"[^\s,\"=\\\x00-\x1f\x7f-\x9f\u2028\u2029]"
BARE_OK = re.compile(BARE_CLASS + r"+\Z")

_ESC_CATS = frozenset({"Cs", "Zl", "Zp", "Cf", "Co", "Cn"})


def needs_escape(ch: str) -> bool:
    """Control, format (bidi, zero-width), line/paragraph separators, lone surrogates,
    private-use and unassigned code points (noncharacters such as U+FFFF included):
    nothing that a terminal or editor shows as nothing, or as something else."""
    o = ord(ch)
    if o < 0x20 or 0x7F <= o <= 0x9F:
        return True
    return o >= 0xAD and unicodedata.category(ch) in _ESC_CATS


_SIMPLE = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
           ",": "\\u002c", "=": "\\u003d"}


def escape_char(ch: str) -> str:
    o = ord(ch)
    return f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"


def quote(value: str) -> str:
    """A value as it appears after ``key=``: bare when safe, quoted and escaped otherwise."""
    if value.isascii() and value.isalnum():  # fast path: numbers, words, codes
        return value
    if value and BARE_OK.match(value) and (value.isprintable()
                                            or not any(map(needs_escape, value))):
        return value
    out = ['"']
    for ch in value:
        rep = _SIMPLE.get(ch)
        if rep is not None:
            out.append(rep)
        elif not ch.isprintable() and needs_escape(ch):
            out.append(escape_char(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def unescape_at(s: str, i: int) -> tuple[str, int]:
    """Decode the escape starting at s[i] == '\\'; returns (text, next index).
    Unknown escapes are kept literally (lenient with foreign lines)."""
    nxt = s[i + 1:i + 2]
    width = 4 if nxt == "u" else 8 if nxt == "U" else 0
    if width:
        digits = s[i + 2:i + 2 + width]
        if len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
            o = int(digits, 16)
            if o <= 0x10FFFF:
                return chr(o), i + 2 + width
        return "\\", i + 1
    simple = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}.get(nxt)
    if simple is not None:
        return simple, i + 2
    return "\\", i + 1


def read_quoted(s: str, i: int) -> tuple[str, int] | None:
    """Read a quoted value starting at s[i] == '"'. Returns (value, index after) or None."""
    out: list[str] = []
    j = i + 1
    n = len(s)
    while j < n:
        k = j
        while k < n and s[k] != '"' and s[k] != "\\":
            k += 1
        out.append(s[j:k])
        if k >= n:
            return None
        if s[k] == '"':
            return "".join(out), k + 1
        text, j = unescape_at(s, k)
        out.append(text)
    return None


_KEYLIKE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def escape_tb(line: str) -> str:
    """A traceback line made safe to follow a tab: no line breaks, no control chars, and
    no ``key=`` (an ``=`` right after a letter, digit or ``_`` is written ``\\u003d``), so
    that an exception message holding user input (``x, request_id=VICTIM``) makes no
    field for ``awk -F', '`` or ``grep request_id=``; ``unescape_tb`` restores it."""
    if "\\" not in line and "=" not in line and \
            not any(needs_escape(c) for c in line if c != "\t"):
        return line
    out: list[str] = []
    prev = ""  # the last character written (an escape like \\u000a ends in a letter)
    for ch in line:
        if ch == "\\":
            rep = "\\\\"
        elif ch == "=" and prev in _KEYLIKE:
            rep = "\\u003d"
        elif ch != "\t" and needs_escape(ch):
            rep = escape_char(ch)
        else:
            rep = ch
        out.append(rep)
        prev = rep[-1]
    return "".join(out)


def unescape_tb(line: str) -> str:
    if "\\" not in line:
        return line
    out = []
    i = 0
    while i < len(line):
        j = line.find("\\", i)
        if j < 0:
            out.append(line[i:])
            break
        out.append(line[i:j])
        text, i = unescape_at(line, j)
        out.append(text)
    return "".join(out)
