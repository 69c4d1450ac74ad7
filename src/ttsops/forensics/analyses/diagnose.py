"""``logs diagnose``: the three steps at once, as ranked findings in plain words.

Three steps, a module each:

* ``diagnose_collect``: one pass over ``[since - lookback, until)`` feeds every collector
  (window counts, top codes with ``where``, failure patterns in the inputs, latency by
  time bucket, precursors of error bursts, audio anomalies, web page playback errors,
  failures that were answered with 2xx, model load failures, workers, the log itself,
  the cache disk) and returns what they hold;
* ``diagnose_judge``: the findings from that data (e.g. which component made a slow
  period slow, against the baseline of the other buckets), each with its severity from
  the table of rules ``SEVERITY_RULES``, ranked;
* ``diagnose_render``: the report (text with markup, table, JSON data).

Between judging and rendering a second, index-pruned pass fetches one example trace per
finding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...logline import Record
from ..reading.sources import LogFile, Snapshot
from . import diagnose_frames
from .answer import Report
from .audio import AudioStats
from .diagnose_collect import collect, example_traces
from .diagnose_judge import SEVERITY, Finding, judge
from .diagnose_render import render

__all__ = ["SEVERITY", "Finding", "run"]


def run(snap: Snapshot, since: str | None, until: str | None, *, lookback_s: float = 6 * 3600,
        use_index: bool = True, utc: bool = True,
        tap: Callable[[Record, LogFile], None] | None = None,
        progress: Callable[[int], None] | None = None,
        tap_frame: Callable[[LogFile, Any], None] | None = None,
        frame_columns: Sequence[str] = (), audio: AudioStats | None = None,
        traces_out: dict[str, list[Record]] | None = None) -> Report:
    """The findings. ``tap`` is called with every record of [since, until) and its file,
    in order, from the same pass (``report`` draws its charts from it: one read, not
    two); or, when the records come from sidecars (one stream, every file with one, no
    ``since``), ``tap_frame`` instead with each file's frame (``frame_columns`` of it)
    before its records. ``audio``: the collector fed every synthesis of the window (the
    caller's, to share this pass's join). ``traces_out``: filled with the example
    traces (id -> its records), for a caller that shows them too."""
    col = None
    if tap is None or tap_frame is not None:  # the frames' pass, where it applies
        col = diagnose_frames.collect(snap, since, until, lookback_s=lookback_s,
                                      use_index=use_index, utc=utc, progress=progress,
                                      tap_frame=tap_frame, frame_columns=frame_columns,
                                      audio=audio)
    if col is None:
        col = collect(snap, since, until, lookback_s=lookback_s, use_index=use_index,
                      utc=utc, tap=tap, progress=progress, tap_frame=tap_frame,
                      frame_columns=frame_columns, audio=audio)
    findings = judge(col)
    examples = sorted({f.example for f in findings if f.example})
    traces = diagnose_frames.example_traces(col, examples)
    if traces is None:
        traces = example_traces(col, examples)
    if traces_out is not None:
        traces_out.update(traces)
    return render(col, findings, traces)
