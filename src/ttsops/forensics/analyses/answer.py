r"""A command's answer as data: a ``Report`` (a few summary lines, tables, free text,
JSON-only data, problems) and its ``Table``\s; the escaping every analysis applies to
log values (``safe``, ``printable``) and ``write_lines`` for ``--ids-out``.

Rendering them (rich tables, ``--json``, ``--csv``) is ``rendering.output``.
"""

from __future__ import annotations

import re
import sys

from ...plain import Plain

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

    from ..reading.sources import Problem

_MARKUP_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def escape(text: str) -> str:
    """``rich.markup.escape`` (same rule; a property test holds them equal), without
    importing rich: ``--json`` answers never load it, which saves ~30 ms of start-up."""
    text = _MARKUP_TAG.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", text)
    if text.endswith("\\") and not text.endswith("\\\\"):
        return text + "\\"
    return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1: newlines, ESC sequences that
    recolour or retitle a terminal, NUL) written as ``\\xNN``: log values come from
    clients, and printing them raw would let one forge lines or drive the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def safe(text: str) -> str:
    """A log value for rich output: control characters escaped, then markup escaped."""
    return escape(printable(text))


class OutputError(Exception):
    """An output file that cannot be written: a clear message, exit 2."""


def write_lines(path: str, lines: list[str]) -> str:
    """Write ``lines`` (one per line) to ``path``, or to stdout when ``path`` is ``-``;
    returns where they went, for the report. Raises OutputError when the file cannot be
    written (missing directory, no permission)."""
    text = "".join(x + "\n" for x in lines)
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return "stdout"
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    return path


class Table(Plain):
    FIELDS = ("name", "title", "columns", "rows")
    __slots__ = FIELDS

    def __init__(self, name: str, title: str, columns: list[str],
                 rows: list[list[Any]] | None = None) -> None:
        self.name = name
        self.title = title
        self.columns = columns
        self.rows: list[list[Any]] = [] if rows is None else rows

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=False)) for r in self.rows]


class Report(Plain):
    FIELDS = ("command", "summary", "tables", "text", "data", "problems", "empty", "failed")

    def __init__(self, command: str, summary: dict[str, Any] | None = None,
                 tables: list[Table] | None = None, text: list[str] | None = None,
                 data: dict[str, Any] | None = None, problems: list[Problem] | None = None,
                 empty: str | None = None, failed: bool = False) -> None:
        self.command = command
        self.summary: dict[str, Any] = {} if summary is None else summary
        self.tables: list[Table] = [] if tables is None else tables
        self.text: list[str] = [] if text is None else text  # rich markup, after tables
        self.data: dict[str, Any] = {} if data is None else data  # extra JSON-only content
        self.problems: list[Problem] = [] if problems is None else problems
        self.empty = empty  # set: no answer where one was required (exit 1)
        self.failed = failed  # set: the answer is "fail" (check), exit 1

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"command": self.command, "summary": self.summary}
        out.update(self.data)
        out["tables"] = {t.name: t.as_dicts() for t in self.tables}
        out["problems"] = [{"path": p.path, "message": p.message} for p in self.problems]
        if self.empty:
            out["empty"] = self.empty
        return out
