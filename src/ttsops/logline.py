"""The log grammar, kept importable under its old name: everything lives in
``ttsops.logformat`` (one package for the writer, every reader and the simulator)."""

from __future__ import annotations

from .logformat import (
    ERROR_LEVELS,
    EVENT_RE,
    FOREIGN_TB,
    KEY_RE,
    LEVELS,
    LOGGER_RE,
    RESERVED,
    STAGES,
    TS_LEN,
    ReadStats,
    Record,
    escape_tb,
    iter_records,
    parse,
    parse_fields,
    parse_fields_lenient,
    parse_json,
    parse_message,
    quote,
    render,
    render_fields,
    render_json,
    to_number,
    unescape_tb,
)

_FOREIGN_TB = FOREIGN_TB  # the name the readers used

__all__ = ["ERROR_LEVELS", "EVENT_RE", "FOREIGN_TB", "KEY_RE", "LEVELS", "LOGGER_RE",
           "RESERVED", "STAGES", "TS_LEN", "ReadStats", "Record", "escape_tb", "iter_records",
           "parse", "parse_fields", "parse_fields_lenient", "parse_json", "parse_message",
           "quote", "render", "render_fields", "render_json", "to_number", "unescape_tb"]
