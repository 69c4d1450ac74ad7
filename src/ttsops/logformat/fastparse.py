"""A fast path for ``logformat.parse`` on the common line: a text record in the
canonical form (``logformat.heads``) whose fields parse strictly. One C-level regex
validates the whole field list, another splits it (quoted values unescaped by one
substitution). Anything else (level aliases, unstructured lines, lenient fields, JSON)
goes to ``logformat.parse``, so the result is always exactly ``parse(line)`` (property
tests check it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .dialects import METRIC
from .escape import BARE_OK
from .heads import BARE as _BARE
from .heads import LEVEL_ALT, NAME, QUOTED
from .parse import attribute, parse
from .parse import iter_records as _iter_records
from .record import FREE_TEXT, LENIENT, LEVELS, ReadStats, Record
from .record import METRIC as METRIC_FLAG
from .timestamps import TS_ASCII, TS_RE

_KV = NAME + "=" + _BARE
_BODY_RE = re.compile(f"{_KV}(?:, {_KV})*")
_EVENT_RE = re.compile(NAME)
_KV_FIND = re.compile(rf"({NAME})=([^,]+)")  # on a body _BODY_RE accepted
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_KVQ = rf"{NAME}=(?:{_BARE}|{QUOTED})"
_BODY_Q_RE = re.compile(f"{_KVQ}(?:, {_KVQ})*", re.S)
_KVQ_FIND = re.compile(rf"({NAME})=(?:" + _QUOTED + "|(" + _BARE + "))", re.S)
_ESC_RE = re.compile(r'\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|["\\nrt])')
_SIMPLE_ESC = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_LEVELS = frozenset(LEVELS)
# the commonest line whole, in one match: a canonical head, an event and strict bare
# fields (what the steps of ``parse_line`` below accept on that branch, checked at once;
# groups: timestamp, logger, level, event, fields). The logger and the level hold no
# space, the event no ": ", so each ends where ``parse_line``'s splits end it.
_STRICT_LINE_RE = re.compile(
    rf"({TS_RE}) - ([^ ]+) - ({LEVEL_ALT}) - ({NAME}): ({_KV}(?:, {_KV})*)")
# a body the strict grammar refuses, made of ", "-separated parts that are ``key=value``
# or free text (``text_len=2048 chars``, ``error_code=X, Invalid input``), none holding a
# comma, quote, backslash or line end, and "=" only after a key: ``_lenient_fields``
_LVALUE = r'[^,"=\\\r\n]*'
_LENIENT_BODY_RE = re.compile(f"{NAME}={_LVALUE}(?:, (?:{NAME}=)?{_LVALUE})*")


def _lenient_fields(body: str) -> tuple[dict[str, str], int]:
    """``parse._lenient_event(body)`` for a body ``_LENIENT_BODY_RE`` accepts: each key's
    value runs to the next key (free text parts included) and is then read as the
    lenient reader reads it (a bare token followed by ", text": the text is ``msg``)."""
    parts = body.split(", ")
    if body.count("=") == len(parts):
        # every part is key=value (the grammar allows "=" only after a key): no free
        # text, each value one part without a comma -- stripped, first key wins
        pairs = [(k, v.strip()) for k, _eq, v in (p.partition("=") for p in parts)]
        one = dict(pairs)
        if len(one) == len(pairs):
            return one, LENIENT
    fields: dict[str, str] = {}
    texts: list[str] = []
    flags = LENIENT
    runs: list[list[str]] = []
    for part in parts:
        k, eq, v = part.partition("=")
        if eq:
            runs.append([k, v])
        else:
            runs[-1].append(part)
    for key, *vals in runs:
        value = ", ".join(vals).strip().rstrip(",")
        cut = value.find(", ")
        if cut > 0 and BARE_OK.match(value, 0, cut):
            rest = value[cut + 2:].strip()
            if rest:
                texts.append(rest)
                flags |= FREE_TEXT
            value = value[:cut]
        fields.setdefault(key, value)
    if texts:
        fields.setdefault("msg", ", ".join(texts))
    return fields, flags


def _unescape_match(m: re.Match[str]) -> str:
    e = m.group(1)
    if len(e) == 1:
        return _SIMPLE_ESC[e]
    o = int(e[1:], 16)
    return chr(o) if o <= 0x10FFFF else m.group(0)  # out of range: kept as written


def _quoted_fields(body: str) -> dict[str, str] | None:
    """``logline.parse_fields(body)`` for a body with quoted values, or None when the
    strict parser would not accept it (then the caller parses it the slow way)."""
    if not _BODY_Q_RE.fullmatch(body):
        return None
    fields: dict[str, str] = {}
    n = 0
    for key, q, bare in _KVQ_FIND.findall(body):
        n += 1
        if bare:
            fields[key] = bare
        else:
            fields[key] = _ESC_RE.sub(_unescape_match, q) if "\\" in q else q
    return fields if len(fields) == n else None


def parse_line(line: str) -> Record | None:
    """``logline.parse(line)``, faster for the lines ttsops itself writes."""
    m = _STRICT_LINE_RE.fullmatch(line)
    if m is not None:
        # the fields ", "-separated, each key=value with no "=" in the value: a split
        # gives what ``_KV_FIND`` finds (a key twice: the general way below decides)
        ts, logger, level, event, body = m.groups()
        kvs = body.split(", ")
        fields = {k: v for k, _eq, v in [kv.partition("=") for kv in kvs]}
        if len(fields) == len(kvs):
            return Record(ts, logger, level, event, fields)
    c = line[:1]
    if not c.isdigit() and c != "{":  # neither a text head nor JSON (a traceback line)
        return None
    if len(line) > 26 and line[23:26] == " - ":
        parts = line[26:].split(" - ", 2)
        if len(parts) == 3 and parts[1] in _LEVELS and " " not in parts[0] and parts[0]:
            msg = parts[2]
            i = msg.find(": ")
            if i > 0 and _EVENT_RE.fullmatch(msg, 0, i) and _TS_RE.fullmatch(line, 0, 23):
                body = msg[i + 2:]
                if "\\" not in body and '"' not in body:
                    if _BODY_RE.fullmatch(body):
                        fields = dict(_KV_FIND.findall(body))
                        if len(fields) == body.count(", ") + 1:
                            return Record(line[:23], parts[0], parts[1], msg[:i], fields)
                    elif _LENIENT_BODY_RE.fullmatch(body):
                        fields, flags = _lenient_fields(body)
                        return Record(line[:23], parts[0], parts[1], msg[:i], fields, [],
                                      flags)
                else:
                    q = _quoted_fields(body)
                    if q is not None:
                        return Record(line[:23], parts[0], parts[1], msg[:i], q)
            elif i < 0 and '"' not in msg and "\\" not in msg and _BODY_RE.fullmatch(msg) \
                    and _TS_RE.fullmatch(line, 0, 23):
                # key=value pairs only (``total_duration_ms=366``): a metric record
                fields = dict(_KV_FIND.findall(msg))
                if len(fields) == msg.count(", ") + 1:
                    return Record(line[:23], parts[0], parts[1], METRIC, fields, [],
                                  METRIC_FLAG | attribute(fields, msg))
    return parse(line)


_TS_RE = re.compile(TS_RE)


def iter_records(lines: Iterable[str], stats: ReadStats | None = None) -> Iterator[Record]:
    """``logline.iter_records`` with the fast parser (same grouping and counting)."""
    return _iter_records(lines, stats, parse_line)


_TS_ASCII = re.compile(TS_ASCII)
_NAME_RE = re.compile(NAME)


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
