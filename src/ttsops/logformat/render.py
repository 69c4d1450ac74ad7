"""The writer's grammar: a record as one text line (plus tab-led traceback lines) or as
one JSON object. ``parse`` reads both back exactly (property-tested round trip)."""

from __future__ import annotations

import json
import re

from .escape import escape_tb, quote
from .record import Record


def render_fields(fields: dict[str, str]) -> str:
    return ", ".join(f"{k}={quote(v)}" for k, v in fields.items())


def render(rec: Record, fmt: str = "text") -> str:
    """The record as text: its line, then one tab-led line per traceback line."""
    if fmt == "json":
        return render_json(rec)
    head = f"{rec.ts} - {rec.logger} - {rec.level} - {rec.event}:"
    if rec.fields:
        head += " " + render_fields(rec.fields)
    if rec.traceback:
        return head + "".join("\n\t" + escape_tb(t) for t in rec.traceback)
    return head


_JSON_UNSAFE = re.compile("[\ud800-\udfff\u2028\u2029\x85]")


def render_json(rec: Record) -> str:
    obj: dict[str, object] = {"ts": rec.ts, "logger": rec.logger, "level": rec.level,
                              "event": rec.event}
    obj.update(rec.fields)
    if rec.traceback:
        obj["traceback"] = rec.traceback
    text = json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
