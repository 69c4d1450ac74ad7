"""A time window as regexes on raw bytes, for ``match``: whether a line's first 23
characters fall in ``[since, until)``, told by the regex engine without decoding."""

from __future__ import annotations

import re


def _byte_gt(c: int) -> bytes:
    """A byte greater than ``c`` (never a line end: ``c`` is printable)."""
    return b"[" + re.escape(bytes([c + 1])) + b"-\\xff]" if c < 255 else b"(?!)"


def _byte_lt(c: int) -> bytes:
    """A byte less than ``c``, not a line end."""
    parts = []
    if c > 0:
        parts.append(b"\\x00-" + re.escape(bytes([min(c - 1, 9)])))
    if c - 1 >= 11:
        parts.append(b"\\x0b-" + re.escape(bytes([c - 1])))
    return b"[" + b"".join(parts) + b"]" if parts else b"(?!)"


def _at_least(t: bytes) -> bytes:
    """Regex: what follows is ``>= t`` as text compares (a longer string with ``t`` as
    its prefix included)."""
    if not t:
        return b""
    return b"(?:" + _byte_gt(t[0]) + b"|" + re.escape(t[:1]) + _at_least(t[1:]) + b")"


def _below(t: bytes) -> bytes:
    """Regex: the rest of the line (up to its end) is ``< t`` as text compares."""
    if not t:
        return b"(?!)"
    return (b"(?:(?=\\n|\\Z)|" + _byte_lt(t[0]) + b"|" + re.escape(t[:1]) + _below(t[1:])
            + b")")


_RANGE_RX: dict[tuple[str, str], tuple[re.Pattern[bytes], re.Pattern[bytes],
                                       re.Pattern[bytes]]] = {}


def range_rx(since: str, until: str) -> tuple[re.Pattern[bytes], re.Pattern[bytes],
                                                re.Pattern[bytes]]:
    """(a line in the window at the start, one after a newline, a digit-led line not in
    the window after a newline): a line is in the window when its first 23 characters
    ``ts`` have ``since <= ts < until`` (``window_lines``), written as a regex on bytes
    (ASCII ends; UTF-8 keeps the order of code points, and every character that decides
    is within the first 23 bytes, where bytes and characters still align)."""
    key = (since, until)
    got = _RANGE_RX.get(key)
    if got is None:
        lo, hi = since.encode(), until.encode()
        k = 0
        while k < min(len(lo), len(hi)) and lo[k] == hi[k]:
            k += 1
        if lo >= hi:  # an empty window
            body = b"(?!)"
        elif k == len(lo):  # since is a prefix of until: any line starting so is >= since
            body = re.escape(lo) + _below(hi[k:])
        else:
            a, b = lo[k], hi[k]
            alts = [re.escape(bytes([a])) + _at_least(lo[k + 1:]),
                    re.escape(bytes([b])) + _below(hi[k + 1:])]
            if b - a > 1:
                alts.append(b"[" + re.escape(bytes([a + 1])) + b"-" +
                            re.escape(bytes([b - 1])) + b"]")
            body = re.escape(lo[:k]) + b"(?:" + b"|".join(alts) + b")"
        got = (re.compile(body), re.compile(b"\n" + body),
               re.compile(b"\n(?=[0-9])(?!" + body + b")"))
        _RANGE_RX[key] = got
    return got
