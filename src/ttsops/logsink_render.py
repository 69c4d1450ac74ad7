"""The writer thread's one-pass text renderer (on the cache-hit path: the writer renders
five records per hit and holds the GIL while it does). It writes exactly what the log
contract's ``logformat.render`` writes; ``tests/server/test_hitpath.py`` checks that as a
property."""

from __future__ import annotations

import re
from typing import Any

from .events import fmt
from .logformat.escape import escape_tb, quote

__all__ = ["render_text"]

# printable ASCII but for space, '"', ',', '=' and '\\': a value made of these is written
# bare (``quote`` says the same, at several times the cost)
_PLAIN = re.compile(r"[\x21\x23-\x2b\x2d-\x3c\x3e-\x5b\x5d-\x7e]+\Z").match


def render_text(ts: str, logger: str, level: str, event: str, fields: dict[str, Any],
                tb: list[str]) -> str:
    """``render(Record(ts, logger, level, event, format_fields(fields), tb))``, the same
    text (property-tested), in one pass over the fields: the writer thread renders five
    records per cache hit and holds the GIL while it does, so this is on the hit path.
    A number or boolean is always written bare; a str is checked against ``_PLAIN``
    before ``quote`` is asked."""
    parts = []
    for k, v in fields.items():
        tv = type(v)
        if tv is str:
            parts.append(f"{k}={v}" if _PLAIN(v) else f"{k}={quote(v)}")
        elif v is None:
            continue
        elif tv is int:
            parts.append(f"{k}={v}")
        elif tv is float:
            parts.append(f"{k}={v:.6g}")
        elif tv is bool:
            parts.append(f"{k}=true" if v else f"{k}=false")
        else:
            parts.append(f"{k}={quote(fmt(v))}")
    head = f"{ts} - {logger} - {level} - {event}:"
    if parts:
        head = f"{head} {', '.join(parts)}"
    if tb:
        return head + "".join("\n\t" + escape_tb(t) for t in tb)
    return head
