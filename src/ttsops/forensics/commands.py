"""The ``ttsops logs`` commands' common part without click: the snapshot and options of
a query (``Env``), its answer's rendering and exit status, and the bodies of the hot query
commands (window, trace, patterns). ``cli`` declares them for click; ``quick`` runs them
straight from a command line it has read exactly as click would (no click import: a
third of a small query's time).

Exit status: 0 answered; 1 an empty result where one was required (or ``check``
failed); 2 a usage error, a missing directory, no log files; 3 answered, but some input
was damaged or unreadable (reported on stderr).
"""

from __future__ import annotations

import sys

from .reading.sources import Snapshot, SourceError, open_snapshot

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any, ClassVar

EXIT_EMPTY, EXIT_USAGE, EXIT_DAMAGED = 1, 2, 3


class UsageError(Exception):
    """A usage error of a logs command: ``ttsops logs: error: MESSAGE``, exit 2."""

    exit_code: ClassVar[int] = EXIT_USAGE


def echo(message: str, err: bool = False) -> None:
    """``click.echo(message, err=err)`` for a str: click only when it would change the
    text (ANSI escapes, which it strips on a stream that is not a terminal)."""
    if "\x1b" in message:
        import click

        click.echo(message, err=err)
        return
    f = sys.stderr if err else sys.stdout
    f.write(message + "\n")
    f.flush()


def utc_clock() -> bool:
    from ..knobs import value

    return bool(value("log_utc"))


def expand_globs(files: tuple[str, ...]) -> tuple[str, ...]:
    """``--files 'app.log.*.gz'``: patterns expanded (sorted); other names kept as given."""
    import os

    out: list[str] = []
    for f in files:
        if any(c in f for c in "*?[") and not os.path.exists(f):
            found = sorted(_glob(f))
            out.extend(found or [f])
        else:
            out.append(f)
    return tuple(out)


def _glob(pattern: str) -> list[str]:
    """``glob.glob(pattern)``; a pattern only in its last part (``logs/app.log.*.gz``) is
    matched as glob matches it (hidden names only by a pattern that starts with ".")
    without importing glob (and contextlib): a millisecond of a query's start."""
    import os

    head, tail = os.path.split(pattern)
    if any(c in head for c in "*?[") or not tail:
        import glob

        return glob.glob(pattern)
    from fnmatch import fnmatchcase

    try:
        names = os.listdir(head or os.curdir)
    except OSError:
        return []
    hidden = tail.startswith(".")
    return [os.path.join(head, n) if head else n for n in names
            if (hidden or not n.startswith(".")) and fnmatchcase(n, tail)]


class Env:
    def __init__(self, dirs: tuple[str, ...], files: tuple[str, ...], since: str | None,
                 until: str | None, as_json: bool, as_csv: bool, no_index: bool,
                 progress: bool | None = None, tz: str | None = None) -> None:
        if as_json and as_csv:
            raise UsageError("--json and --csv exclude each other")
        from .reading import progress as bars
        from .reading import scan

        scan.progress_factory = bars.factory(
            None if progress is None else "always" if progress else "never")
        self.fmt = "json" if as_json else "csv" if as_csv else "table"
        self.use_index = not no_index
        self.tz_name = tz
        if not since and not until and tz is None:  # what ``timeargs.window`` gives
            utc_clock()
            self.tz, self.since, self.until = None, None, None
        else:
            from .reading.timeargs import TimeArgError, parse_tz, window

            try:
                self.tz = parse_tz(tz) if tz is not None else None
                self.since, self.until = window(since, until, utc=utc_clock(), tz=self.tz)
            except TimeArgError as e:
                raise UsageError(str(e)) from None
        files = expand_globs(files)
        if not dirs and not files:
            from ..config import get_settings

            dirs = (str(get_settings().log_dir),)
        try:
            self.snap: Snapshot = open_snapshot(list(dirs), list(files), self.use_index)
        except SourceError as e:
            raise UsageError(str(e)) from None

    def finish(self, report: Any, table: str | None = None, file: Any = None) -> None:
        from .rendering.output import render

        try:
            if not report.empty or self.fmt == "json":
                render(report, self.fmt, table, file=file)
        except ValueError as e:
            raise UsageError(str(e)) from None
        finally:
            self.snap.close()
        for note in dict.fromkeys(self.snap.notes):
            echo(f"ttsops logs: note: {note}", err=True)
        # a command that reads the files several times (report) meets a problem each time
        problems = list(dict.fromkeys(str(p) for p in report.problems))
        for p in problems:
            echo(f"ttsops logs: warning: {p}", err=True)
        if report.empty:
            echo(f"ttsops logs: {report.empty}", err=True)
            sys.exit(EXIT_EMPTY)
        if report.failed:
            sys.exit(EXIT_EMPTY)
        if problems:
            echo(f"ttsops logs: answered from the readable part; {len(problems)}"
                       " problem(s) above", err=True)
            sys.exit(EXIT_DAMAGED)


