"""``--source clickhouse://...`` on the ``logs`` commands: the same command, the same
report, from the database.

The database does the heavy part: the time window, id lookups (``trace``: the rows
whose fields hold the id), level selection (``top``) are ``WHERE`` clauses, the
counts of ``window`` are one ``GROUP BY`` (``sqlwindow``). The rows that remain come back
as the records were written (the ``text`` column) into a private temporary directory,
one stream per shipped host, ordered as the host's files were; the command's own
analysis then runs on them through the ordinary reading interface, so every answer is
the file engine's answer on the same records.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..forensics.commands import UsageError
from .client import FleetError, call_error, connect, unknown_table
from .schema import TABLE, exists
from .sqlwhere import lit as _lit
from .sqlwhere import where_sql
from .url import ChUrl, UrlError, parse_url

if TYPE_CHECKING:  # (pathlib, shutil, tempfile: imported where rows are fetched, not by
    from pathlib import Path  # the commands answered by one statement: their start)

# the analyses join a synthesis's records from before --since (stages, audio, patterns:
# ``JOIN_MARGIN_S``, 15 min); the rows fetched start this much earlier (a superset: the
# analysis applies its own window to what it reads)
MARGIN_S = 3600.0
# commands whose analysis reads history before --since: --lookback more (alerts: all)
_LOOKBACK = {"diagnose_cmd", "report_cmd", "precursors_cmd"}
_ALL_HISTORY = {"alerts_cmd"}
_LEVELS = {"errors": ("ERROR", "CRITICAL"), "warnings": ("WARNING",)}
_PRECURSOR_LEVELS = ("ERROR", "CRITICAL", "WARNING")


def _any_text(needles: tuple[str, ...] | list[str]) -> str:
    """Rows whose text holds one of ``needles``: the scan's literal pre-filter, as SQL
    (a superset of what the analysis uses; it filters again)."""
    return "(" + " OR ".join(f"position(text, {_lit(n)}) > 0" for n in needles) + ")"


def _levels(levels: tuple[str, ...]) -> str:
    return f"level IN ({', '.join(_lit(x) for x in levels)})"


def _conditions(name: str, kw: dict[str, Any]) -> list[str]:
    """The command's own push-down: rows its analysis cannot use are not fetched."""
    if name == "trace_cmd":
        ids = [i.strip() for i in kw.get("ids", ()) if i.strip()]
        if not ids:
            return []
        lits = ", ".join(_lit(i) for i in ids)
        return [f"arrayExists(v -> v IN ({lits}), vals)"]
    if name == "top_cmd":
        lv = _LEVELS.get(kw.get("kind", ""))
        return [_levels(lv)] if lv else []
    if name == "precursors_cmd":
        return [_levels(_PRECURSOR_LEVELS)]
    if name == "stages_cmd":
        from ..forensics.analyses import stages

        return [_any_text(stages.NEEDLES)]
    if name == "audio_cmd":
        from ..forensics.analyses import audio

        return [_any_text(audio.NEEDLES)]
    if name == "cache_cmd":
        from ..forensics.analyses import cache

        return [_any_text(cache.NEEDLES)]
    if name == "patterns_cmd":
        event = kw.get("event")
        if event == "*":
            return []
        if event:
            return [_any_text((event,))]
        return [_any_text(("synthesis_complete", "synthesis_start", "audio_metrics",
                           "synthesis_failed"))]
    return []


def _lower(name: str, since: str | None, kw: dict[str, Any]) -> str | None:
    """The earliest time of the rows fetched for ``name``."""
    if since is None or name in _ALL_HISTORY:
        return None
    from ..forensics.reading.timeargs import TimeArgError, duration_s, shift

    if name == "window_cmd":  # --ids-out: the syntheses started in the window
        return since
    back = MARGIN_S
    if name in _LOOKBACK:
        try:
            back += duration_s(kw.get("lookback") or "6h")
        except TimeArgError:
            return None  # the command refuses it itself
    return shift(since, -back)


