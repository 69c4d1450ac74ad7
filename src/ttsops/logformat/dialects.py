"""What other code writes differently, handled once for every read path.

* **Level aliases**: ``WARN`` is WARNING; ``FATAL`` is CRITICAL. CRITICAL stays a level of
  its own and is counted with the errors everywhere errors are counted (``window``,
  ``top errors``, ``check``, the alert rules' ``level = "ERROR"`` does not select it).
* **Unstructured messages**: a message that is not ``event: key=value, ...``
  (``ERROR: failed to load model``) is a record of event ``unstructured`` with the text
  as ``msg`` (and whatever ``key=value`` pairs it holds); one made of ``key=value`` pairs
  only (``total_duration_ms=523``) is a record of event ``metric``. Either is given the
  id it names: an ``id=`` field, or else a bare ``ts_<hex>`` token of its text.
* **A value followed by free text** (``error_code=SCIPY_FFT_INVALID, Invalid input``):
  the bare token is the value, the text the record's ``msg`` (``parse.parse_fields_lenient``).
* **Unit suffixes** (``2048 chars``, ``1240ms``, ``92.1%``): values keep their text;
  wherever a number is wanted the leading number is read (``record.to_number``).
* **Cumulative stage_time** (the tutorial's ``duration_ms`` = time since the request
  started): recognised per synthesis (``is_cumulative``) and converted to per-stage
  durations (``per_stage``) where stage times are used.
* **JSON key conventions**: ``jsonkeys``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .record import LEVELS

LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}
# every level word a text head may carry (aliases included)
HEAD_LEVELS: tuple[str, ...] = (*LEVELS, *LEVEL_ALIASES)
_JSON_LEVELS = {**{lv: lv for lv in LEVELS}, **LEVEL_ALIASES, "ERR": "ERROR",
                "EXCEPTION": "ERROR", "NOTSET": "DEBUG", "TRACE": "DEBUG"}

UNSTRUCTURED = "unstructured"
METRIC = "metric"


def norm_level(level: str) -> str:
    """A level as read from a text head (upper case already): aliases mapped."""
    return LEVEL_ALIASES.get(level, level)


def json_level(level: object) -> str | None:
    """A JSON line's level (any case, a stdlib number or name, an alias) as a record
    level; another word is kept in upper case; None when there is none."""
    if isinstance(level, bool):
        return None
    if isinstance(level, int):  # logging's numbers: 10 DEBUG ... 50 CRITICAL
        return LEVELS[min(max(level, 0), 50) // 10 - 1] if level >= 10 else "DEBUG"
    if not isinstance(level, str) or not level.strip():
        return None
    u = level.strip().upper()
    return _JSON_LEVELS.get(u, u)


def level_needles(*levels: str) -> tuple[str, ...]:
    """The literal text heads of records of these levels hold (`` - ERROR - ``), their
    aliases included: the scan's pre-filter for commands that want records by level."""
    out = [f" - {lv} - " for lv in levels]
    out += [f" - {a} - " for a, lv in LEVEL_ALIASES.items() if lv in levels]
    return tuple(out)


# a synthesis id named in free text: ``ts_`` and hex digits, as a whole token
_BARE_ID = re.compile(r"(?<![A-Za-z0-9_.:@/+\-])ts_[0-9a-f]+(?![A-Za-z0-9_.:@/+\-])")


def bare_id(text: str) -> str | None:
    """The first ``ts_<hex>`` token of a free text, or None."""
    if "ts_" not in text:
        return None
    m = _BARE_ID.search(text)
    return m.group() if m else None


# --- stage_time: per stage or cumulative -------------------------------------------

STAGE_TIME_MODES = ("auto", "cumulative", "per-stage")
_mode = "auto"


def set_stage_time_mode(mode: str) -> None:
    """How ``stage_time`` values are read by every command of this process (``--stage-time``)."""
    global _mode
    if mode not in STAGE_TIME_MODES:
        raise ValueError(f"stage time mode {mode!r}: use one of {', '.join(STAGE_TIME_MODES)}")
    _mode = mode


def stage_time_mode() -> str:
    return _mode


def is_cumulative(values: Sequence[float], e2e: float | None, has_elapsed: bool,
                  mode: str | None = None) -> bool:
    """Are one synthesis's ``stage_time`` values (in the order written) times since the
    request started rather than times spent in each stage?

    ``auto``: never when a record carries ``elapsed_ms`` (ttsops' own writer, whose
    ``duration_ms`` is per stage) or for fewer than two stages (both readings agree
    then); otherwise when the values never decrease and the last one is not beyond the
    synthesis's end-to-end time (when it is known). Per-stage times of a pipeline rarely
    never decrease (a short stage follows the long inference), and a failed synthesis's
    few stages (``8, 27`` ms, then a timeout) are the tutorial's cumulative ones far more
    often than another writer's per-stage ones; ``--stage-time`` decides otherwise.
    ``cumulative`` / ``per-stage`` decide for every synthesis."""
    mode = mode or _mode
    if mode != "auto":
        return mode == "cumulative"
    n = len(values)
    if has_elapsed or n < 2:
        return False
    prev = values[0]
    for v in values[1:]:
        if v < prev:
            return False
        prev = v
    if e2e is None:
        return True
    return values[-1] <= e2e + 1.0 * n + 0.01 * e2e  # whole-ms rounding, clock jitter


def per_stage(values: Sequence[float]) -> list[float]:
    """Cumulative values as the time of each stage: the difference from the one before
    (the first stage: its own value)."""
    out: list[float] = []
    prev = 0.0
    for v in values:
        out.append(v - prev)
        prev = v
    return out
