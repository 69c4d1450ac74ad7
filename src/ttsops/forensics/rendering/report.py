"""``logs report``: one self-contained HTML file (inline CSS and SVG, no script, no
network) with the charts an on-call engineer looks at first:

* request rate and failure rate over time; error codes over time
* stage latency percentiles over time (each stage, and end to end); queue wait
* cache-disk usage with its warning threshold
* audio-metric distributions per voice (with the anomalies of the robust baseline)
* the ``diagnose`` findings, one example trace each (as a timeline), and the alert
  episodes of the rules

Every number comes from the same readers and collectors as the other commands: one scan
for the charts, ``diagnose`` for the findings, ``alerts`` for the episodes, ``trace`` for
the examples.
"""

from __future__ import annotations

import contextlib
import time
from array import array
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from ...logline import Record
from ..analyses.answer import OutputError, Report
from ..analyses.audio import AudioStats
from ..analyses.rules import Rule
from ..reading.assemble import Assembler
from ..reading.sources import LogFile, Snapshot
from ..reading.timeargs import epoch_to_ts, human_duration, ts_to_epoch
from .report_data import Collect, Series, holes, pick_bucket
from .report_html import (
    alerts_html,
    audio_figures,
    chart_cache,
    chart_codes,
    chart_queue,
    chart_requests,
    chart_stages,
    esc,
    findings_html,
    kpis,
    percentile_of,
)

__all__ = ["Collect", "build", "chart_range", "holes", "write"]

CHART_ROWS = 100_000  # records of the charts counted at once (a few files of a month)


def chart_range(since: str | None, until: str | None, first: str | None,
                last: str | None) -> tuple[str, str, bool]:
    """The span the charts cover: the window asked for (``--until 2024-06-13`` includes
    that day) cut to the records read (``first``/``last``), so no empty day is
    charted; ``(lo, hi, hi_is_last_record)``."""
    lo = max(since, first) if since and first else since or first
    hi = min(until, last) if until and last else until or last
    if lo is None or hi is None:
        raise ValueError("no timestamps in these logs: nothing to chart")
    if lo >= hi:  # the window lies outside the logs: chart the window as asked
        return since or lo, until or hi, until is None
    return lo, hi, hi != until


def _read(snap: Snapshot, since: str | None, until: str | None, *, use_index: bool,
          utc: bool, lookback_s: float,
          progress: Callable[[int], None] | None,
          traces: dict[str, list[Record]], rules: list[Rule],
          ) -> tuple[Collect, AudioStats, Report, list[Any]]:
    """The charts' data, the syntheses' audio, the diagnosis (its example traces into
    ``traces``) and the alert episodes, in as few reads as possible."""
    from ..analyses import alerts as alerts_mod
    from ..analyses import diagnose

    if since is None:
        got = _read_parts(snap, until, use_index=use_index, utc=utc, lookback_s=lookback_s,
                          progress=progress, traces=traces, rules=rules)
        if got is not None:
            return got
    # one pass collects per minute; the span comes from the records themselves (a
    # whole-file gzip without an index tells its times only when read), then the
    # minutes are merged into the chart's buckets
    col = Collect(utc)
    audio = AudioStats()
    asm = Assembler()

    def tap(rec: Record, f: LogFile) -> None:
        col.feed(rec, str(f.path))
        s = asm.feed(rec)
        if s is not None:
            audio.feed(s)

    def tap_charts(rec: Record, f: LogFile) -> None:
        col.feed(rec, str(f.path))

    held: list[tuple[Any, str | None]] = []  # files' frames fed to the charts at once
    # the alert rules evaluated over the same frames (read once), where they can be
    shared = alerts_mod.Shared(snap, since, until, rules, use_index=use_index) \
        if since is None else None
    columns = list(dict.fromkeys([*Collect.FRAME_COLUMNS,
                                  *(shared.columns if shared is not None else [])]))

    last = snap.files[-1] if snap.files else None

    def tap_frame(f: LogFile, df: Any) -> None:
        held.append((df.select(Collect.FRAME_COLUMNS), str(f.path)))
        if shared is not None:
            shared.feed(f, df)
        if f is last or sum(d.height for d, _p in held) >= CHART_ROWS:
            # (the last file's frame: nothing held while diagnose finishes, its peak)
            col.feed_frames(held)
            held.clear()
            if f is last and shared is not None:
                shared.flush()

    if since is None:
        # one read: the charts are fed the records by diagnose's own pass (the same
        # records: without a start there is no look-back before it); read from the
        # sidecars, a file's frame at a time, counted by Polars; the syntheses (audio)
        # joined once, by diagnose
        diag = diagnose.run(snap, since, until, lookback_s=lookback_s, use_index=use_index,
                            utc=utc, tap=tap_charts, progress=progress, tap_frame=tap_frame,
                            frame_columns=columns, audio=audio, traces_out=traces)
        col.feed_frames(held)
    else:  # diagnose reads a look-back before the window too: the charts' own read
        from ..reading.scan import Query, Scan

        for rec, f in Scan(snap, Query(since, until, use_index=use_index),
                           progress=progress).hits():
            tap(rec, f)
        diag = diagnose.run(snap, since, until, lookback_s=lookback_s, use_index=use_index,
                            utc=utc, traces_out=traces)
    episodes = shared.finish() if shared is not None else None
    if episodes is None:  # the rules' own read
        episodes, _ = alerts_mod.evaluate(snap, since, until, rules, use_index=use_index)
    return col, audio, diag, episodes


