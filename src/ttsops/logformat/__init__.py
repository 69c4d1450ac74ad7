"""The log contract: one grammar for the writer (``logsink``, ``events``), every reader
(line by line, the fast byte path, the vectorised Polars path, the index) and the
simulator, with the dialects of logs written by other code handled once.

Modules, one job each: ``record`` (the Record, levels, stages), ``escape`` (quoting),
``render`` (the writer's text and JSON forms), ``parse`` (lines to records), ``jsonkeys``
(JSON key conventions), ``dialects`` (level aliases, unstructured lines, cumulative
stage times), ``timestamps`` (the timestamp, formatted and normalised), ``names`` (the
files of a log directory), ``heads`` (the record head as regular expressions for the
fast paths).
"""

from __future__ import annotations

from .escape import escape_tb, quote, unescape_tb
from .parse import (
    FOREIGN_TB,
    ReadStats,
    iter_records,
    parse,
    parse_fields,
    parse_fields_lenient,
    parse_json,
    parse_message,
)
from .record import (
    ERROR_LEVELS,
    EVENT_RE,
    KEY_RE,
    LEVELS,
    LOGGER_RE,
    RESERVED,
    STAGES,
    Record,
    to_number,
)
from .render import render, render_fields, render_json
from .timestamps import TS_LEN

__all__ = ["ERROR_LEVELS", "EVENT_RE", "FOREIGN_TB", "KEY_RE", "LEVELS", "LOGGER_RE",
           "RESERVED", "STAGES", "TS_LEN", "ReadStats", "Record", "escape_tb", "iter_records",
           "parse", "parse_fields", "parse_fields_lenient", "parse_json", "parse_message",
           "quote", "render", "render_fields", "render_json", "to_number", "unescape_tb"]
