"""The event API: one call per event, fields as keyword arguments.

    log = get_logger("ttsops.pipeline")
    log.info("synthesis_start", id=sid, text_len=12, cache_hit=False)
    log.error("synthesis_failed", id=sid, error_code="SCIPY_FFT_INVALID", exc=err)

The current request's ``request_id`` and ``trace_id`` (and ``id`` when bound) are added
from context variables, first in the line, so that the seed's
``sed -r 's/.*id=([^,]+),.*/\\1/'`` still extracts the synthesis id. Emitting only
formats values and puts a tuple on the sink's queue; rendering and disk I/O happen on the
sink's writer thread.
"""

from __future__ import annotations

import logging
import time
import traceback as tb_mod
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Protocol

from .logformat.record import KEY_RE, LEVELS, RESERVED

LEVEL_NO = {name: i for i, name in enumerate(LEVELS)}
CONTEXT_KEYS = ("request_id", "trace_id", "id")

# An emitted item: (unix time, logger, level, event, fields, traceback lines); field
# values are str, int, float, bool or None until the writer formats them (format_fields).
Item = tuple[float, str, str, str, dict[str, Any], list[str]]


class Sink(Protocol):
    def submit(self, item: Item) -> None: ...


class NullSink:
    def submit(self, item: Item) -> None:
        pass


class ListSink:
    """Keeps items in memory, values formatted as the writer would (tests)."""

    def __init__(self) -> None:
        self.items: list[Item] = []

    def submit(self, item: Item) -> None:
        t, logger, level, event, fields, tb = item
        self.items.append((t, logger, level, event, format_fields(fields), tb))


_sink: Sink = NullSink()
_min_level = LEVEL_NO["INFO"]
_ctx: ContextVar[dict[str, str] | None] = ContextVar("ttsops_log_ctx", default=None)


def set_sink(sink: Sink, level: str = "INFO") -> Sink:
    """Route all events to ``sink``; returns the previous sink."""
    global _sink, _min_level
    prev, _sink = _sink, sink
    _min_level = LEVEL_NO[level]
    return prev


def get_sink() -> Sink:
    return _sink


class context:  # lower case: used as ``with events.context(...)``, as before
    """Bind request_id / trace_id / id to every event emitted inside the block.

    A class rather than a ``@contextmanager`` generator: it is entered twice on every
    request (1 us each here against 6 us)."""

    __slots__ = ("_token", "_values")

    def __init__(self, **values: Any) -> None:
        self._values = values

    def __enter__(self) -> None:
        self._token = _ctx.set(_merged(self._values))

    def __exit__(self, *exc: object) -> None:
        _ctx.reset(self._token)


def bind(**values: Any) -> None:
    """Add values to the current context (for the rest of this task/thread's context)."""
    _ctx.set(_merged(values))


def _merged(values: dict[str, Any]) -> dict[str, str]:
    """The current context updated with ``values``, request_id/trace_id/id first."""
    for k in values:
        if k not in _valid_keys:
            _check_key(k)
    new = {k: v if type(v) is str else fmt(v) for k, v in values.items() if v is not None}
    cur = _ctx.get()
    merged = {**cur, **new} if cur else new
    ordered = {k: merged[k] for k in CONTEXT_KEYS if k in merged}
    if len(ordered) != len(merged):  # the others after them, in their order
        ordered.update(merged)
    return ordered


def bound() -> dict[str, str]:
    """The values bound in this context (read only: do not change the dict)."""
    return _ctx.get() or {}


def current(key: str) -> str | None:
    return (_ctx.get() or {}).get(key)


def fmt(value: Any) -> str:
    """A field value as text: booleans as true/false, floats in %.6g."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(value, ".6g")
    return str(value)


def format_traceback(exc: BaseException) -> list[str]:
    """Traceback lines, one per physical line; an exception's own message (which may hold
    user input with newlines) stays on one line, its newlines escaped by the renderer."""
    lines: list[str] = []
    for chunk in tb_mod.format_exception(type(exc), exc, exc.__traceback__):
        if chunk.startswith("  File ") or chunk.startswith("Traceback ") or \
                chunk.startswith("\nDuring handling") or chunk.startswith("\nThe above"):
            lines.extend(x for x in chunk.rstrip("\n").split("\n") if x)
        else:
            lines.append(chunk.rstrip("\n"))
    return lines


def where(exc: BaseException) -> str:
    """``module:function:line`` of the innermost frame that raised ``exc``."""
    tb: TracebackType | None = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return "unknown:unknown:0"
    frame = last.tb_frame
    module = frame.f_globals.get("__name__", "?")
    return f"{module}:{frame.f_code.co_name}:{last.tb_lineno}"


_valid_keys: set[str] = set()


def _check_key(k: str) -> None:
    if k in RESERVED or not KEY_RE.match(k):
        raise ValueError(f"invalid log field name {k!r}")
    _valid_keys.add(k)


def format_fields(fields: dict[str, Any]) -> dict[str, str]:
    """Field values as text, None dropped (run by the writer thread, not the request)."""
    return {k: v if type(v) is str else fmt(v) for k, v in fields.items() if v is not None}


def emit(level: str, logger: str, event: str, fields: dict[str, Any],
         exc: BaseException | None = None) -> None:
    """Queue one record. Cheap on purpose: values are formatted by the writer thread;
    only values that are not str/int/float/bool are turned into text here, so that a
    mutable object cannot change after the event."""
    if LEVEL_NO[level] < _min_level:
        return
    if not _valid_keys.issuperset(fields):  # set operations in C: the common case
        for k in fields:
            if k not in _valid_keys:
                _check_key(k)
    if not _IMMUTABLE.issuperset(map(type, fields.values())):
        for k, v in fields.items():
            if type(v) not in _IMMUTABLE:
                fields[k] = fmt(v)
    ctx = _ctx.get()
    if ctx:
        fields = {**ctx, **fields}
    if exc is not None:
        fields.setdefault("exc_type", type(exc).__name__)
        fields.setdefault("where", where(exc))
        tb = format_traceback(exc)
    else:
        tb = []
    _sink.submit((time.time(), logger, level, event, fields, tb))


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


class EventLogger:
    """Emits events under one logger name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def debug(self, event: str, **fields: Any) -> None:
        emit("DEBUG", self.name, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        emit("INFO", self.name, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        emit("WARNING", self.name, event, fields)

    def error(self, event: str, exc: BaseException | None = None, **fields: Any) -> None:
        emit("ERROR", self.name, event, fields, exc)

    def log(self, level: str, event: str, exc: BaseException | None = None,
            **fields: Any) -> None:
        emit(level, self.name, event, fields, exc)


def get_logger(name: str) -> EventLogger:
    return EventLogger(name)


class StdlibBridge(logging.Handler):
    """Routes records of the standard ``logging`` module (uvicorn, libraries) through the
    same sink as ``log`` events with a ``msg`` field."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = record.levelname if record.levelname in LEVEL_NO else "INFO"
            exc = record.exc_info[1] if record.exc_info else None
            emit(level, record.name, "log", {"msg": record.getMessage()}, exc)
        except Exception:  # a log handler must never raise into the caller
            self.handleError(record)


def install_stdlib_bridge(level: int = logging.INFO,
                          loggers: tuple[str, ...] = ("", "uvicorn", "uvicorn.error")) -> None:
    handler = StdlibBridge(level)
    for name in loggers:
        lg = logging.getLogger(name)
        lg.handlers = [handler]
        lg.setLevel(level)
        lg.propagate = name == ""
    logging.getLogger("uvicorn.access").disabled = True  # our http_request replaces it
    logging.captureWarnings(True)
