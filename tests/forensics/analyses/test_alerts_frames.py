"""``logs alerts`` over the sidecars' frames (``alerts._feed_frames``: the window rules --
count, rate, percentile -- as array passes, ``alerts_frames.WindowRule``; the others by the
engine fed only the records they select, told only the time of the others) gives the
episodes the record path gives on the same files: random records (hypothesis) split into
rotated files and a live one, with the shipped rules, the README's examples and rules of
every kind with short windows and edge settings; tutorial-style logs (bench's generator
and the dialect fixture) and the simulator's; times that go back (the engine for all)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttsops.forensics.analyses import alerts as alerts_mod
from ttsops.forensics.analyses import alerts_frames
from ttsops.forensics.analyses.rules import Clock
from ttsops.forensics.reading.sources import open_snapshot

from .alert_logs import (
    RECORDS,
    RULE_SETS,
    drawn_logs,
    linked_from,
    read_once,
    read_whole,
    rules_of,
    write_logs,
)


def _episodes(logs: Path, rules: list[Any]) -> list[dict[str, Any]]:
    with open_snapshot([logs], []) as snap:
        eps, _ = alerts_mod.evaluate(snap, None, None, rules)
    return [e.to_json() for e in eps]


def _agree(logs: Path, rules: list[Any], monkeypatch: Any, vector: bool = True,
           whole_read: Path | None = None) -> None:
    """The record path's episodes (no sidecars) = the frames' (sidecars written by a
    first read), the window rules taken by the array passes where ``vector``. With
    ``whole_read`` (``read_once``'s directory, ``logs`` linked to its files: the same
    identities) that read's cache is copied in instead of reading the files again."""
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "off")
    want = _episodes(logs, rules)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")
    # (sidecars on: this read writes the rotated files' sidecars as it goes, e.g. 38 for
    # the 40 files of the simulator's day)
    assert _episodes(logs, rules) == want
    read_whole(logs, whole_read)  # (a whole read writes them)
    used: list[int] = []
    arrays: list[int] = []
    real, init = alerts_mod._feed_frames, alerts_frames.WindowRule.__init__

    def spy(eng: Any, scan: Any, *a: Any, **kw: Any) -> Any:
        used.append(1)
        return real(eng, scan, *a, **kw)

    def spy_init(self: Any, *a: Any) -> None:
        arrays.append(1)
        init(self, *a)

    with monkeypatch.context() as m:
        m.setattr(alerts_mod, "_feed_frames", spy)
        m.setattr(alerts_frames.WindowRule, "__init__", spy_init)
        m.setenv("TTSOPS_LOGS_SIDECAR", "read")
        got = _episodes(logs, rules)
    assert json.dumps(got) == json.dumps(want)
    # the frame path answered where the first read wrote a sidecar (not for logs that
    # have none: an empty rotated file beside the live one is read record by record)
    sidecars = any(p for d in (logs, Path(os.environ["XDG_CACHE_HOME"]))
                   for p in d.rglob("*.parquet"))
    assert bool(used) == sidecars
    if sidecars and vector and any(alerts_frames.handles(r) for r in rules):
        assert arrays  # ... with the window rules as array passes


# an episode ends at the first record after its window empties
@example(items=[("INFO", "synthesis_complete", "status=failed")] * 2
         + [("INFO", "stage_time", "stage=audio_render, duration_ms=100")] * 5,
         gaps=[0, 1, 181, 1, 1, 200, 200], cuts=[1, 4], rules="kinds")
@example(items=[("INFO", "synthesis_complete", "status=failed")] * 3
         + [("INFO", "stage_time", "stage=audio_render, duration_ms=100")] * 4,
         gaps=[1, 1, 1, 61, 130, 130, 400], cuts=[2, 5], rules="kinds")
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(RECORDS, min_size=1, max_size=80), gaps=st.data(),
       cuts=st.lists(st.integers(0, 80), min_size=1, max_size=3),
       rules=st.sampled_from(sorted(RULE_SETS)))
def test_frames_give_the_record_paths_episodes(tmp_path_factory, monkeypatch, items, gaps,
                                               cuts, rules):
    d, logs = drawn_logs(tmp_path_factory, monkeypatch, "alerts", items, gaps, cuts)
    _agree(logs, rules_of(rules, d), monkeypatch)


