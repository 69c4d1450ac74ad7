"""JSON lines: which keys hold the time, level, logger, message and traceback, in the
conventions of ttsops' own writer, structlog and the stdlib (python-json-logger).

==========  ==============================  ==========  ==================  ================
convention  time                            level       message             traceback
==========  ==============================  ==========  ==================  ================
ttsops      ``ts``                          ``level``   ``event`` (a name)  ``traceback`` []
structlog   ``timestamp``                   ``level``   ``event`` (text)    ``exception``
stdlib      ``asctime`` (or ``timestamp``,  ``levelname``  ``message``      ``exc_info``,
            ``created``)                                                    ``stack_info``
==========  ==============================  ==========  ==================  ================

The convention is decided per line (``convention``). A structlog or stdlib message is
read with the record grammar (``synthesis_start: id=ts_1, ...`` gives the event and its
fields; the line's other keys are fields too).
"""

from __future__ import annotations

from .record import JSON_OWN, JSON_STDLIB, JSON_STRUCTLOG

TIME_KEYS = ("ts", "timestamp", "asctime", "time", "@timestamp", "created")
LEVEL_KEYS = ("level", "levelname", "severity", "log_level")
LOGGER_KEYS = ("logger", "name", "logger_name")
TRACEBACK_KEYS = ("traceback", "exception", "exc_info", "exc_text", "stack_info")
MESSAGE_KEYS = {JSON_OWN: ("event",), JSON_STRUCTLOG: ("event",),
                JSON_STDLIB: ("message", "msg")}
NAMES = {JSON_OWN: "JSON (ttsops keys: ts, logger, level, event)",
         JSON_STRUCTLOG: "JSON (structlog keys: timestamp, level, event)",
         JSON_STDLIB: "JSON (stdlib / python-json-logger keys: asctime, name, levelname, "
                      "message)"}


OWN_KEYS = ("ts", "level", "event")  # all three: ttsops' own line, read by its keys only


def convention(obj: dict[str, object]) -> int:
    """``JSON_OWN``, ``JSON_STRUCTLOG`` or ``JSON_STDLIB`` for one JSON object."""
    if all(k in obj for k in OWN_KEYS):
        return JSON_OWN
    if "levelname" in obj or "asctime" in obj or ("message" in obj and "event" not in obj):
        return JSON_STDLIB
    if "event" in obj:
        return JSON_STRUCTLOG
    return JSON_OWN


def pop_first(obj: dict[str, object], keys: tuple[str, ...]) -> object:
    """The value of the first of ``keys`` the object has (removed from it), or None."""
    for k in keys:
        if k in obj:
            v = obj.pop(k)
            if v is not None and v != "":
                return v
    return None
