"""Unit suffixes: a field value that is a number then a unit (``120ms``, ``3.5 s``,
``80%``), whose leading number the reader takes where a number is wanted. ``logs check``
counts the records that hold one (``dialect``); the sidecar keeps that as a flag per
record (``units``), so the count needs no field values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

UNIT = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?\s?(?:[A-Za-z]{1,8}|%)\Z")
UNIT_NUM = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")


def unit_value(fields: Mapping[str, str]) -> tuple[str, str, float] | None:
    """The record's first field whose value has a unit suffix: (key, value, its leading
    number); None when none has."""
    for k, v in fields.items():
        num = UNIT_NUM.match(v) if v[:1].isdigit() and not v[-1:].isdigit() \
            and UNIT.match(v) else None
        if num is not None:
            return k, v, float(num[0])
    return None


def has_unit(fields: Mapping[str, str]) -> bool:
    return unit_value(fields) is not None