def _read_parts(snap: Snapshot, until: str | None, *, use_index: bool, utc: bool,
                lookback_s: float, progress: Callable[[int], None] | None,
                traces: dict[str, list[Record]], rules: list[Rule],
                ) -> tuple[Collect, AudioStats, Report, list[Any]] | None:
    """``_read`` without ``since`` where every file has a sidecar: ``diagnose`` on its own
    (from its companions), then the charts and the alert rules from one read of the
    files' frames (``_charts_and_rules``); None where this does not apply (the caller
    reads as before)."""
    from ..analyses import alerts as alerts_mod
    from ..analyses import diagnose
    from ..analyses.diagnose_synth_frames import usable
    from ..reading import sidecar, vector
    from ..reading.scan import Query, Scan

    audio = AudioStats()
    if not utc or not vector.available() or not usable(audio):
        return None
    scan = Scan(snap, Query(None, until, use_index=use_index), progress=progress)
    if len(scan.streams()) != 1 or not sidecar.covered(scan):
        return None
    # (diagnose first: its peak of memory with nothing else held)
    diag = diagnose.run(snap, None, until, lookback_s=lookback_s, use_index=use_index,
                        utc=utc, audio=audio, traces_out=traces)
    col, episodes = _charts_and_rules(snap, scan, until, use_index, utc, rules)
    if episodes is None:  # the rules' own read
        episodes, _ = alerts_mod.evaluate(snap, None, until, rules, use_index=use_index)
    return col, audio, diag, episodes


def _charts_and_rules(snap: Snapshot, scan: Any, until: str | None, use_index: bool,
                      utc: bool, rules: list[Rule]) -> tuple[Collect, list[Any] | None]:
    """The charts' minutes and the alert episodes (None: to be evaluated on their own)
    from one read of the scan's frames: each file's charts from its companion
    (``report_parts``) where it has one, the rules' pre-filter too; the frames without
    the columns every file has a companion for."""
    from ...logformat import dialects
    from ..analyses import alerts as alerts_mod
    from ..reading import sidecar
    from .report_parts import ChartParts, FileTables, KeepParts, Unread

    files = FileTables(write=sidecar.mode() != "off")
    files.look(scan)
    # the charts' columns where a file has no charts' companion, the lines where one has
    # no pre-filter's (both where a window may cut a file: its frame is read by lines;
    # and both on a second try, a companion found unreadable)
    for lean in ((True, False) if until is None else (False,)):
        charts = ChartParts(files, utc, dialects.stage_time_mode())
        shared = alerts_mod.Shared(snap, None, until, rules, use_index=use_index)
        needles = shared.ff.needles if shared.ff is not None else None
        keeps = KeepParts(files, needles) if needles is not None else None
        all_charts = charts.look() and lean
        all_keeps = keeps is not None and keeps.look() and lean
        columns = list(dict.fromkeys([*([] if all_charts else Collect.FRAME_COLUMNS),
                                      *(c for c in shared.columns
                                        if c != "raw" or not all_keeps)])) or ["ts"]
        col = Collect(utc)
        try:
            for f, df in sidecar.frames(scan, columns):
                charts.feed(col, f, df)
                kept = keeps.kept(f, df) if keeps is not None else None
                if kept is not None:
                    shared.feed(f, kept[0], kept=True, secs=kept[1])
                else:
                    shared.feed(f, df)
        except Unread:
            continue
        return col, shared.finish()
    raise AssertionError("read with every column: nothing unread")


def _traces(diag: Report, found: dict[str, list[Record]]) -> dict[str, list[Record]]:
    """The records of the first six findings' examples: of those ``diagnose`` fetched
    for all of them (the same window, the same records, in the same order)."""
    examples = [f["example"] for f in diag.data.get("findings", []) if f.get("example")]
    first = set(list(dict.fromkeys(examples))[:6])
    return {sid: recs for sid, recs in found.items() if sid in first}


def _joined(buckets: list[array[float]]) -> Any:
    """Every bucket's values, one after another (a numpy array)."""
    import numpy as np

    from ..analyses.stats import floats

    return np.concatenate([floats(a) for a in buckets]) if buckets else np.zeros(0)


