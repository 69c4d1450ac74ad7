"""The record: what one log line (plus its traceback lines) means, in every dialect."""

from __future__ import annotations

import re

from ..plain import Plain

# the levels a record has once read (aliases such as WARN or FATAL are mapped to these:
# ``dialects.LEVEL_ALIASES``); CRITICAL is a level of its own, counted with the errors
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ERROR_LEVELS = ("ERROR", "CRITICAL")
RESERVED = frozenset({"ts", "logger", "level", "event", "traceback"})
NAME = r"[a-z_][a-z0-9_]*"  # an event name, a field key (every grammar builds on it)
KEY_RE = re.compile(NAME + r"\Z")
EVENT_RE = re.compile(NAME + r"\Z")
LOGGER_RE = re.compile(r"[A-Za-z0-9_.\-]+\Z")
# the five pipeline stages, in order: the ``stage`` of every ``stage_time`` record
STAGES: tuple[str, ...] = ("text_normalize", "llm_prompt_gen", "llm_inference", "llm_postproc",
                           "audio_render")

# what a line was, beyond the grammar ttsops writes (``Record.dialect``, a bit set; the
# reader's answers never depend on it: ``logs check`` reports it)
LENIENT = 1  # fields read leniently (values with spaces, text between fields)
FREE_TEXT = 2  # a value followed by free text: the bare token kept, the text as ``msg``
LEVEL_ALIAS = 4  # WARN, FATAL ... read as WARNING, CRITICAL
UNSTRUCTURED = 8  # a message that is not ``event: key=value, ...``
BARE_ID = 16  # the id taken from a bare ``ts_...`` token of the text
JSON_OWN = 32  # JSON lines: ttsops' keys (ts, logger, level, event)
JSON_STDLIB = 64  # JSON lines: python-json-logger / stdlib keys (asctime, name, levelname, message)
JSON_STRUCTLOG = 128  # JSON lines: structlog keys (timestamp, level, event)
METRIC = 256  # a message of only key=value pairs (``total_duration_ms=523``)


class Record(Plain):
    # dialect: not shown, not compared
    FIELDS = ("ts", "logger", "level", "event", "fields", "traceback")
    __slots__ = (*FIELDS, "dialect")

    def __init__(self, ts: str, logger: str, level: str, event: str,
                 fields: dict[str, str] | None = None, traceback: list[str] | None = None,
                 dialect: int = 0) -> None:
        self.ts = ts
        self.logger = logger
        self.level = level
        self.event = event
        self.fields = {} if fields is None else fields
        self.traceback = [] if traceback is None else traceback
        self.dialect = dialect

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.fields.get(key, default)

    def num(self, key: str) -> float | None:
        """The leading number of a field (``86 chars`` -> 86.0), or None."""
        return to_number(self.fields.get(key))


class ReadStats(Plain):
    """What reading lines found: lines, records, continuation lines, skipped lines (with
    the first few as examples)."""

    FIELDS = ("lines", "records", "continuation", "skipped", "skipped_examples")

    def __init__(self, lines: int = 0, records: int = 0, continuation: int = 0,
                 skipped: int = 0, skipped_examples: list[str] | None = None) -> None:
        self.lines = lines
        self.records = records
        self.continuation = continuation
        self.skipped = skipped
        self.skipped_examples = [] if skipped_examples is None else skipped_examples

    def skip(self, line: str) -> None:
        self.skipped += 1
        if len(self.skipped_examples) < 5:
            self.skipped_examples.append(line[:200])


_NUM_RE = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def to_number(value: str | None) -> float | None:
    """The leading number of a value: a unit after it (``2048 chars``, ``1240ms``,
    ``512MB``, ``92.1%``) is allowed and ignored."""
    if value is None:
        return None
    m = _NUM_RE.match(value)
    return float(m.group(1)) if m else None
