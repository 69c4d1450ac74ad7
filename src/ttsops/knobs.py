"""The settings ``ttsops logs`` reads, declared once and read without pydantic.

These rows are part of the one settings table (``config.Settings`` builds its fields for
them from ``KNOBS``: name, type, default, bounds, help); this module only lets the
click-free query path (``forensics.quick``) read them without importing pydantic, which
costs more than a small query. ``value(name)`` parses the common spellings itself; a value
it does not understand is handed to the table (``config.Settings``), which accepts it or
refuses it with the message every other bad setting gets, raised here as ``SettingError``.
So a value means the same on both paths, and a bad one reads the same
(``tests/test_config.py`` holds the two parsers equal on generated values).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

PREFIX = "TTSOPS_"
_TRUE = ("1", "true", "yes", "on", "t", "y")
_FALSE = ("0", "false", "no", "off", "f", "n")


class SettingError(ValueError):
    """``invalid setting: TTSOPS_NAME='value': why`` (one line per bad value)."""


class Knob:
    """One row of the settings table: ``kind`` is int, float, bool or choice."""

    __slots__ = ("choices", "default", "description", "ge", "gt", "kind", "le", "name")

    def __init__(self, name: str, kind: str, default: Any, description: str, *,
                 ge: float | None = None, gt: float | None = None, le: float | None = None,
                 choices: tuple[str, ...] = ()) -> None:
        self.name, self.kind, self.default, self.description = name, kind, default, description
        self.ge, self.gt, self.le, self.choices = ge, gt, le, choices

    @property
    def env(self) -> str:
        return PREFIX + self.name.upper()

    def parse(self, raw: str) -> Any:
        """The value of a plain spelling, or None when the table must decide."""
        if self.kind == "choice":
            v = raw.strip().lower()
            return v if v in self.choices else None
        if self.kind == "bool":
            v = raw.lower()
            return True if v in _TRUE else False if v in _FALSE else None
        if self.kind == "int":
            if not raw.isascii() or not raw.isdigit():
                return None
            n: float = int(raw)
        else:  # float: plain decimals only ("90", "87.5")
            whole, _, frac = raw.partition(".")
            if not (whole + frac).isascii() or not whole.isdigit() \
                    or not (frac == "" or frac.isdigit()):
                return None
            n = float(raw)
        if (self.ge is not None and n < self.ge) or (self.gt is not None and n <= self.gt) \
                or (self.le is not None and n > self.le):
            return None
        return n


# the logs commands' rows of the table, in its order (config.Settings declares the rest)
KNOBS: dict[str, Knob] = {k.name: k for k in (
    Knob("log_utc", "bool", True, "Timestamps in UTC (false: local time)."),
    Knob("logs_workers", "int", 0, "ttsops logs: threads that read and decompress log "
         "blocks (0: one per CPU, at most 8).", ge=0),
    Knob("logs_vector", "choice", "auto", "ttsops logs: Polars for aggregations that read "
         "whole logs (stages); auto: when the read is large.",
         choices=("auto", "always", "never")),
    Knob("logs_sidecar", "choice", "read", "ttsops logs: read the parsed records of a "
         "rotated file from its Parquet sidecar (written beside it by `logs index`) instead "
         "of the file; auto: also write one to the cache on the first whole read (that read "
         "is slower); off: never.", choices=("auto", "read", "off")),
    Knob("logs_progress_bytes", "int", 48 << 20, "ttsops logs: show a progress bar (on a "
         "terminal) when a query reads more compressed bytes than this.", ge=0),
    Knob("cache_disk_warn_percent", "float", 90.0, "cache_dir_usage WARNING above this "
         "disk usage (%).", gt=0, le=100),
)}

_values: dict[tuple[str, str | None], Any] = {}


def value(name: str) -> Any:
    """The setting ``name`` from the environment (its default when unset)."""
    knob = KNOBS[name]
    raw = os.environ.get(knob.env)
    key = (name, raw)
    if key in _values:
        return _values[key]
    got = knob.default if raw is None else knob.parse(raw)
    if got is None:
        got = _from_table(name)
    _values[key] = got
    return got


def check() -> None:
    """Every row above read once: a bad value raises ``SettingError`` before any work."""
    for name in KNOBS:
        value(name)


def _from_table(name: str) -> Any:
    """The table's own answer for a spelling ``Knob.parse`` leaves to it."""
    from pydantic import ValidationError

    from .config import Settings

    knob = KNOBS[name]
    try:
        blank = Settings.model_construct()  # defaults, nothing read from the environment
        Settings.__pydantic_validator__.validate_assignment(blank, name, os.environ[knob.env])
        return getattr(blank, name)
    except ValidationError as e:
        raise SettingError(describe(e)) from None


def describe(e: Any) -> str:
    """A pydantic ValidationError of the settings as one line naming each variable."""
    lines = []
    for err in e.errors():
        field = str(err["loc"][0]) if err.get("loc") else "?"
        lines.append(f"{PREFIX}{field.upper()}={err.get('input')!r}: {err['msg']}")
    return "invalid setting: " + "; ".join(lines)