def test_times_that_go_back_are_fed_to_the_engine(tmp_path, monkeypatch):
    """Records whose times go back (several writers): the engine's windows are no longer
    the array passes' -- the frame path feeds every rule record by record, same answer."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    logs = tmp_path / "logs"
    logs.mkdir()
    items = [("INFO", "synthesis_complete", "status=failed")] * 4 \
        + [("INFO", "synthesis_complete", "status=success")] * 4
    write_logs(logs, items * 3, [0, 100, -90, 5, 200, -150, 3, 1] * 3, [8, 16])
    rules = rules_of("kinds", tmp_path)
    calls: list[bool] = []
    real = alerts_mod._feed_frames

    def spy(eng: Any, scan: Any, vector: bool = True) -> Any:
        calls.append(vector)
        return real(eng, scan, vector)

    monkeypatch.setattr(alerts_mod, "_feed_frames", spy)
    _agree(logs, rules, monkeypatch, vector=False)
    assert calls[-2:] == [True, False]  # the arrays refused (Unfit), the engine answered


@given(st.integers(0, 4_000_000_000_000), st.sampled_from([",", "."]))
def test_frame_seconds_are_the_clocks(ms, sep):
    ts = f"{pl.Series([ms], dtype=pl.Datetime('ms')).dt.strftime('%Y-%m-%d %H:%M:%S')[0]}" \
         f"{sep}{ms % 1000:03d}"
    df = pl.DataFrame({"ts": [ts]})
    if sep != ",":
        with pytest.raises(alerts_mod._Unsure):
            alerts_mod._seconds(df)
        return
    assert alerts_mod._seconds(df) == [Clock()(ts)]


@pytest.fixture(scope="module")
def dialect_read(tmp_path_factory) -> Path:
    from ..reading.test_sidecar import _day  # a small tutorial-style day, written once

    return read_once(tmp_path_factory, _day(tmp_path_factory.mktemp("alerts-dialect")),
                     "alerts-dialect-read")


@pytest.mark.parametrize("rules", sorted(RULE_SETS))
def test_the_dialect_day_agrees(dialect_read, tmp_path, monkeypatch, rules):
    """A tutorial-style log in the dialects (free text, WARN/FATAL, cumulative
    stage_time) split into rotated files."""
    logs = linked_from(dialect_read, tmp_path, monkeypatch)
    _agree(logs, rules_of(rules, tmp_path), monkeypatch, whole_read=dialect_read)


@pytest.fixture(scope="module")
def tutorial_small(tmp_path_factory) -> Path:
    """bench's generator of tutorial-style logs (plain stdlib logging, whole-file gzip
    rotation, the incidents it injects), its small size."""
    out = tmp_path_factory.mktemp("alerts-tut") / "logs"
    gen = Path(__file__).resolve().parents[3] / "bench" / "tutorial_logs.py"
    res = subprocess.run([sys.executable, "-S", str(gen), str(out), "--size", "small",
                          "--seed", "11"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def tutorial_read(tutorial_small, tmp_path_factory) -> Path:
    return read_once(tmp_path_factory, tutorial_small, "alerts-tut-read")


@pytest.mark.parametrize("rules", sorted(RULE_SETS))
def test_the_tutorial_generators_logs_agree(tutorial_read, tmp_path, monkeypatch, rules):
    logs = linked_from(tutorial_read, tmp_path, monkeypatch)
    _agree(logs, rules_of(rules, tmp_path), monkeypatch, whole_read=tutorial_read)


@pytest.fixture(scope="module")
def incident_read(incident, tmp_path_factory) -> Path:
    return read_once(tmp_path_factory, incident[0], "alerts-incident-read")


@pytest.mark.parametrize("rules", sorted(RULE_SETS))
def test_the_simulators_logs_agree(incident_read, tmp_path, monkeypatch, rules):
    """The simulated incident day (ttsops' own sink: block gzip with its index)."""
    logs = linked_from(incident_read, tmp_path, monkeypatch)
    _agree(logs, rules_of(rules, tmp_path), monkeypatch, whole_read=incident_read)


_TIMES = st.lists(st.integers(0, 5000), max_size=40).map(sorted)


@given(_TIMES, st.lists(st.integers(0, 5000), min_size=1, max_size=20).map(sorted),
       st.sampled_from([1.0, 1000.0, 10.0]), st.sampled_from([0.0, 1.7e9, -3e8, 0.5]),
       st.sampled_from([0.0, 0.1, 1.0, 2.5, 300.0]))
def test_window_bounds_are_the_engines(times, at, unit, base, span):
    """The first element a window keeps (``t - time <= span``) and the first time a
    false spell has lasted ``span`` (``time - since >= span``), as the engine's float
    arithmetic decides them, also where equal times and rounding meet the bound."""
    tt = np.array([base + x / unit for x in times])
    aa = np.array([base + x / unit for x in at])
    got = alerts_frames.window_starts(tt, aa, span)
    assert list(got) == [next((j for j, t in enumerate(tt) if a - t <= span), len(tt))
                         for a in aa]
    for a in aa:
        lo, hi = len(tt) // 3, len(tt)
        assert alerts_frames.first_at_least(tt, lo, hi, float(a), span) == \
            next((k for k in range(lo, hi) if tt[k] - a >= span), hi)
