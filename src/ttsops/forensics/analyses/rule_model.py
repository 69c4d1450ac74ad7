"""What an alert rule is (``Rule``; its kinds and severities) and how the settings of a
rules file are read (conditions, durations, numbers: a bad value is a ``RuleError`` that
names the file, rule and key). ``rules`` loads the files and evaluates the rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ...logline import Record
from ..reading.filters import Cond, FilterError, matches, parse_where, with_pseudo
from ..reading.timeargs import TimeArgError, duration_s

KINDS = ("match", "count", "consecutive", "rate", "percentile")
SEVERITIES = ("info", "warning", "critical")
DEFAULT_RULES = "default_rules.toml"


class RuleError(ValueError):
    """A rules file that cannot be used (the message names the file, rule and key)."""


@dataclass
class Rule:
    name: str
    kind: str
    severity: str = "warning"
    message: str = ""
    event: str | None = None
    level: str | None = None
    select: list[Cond] = field(default_factory=list)
    where: list[Cond] = field(default_factory=list)
    count: int = 1
    within_s: float = 600.0
    over_s: float = 300.0
    above: float = 0.0
    min_count: int = 1
    field: str = ""
    q: float = 95.0
    quiet_s: float = 600.0
    resolve_s: float | None = None  # false this long ends an episode [default: the window]

    @property
    def hold_s(self) -> float:
        if self.resolve_s is not None:
            return self.resolve_s
        if self.kind in ("rate", "percentile"):  # these waver around their threshold
            return self.over_s
        if self.kind in ("count", "consecutive"):
            return self.within_s
        return 0.0

    def selects(self, rec: Record) -> bool:
        if self.event is not None and rec.event != self.event:
            return False
        if self.level is not None and rec.level != self.level and not (
                self.level == "ERROR" and rec.level == "CRITICAL"):  # counted with errors
            return False
        return not self.select or matches(self.select, fields_of(rec))

    def describe(self) -> str:
        sel = " ".join(x for x in (self.event or "", self.level or "",
                                   " and ".join(map(str, self.select))) if x) or "any record"
        cond = " and ".join(map(str, self.where))
        if self.kind == "match":
            return f"{sel} with {cond or 'anything'}"
        if self.kind == "count":
            return f">= {self.count} x {sel} with {cond} within {dur(self.within_s)}"
        if self.kind == "consecutive":
            return f"{self.count} consecutive {sel} with {cond} within {dur(self.within_s)}"
        if self.kind == "rate":
            return f"share of {sel} with {cond} > {self.above:g} over {dur(self.over_s)}"
        return f"p{self.q:g} of {self.field} of {sel} > {self.above:g} over {dur(self.over_s)}"

    def literals(self) -> tuple[str, ...] | None:
        """A literal every record this rule reacts to contains (for the pre-filter), or
        None when there is none."""
        if self.event:
            return (self.event,)
        for c in (*self.where, *self.select):
            if c.op == "=" and c.value and c.field not in ("level", "ts", "hour", "day",
                                                           "minute", "logger", "event"):
                return (c.value,)
        return None


def dur(s: float) -> str:
    from ..reading.timeargs import human_duration

    return human_duration(s)


def fields_of(rec: Record) -> dict[str, str]:
    return with_pseudo(rec.ts, rec.level, rec.event, rec.logger, rec.fields)


class View:
    """``fields_of(rec)`` for conditions (which only ``get``), without copying the fields:
    a record's own field first, then the pseudo fields of ``filters.with_pseudo``."""

    __slots__ = ("rec",)

    def __init__(self, rec: Record) -> None:
        self.rec = rec

    def get(self, key: str, default: str | None = None) -> str | None:
        rec = self.rec
        v = rec.fields.get(key)
        if v is not None:
            return v
        if key == "ts":
            return rec.ts
        if key == "level":
            return rec.level
        if key == "event":
            return rec.event
        if key == "logger":
            return rec.logger
        if key == "day":
            return rec.ts[:10]
        if key == "hour":
            return rec.ts[:13]
        if key == "minute":
            return rec.ts[:16]
        return default


def conds(v: Any, where: str) -> list[Cond]:
    if v is None:
        return []
    if not isinstance(v, str | list) or not all(isinstance(x, str) for x in
                                                 ([v] if isinstance(v, str) else v)):
        raise RuleError(f"{where}: conditions must be a string or a list of strings, "
                        f"not {v!r}")
    items = [v] if isinstance(v, str) else list(v)
    try:
        return parse_where([str(x) for x in items])
    except FilterError as e:
        raise RuleError(f"{where}: {e}") from None


def seconds(v: Any, where: str) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    try:
        return duration_s(str(v))
    except TimeArgError as e:
        raise RuleError(f"{where}: {e}") from None


def int_setting(r: dict[str, Any], key: str, default: int, where: str) -> int:
    """An integer setting (``3`` or ``"3"``); anything else refused, the key named."""
    v = r.get(key, default)
    if isinstance(v, str) and re.fullmatch(r"\s*[+-]?\d+\s*", v):
        return int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise RuleError(f"{where}: {key} must be a whole number, not {v!r}")
    return v
