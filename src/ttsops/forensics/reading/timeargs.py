"""Time arguments of ``ttsops logs``: to the log's own timestamp text.

Log timestamps (``YYYY-MM-DD HH:MM:SS,mmm``) sort as text, so a window is a pair of
strings compared with ``since <= ts < until`` -- the same comparison the seed's
``awk '$1" "$2 >= A && $1" "$2 <= B'`` makes when B is a whole second.

Accepted forms:

* absolute: ``2024-06-12 14:00``, ``2024-06-12 14:00:00,250``, ``2024-06-12T14:00:00Z``,
  ``2024-06-12T16:00:00+02:00`` (converted to the log's zone)
* a date: ``2024-06-12`` (midnight; as ``--until`` the whole day is included)
* relative to now: ``2h``, ``90m``, ``1d12h``, ``30s``, ``1w``, ``-2h`` (the same), ``now``

The log's zone: UTC by default (the writer's), the machine's local time with
``TTSOPS_LOG_UTC=false``, or ``--tz`` (``+08:00``, ``-0530``, ``UTC``, ``Asia/Shanghai``,
``local``) for logs written in another zone -- the stdlib's ``asctime`` is local time.
A time with a zone is converted to the log's zone; one without is read in it.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone, tzinfo

TS_FMT = "%Y-%m-%d %H:%M:%S"
_REL_RE = re.compile(r"-?((?:\d+(?:\.\d+)?[wdhms])+)(?: ago)?\Z")
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNIT_S = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DATE_RE = re.compile(r"\d{4}-\d\d-\d\d\Z")


class TimeArgError(ValueError):
    """A time argument that cannot be understood (the message says what is accepted)."""


_OFFSET_RE = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d\d))?\Z", re.I)


def parse_tz(text: str) -> tzinfo:
    """``--tz``: ``+08:00``/``+0800``/``+8``/``UTC+8``, ``UTC``/``Z``, ``local`` (this
    machine's zone), or an IANA name such as ``Asia/Shanghai``."""
    s = text.strip()
    if s.upper() in ("UTC", "Z", "GMT"):
        return UTC
    if s.lower() == "local":
        local = datetime.now().astimezone().tzinfo
        assert local is not None
        return local
    m = _OFFSET_RE.match(s)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 23 or minutes > 59:
            raise TimeArgError(f"--tz {text!r}: offset out of range (-23:59 .. +23:59)")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if m.group(1) == "-" else delta)
    if "/" in s or s.isalpha():
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            return ZoneInfo(s)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise TimeArgError(f"--tz {text!r}: not a time zone (use +08:00, -0530, UTC, local or "
                       "a name like Asia/Shanghai)")


def duration_s(text: str) -> float:
    """``2h30m`` -> 9000.0."""
    m = _REL_RE.match(text.strip().lower())
    if not m:
        raise TimeArgError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1d, 1w)")
    return sum(float(n) * _UNIT_S[u] for n, u in _PART_RE.findall(m.group(1)))


def to_ts(dt: datetime) -> str:
    """A naive datetime (in the log's zone) as log timestamp text."""
    return f"{dt.year:04d}-" + dt.strftime("%m-%d %H:%M:%S") + f",{dt.microsecond // 1000:03d}"


def from_ts(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace(",", ".", 1))


def ts_to_epoch(ts: str, utc: bool = True) -> float:
    dt = from_ts(ts)
    if utc:
        return dt.replace(tzinfo=UTC).timestamp()
    return time.mktime(dt.timetuple()) + dt.microsecond / 1e6


def epoch_to_ts(t: float, utc: bool = True) -> str:
    """Raises TimeArgError (a ValueError) for a time outside years 1..9999."""
    try:
        dt = datetime.fromtimestamp(t, UTC).replace(tzinfo=None) if utc \
            else datetime.fromtimestamp(t)
    except (OverflowError, OSError, ValueError):
        raise TimeArgError(f"time out of range (years 1 to 9999): {t:.0f} s "
                           "since 1970") from None
    return to_ts(dt)


def _in_zone(t: float, utc: bool, tz: tzinfo | None) -> str:
    if tz is None:
        return epoch_to_ts(t, utc)
    try:
        return to_ts(datetime.fromtimestamp(t, tz).replace(tzinfo=None))
    except (OverflowError, OSError, ValueError):
        raise TimeArgError(f"time out of range (years 1 to 9999): {t:.0f} s "
                           "since 1970") from None


def parse_time(text: str, *, end: bool = False, now: float | None = None,
               utc: bool = True, tz: tzinfo | None = None) -> str:
    """A time argument as log timestamp text (in the log's zone: ``tz`` when given,
    else UTC or, with ``utc=False``, this machine's local time).

    ``end=True`` (for ``--until``): a bare date means the end of that day (the next
    midnight, exclusive)."""
    s = text.strip()
    if not s:
        raise TimeArgError("empty time argument")
    low = s.lower()
    now = time.time() if now is None else now
    if low == "now":
        return _in_zone(now, utc, tz)
    if _REL_RE.match(low):
        try:
            return _in_zone(now - duration_s(low), utc, tz)
        except TimeArgError:
            raise TimeArgError(f"{text!r} is too far back (before the year 1)") from None
    if _DATE_RE.match(s):
        try:
            day = datetime.fromisoformat(s)
        except ValueError as e:
            raise TimeArgError(f"not a date: {text!r} ({e})") from None
        try:
            return to_ts(day + timedelta(days=1) if end else day)
        except OverflowError:  # --until 9999-12-31: the whole day, to the end of time
            return to_ts(datetime.max)
    iso = s.replace(",", ".", 1)
    if iso.endswith(("Z", "z")):
        iso = iso[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        raise TimeArgError(
            f"cannot read time {text!r}: use '2024-06-12 14:00[:00[,mmm]]', "
            "'2024-06-12', an ISO time with zone, or a relative time like 2h") from None
    if dt.tzinfo is not None:
        try:
            dt = dt.astimezone(tz if tz is not None else UTC if utc else None)
        except (OverflowError, ValueError):
            raise TimeArgError(f"{text!r}: out of range in the log's time zone") from None
        dt = dt.replace(tzinfo=None)
    return to_ts(dt)


def window(since: str | None, until: str | None, *, now: float | None = None,
           utc: bool = True, tz: tzinfo | None = None) -> tuple[str | None, str | None]:
    """``(since, until)`` as timestamp text; raises when since is not before until."""
    a = parse_time(since, now=now, utc=utc, tz=tz) if since else None
    b = parse_time(until, end=True, now=now, utc=utc, tz=tz) if until else None
    if a is not None and b is not None and a >= b:
        raise TimeArgError(f"--since {since!r} is not before --until {until!r}")
    return a, b


def shift(ts: str, seconds: float) -> str:
    """``ts`` moved by ``seconds``; clamped to the years 1..9999 (a huge lookback means
    "from the beginning")."""
    try:
        return to_ts(from_ts(ts) + timedelta(seconds=seconds))
    except OverflowError:
        return to_ts(datetime.min if seconds < 0 else datetime.max)


def human_duration(seconds: float) -> str:
    """3725 -> '1h02m'."""
    s = abs(seconds)
    sign = "-" if seconds < 0 else ""
    if s < 1:
        return f"{sign}{s * 1000:.0f}ms"
    if s < 60:
        return f"{sign}{s:.1f}s"
    if s < 3600:
        return f"{sign}{int(s // 60)}m{int(s % 60):02d}s"
    if s < 86400:
        return f"{sign}{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    return f"{sign}{int(s // 86400)}d{int(s % 86400 // 3600):02d}h"
