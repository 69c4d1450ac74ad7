"""The timestamp: ``YYYY-MM-DD HH:MM:SS,mmm`` (the stdlib's ``%(asctime)s``), written by
``TsFormatter`` and read as text (it sorts as text). Other spellings (ISO ``T``, ``.``,
``Z``, more or fewer fraction digits, unix seconds in JSON) are brought to this form by
``norm_ts``."""

from __future__ import annotations

import re
import time

TS_LEN = 23  # "YYYY-MM-DD HH:MM:SS,mmm"
# the timestamp as a regular expression: ``TS_RE`` as Python's ``re`` reads ``\d`` (any
# Unicode digit, as the line grammar always accepted), ``TS_ASCII`` for the byte-level
# and Rust-regex (Polars) paths
TS_RE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
TS_ASCII = r"[0-9]{4}-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9],[0-9]{3}"


class TsFormatter:
    """Unix time -> ``YYYY-MM-DD HH:MM:SS,mmm``, the strftime cached per second (the
    sink's formatter, and the simulator's)."""

    def __init__(self, utc: bool = True) -> None:
        self.conv = time.gmtime if utc else time.localtime
        self.sec = -1
        self.prefix = ""

    def __call__(self, t: float) -> str:
        sec = int(t)
        if sec != self.sec:
            self.sec = sec
            self.prefix = time.strftime("%Y-%m-%d %H:%M:%S", self.conv(sec))
        return f"{self.prefix},{int((t - sec) * 1000):03d}"


_utc = TsFormatter(utc=True)
_ISO = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,](\d+))?"
                  r"(Z|[+-]\d\d(?::?\d\d)?)?\Z", re.ASCII)


def norm_ts(ts: object) -> str:
    """A foreign timestamp in the log's own text form: ISO ``T`` and ``.``, any number of
    fraction digits (cut to milliseconds); a zone (``Z``, ``+08:00``) is dropped: the
    time as written, as a text line of the same logger gives it (``--tz`` says which
    zone the logs' times are in); unix seconds (a JSON number) as UTC. Another layout is
    kept as written, ISO ``T``/``.``/``Z`` replaced as far as they go."""
    if isinstance(ts, bool):
        return str(ts)
    if isinstance(ts, int | float):
        try:
            return _utc(float(ts))
        except (OverflowError, OSError, ValueError):
            return str(ts)
    s = str(ts)
    m = _ISO.match(s)
    if m is not None:
        frac = ((m.group(3) or "") + "000")[:3]
        return f"{m.group(1)} {m.group(2)},{frac}"
    if len(s) >= 19 and s[10] == "T":
        s = s[:10] + " " + s[11:]
    if len(s) > 19 and s[19] == ".":
        s = s[:19] + "," + s[20:]
    if s.endswith("Z"):
        s = s[:-1]
    return s
