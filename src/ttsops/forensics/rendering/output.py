"""Results of ``ttsops logs`` commands: rich tables by default, ``--json``, ``--csv``.

A command builds a ``Report``: a few summary lines, tables and free text (findings,
timelines). ``--json`` prints everything as one object; ``--csv`` prints the report's
first table (the one scripts want), or the table named by ``--table``.
"""

from __future__ import annotations

import io
import json
import os
import sys

from ..analyses.answer import Report, printable, safe

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any


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