def _kpis(ser: Series, episodes: list[Any]) -> str:
    done = sum(ser.ok) + sum(ser.failed)
    nfail = sum(ser.failed)
    p95 = percentile_of(_joined(ser.e2e), 95)
    q95 = percentile_of(_joined(ser.queue), 95)
    crit = sum(1 for a in episodes if a.severity == "critical")
    return kpis([
        ("syntheses completed", f"{done:,}", False),
        ("failure rate", f"{100.0 * nfail / done:.2f}%" if done else "-",
         bool(done and nfail / done > 0.05)),
        ("p95 end to end", f"{p95:.0f} ms" if p95 is not None else "-", False),
        ("p95 queue wait", f"{q95:.0f} ms" if q95 is not None else "-",
         bool(q95 and q95 > 1000)),
        ("ERROR records", f"{ser.levels.get('ERROR', 0) + ser.levels.get('CRITICAL', 0):,}",
         False),
        ("alert episodes", f"{len(episodes)} ({crit} critical)", crit > 0),
    ])


def build(snap: Snapshot, since: str | None, until: str | None, *, rules: list[Rule],
          use_index: bool = True, utc: bool = True, warn_percent: float = 90.0,
          title: str | None = None, lookback_s: float = 6 * 3600,
          progress: Callable[[int], None] | None = None) -> tuple[str, dict[str, Any]]:
    """The report's HTML and a summary (for the command's own output)."""
    found: dict[str, list[Record]] = {}
    col, audio, diag, episodes = _read(snap, since, until, use_index=use_index, utc=utc,
                                       lookback_s=lookback_s, progress=progress,
                                       traces=found, rules=rules)
    lo, hi, to_end = chart_range(since, until, col.first, col.last)
    t0, t1 = ts_to_epoch(lo, utc), ts_to_epoch(hi, utc)
    if to_end:
        t1 += 0.001  # the last record (the end of the logs) belongs in the last bucket
    bucket = pick_bucket(max(t1 - t0, 60.0))
    t0 = t0 - t0 % bucket
    n = max(1, int((t1 - t0) // bucket) + (1 if (t1 - t0) % bucket else 0))
    ser = col.view(t0, bucket, n, holes(snap, col, utc))
    traces = _traces(diag, found)
    done = sum(ser.ok) + sum(ser.failed)
    nfail = sum(ser.failed)
    hosts = ", ".join(snap.streams)
    body = [_kpis(ser, episodes),
            '<h2 id="traffic">Traffic and errors</h2>', chart_requests(ser), chart_codes(ser),
            '<h2 id="latency">Latency</h2>', chart_stages(ser), chart_queue(ser),
            '<h2 id="cache">Cache</h2>', chart_cache(ser, warn_percent),
            '<h2 id="audio">Audio quality</h2>', audio_figures(audio),
            findings_html(diag, traces), alerts_html(episodes, rules)]
    if snap.problems:
        body.append('<h2 id="problems">Input problems</h2><ul>' + "".join(
            f"<li>{esc(p)}</li>" for p in dict.fromkeys(str(p) for p in snap.problems))
            + "</ul>")
    if ser.gaps:
        body.append('<p class="how">Lost to damage (grey bands in the charts): ' + "; ".join(
            f"{esc(epoch_to_ts(a, utc)[:19])} .. {esc(epoch_to_ts(b, utc)[:19])} "
            f"({esc(why.split(':')[0])})" for a, b, why in ser.gaps) + "</p>")
    title = title or "ttsops report"
    subtitle = (f"{lo} .. {hi} ({'UTC' if utc else 'local time'}), "
                f"{human_duration(t1 - t0)} in buckets of {human_duration(bucket)}; "
                f"{ser.records:,} records from {len(snap.files)} files ({hosts})")
    footer = (f"generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} by ttsops "
              "logs report; self-contained (no scripts, no network). Hover a bar, line or "
              "box for its values.")
    tpl = resources.files(__package__).joinpath("report_template.html").read_text("utf-8")
    page = (tpl.replace("@@TITLE@@", esc(title)).replace("@@SUBTITLE@@", esc(subtitle))
            .replace("@@FOOTER@@", esc(footer)).replace("@@BODY@@", "\n".join(body)))
    summary = {"window": f"{lo} .. {hi}", "bucket": human_duration(bucket),
               "records": ser.records, "syntheses": done,
               "failure rate": f"{100.0 * nfail / done:.2f}%" if done else "-",
               "findings": len(diag.data.get("findings", [])),
               "missing spans": len(ser.gaps),
               "alert episodes": len(episodes), "example traces": len(traces)}
    return page, summary


def write(path: str | Path, page: str) -> None:
    """Write ``page`` to ``path`` atomically (a ``.part`` file renamed over it); raises
    OutputError when it cannot be written (missing directory, no permission)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".part")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(p)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
