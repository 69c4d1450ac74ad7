"""A fast path for ``logline.parse`` on the common line: a text record whose values are
all bare (no quotes, no escapes). One C-level regex validates the whole field list, then
plain splits build the record. Anything else goes to ``logline.parse``, so the result is
always exactly ``logline.parse(line)`` (a property test checks it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from ..logline import _FOREIGN_TB, LEVELS, ReadStats, Record, parse, unescape_tb

_BARE = r"[^\s,\"=\\\x00-\x1f\x7f-\x9f\u2028\u2029]+"
_KV = r"[a-z_][a-z0-9_]*=" + _BARE
_BODY_RE = re.compile(f"{_KV}(?:, {_KV})*")
_EVENT_RE = re.compile(r"[a-z_][a-z0-9_]*")
_KV_FIND = re.compile(r"([a-z_][a-z0-9_]*)=([^,]+)")  # on a body _BODY_RE accepted
_LEVELS = frozenset(LEVELS)


def parse_line(line: str) -> Record | None:
    """``logline.parse(line)``, faster for the lines ttsops itself writes."""
    if len(line) > 26 and line[23:26] == " - " and "\\" not in line and '"' not in line:
        parts = line[26:].split(" - ", 2)
        if len(parts) == 3 and parts[1] in _LEVELS and " " not in parts[0] and parts[0]:
            msg = parts[2]
            i = msg.find(": ")
            if i > 0 and _EVENT_RE.fullmatch(msg, 0, i):
                body = msg[i + 2:]
                if _BODY_RE.fullmatch(body):
                    fields = dict(_KV_FIND.findall(body))
                    ts = line[:23]
                    if len(fields) == body.count(", ") + 1 and _TS_RE.fullmatch(ts):
                        return Record(ts, parts[0], parts[1], msg[:i], fields)
    return parse(line)


_TS_RE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}")


def iter_records(lines: Iterable[str], stats: ReadStats | None = None) -> Iterator[Record]:
    """``logline.iter_records`` with the fast parser (same grouping and counting)."""
    stats = stats if stats is not None else ReadStats()
    cur: Record | None = None
    for raw in lines:
        stats.lines += 1
        line = raw.rstrip("\r\n")
        if line.startswith("\t"):
            if cur is not None:
                cur.traceback.append(unescape_tb(line[1:]))
                stats.continuation += 1
            else:
                stats.skip(line)
            continue
        rec = parse_line(line)
        if rec is None:
            if cur is not None and line and _FOREIGN_TB.match(line):
                cur.traceback.append(line)
                stats.continuation += 1
            elif line:
                stats.skip(line)
            continue
        if cur is not None:
            yield cur
        stats.records += 1
        cur = rec
    if cur is not None:
        yield cur


_TS_ASCII = re.compile(r"[0-9]{4}-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9],[0-9]{3}")
_NAME_RE = re.compile(r"[a-z_][a-z0-9_]*")


def head_parse(line: str) -> tuple[str, str, str] | None:
    """(ts, level, event) of a text record line whose message starts with an event name,
    without reading its fields; None for anything else (JSON, free text, not a record),
    which the caller parses in full. When not None it equals what ``logline.parse``
    gives (a property test checks it)."""
    if len(line) < 27 or line[23:26] != " - " or not _TS_ASCII.match(line):
        return None
    j = line.find(" ", 26)
    if j <= 26 or line[j:j + 3] != " - ":
        return None
    k = line.find(" - ", j + 3)
    if k < 0:
        return None
    level = line[j + 3:k]
    if level not in _LEVELS:
        return None
    m = _NAME_RE.match(line, k + 3)
    if m is None:
        return None
    e = m.end()
    if e != len(line) and (line[e] != ":" or (e + 1 != len(line) and line[e + 1] != " ")):
        return None
    return line[:23], level, m.group()
