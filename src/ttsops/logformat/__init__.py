"""The log contract: one grammar for the writer (``logsink``, ``events``), every reader
(line by line, the fast byte path, the vectorised Polars path, the index) and the
simulator, with the dialects of logs written by other code handled once.

Modules, one job each: ``record`` (the Record, levels, stages), ``escape`` (quoting),
``render`` (the writer's text and JSON forms), ``parse`` (lines to records), ``jsonkeys``
(JSON key conventions), ``dialects`` (level aliases, unstructured lines, cumulative
stage times), ``timestamps`` (the timestamp, formatted and normalised), ``names`` (the
files of a log directory), ``heads`` (the record head as regular expressions for the
fast paths), ``fastparse`` (the line parser's fast path for the canonical form).
"""

from __future__ import annotations

import sys
import types

TYPE_CHECKING = False  # typing is not imported at run time (start-up)

if TYPE_CHECKING:  # what the lazy names below are, for type checkers
    from .escape import escape_tb, quote, unescape_tb
    from .parse import (
        FOREIGN_TB,
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
        ReadStats,
        Record,
        to_number,
    )
    from .render import render, render_fields, render_json
    from .timestamps import TS_LEN

# names -> the module that defines them, imported when first asked for (a reader that
# needs only the record or the read counters does not load the JSON and text grammars)
_WHERE = {
    "escape_tb": "escape", "quote": "escape", "unescape_tb": "escape",
    "FOREIGN_TB": "parse", "ReadStats": "record", "iter_records": "parse", "parse": "parse",
    "parse_fields": "parse", "parse_fields_lenient": "parse", "parse_json": "parse",
    "parse_message": "parse",
    "ERROR_LEVELS": "record", "EVENT_RE": "record", "KEY_RE": "record", "LEVELS": "record",
    "LOGGER_RE": "record", "RESERVED": "record", "STAGES": "record", "Record": "record",
    "to_number": "record",
    "render": "render", "render_fields": "render", "render_json": "render",
    "TS_LEN": "timestamps",
}


def __getattr__(name: str) -> object:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


class _Package(types.ModuleType):
    """This package: when a submodule named like one of its functions (``parse``,
    ``render``) is imported, the import system binds the submodule to the package's name;
    the function of that name is bound instead, as the eager imports did."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = ["ERROR_LEVELS", "EVENT_RE", "FOREIGN_TB", "KEY_RE", "LEVELS", "LOGGER_RE",
           "RESERVED", "STAGES", "TS_LEN", "ReadStats", "Record", "escape_tb", "iter_records",
           "parse", "parse_fields", "parse_fields_lenient", "parse_json", "parse_message",
           "quote", "render", "render_fields", "render_json", "to_number", "unescape_tb"]
