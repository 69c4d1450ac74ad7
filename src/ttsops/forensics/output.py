"""Results of ``ttsops logs`` commands: rich tables by default, ``--json``, ``--csv``.

A command builds a ``Report``: a few summary lines, tables and free text (findings,
timelines). ``--json`` prints everything as one object; ``--csv`` prints the report's
first table (the one scripts want), or the table named by ``--table``.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys

from ..plain import Plain

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

    from .sources import Problem

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


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        if v != v:  # NaN
            return None
        return round(v, 3)
    return v


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v != v:  # NaN
            return ""
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}"
    return str(v)


def console(file: Any = None) -> Any:
    from rich.console import Console

    width = None
    if not (file or sys.stdout).isatty():
        width = int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(file=file, width=width, highlight=False, soft_wrap=False)


def render(report: Report, fmt: str = "table", table: str | None = None,
           file: Any = None) -> None:
    out = file or sys.stdout
    if fmt == "none":
        return
    if fmt == "json":
        # one write (json.dump writes every token on its own: thousands of calls)
        out.write(json.dumps(report.to_json(), indent=1, ensure_ascii=False,
                             default=_json_default) + "\n")
        return
    if fmt == "csv":
        t = report.table(table) if table else (report.tables[0] if report.tables else None)
        if t is None:
            names = ", ".join(x.name for x in report.tables) or "none"
            raise ValueError(f"no table {table!r} in this report (tables: {names})")
        import csv

        w = csv.writer(out, lineterminator="\n")
        w.writerow(t.columns)
        for row in t.rows:
            w.writerow(["" if v is None else _clean(v) for v in row])
        return
    from rich.errors import MarkupError
    from rich.table import Table as RTable

    # log values come from clients: control characters escaped (``safe``) in every cell
    # and summary value; ``--json``/``--csv`` above stay the exact data
    con = console(file)
    for k, v in report.summary.items():
        con.print(f"[bold]{safe(str(k))}[/]: {safe(_cell(v))}")
    for t in report.tables:
        if not t.rows:
            continue
        rt = RTable(title=safe(t.title), title_justify="left", show_edge=False,
                    pad_edge=False)
        for c in t.columns:
            rt.add_column(safe(c), overflow="fold")
        for row in t.rows:
            rt.add_row(*(safe(_cell(v)) for v in row))
        con.print()
        con.print(rt)
    if report.text:
        con.print()
        for line in report.text:
            # lines are markup with log values passed through safe(); as a last guard,
            # no control character reaches the terminal and bad markup is not fatal
            try:
                con.print(printable(line))
            except MarkupError:
                con.print(safe(line))


def _json_default(o: Any) -> Any:
    if isinstance(o, set | frozenset | tuple):
        return sorted(o) if isinstance(o, set | frozenset) else list(o)
    return str(o)


def to_text(report: Report, fmt: str = "table") -> str:
    buf = io.StringIO()
    render(report, fmt, file=buf)
    return buf.getvalue()