def fetch(client: Any, url: ChUrl, where: str, out: Path,
          settings: dict[str, Any] | None = None) -> list[str]:
    """Write the matching rows, as written, into ``out/<host>/app.log`` (one file per
    host: its files in their order); the directories written."""
    sql = (f"SELECT host, text FROM `{url.database}`.`{TABLE}` WHERE {where} "
           "ORDER BY host, file_ts, file, seq")
    dirs: list[str] = []
    fh = None
    cur = None
    try:
        for host, text in _guard(client, sql, {"max_block_size": 65536, **(settings or {})}):
            if host != cur:
                if fh is not None:
                    fh.close()
                cur = host
                d = out / _dirname(host, len(dirs))
                if d.exists():  # two host names that read alike as a directory name
                    d = out / f"{d.name}.{len(dirs)}"
                d.mkdir()
                dirs.append(str(d))
                fh = open(d / "app.log", "w", encoding="utf-8", newline="\n")  # noqa: SIM115
            assert fh is not None
            fh.write(text)
            fh.write("\n")
    finally:
        if fh is not None:
            fh.close()
    return dirs


def _guard(client: Any, sql: str, settings: dict[str, Any]) -> Any:
    """The rows of ``sql``, the client's errors as ``FleetError``."""
    try:
        yield from client.execute_iter(sql, settings=settings)
    except Exception as e:
        call_error(client, e)


def _dirname(host: str, n: int) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in host).strip(".")
    return safe or f"host{n}"


def open_source(source: str) -> tuple[ChUrl, Any]:
    """The URL and a client of ``--source``; not connected yet: the command's first
    statement connects (one round trip fewer), and a statement the server refuses for a
    missing table is explained by ``failed``."""
    try:
        url = parse_url(source)
    except UrlError as e:
        raise UsageError(f"--source {e}") from None
    try:
        client = connect(url, check=False, light=True)
    except FleetError as e:
        raise UsageError(str(e)) from None
    return url, client


def failed(client: Any, url: ChUrl, e: FleetError) -> UsageError:
    """The usage error of ``e``: where the server said a table is missing and the logs'
    table is the one, that no logs were shipped there."""
    if unknown_table(e):
        try:
            if not exists(client, url):
                return UsageError(f"{url}: no table {url.database}.{TABLE} (ship logs "
                                  "there first: ttsops logs ship DIR --to URL)")
        except FleetError as again:
            return UsageError(str(again))
    return UsageError(str(e))


