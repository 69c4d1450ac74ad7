"""The hot query commands (``logs window``, ``trace``, ``patterns``, ``stages``) straight
from the command line, without importing click (about 20-30 ms, most of a small query's time).

``parse`` reads a command line exactly as click reads it for these commands (``cli``
declares the same options; a test holds the two declarations equal and compares the
values click gives with ours on generated command lines), and only a plain one: long
options (``--since X``, ``--since=X``), short ones with a separate value (``-s X``),
flags, ``--`` and arguments. Anything else -- help, an unknown option, a missing value,
a value click would refuse, ``-sX`` or grouped short flags, an option this reader does
not take (``--ids-out``) -- gives None, and the command line goes to click, which
answers or refuses it as always. So a command line either runs here with click's values
or is click's to handle: never a different answer or message.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# option spellings -> (parameter, kind); kinds: "str", "multi" (repeatable), "path",
# "multipath" (click.Path(): refused by click when it exists and is not readable),
# "flag", "true"/"false" (an on/off pair), "int0" (IntRange(min=0)), "choice:a|b|c"
SOURCE: dict[str, tuple[str, str]] = {
    "--dir": ("dirs", "multipath"), "-d": ("dirs", "multipath"),
    "--files": ("files", "multipath"), "-f": ("files", "multipath"),
    "--since": ("since", "str"), "-s": ("since", "str"),
    "--until": ("until", "str"), "-u": ("until", "str"),
    "--tz": ("tz", "str"),
    "--json": ("as_json", "flag"), "--csv": ("as_csv", "flag"),
    "--no-index": ("no_index", "flag"),
    "--progress": ("progress", "true"), "--no-progress": ("progress", "false"),
    "--source": ("source", "str"),  # (given: the fleet's database, ttsops.fleet.source)
}
SOURCE_DEFAULTS: dict[str, Any] = {"dirs": (), "files": (), "since": None, "until": None,
                                   "tz": None, "as_json": False, "as_csv": False,
                                   "no_index": False, "progress": None}
STAGE_TIME = "choice:auto|cumulative|per-stage"

# command -> (its own options, their defaults, name of its arguments or None)
COMMANDS: dict[str, tuple[dict[str, tuple[str, str]], dict[str, Any], str | None]] = {
    "window": ({}, {"ids_out": None}, None),
    "trace": ({"--lines": ("as_lines", "flag"), "--stage-time": ("stage_time", STAGE_TIME)},
              {"as_lines": False, "stage_time": "auto"}, "ids"),
    "patterns": ({"--where": ("where", "multi"), "-w": ("where", "multi"),
                  "--by": ("by", "str"), "-b": ("by", "str"),
                  "--bucket": ("buckets", "multi"),
                  "--event": ("event", "str"), "-e": ("event", "str"),
                  "-n": ("top", "int0")},
                 {"where": (), "by": "error_code", "buckets": (), "event": None, "top": 0},
                 None),
    "stages": ({"--by": ("by", "str"), "-b": ("by", "str"),
                "--where": ("where", "multi"), "-w": ("where", "multi"),
                "--slowest": ("slowest", "int0"), "--stage-time": ("stage_time", STAGE_TIME)},
               {"by": "", "where": (), "slowest": 5, "stage_time": "auto"}, None),
}


def parse(command: str, args: list[str]) -> dict[str, Any] | None:
    """The parameters click gives ``logs COMMAND args`` (``stage_time`` included), or
    None when the command line is not one this reader takes (click's, then)."""
    spec = COMMANDS.get(command)
    if spec is None:
        return None
    own, defaults, argname = spec
    opts = {**SOURCE, **own}
    values: dict[str, Any] = {**SOURCE_DEFAULTS, **defaults}
    multi: dict[str, list[str]] = {}
    positional: list[str] = []
    i, n = 0, len(args)
    while i < n:
        a = args[i]
        i += 1
        if a == "--":
            positional.extend(args[i:])
            break
        if a[:1] != "-" or len(a) == 1:
            positional.append(a)
            continue
        name, eq, attached = a.partition("=") if a.startswith("--") else (a, "", "")
        got = opts.get(name)
        if got is None:
            return None  # unknown, help, -sX, grouped flags: click's
        dest, kind = got
        if kind in ("flag", "true", "false"):
            if eq:
                return None  # --json=x: click refuses it
            values[dest] = kind != "false"
            continue
        if eq:
            value = attached
        else:
            if i >= n:
                return None  # a missing value: click says so
            value = args[i]
            i += 1
        if kind in ("path", "multipath") and not _path_ok(value):
            return None
        if kind == "int0":
            try:
                num = int(value)
            except ValueError:
                return None
            if num < 0:
                return None
            values[dest] = num
        elif kind.startswith("choice:"):
            if value not in kind[7:].split("|"):
                return None
            values[dest] = value
        elif kind in ("multi", "multipath"):
            multi.setdefault(dest, []).append(value)
        else:
            values[dest] = value
    for dest, vs in multi.items():
        values[dest] = tuple(vs)
    if argname is None:
        if positional:
            return None  # extra arguments: click refuses them
    else:
        if not positional:
            return None  # a required argument missing
        values[argname] = tuple(positional)
    return values


def _path_ok(value: str) -> bool:
    """What ``click.Path()`` accepts: anything that does not exist, or is readable."""
    try:
        os.stat(value)
    except (OSError, ValueError):
        return True
    return os.access(value, os.R_OK)


def run(command: str, args: list[str]) -> int | None:
    """Run ``logs COMMAND args`` here and return its exit status, or None (nothing done)
    when the command line is click's to handle."""
    if "_TTSOPS_COMPLETE" in os.environ:  # shell completion: click's
        return None
    params = parse(command, args)
    if params is None:
        return None
    from . import commands

    stage_time = params.pop("stage_time", None)
    if stage_time is not None:
        from ..logformat.dialects import set_stage_time_mode

        set_stage_time_mode(stage_time)
    bodies: dict[str, Callable[..., Any]] = {
        "window": commands.window_body, "trace": commands.trace_body,
        "patterns": commands.patterns_body, "stages": commands.stages_body}
    body = bodies[command]
    source = params.pop("source", None)
    try:
        if source:  # the database, not files (as cli.command does)
            from ..fleet.source import run as run_source

            run_source(body, source, **params)
        else:
            commands.run(body, **params)
    except commands.UsageError as e:
        commands.echo(f"ttsops logs: error: {e}", err=True)
        return e.exit_code
    except (EOFError, KeyboardInterrupt):  # as click's standalone mode answers them
        commands.echo("", err=True)
        commands.echo("Aborted!", err=True)
        return 1
    except OSError as e:
        import errno

        if e.errno != errno.EPIPE:
            raise
        from click.utils import PacifyFlushWrapper

        # click.utils.PacifyFlushWrapper comes from a module __getattr__ (typed object)
        sys.stdout = PacifyFlushWrapper(sys.stdout)  # type: ignore[operator]
        sys.stderr = PacifyFlushWrapper(sys.stderr)  # type: ignore[operator]
        return 1
    return 0
