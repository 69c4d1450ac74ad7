"""``logs window --source``: the window's counts as one ``GROUP BY`` in the database
(the file engine's ``window`` report, built from the grouped rows). ``--ids-out``
goes the general way (``source``): the ids come from the records."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from .client import FleetError, call
from .schema import TABLE
from .url import ChUrl

# one statement: a row per group of records (kind 1), the count of the lines that are
# no record (kind 0: level ''), and the first five of those lines (kind 2, with their
# place in the reading order: host, file_ts, file, seq)
_GROUPS = """
SELECT toUInt8(level != '') AS kind, level, event,
  multiIf(level IN ('ERROR', 'CRITICAL'), if(error_code != '', error_code, '(no code)'),
          level = 'WARNING', if(warning_code != '', warning_code,
                                if(error_code != '', error_code, '(no code)')), '') AS code,
  if(event = 'synthesis_complete', if(has(keys, 'status'), status, '(none)'), '') AS st,
  if(event = 'synthesis_complete' AND st = 'failed',
     if(error_code != '', error_code, '(no code)'), '') AS fcode,
  count(), min(ts), max(ts)
FROM {table} WHERE {where}
GROUP BY kind, level, event, code, st, fcode
UNION ALL
SELECT toUInt8(2), substring(text, 1, 200), host, file_ts, file, '', seq, '', '' FROM (
  SELECT text, host, file_ts, file, seq FROM {table} WHERE level = '' AND {where}
  ORDER BY host, file_ts, file, seq LIMIT 5)
"""
_SPAN = "SELECT min(ts), max(ts) FROM {table} WHERE level != ''"


def answer(client: Any, url: ChUrl, since: str | None, until: str | None, as_json: bool,
           as_csv: bool) -> None:
    from ..forensics.commands import UsageError

    try:
        rep = report(client, url, since, until)
    except FleetError as e:
        raise UsageError(str(e)) from None
    finish(rep, "json" if as_json else "csv" if as_csv else "table")


def report(client: Any, url: ChUrl, since: str | None, until: str | None) -> Any:
    from ..forensics.analyses.answer import Report, Table
    from .sqlwhere import where_sql

    table = f"`{url.database}`.`{TABLE}`"
    where = where_sql(since, until)
    levels: Counter[str] = Counter()
    events: Counter[str] = Counter()
    error_codes: Counter[str] = Counter()
    warning_codes: Counter[str] = Counter()
    failure_codes: Counter[str] = Counter()
    complete: Counter[str] = Counter()
    records = 0
    first: str | None = None
    last: str | None = None
    skipped = 0
    lines: list[tuple[Any, ...]] = []
    for kind, level, event, code, st, fcode, n, lo, hi in call(
            client, _GROUPS.format(table=table, where=where)):
        if kind == 0:  # the lines that are no record
            skipped += n
            continue
        if kind == 2:  # one of them: (host, file_ts, file, seq, its text)
            lines.append((event, code, st, n, level))
            continue
        records += n
        first = lo if first is None or lo < first else first
        last = hi if last is None or hi > last else last
        levels[level] += n
        events[event or "(no event)"] += n
        if level in ("ERROR", "CRITICAL"):
            error_codes[code] += n
        elif level == "WARNING":
            warning_codes[code] += n
        if event == "synthesis_complete":
            complete[st] += n
            if fcode:
                failure_codes[fcode] += n
    examples = [line[-1] for line in sorted(lines)]
    started = events.get("synthesis_start", 0)
    n_complete = sum(complete.values())
    rate = complete.get("failed", 0) / n_complete if n_complete else None
    rep = Report("window")
    rep.summary = {
        "window": f"{since or 'start'} .. {until or 'end'} (until exclusive)",
        "records": records,
        "first / last record": f"{first or '-'} / {last or '-'}",
        "ERROR + WARNING records": levels["ERROR"] + levels["WARNING"] + levels["CRITICAL"],
        "syntheses started": started,
        "completed": f"{n_complete} ({complete.get('success', 0)} success, "
                     f"{complete.get('failed', 0)} failed)",
        "failure rate": "-" if rate is None else f"{rate * 100:.2f}%",
        "files read": 0,
        "unparsable lines": skipped,
    }
    rep.data = {"window": {"since": since, "until": until}, "records": records,
                "first": first, "last": last, "levels": dict(levels),
                "events": dict(events), "error_codes": dict(error_codes),
                "warning_codes": dict(warning_codes),
                "failure_codes": dict(failure_codes), "started": started,
                "complete": dict(complete), "failure_rate": rate,
                "unparsable_lines": skipped, "unparsable_examples": examples,
                "read": {"source": str(url), "rows": records + skipped}}
    counts = Table("counts", "counts in the window", ["kind", "key", "count"])
    for kind, c in (("level", levels), ("error_code", error_codes),
                    ("warning_code", warning_codes), ("failed_synthesis", failure_codes),
                    ("event", events)):
        for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])):
            counts.rows.append([kind, k, n])
    rep.tables.append(counts)
    if examples:
        from ..forensics.analyses.answer import safe

        rep.text.append(f"[yellow]{skipped} unparsable lines[/], e.g.:")
        rep.text.extend(f"  {safe(e[:160])}" for e in examples[:3])
    if records == 0:
        lo, hi = call(client, _SPAN.format(table=table))[0]
        held = f"the logs cover {lo} .. {hi}" if lo and hi else "the logs hold no records"
        rep.empty = f"no records between {since or 'the start'} and {until or 'the end'}; {held}"
    return rep


def finish(rep: Any, fmt: str) -> None:
    """Render and exit as ``commands.Env.finish`` does (no files: no file problems)."""
    from ..forensics.commands import EXIT_EMPTY, echo
    from ..forensics.rendering.output import render

    if not rep.empty or fmt == "json":
        render(rep, fmt)
    if rep.empty:
        echo(f"ttsops logs: {rep.empty}", err=True)
        sys.exit(EXIT_EMPTY)
