"""``ttsops logs ship``: the click command (registered on the ``logs`` group)."""

from __future__ import annotations

import json
import sys

import click

EXIT_USAGE, EXIT_DAMAGED = 2, 3


def _fail(message: str) -> None:
    click.echo(f"ttsops logs: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


@click.command("ship")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--to", "to", required=True, metavar="URL",
              help="clickhouse://[user[:password]@]host[:port]/database[?cluster=NAME] "
                   "(native protocol, port 9000 by default).")
@click.option("--host", "host", help="The host column of the rows [default: this "
                                     "machine's name].")
@click.option("--batch-rows", type=click.IntRange(min=1), default=100_000,
              show_default=True,
              help="Rows per insert (each batch is one insert of one day of one file).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes that read and insert files [default: one per core, at most "
                   "4; one for less than 8 MB of logs].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--progress/--no-progress", "progress", default=None,
              help="Progress bar on stderr [default: when stderr is a terminal].")
def ship_cmd(paths: tuple[str, ...], to: str, host: str | None, batch_rows: int,
             workers: int | None, as_json: bool, progress: bool | None) -> None:
    """Ship the log files of PATHS (directories or files) to ClickHouse, each record
    once: a re-run ships nothing twice, a file that grew ships its new records, an
    interrupted ship resumes. Creates the tables that are missing (a Distributed table
    over the shards when the URL names a cluster).

    Exit status: 0 shipped (or nothing new), 2 bad URL, missing path or unreachable
    server, 3 some file damaged or unreadable (the rest shipped)."""
    from . import ship as mod
    from .client import FleetError
    from .url import UrlError, parse_url

    try:
        url = parse_url(to)
    except UrlError as e:
        _fail(f"--to {e}")
        return
    bar = None
    try:
        if progress or (progress is None and sys.stderr.isatty()):
            from ..forensics.reading.progress import Bar

            bar = Bar(mod.total_bytes(list(paths)), "shipping")
        try:
            res = mod.ship(url, list(paths), host=host, progress=bar, batch=batch_rows,
                           workers=workers)
        finally:
            if bar is not None:
                bar.close()
    except FleetError as e:
        _fail(str(e))
        return
    if as_json:
        click.echo(json.dumps({"to": str(url), "rows": res.rows,
                               "seconds": round(res.seconds, 3),
                               "rows_per_s": round(res.rate),
                               "files": [f.__dict__ for f in res.files]}, indent=1))
    else:
        for f in res.files:
            if f.rows or f.status not in ("up to date",):
                click.echo(f"{f.status:>10}  {f.rows:>9} rows  {f.path}"
                           + (f"  ({f.detail})" if f.detail else ""))
        n = sum(1 for f in res.files if f.rows)
        click.echo(f"shipped {res.rows} rows from {n} of {len(res.files)} files to {url} "
                   f"in {res.seconds:.2f} s ({res.rate:,.0f} rows/s)")
    bad = [f for f in res.files if f.status in ("damaged", "unreadable")]
    for f in bad:
        click.echo(f"ttsops logs: warning: {f.path}: {f.status}: {f.detail}", err=True)
    if bad:
        sys.exit(EXIT_DAMAGED)


@click.command("sql")
@click.argument("query")
@click.option("--source", "source", required=True, metavar="URL",
              help="clickhouse://[user[:password]@]host[:port]/database[?cluster=NAME]: "
                   "the query's default database is this one (tables ttsops_logs, "
                   "ttsops_ship_ledger).")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: {\"columns\": [...], \"rows\": [[...], ...]}.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
def sql_cmd(query: str, source: str, as_json: bool, as_csv: bool) -> None:
    """Run an ad-hoc SQL query on the shipped logs (ClickHouse) and print its rows.

    Exit status: 0 answered, 2 bad URL, unreachable server or a query the server
    refused (its message, one line)."""
    from .client import FleetError, call, connect
    from .url import UrlError, parse_url

    if as_json and as_csv:
        _fail("--json and --csv exclude each other")
    try:
        url = parse_url(source)
    except UrlError as e:
        _fail(f"--source {e}")
        return
    try:
        client = connect(url, database=url.database)
        rows, types = call(client, query, with_column_types=True)
        client.disconnect()
    except FleetError as e:
        _fail(str(e))
        return
    columns = [c for c, _t in types]
    if as_json:
        click.echo(json.dumps({"columns": columns, "rows": rows}, default=str,
                              ensure_ascii=False, indent=1))
        return
    if as_csv:
        import csv

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)
        return
    from ..forensics.analyses.answer import Report, Table
    from ..forensics.rendering.output import render

    rep = Report("sql")
    t = Table("rows", f"{len(rows)} rows", columns)
    t.rows = [list(r) for r in rows]
    rep.tables.append(t)
    render(rep, "table")
