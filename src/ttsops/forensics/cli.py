"""``ttsops logs ...``: the click group. Each command opens one snapshot of the log
files, runs one module's query and renders its report.

Exit status: 0 answered; 1 an empty result where one was required (or ``check``
failed); 2 a usage error, a missing directory, no log files; 3 answered, but some input
was damaged or unreadable (reported on stderr).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from .analyses.answer import OutputError
from .commands import (  # noqa: F401 -- Env, writable: this module's names before
    EXIT_DAMAGED,
    EXIT_EMPTY,
    EXIT_USAGE,
    Env,
    UsageError,
    expand_globs,
    utc_clock,
    writable,
)
from .commands import run as run_command
from .reading.filters import FilterError, parse_by, parse_where
from .reading.sources import SourceError
from .reading.timeargs import TimeArgError, duration_s


class LogsError(click.ClickException, UsageError):
    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:
        click.echo(f"ttsops logs: error: {self.format_message()}", err=True)


def source_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--dir/--files/--since/--until/--json/--csv/--no-index for every command."""
    opts = [
        click.option("--dir", "-d", "dirs", multiple=True, type=click.Path(),
                     help="Log directory (app.log + app.log.N.gz); repeat for several hosts "
                          "[default: $TTSOPS_LOG_DIR]."),
        click.option("--files", "-f", "files", multiple=True, type=click.Path(),
                     help="Explicit log files (plain or .gz); repeatable; a quoted glob "
                          "like 'app.log.*.gz' is expanded; '-' reads standard input "
                          "(plain or gzip)."),
        click.option("--source", "source", metavar="URL",
                     help="Read the logs shipped to ClickHouse instead of files: "
                          "clickhouse://[user[:password]@]host[:port]/database"
                          "[?cluster=NAME] (see ttsops logs ship)."),
        click.option("--since", "-s", help="Start (inclusive): '2024-06-12 14:00', "
                                           "'2024-06-12', or relative like 2h."),
        click.option("--until", "-u", help="End (exclusive); a bare date includes that day."),
        click.option("--tz", "tz", help="The zone the log's timestamps are written in, for "
                                        "logs in local time: +08:00, Asia/Shanghai, local "
                                        "[default: UTC, or $TTSOPS_LOG_UTC]."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        click.option("--csv", "as_csv", is_flag=True, help="Print the main table as CSV."),
        click.option("--no-index", is_flag=True,
                     help="Ignore block indexes (full scan; for suspect indexes)."),
        click.option("--progress/--no-progress", "progress", default=None,
                     help="Progress bar on stderr [default: when stderr is a terminal and "
                          "the read is large]."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def stage_time_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--stage-time`` for the commands that use stage times (read before any log)."""
    def set_mode(ctx: click.Context, param: click.Parameter, value: str) -> str:
        from ..logformat.dialects import set_stage_time_mode

        set_stage_time_mode(value)
        return value
    return click.option(
        "--stage-time", type=click.Choice(["auto", "cumulative", "per-stage"]),
        default="auto", show_default=True, expose_value=False, callback=set_mode,
        help="How stage_time duration_ms was written: per stage, or cumulative (time since "
             "the request started, as the tutorial's code writes it); auto decides per "
             "synthesis.")(fn)


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Builds the Env from the source options and turns library errors into messages."""
    @functools.wraps(fn)
    def wrapper(**kw: Any) -> None:
        source = kw.pop("source", None)
        try:
            if source:  # the database, not files (ttsops.fleet; needs ttsops[clickhouse])
                from ..fleet.source import run as run_source

                run_source(fn, source, **kw)
            else:
                run_command(fn, **kw)
        except LogsError:
            raise
        except UsageError as e:
            raise LogsError(str(e)) from None
    return source_options(wrapper)


@click.group("logs")
def logs() -> None:
    """Answers from ttsops logs (app.log + rotated .gz), instead of grep/awk/sed.

    Exit status: 0 answered, 1 empty result or check failed, 2 usage or missing
    input, 3 answered but some input was damaged (see stderr)."""
    from ..knobs import SettingError, check

    try:
        check()  # a bad TTSOPS_LOGS_* value: one line, exit 2, before any file is read
    except SettingError as e:
        raise LogsError(str(e)) from None


@logs.command("window")
@click.option("--ids-out", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write the ids of the syntheses started in the window here (sorted, "
                   "unique). '-': the ids on stdout, one per line, and the report on stderr "
                   "(for pipes: ... --ids-out - | xargs ttsops logs trace).")
@command
def window_cmd(env: Env, ids_out: str | None) -> None:
    """Counts by level, code and event, failure rate, and the ids started in a window."""
    from .commands import window_body

    window_body(env, ids_out)


@logs.command("trace")
@click.argument("ids", nargs=-1, required=True)
@click.option("--lines", "as_lines", is_flag=True,
              help="Print the records as log lines (text format), like grep would.")
@stage_time_option
@command
def trace_cmd(env: Env, ids: tuple[str, ...], as_lines: bool) -> None:
    """Every record of a synthesis id or request id, in order, with a stage timeline."""
    from .commands import trace_body

    trace_body(env, ids, as_lines)


@logs.command("patterns")
@click.option("--where", "-w", "where", multiple=True,
              help="Condition (repeatable, ANDed): status=failed, text_len>=2000, "
                   "voice!=alloy, error_code~FFT.")
@click.option("--by", "-b", "by", default="error_code", show_default=True,
              help="Comma-separated fields to group by (complete, start or pseudo-fields "
                   "hour/day).")
@click.option("--bucket", "buckets", multiple=True,
              help="Bucket a numeric field: text_len=0,1,64,512,2000,4096 (repeatable).")
@click.option("--event", "-e", help="Group the records of this event instead of syntheses "
                                    "('*' for all records).")
@click.option("-n", "top", type=click.IntRange(min=0), default=0,
              help="Show only the N largest groups (0: all).")
@command
def patterns_cmd(env: Env, where: tuple[str, ...], by: str, buckets: tuple[str, ...],
                 event: str | None, top: int) -> None:
    """Grouped counts of syntheses (or records), e.g. failures by text_len and error_code."""
    from .commands import patterns_body

    patterns_body(env, where, by, buckets, event, top)


@logs.command("top")
@click.argument("kind", type=click.Choice(["errors", "warnings"]))
@click.option("-n", "top", type=click.IntRange(min=0), default=5, show_default=True,
              help="Show the N most frequent codes (0: all).")
@command
def top_cmd(env: Env, kind: str, top: int) -> None:
    """The most frequent error or warning codes: count, share, first/last seen, where, hint."""
    from .analyses import top as mod

    env.finish(mod.run(env.snap, env.since, env.until, kind=kind, top=top,
                       use_index=env.use_index))


@logs.command("stages")
@click.option("--by", "-b", "by", default="", help="Per voice, lang, engine, format... "
                                                    "(comma-separated).")
@click.option("--where", "-w", "where", multiple=True, help="Only syntheses matching.")
@click.option("--slowest", type=click.IntRange(min=0), default=5, show_default=True,
              help="List the N slowest ids (0: none).")
@stage_time_option
@command
def stages_cmd(env: Env, by: str, where: tuple[str, ...], slowest: int) -> None:
    """Per-stage p50/p95/p99 and share of end-to-end time, queue wait included."""
    from .commands import stages_body

    stages_body(env, by, where, slowest)


@logs.command("cache")
@click.option("--interval", default=None, help="Time bucket (e.g. 1h, 15m) [default: auto].")
@command
def cache_cmd(env: Env, interval: str | None) -> None:
    """Cache hit rate over time, disk usage trend, warnings, CACHE_WRITE_FAILED."""
    from .analyses import cache as mod

    interval_s = duration_s(interval) if interval else None
    if interval_s is not None and interval_s <= 0:
        raise LogsError(f"--interval {interval}: must be longer than 0s")
    env.finish(mod.run(env.snap, env.since, env.until, interval_s=interval_s,
                       use_index=env.use_index))


@logs.command("audio")
@click.option("--where", "-w", "where", multiple=True,
              help="Fixed threshold, e.g. 'spectral_centroid<1800' (otherwise: robust "
                   "per-voice baseline).")
@click.option("--metric", "-m", "metrics", multiple=True,
              help="Metric(s) for the baseline [default: spectral_centroid, rms, "
                   "silence_ratio, clipped_ratio, peak].")
@click.option("--by", "-b", "by", default="voice", show_default=True,
              help="Baseline groups (comma-separated fields).")
@click.option("-k", "k", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Anomaly when |x - median| > k * 1.4826 * MAD.")
@click.option("--min-n", type=click.IntRange(min=1), default=20, show_default=True,
              help="Smallest group with a baseline.")
@click.option("--ids-out", type=click.Path(dir_okay=False), help="Write anomalous ids here.")
@command
def audio_cmd(env: Env, where: tuple[str, ...], metrics: tuple[str, ...], by: str, k: float,
              min_n: int, ids_out: str | None) -> None:
    """Audio anomalies by fixed threshold or robust per-voice baseline (median ± k·MAD)."""
    from .analyses import audio as mod

    writable(ids_out, "--ids-out")
    env.finish(mod.run(env.snap, env.since, env.until, where=parse_where(where),
                       metrics=list(metrics) or None, by=parse_by(by), k=k, min_n=min_n,
                       ids_out=ids_out, use_index=env.use_index))


@logs.command("precursors")
@click.option("--lookback", default="6h", show_default=True,
              help="How far before a burst to look for warnings.")
@click.option("--min-errors", type=click.IntRange(min=1), default=3, show_default=True,
              help="Errors of one code that make a burst.")
@click.option("--gap", default="10m", show_default=True,
              help="Largest gap between errors of one burst.")
@click.option("-n", "top", type=click.IntRange(min=0), default=5, show_default=True,
              help="Warnings listed per burst (0: all).")
@command
def precursors_cmd(env: Env, lookback: str, min_errors: int, gap: str, top: int) -> None:
    """For each burst of errors, the warnings that came before it, ranked."""
    from .analyses import precursors as mod

    env.finish(mod.run(env.snap, env.since, env.until, lookback_s=duration_s(lookback),
                       min_errors=min_errors, gap_s=duration_s(gap), top=top,
                       use_index=env.use_index))


@logs.command("check")
@click.option("--tolerance-ms", type=click.FloatRange(min=0), default=1000.0,
              show_default=True,
              help="Allowed backwards step of timestamps within one directory.")
@click.option("--ids-out", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write the id of every synthesis that started and never completed here "
                   "(sorted; '-': stdout, and the report on stderr).")
@stage_time_option
@command
def check_cmd(env: Env, tolerance_ms: float, ids_out: str | None) -> None:
    """Does this deployment log what it must? Pass/fail per item, with examples; names
    the damage of several processes rotating one file."""
    from .analyses import check as mod

    writable(ids_out, "--ids-out")
    env.finish(mod.run(env.snap, env.since, env.until, tolerance_ms=tolerance_ms,
                       use_index=env.use_index, ids_out=ids_out),
               file=sys.stderr if ids_out == "-" else None)


@logs.command("diagnose")
@click.option("--lookback", default="6h", show_default=True,
              help="History before --since used for baselines and precursors.")
@stage_time_option
@command
def diagnose_cmd(env: Env, lookback: str) -> None:
    """The three steps at once: ranked findings in plain words, one example trace each."""
    from .analyses import diagnose as mod

    env.finish(mod.run(env.snap, env.since, env.until, lookback_s=duration_s(lookback),
                       use_index=env.use_index))


@logs.command("index")
@click.argument("dirs", nargs=-1, type=click.Path())
@click.option("--files", "-f", "files", multiple=True, type=click.Path(),
              help="Explicit .gz files to index (repeatable).")
@click.option("--force", is_flag=True, help="Rebuild indexes that are already current.")
@click.option("--block-bytes", type=click.IntRange(min=1024), default=1 << 19,
              show_default=True,
              help="Uncompressed size of each gzip member of a recompressed file.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0,
              help="Files indexed at once (processes) [default: one per CPU].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--progress/--no-progress", "progress", default=None,
              help="Progress bar on stderr [default: when stderr is a terminal].")
def index_cmd(dirs: tuple[str, ...], files: tuple[str, ...], force: bool, block_bytes: int,
              jobs: int, as_json: bool, progress: bool | None) -> None:
    """Give the rotated .gz files of DIRS (and --files) a block index, once.

    Files without one (written by another program, index lost) are recompressed as
    block gzip with the embedded index; files with an older index keep their blocks and
    get a new index; current ones are left alone (--force rebuilds). A damaged file is
    reported and left as it is. Refused while a ttsops writer runs in the directory."""
    import json as jsonlib
    import os

    from .analyses.answer import Report, Table
    from .reading import indexer
    from .reading.parallel import default_workers
    from .rendering.output import render

    if not dirs and not files:
        raise LogsError("give a log directory (ttsops logs index DIR) or --files FILE")
    try:
        paths = indexer.candidates(list(dirs), list(files))
    except indexer.IndexError_ as e:
        raise LogsError(str(e)) from None
    if not paths:
        raise LogsError(f"no rotated app.log.N.gz files in {', '.join(dirs)}")
    total = sum(os.path.getsize(p) for p in paths)
    bar = None
    if progress or (progress is None and sys.stderr.isatty()):
        from .reading.progress import Bar

        bar = Bar(total, "indexing")
    sizes = {str(p): os.path.getsize(p) for p in paths}

    def done(r: indexer.Result) -> None:
        if bar is not None:
            bar(sizes.get(r.path, 0))
    try:
        results = indexer.run(paths, block_bytes=block_bytes, force=force,
                              jobs=jobs or default_workers(), on_done=done)
    except indexer.IndexError_ as e:
        raise LogsError(str(e)) from None
    finally:
        if bar is not None:
            bar.close()
    rep = Report("index")
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    rep.summary = {"files": len(results), **counts}
    t = Table("files", "files", ["file", "status", "blocks", "text_MB", "seconds", "detail"])
    for r in results:
        t.rows.append([r.path, r.status, r.blocks, round(r.text_bytes / 1e6, 1),
                       round(r.seconds, 2), r.detail])
    rep.tables.append(t)
    if as_json:
        click.echo(jsonlib.dumps({"summary": rep.summary, "files": [r.__dict__ for r in
                                                                     results]}, indent=1))
    else:
        render(rep, "table")
    bad = [r for r in results if r.status in ("damaged", "error", "not gzip")]
    for r in bad:
        click.echo(f"ttsops logs: warning: {r.path}: {r.status}: {r.detail}", err=True)
    if bad:
        sys.exit(EXIT_DAMAGED)


def _rules(path: str | None) -> tuple[list, str]:
    from .analyses.rules import RuleError, load

    try:
        return load(path), path or ""
    except RuleError as e:
        raise LogsError(str(e)) from None


@logs.command("alerts")
@click.option("--rules", "-r", "rules_file", type=click.Path(dir_okay=False),
              help="Rules file (TOML) [default: the rules shipped with ttsops].")
@command
def alerts_cmd(env: Env, rules_file: str | None) -> None:
    """Evaluate alert rules over history: every episode, the record that fired it and
    when it ended (the same engine `logs tail` runs live)."""
    from .analyses import alerts as mod

    rules, src = _rules(rules_file)
    env.finish(mod.run(env.snap, env.since, env.until, rules, use_index=env.use_index,
                       source=src))


@logs.command("tail")
@click.option("--dir", "-d", "log_dir", type=click.Path(file_okay=False),
              help="Log directory to follow [default: $TTSOPS_LOG_DIR].")
@click.option("--rules", "-r", "rules_file", type=click.Path(dir_okay=False),
              help="Alert rules (TOML) [default: the rules shipped with ttsops].")
@click.option("--no-alerts", is_flag=True, help="Do not evaluate alert rules.")
@click.option("--alerts-only", is_flag=True, help="Print alerts only, not records.")
@click.option("--where", "-w", "where", multiple=True,
              help="Print only records matching (e.g. level=ERROR, voice=alloy).")
@click.option("--event", "-e", help="Print only records of this event.")
@click.option("--level", "-l", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR",
                                                   "CRITICAL"]), help="Only this level.")
@click.option("-n", "last", type=click.IntRange(min=0), default=10, show_default=True,
              help="Start with the last N records of app.log.")
@click.option("--from-start", is_flag=True, help="Start at the beginning of app.log.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per line (alerts as {\"alert\": ...}).")
@click.option("--for", "duration", help="Stop after this long (e.g. 10m; 0s: print what is "
                                        "there now and stop) [default: until interrupted].")
@click.option("--poll", type=click.FloatRange(min=0, min_open=True), default=0.2,
              show_default=True,
              help="Seconds between looks at the file when it is quiet.")
def tail_cmd(log_dir: str | None, rules_file: str | None, no_alerts: bool, alerts_only: bool,
             where: tuple[str, ...], event: str | None, level: str | None, last: int,
             from_start: bool, as_json: bool, duration: str | None, poll: float) -> None:
    """Follow app.log across rotations: print records as they come, raise alerts live.

    Alerts fire once per episode of a rule (see `ttsops logs alerts` for the same rules
    over history). Stops on Ctrl-C (or SIGTERM, or --for) after printing what it read."""
    from .analyses import tail as mod
    from .analyses.rules import Engine

    try:
        conds = parse_where(where)
        secs = duration_s(duration) if duration is not None else None
    except (FilterError, TimeArgError) as e:
        raise LogsError(str(e)) from None
    if log_dir is None:
        from ..config import get_settings

        log_dir = str(get_settings().log_dir)
    engine = None if no_alerts else Engine(_rules(rules_file)[0])
    try:
        counts = mod.run(log_dir, engine=engine, where=conds, event=event, level=level,
                         from_start=from_start, last=last, as_json=as_json,
                         alerts_only=alerts_only, duration=secs, poll_s=poll)
    except SourceError as e:
        raise LogsError(str(e)) from None
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    click.echo(f"ttsops logs tail: {counts['records']} records, {counts['alerts']} alerts, "
               f"{counts['rotations']} rotations followed", err=True)


@logs.command("report")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), required=True,
              help="The HTML file to write (self-contained: open it anywhere, offline).")
@click.option("--rules", "-r", "rules_file", type=click.Path(dir_okay=False),
              help="Alert rules (TOML) [default: the rules shipped with ttsops].")
@click.option("--title", help="Title of the report.")
@click.option("--lookback", default="6h", show_default=True,
              help="History before --since used by the diagnosis (baselines, precursors).")
@stage_time_option
@command
def report_cmd(env: Env, output: str, rules_file: str | None, title: str | None,
               lookback: str) -> None:
    """One HTML file with charts: request and failure rate, error codes, stage latency,
    queue wait, cache disk, audio per voice, the diagnosis, example traces, alerts."""
    from .analyses.answer import Report
    from .rendering import report as mod

    writable(output, "--output")
    rules, _src = _rules(rules_file)
    from ..knobs import value

    warn = float(value("cache_disk_warn_percent"))
    try:
        page, summary = mod.build(env.snap, env.since, env.until, rules=rules,
                                  use_index=env.use_index, utc=utc_clock(), warn_percent=warn,
                                  title=title, lookback_s=duration_s(lookback))
    except ValueError as e:
        env.snap.close()
        raise LogsError(str(e)) from None
    rep = Report("report", problems=env.snap.problems)
    if summary["records"] == 0:
        from .reading.coverage import coverage

        lo, hi = coverage(env.snap)
        held = f"the logs cover {lo} .. {hi}" if lo and hi else "the logs hold no records"
        rep.empty = (f"no records between {env.since or 'the start'} and "
                     f"{env.until or 'the end'}; {held}; {output} not written")
    else:
        try:
            mod.write(output, page)
        except OutputError as e:
            env.snap.close()
            raise LogsError(str(e)) from None
        rep.summary = {"written": output, "size": f"{len(page.encode()) / 1024:.0f} KiB",
                       **summary}
    env.finish(rep)


from ..fleet.cli import ship_cmd, sql_cmd  # noqa: E402 -- `logs ship`, `logs sql` (ClickHouse)

logs.add_command(ship_cmd)
logs.add_command(sql_cmd)