def writable(path: str | None, option: str) -> None:
    """Refuse an output file that cannot be written before reading any log (exit 2)."""
    import os

    if path is None or path == "-":
        return
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise UsageError(f"{option} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: directory {parent} is not writable")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a directory")



def run(fn: Any, dirs: tuple[str, ...], files: tuple[str, ...], since: str | None,
        until: str | None, tz: str | None, as_json: bool, as_csv: bool, no_index: bool,
        progress: bool | None, **kw: Any) -> None:
    """Build the Env from the source options, run ``fn(env, **kw)`` and turn library
    errors into usage errors (the snapshot closed). (``--source``, a ClickHouse URL, is
    answered by ``ttsops.fleet.source``, which the CLI layer calls instead.)"""
    from ..knobs import SettingError, check

    try:
        check()  # a bad TTSOPS_LOGS_* value: one line, exit 2, before any file is read
    except SettingError as e:
        raise UsageError(str(e)) from None
    env = Env(dirs, files, since, until, as_json, as_csv, no_index, progress, tz)
    try:
        fn(env, **kw)
    except UsageError:
        env.snap.close()
        raise
    except BrokenPipeError:  # `ttsops logs ... | head`
        env.snap.close()
        sys.stderr.close()
        sys.exit(0)
    except Exception as e:
        # the library's errors of bad input (their modules loaded only when used)
        from .analyses.answer import OutputError
        from .reading.filters import FilterError
        from .reading.timeargs import TimeArgError

        if isinstance(e, FilterError | TimeArgError | OutputError):
            env.snap.close()
            raise UsageError(str(e)) from None
        raise


def window_body(env: Env, ids_out: str | None) -> None:
    """Counts by level, code and event, failure rate, and the ids started in a window."""
    from .analyses import window as mod

    writable(ids_out, "--ids-out")
    env.finish(mod.run(env.snap, env.since, env.until, use_index=env.use_index,
                       ids_out=ids_out), file=sys.stderr if ids_out == "-" else None)


def trace_body(env: Env, ids: tuple[str, ...], as_lines: bool) -> None:
    """Every record of a synthesis id or request id, in order, with a stage timeline."""
    from ..logformat import Record, render
    from .analyses import trace as mod
    from .analyses.answer import printable

    rep = mod.run(env.snap, list(ids), env.since, env.until, use_index=env.use_index)
    if as_lines and not rep.empty:
        tty = sys.stdout.isatty()  # a terminal gets control characters escaped, a pipe not
        for r in rep.data["records"]:
            text = render(Record(r["ts"], r["logger"], r["level"], r["event"], r["fields"],
                                 r["traceback"]))
            echo("\n".join(map(printable, text.split("\n"))) if tty else text)
        env.fmt = "none"
    env.finish(rep)


def patterns_body(env: Env, where: tuple[str, ...], by: str, buckets: tuple[str, ...],
                  event: str | None, top: int) -> None:
    """Grouped counts of syntheses (or records), e.g. failures by text_len and error_code."""
    from .analyses import patterns as mod
    from .reading.filters import parse_buckets, parse_by, parse_where

    env.finish(mod.run(env.snap, env.since, env.until, by=parse_by(by),
                       where=parse_where(where), buckets=parse_buckets(buckets), event=event,
                       top=top, use_index=env.use_index))


def stages_body(env: Env, by: str, where: tuple[str, ...], slowest: int) -> None:
    """Per-stage p50/p95/p99 and share of end-to-end time, queue wait included."""
    from .analyses import stages as mod
    from .reading.filters import parse_by, parse_where

    env.finish(mod.run(env.snap, env.since, env.until, by=parse_by(by),
                       where=parse_where(where), slowest=slowest, use_index=env.use_index))
