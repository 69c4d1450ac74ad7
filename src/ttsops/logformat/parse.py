"""The reader's grammar: one physical line to a ``Record`` (or None), lines to records.

Text lines: ``TIMESTAMP - LOGGER - LEVEL - MESSAGE``; a message ``event: key=value, ...``
is read strictly when it is exactly what ``render`` writes, leniently otherwise (values
with spaces run to the next ``, key=``; a bare value followed by ``, free text`` keeps
the bare token, the text becomes ``msg``). A message that is not ``event: ...`` is an
``unstructured`` record (or ``metric``: key=value pairs only); see ``dialects``.
JSON lines: one object, keys by ``jsonkeys.convention``. A line that is not a record at
all gives ``None`` (the reader counts it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator

from . import jsonkeys
from .dialects import HEAD_LEVELS, METRIC, UNSTRUCTURED, bare_id, json_level, norm_level
from .escape import BARE_OK, read_quoted, unescape_tb
from .record import (
    BARE_ID,
    EVENT_RE,
    FREE_TEXT,
    JSON_OWN,
    LENIENT,
    LEVEL_ALIAS,
    LEVELS,
    NAME,
    ReadStats,
    Record,
)
from .record import (
    METRIC as METRIC_FLAG,
)
from .record import (
    UNSTRUCTURED as UNSTRUCTURED_FLAG,
)
from .timestamps import TS_RE, norm_ts

# the level as a word, then checked against ``HEAD_LEVELS`` (faster than an alternation)
HEAD_RE = re.compile(rf"({TS_RE}) - ([^ ]+) - ([A-Z]+) - (.*)\Z", re.S)
_HEAD_LEVELS = frozenset(HEAD_LEVELS)
MESSAGE_EVENT_RE = re.compile(rf"({NAME})(?::(?: (.*))?)?\Z", re.S)
_KEY_AT = re.compile(rf"({NAME})=")
_LENIENT_KEY = re.compile(rf"(?:^|, ?)({NAME})=")
_ID_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_])id=([A-Za-z0-9_.:@/+\-]+)")
_LEVELS = frozenset(LEVELS)


def parse_fields(body: str) -> dict[str, str] | None:
    """Strict: parse ``k=v, k=v`` exactly as render_fields writes it, else None."""
    fields: dict[str, str] = {}
    i, n = 0, len(body)
    while i < n:
        m = _KEY_AT.match(body, i)
        if not m:
            return None
        key = m.group(1)
        i = m.end()
        if i < n and body[i] == '"':
            got = read_quoted(body, i)
            if got is None:
                return None
            value, i = got
        else:
            j = body.find(", ", i)
            j = n if j < 0 else j
            value = body[i:j]
            if not value or not BARE_OK.match(value):
                return None
            i = j
        if key in fields:
            return None
        fields[key] = value
        if i < n:
            if not body.startswith(", ", i):
                return None
            i += 2
            if i >= n:
                return None
    return fields


def parse_fields_lenient(body: str) -> tuple[dict[str, str], list[str], int]:
    """Whatever ``k=v`` pairs can be found, the free text around them, and the dialect
    flags: a value runs to the next ``, key=``; a bare token followed by ``, text``
    (``error_code=SCIPY_FFT_INVALID, Invalid input to scipy.fft``) is the value, the text
    goes with the free text (``FREE_TEXT``)."""
    fields: dict[str, str] = {}
    texts: list[str] = []
    flags = 0
    i = 0
    n = len(body)
    # the key matches, found once: the next one after an unquoted value is where the
    # value ends (a match cannot swallow a real key: it holds no quote)
    keys = list(_LENIENT_KEY.finditer(body))
    last = len(keys) - 1
    for j, m in enumerate(keys):
        at = m.start()
        if at < i:
            continue  # inside a quoted value read before
        if at > i:
            gap = body[i:at].strip().strip(",").strip()
            if gap:
                texts.append(gap)
        key, vstart = m.group(1), m.end()
        if vstart < n and body[vstart] == '"':
            got = read_quoted(body, vstart)
            if got is not None:
                value, i = got
                fields.setdefault(key, value)
                continue
        end = keys[j + 1].start() if j < last else n
        value = body[vstart:end].strip().rstrip(",")
        k = value.find(", ")
        if k > 0 and BARE_OK.match(value, 0, k):
            rest = value[k + 2:].strip()
            if rest:
                texts.append(rest)
                flags |= FREE_TEXT
            value = value[:k]
        fields.setdefault(key, value)
        i = end
    if i < n:
        tail = body[i:].strip().strip(",").strip()
        if tail:
            texts.append(tail)
    return fields, texts, flags


def attribute(fields: dict[str, str], text: str) -> int:
    """Give an unstructured record the id its text names (``id=...`` or a bare
    ``ts_<hex>``); the ``BARE_ID`` flag when one was found."""
    if "id" in fields:
        return 0
    m = _ID_IN_TEXT.search(text) if "id=" in text else None
    sid = m.group(1) if m else bare_id(text)
    if sid is None:
        return 0
    fields["id"] = sid
    return BARE_ID


def _lenient_event(body: str) -> tuple[dict[str, str], int]:
    """The fields of an ``event: ...`` message whose body is not strict."""
    fields, texts, flags = parse_fields_lenient(body)
    if not fields:
        return {"msg": body}, LENIENT
    if texts:
        fields.setdefault("msg", ", ".join(texts))
    return fields, flags | LENIENT


def _free_message(msg: str) -> tuple[str, dict[str, str], int]:
    """A message that does not start with an event name: ``metric`` or ``unstructured``."""
    strict = parse_fields(msg)
    if strict is not None:  # key=value pairs only: a metric line
        return METRIC, strict, METRIC_FLAG | attribute(strict, msg)
    fields, texts, flags = parse_fields_lenient(msg)
    if fields and not texts:
        return METRIC, fields, LENIENT | METRIC_FLAG | attribute(fields, msg)
    fields.pop("msg", None)
    fields["msg"] = msg
    return UNSTRUCTURED, fields, UNSTRUCTURED_FLAG | flags | attribute(fields, msg)


def parse_message(msg: str) -> tuple[str, dict[str, str], int]:
    """(event, fields, dialect flags) of a message (the text after `` - LEVEL - ``, or a
    JSON line's message)."""
    em = MESSAGE_EVENT_RE.match(msg)
    if em:
        body = em.group(2) or ""
        fields = parse_fields(body)
        if fields is not None:
            return em.group(1), fields, 0
        fields, flags = _lenient_event(body)
        return em.group(1), fields, flags
    return _free_message(msg)


def parse(line: str) -> Record | None:
    """One physical line to a Record, or None when it is not a record at all."""
    line = line.rstrip("\r\n")
    if line.startswith("{"):
        return parse_json(line)
    m = HEAD_RE.match(line)
    if not m:
        return None
    ts, logger, level, msg = m.groups()
    flags = 0
    if level not in _LEVELS:
        if level not in _HEAD_LEVELS:
            return None
        level = norm_level(level)
        flags = LEVEL_ALIAS
    em = MESSAGE_EVENT_RE.match(msg)  # parse_message, inline (the common case)
    if em:
        body = em.group(2) or ""
        fields = parse_fields(body)
        if fields is None:
            fields, f = _lenient_event(body)
            flags |= f
        return Record(ts, logger, level, em.group(1), fields, [], flags)
    event, fields, f = _free_message(msg)
    return Record(ts, logger, level, event, fields, [], flags | f)


def _text(v: object) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def parse_json(line: str) -> Record | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    return from_json(obj)


def from_json(obj: dict[str, object]) -> Record | None:
    """A JSON object as a record, in any of the conventions of ``jsonkeys``; None
    without a time or a level."""
    conv = jsonkeys.convention(obj)
    if conv == JSON_OWN and "ts" in obj:  # ttsops' own keys only: every other is a field
        ts, level = obj.pop("ts"), obj.pop("level", None)
        logger = obj.pop("logger", None) or ""
        message: object = obj.pop("event", "") or ""
        tb: object = obj.pop("traceback", None) or []
    else:
        ts = jsonkeys.pop_first(obj, jsonkeys.TIME_KEYS)
        level = jsonkeys.pop_first(obj, jsonkeys.LEVEL_KEYS)
        logger = jsonkeys.pop_first(obj, jsonkeys.LOGGER_KEYS) or ""
        message = jsonkeys.pop_first(obj, jsonkeys.MESSAGE_KEYS[conv]) or ""
        tb = jsonkeys.pop_first(obj, jsonkeys.TRACEBACK_KEYS) or []
    lvl = json_level(level)
    if ts is None or isinstance(ts, dict | list) or lvl is None:
        return None
    flags = conv
    fields = {str(k): _text(v) for k, v in obj.items() if v is not None}
    text = _text(message)
    if conv == JSON_OWN and (not text or EVENT_RE.match(text)):
        event = text
    else:
        event, mfields, f = parse_message(text)
        if f & BARE_ID and "id" in fields:  # a key of the line names the id: it wins
            del mfields["id"]
            f &= ~BARE_ID
        flags |= f
        if mfields:  # the message's own fields first, as in a text line
            fields = {**mfields, **{k: v for k, v in fields.items() if k not in mfields}}
    if not isinstance(tb, list):
        tb = str(tb).splitlines()
    return Record(norm_ts(ts), str(logger), lvl, event, fields, [str(t) for t in tb], flags)


# a line of a traceback written by another writer (no tab before it), chained ones included
FOREIGN_TB = re.compile(r"(Traceback \(most recent call last\):|[ \t]|\w+(\.\w+)*(Error|"
                        r"Exception|Warning|Exit|Interrupt)\b|The above exception was |"
                        r"During handling of the above exception)")


def iter_records(lines: Iterable[str], stats: ReadStats | None = None,
                 parse_line: Callable[[str], Record | None] | None = None) -> Iterator[Record]:
    """Group lines into records: tab-led lines (and foreign traceback lines) attach to
    the record before them; lines that are not records are counted and skipped.
    ``parse_line``: the line parser (default ``parse``; the fast path passes its own,
    which gives the same records)."""
    line_parser = parse_line or parse
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
        rec = line_parser(line)
        if rec is None:
            if cur is not None and line and FOREIGN_TB.match(line):
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
