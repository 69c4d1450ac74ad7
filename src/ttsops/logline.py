"""The log grammar: ``render()`` and ``parse()``, used by the writer and the reader alike.

Text form (one physical line per record; traceback lines follow, each starting with a tab)::

    2024-06-12 14:22:38,415 - app.tts_engine - INFO - synthesis_complete: id=ts_7f, status=success

* ``TIMESTAMP - LOGGER - LEVEL - EVENT: key=value, key=value``
* keys match ``[a-z_][a-z0-9_]*``; a value is bare unless it is empty or holds a space,
  comma, quote, ``=``, backslash or any character that could end or disguise a line;
  then it is double-quoted with ``\\" \\\\ \\n \\r \\t \\uXXXX`` escapes.
* JSON form: one object per line with ``ts, logger, level, event``, the fields, and
  ``traceback`` (a list) when present. ``parse`` detects the form per line.

``parse`` is lenient with lines it did not write: values with spaces run up to the next
``, key=``; free-text messages become ``event=""`` with a ``msg`` field; a line that is
not a record at all gives ``None`` (the reader counts it).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
RESERVED = frozenset({"ts", "logger", "level", "event", "traceback"})
KEY_RE = re.compile(r"[a-z_][a-z0-9_]*\Z")
EVENT_RE = re.compile(r"[a-z_][a-z0-9_]*\Z")
LOGGER_RE = re.compile(r"[A-Za-z0-9_.\-]+\Z")
# the five pipeline stages, in order: the ``stage`` of every ``stage_time`` record
STAGES: tuple[str, ...] = ("text_normalize", "llm_prompt_gen", "llm_inference", "llm_postproc",
                           "audio_render")
TS_LEN = 23  # "YYYY-MM-DD HH:MM:SS,mmm"

_HEAD_RE = re.compile(
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - ([^ ]+) - (DEBUG|INFO|WARNING|ERROR|CRITICAL)"
    r" - (.*)\Z", re.S)
_EVENT_RE = re.compile(r"([a-z_][a-z0-9_]*)(?::(?: (.*))?)?\Z", re.S)
_BARE_OK = re.compile(r"[^\s,\"=\\\x00-\x1f\x7f-\x9f\u2028\u2029]+\Z")
_KEY_AT = re.compile(r"([a-z_][a-z0-9_]*)=")
_LENIENT_KEY = re.compile(r"(?:^|, ?)([a-z_][a-z0-9_]*)=")


@dataclass(slots=True)
class Record:
    ts: str
    logger: str
    level: str
    event: str
    fields: dict[str, str] = field(default_factory=dict)
    traceback: list[str] = field(default_factory=list)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.fields.get(key, default)

    def num(self, key: str) -> float | None:
        """The leading number of a field (``86 chars`` -> 86.0), or None."""
        return to_number(self.fields.get(key))


_NUM_RE = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def to_number(value: str | None) -> float | None:
    if value is None:
        return None
    m = _NUM_RE.match(value)
    return float(m.group(1)) if m else None


# --- escaping ---------------------------------------------------------------------

_ESC_CATS = frozenset({"Cs", "Zl", "Zp", "Cf", "Co", "Cn"})


def _needs_escape(ch: str) -> bool:
    """Control, format (bidi, zero-width), line/paragraph separators, lone surrogates,
    private-use and unassigned code points (noncharacters such as U+FFFF included):
    nothing that a terminal or editor shows as nothing, or as something else."""
    o = ord(ch)
    if o < 0x20 or 0x7F <= o <= 0x9F:
        return True
    return o >= 0xAD and unicodedata.category(ch) in _ESC_CATS


# ',' and '=' are escaped too, so that naive tools (awk -F', ', sed 's/.*id=...') can never
# see a field boundary or a key inside a quoted value.
_SIMPLE = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
           ",": "\\u002c", "=": "\\u003d"}


def _escape_char(ch: str) -> str:
    o = ord(ch)
    return f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"


def quote(value: str) -> str:
    """A value as it appears after ``key=``: bare when safe, quoted and escaped otherwise."""
    if value.isascii() and value.isalnum():  # fast path: numbers, words, codes
        return value
    if value and _BARE_OK.match(value) and (value.isprintable()
                                             or not any(map(_needs_escape, value))):
        return value
    out = ['"']
    for ch in value:
        rep = _SIMPLE.get(ch)
        if rep is not None:
            out.append(rep)
        elif not ch.isprintable() and _needs_escape(ch):
            out.append(_escape_char(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _unescape_at(s: str, i: int) -> tuple[str, int]:
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


def _read_quoted(s: str, i: int) -> tuple[str, int] | None:
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
        text, j = _unescape_at(s, k)
        out.append(text)
    return None


_KEYLIKE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def escape_tb(line: str) -> str:
    """A traceback line made safe to follow a tab: no line breaks, no control chars, and
    no ``key=`` (an ``=`` right after a letter, digit or ``_`` is written ``\\u003d``), so
    that an exception message holding user input (``x, request_id=VICTIM``) makes no
    field for ``awk -F', '`` or ``grep request_id=``; ``unescape_tb`` restores it."""
    if "\\" not in line and "=" not in line and \
            not any(_needs_escape(c) for c in line if c != "\t"):
        return line
    out: list[str] = []
    prev = ""  # the last character written (an escape like \\u000a ends in a letter)
    for ch in line:
        if ch == "\\":
            rep = "\\\\"
        elif ch == "=" and prev in _KEYLIKE:
            rep = "\\u003d"
        elif ch != "\t" and _needs_escape(ch):
            rep = _escape_char(ch)
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
        text, i = _unescape_at(line, j)
        out.append(text)
    return "".join(out)


# --- rendering --------------------------------------------------------------------

def render_fields(fields: dict[str, str]) -> str:
    return ", ".join(f"{k}={quote(v)}" for k, v in fields.items())


def render(rec: Record, fmt: str = "text") -> str:
    """The record as text: its line, then one tab-led line per traceback line."""
    if fmt == "json":
        return render_json(rec)
    head = f"{rec.ts} - {rec.logger} - {rec.level} - {rec.event}:"
    if rec.fields:
        head += " " + render_fields(rec.fields)
    if rec.traceback:
        return head + "".join("\n\t" + escape_tb(t) for t in rec.traceback)
    return head


_JSON_UNSAFE = re.compile("[\ud800-\udfff\u2028\u2029\x85]")


def render_json(rec: Record) -> str:
    obj: dict[str, object] = {"ts": rec.ts, "logger": rec.logger, "level": rec.level,
                              "event": rec.event}
    obj.update(rec.fields)
    if rec.traceback:
        obj["traceback"] = rec.traceback
    text = json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# --- parsing ----------------------------------------------------------------------

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
            got = _read_quoted(body, i)
            if got is None:
                return None
            value, i = got
        else:
            j = body.find(", ", i)
            j = n if j < 0 else j
            value = body[i:j]
            if not value or not _BARE_OK.match(value):
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


def parse_fields_lenient(body: str) -> dict[str, str]:
    """Whatever ``k=v`` pairs can be found; values run to the next ``, key=``."""
    fields: dict[str, str] = {}
    starts = [m for m in _LENIENT_KEY.finditer(body)]
    # keep only key= occurrences that are not inside a quoted value
    i = 0
    for m in starts:
        if m.start() < i:
            continue
        key, vstart = m.group(1), m.end()
        if vstart < len(body) and body[vstart] == '"':
            got = _read_quoted(body, vstart)
            if got is not None:
                value, i = got
                fields.setdefault(key, value)
                continue
        nxt = _LENIENT_KEY.search(body, vstart)
        end = nxt.start() if nxt else len(body)
        fields.setdefault(key, body[vstart:end].strip().rstrip(","))
        i = end
    return fields


def parse(line: str) -> Record | None:
    """One physical line to a Record, or None when it is not a record at all."""
    line = line.rstrip("\r\n")
    if line.startswith("{"):
        return parse_json(line)
    m = _HEAD_RE.match(line)
    if not m:
        return None
    ts, logger, level, msg = m.groups()
    em = _EVENT_RE.match(msg)
    if em:
        event, body = em.group(1), em.group(2) or ""
        fields = parse_fields(body)
        if fields is None:
            fields = parse_fields_lenient(body) or {"msg": body}
        return Record(ts, logger, level, event, fields)
    # free text, e.g. "ERROR: failed to load model" or "text: k=v with spaces"
    head, sep, rest = msg.partition(": ")
    if sep and EVENT_RE.match(head):
        return Record(ts, logger, level, head, parse_fields_lenient(rest) or {"msg": rest})
    fields = parse_fields_lenient(msg)
    fields.setdefault("msg", msg)
    return Record(ts, logger, level, "", fields)


def parse_json(line: str) -> Record | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    ts = obj.pop("ts", None) or obj.pop("timestamp", None) or obj.pop("time", None)
    level = obj.pop("level", None) or obj.pop("levelname", None)
    if not isinstance(ts, str) or not isinstance(level, str):
        return None
    logger = obj.pop("logger", None) or obj.pop("name", "") or ""
    event = obj.pop("event", "") or ""
    tb = obj.pop("traceback", None) or []
    if not isinstance(tb, list):
        tb = str(tb).splitlines()
    fields = {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
              for k, v in obj.items()}
    return Record(ts, str(logger), level.upper(), str(event), fields, [str(t) for t in tb])


@dataclass
class ReadStats:
    lines: int = 0
    records: int = 0
    continuation: int = 0
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)

    def skip(self, line: str) -> None:
        self.skipped += 1
        if len(self.skipped_examples) < 5:
            self.skipped_examples.append(line[:200])


_FOREIGN_TB = re.compile(r"(Traceback \(most recent call last\):|[ \t]|\w+(\.\w+)*(Error|"
                         r"Exception|Warning|Exit|Interrupt)\b)")


def iter_records(lines: Iterable[str], stats: ReadStats | None = None) -> Iterator[Record]:
    """Group lines into records: tab-led lines (and foreign traceback lines) attach to
    the record before them; lines that are not records are counted and skipped."""
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
        rec = parse(line)
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