def run(fn: Callable[..., Any], source: str, dirs: tuple[str, ...] = (),
        files: tuple[str, ...] = (), since: str | None = None, until: str | None = None,
        tz: str | None = None, as_json: bool = False, as_csv: bool = False,
        no_index: bool = False, progress: bool | None = None, **kw: Any) -> None:
    """``commands.run`` for ``--source``: the Env's snapshot comes from the database."""
    from ..forensics import commands

    if dirs or files:
        raise UsageError("--source reads the database: it excludes --dir and --files")
    if as_json and as_csv:
        raise UsageError("--json and --csv exclude each other")
    url, client = open_source(source)
    # the command: ``trace_cmd`` (click's path), or ``trace_body`` (forensics.quick's)
    name = getattr(fn, "__name__", "").removesuffix("_body").removesuffix("_cmd") + "_cmd"
    fmt = "json" if as_json else "csv" if as_csv else "table"
    # the window as the command will read it (the same parsing: Env below repeats it)
    try:
        lo, hi = _window(since, until, tz)
    except UsageError:
        client.disconnect()
        raise
    rep = None
    tmp = None
    try:
        if name == "window_cmd" and kw.get("ids_out") is None:
            from . import sqlwindow

            rep = sqlwindow.report(client, url, lo, hi)
        elif name in ("top_cmd", "stages_cmd", "patterns_cmd"):
            rep = _grouped(name, client, url, lo, hi, kw)
        if rep is None:
            import tempfile
            from pathlib import Path

            tmp = Path(tempfile.mkdtemp(prefix="ttsops-source-"))
            got = _rows(name, client, url, lo, hi, kw, tmp)
    except FleetError as e:
        if tmp is not None:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        raise failed(client, url, e) from None
    finally:
        client.disconnect()
    if rep is not None:
        from . import sqlwindow

        try:
            sqlwindow.finish(rep, fmt)
        except BrokenPipeError:  # `... | head`
            _quiet_exit()
        return
    assert tmp is not None
    import shutil

    try:
        if not got:  # nothing matched: an empty log, answered as the files would be
            (tmp / "empty").mkdir()
            (tmp / "empty" / "app.log").write_text("")
            got = [str(tmp / "empty")]
        commands.run(fn, tuple(got), (), since, until, tz, as_json, as_csv, True, progress,
                     **kw)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rows(name: str, client: Any, url: ChUrl, lo: str | None, hi: str | None,
          kw: dict[str, Any], tmp: Path) -> list[str]:
    """Fetch the rows the command's analysis reads into ``tmp`` (``fetch``)."""
    conds = _conditions(name, kw)
    ids = [i.strip() for i in kw.get("ids", ()) if i.strip()] if name == "trace_cmd" else []
    if ids:  # the id lookup: the few ranges that hold the ids
        from . import sqltrace

        narrow = sqltrace.narrow(client, url, ids)
        if narrow == ["0"]:
            return []  # no row holds one of them
        if narrow is not None:
            return fetch(client, url, where_sql(_lower(name, lo, kw), hi, conds + narrow),
                         tmp, settings=sqltrace.SETTINGS)
    return fetch(client, url, where_sql(_lower(name, lo, kw), hi, conds), tmp)


def _grouped(name: str, client: Any, url: ChUrl, lo: str | None, hi: str | None,
             kw: dict[str, Any]) -> Any:
    """The report of ``top`` or ``stages`` as ``GROUP BY``s, for one host (the reading
    order of several hosts' records is their merge by time); None: the general way."""
    from . import sqlstages, sqltop

    if name == "patterns_cmd":  # order-free counts: any number of hosts
        from ..forensics.reading.filters import parse_buckets, parse_by, parse_where

        try:
            by, where = parse_by(kw.get("by")), parse_where(kw.get("where", ()))
            buckets = parse_buckets(kw.get("buckets", ()))
        except ValueError:
            return None  # the command says what is wrong with them
        from . import sqlpatterns

        return sqlpatterns.answer(client, url, lo, hi, by=by, where=where, buckets=buckets,
                                  event=kw.get("event"), top=kw.get("top", 0))
    if name == "stages_cmd" and not (kw.get("by") or kw.get("where")):
        rep = sqlstages.from_blocks(client, url, lo, hi, kw.get("slowest", 5))
        if rep is not None:
            return rep
    if sqltop.hosts(client, url) > 1:
        return None
    if name == "top_cmd":
        return sqltop.report(client, url, lo, hi, kw["kind"], kw.get("top", 5))
    if kw.get("by") or kw.get("where"):
        return None
    return sqlstages.answer(client, url, lo, hi, kw.get("slowest", 5))


def _quiet_exit() -> None:
    """The reader of our output went away (``| head``): exit 0, quietly."""
    import os
    import sys

    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.stderr.close()
    sys.exit(0)


def _window(since: str | None, until: str | None, tz: str | None
            ) -> tuple[str | None, str | None]:
    if not since and not until and tz is None:
        return None, None
    from ..forensics.commands import utc_clock as _utc
    from ..forensics.reading.timeargs import TimeArgError, parse_tz, window

    try:
        return window(since, until, utc=_utc(), tz=parse_tz(tz) if tz is not None else None)
    except TimeArgError as e:
        raise UsageError(str(e)) from None

