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

from .knobrows import KNOBS, PREFIX, Knob

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["KNOBS", "PREFIX", "Knob", "SettingError", "check", "describe", "value"]


class SettingError(ValueError):
    """``invalid setting: TTSOPS_NAME='value': why`` (one line per bad value)."""


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
