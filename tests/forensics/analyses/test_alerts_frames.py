"""``logs alerts`` over the sidecars' frames (``alerts._feed_frames``: the engine fed only
the records some rule selects, told only the time of the others) gives the episodes the
record path gives on the same files: random records (hypothesis) split into rotated
files and a live one, the shipped rules and rules of every kind with short windows."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttsops.forensics.analyses import alerts as alerts_mod
from ttsops.forensics.analyses.rules import Clock, load
from ttsops.forensics.reading.sources import open_snapshot

RULES = """
[[rule]]
name = "disk"
kind = "match"
level = "ERROR"
where = "error_code=DISK_FULL"
quiet = "2m"

[[rule]]
name = "burst"
kind = "count"
event = "synthesis_complete"
where = "status=failed"
count = 2
within = "3m"

[[rule]]
name = "hot"
kind = "consecutive"
event = "cache_health"
where = "usage>90"
count = 2
within = "5m"

[[rule]]
name = "fails"
kind = "rate"
event = "synthesis_complete"
where = "status=failed"
above = 0.3
over = "4m"
min_count = 2

[[rule]]
name = "slow"
kind = "percentile"
event = "stage_time"
select = "stage=llm_inference"
field = "duration_ms"
q = 90
above = 1500
over = "5m"
min_count = 2
resolve_after = "1m"
"""

_REC = st.one_of(
    st.tuples(st.sampled_from(["INFO", "ERROR"]), st.just("synthesis_complete"),
              st.sampled_from(["status=failed, error_code=DISK_FULL", "status=success",
                               "status=failed", "status=success, queue_ms=1500"])),
    st.tuples(st.just("INFO"), st.just("stage_time"),
              st.builds(lambda s, d: f"stage={s}, duration_ms={d}",
                        st.sampled_from(["llm_inference", "audio_render"]),
                        st.sampled_from([100, 1800, 2500, 900]))),
    st.tuples(st.sampled_from(["WARNING", "CRITICAL"]), st.just("cache_health"),
              st.sampled_from(["usage=95%", "usage=50%", "usage=91.5%"])),
    st.tuples(st.sampled_from(["ERROR", "CRITICAL"]), st.just("request_failed"),
              st.just("error_code=DISK_FULL")),
    st.tuples(st.just("INFO"), st.just("webui_event"), st.sampled_from(["kind=error",
                                                                        "kind=play"])),
    st.tuples(st.just("INFO"), st.just("other"), st.just("note=stage_time")),
    st.tuples(st.just("RAW"), st.just(""), st.just("- app.tts_en")),
)
_GAP = st.sampled_from([0, 0.001, 0.4, 3, 20, 45, 61, 130, 400])


def _write(logs: Path, items: list[tuple[str, str, str]], gaps: list[float],
           cuts: list[int]) -> None:
    t = 12 * 3600.0
    lines: list[str] = []
    for n, ((lv, ev, body), g) in enumerate(zip(items, gaps, strict=True)):
        t += g
        ms = round(t * 1000)
        ts = f"2024-06-12 {ms // 3_600_000 % 24:02d}:{ms // 60_000 % 60:02d}:" \
             f"{ms // 1000 % 60:02d},{ms % 1000:03d}"
        if lv == "RAW":  # a line cut short: starts like a record, is none
            lines.append(f"{ts} {body}")
        else:
            lines.append(f"{ts} - app - {lv} - {ev}: id=ts_{n}, {body}")
    bounds = sorted({min(c, len(lines)) for c in cuts})
    parts = [lines[a:b] for a, b in zip([0, *bounds], [*bounds, len(lines)], strict=True)]
    *rotated, live = parts
    for k, part in enumerate(rotated):
        with gzip.open(logs / f"app.log.{len(rotated) - k}.gz", "wt", encoding="utf-8") as fh:
            fh.write("".join(x + "\n" for x in part))
    (logs / "app.log").write_text("".join(x + "\n" for x in live), encoding="utf-8")


def _episodes(logs: Path, rules: list[Any]) -> list[dict[str, Any]]:
    with open_snapshot([logs], []) as snap:
        eps, _ = alerts_mod.evaluate(snap, None, None, rules)
    return [e.to_json() for e in eps]


# an episode ends at the first record after its window empties, one no rule selects
@example(items=[("INFO", "synthesis_complete", "status=failed")] * 2
         + [("INFO", "stage_time", "stage=audio_render, duration_ms=100")] * 5,
         gaps=[0, 1, 181, 1, 1, 200, 200], cuts=[1, 4], shipped=False)
@example(items=[("INFO", "synthesis_complete", "status=failed")] * 3
         + [("INFO", "stage_time", "stage=audio_render, duration_ms=100")] * 4,
         gaps=[1, 1, 1, 61, 130, 130, 400], cuts=[2, 5], shipped=False)
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(_REC, min_size=1, max_size=80), gaps=st.data(),
       cuts=st.lists(st.integers(0, 80), min_size=1, max_size=3), shipped=st.booleans())
def test_frames_give_the_record_paths_episodes(tmp_path_factory, monkeypatch, items, gaps,
                                               cuts, shipped):
    if not isinstance(gaps, list):
        gaps = gaps.draw(st.lists(_GAP, min_size=len(items), max_size=len(items)))
    d = tmp_path_factory.mktemp("alerts")
    monkeypatch.setenv("XDG_CACHE_HOME", str(d / "cache"))
    logs = d / "logs"
    logs.mkdir()
    _write(logs, items, gaps, cuts)
    if shipped:
        rules = load(None)
    else:
        (d / "rules.toml").write_text(RULES, encoding="utf-8")
        rules = load(d / "rules.toml")
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "off")
    want = _episodes(logs, rules)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")
    assert _episodes(logs, rules) == want  # (the record path; writes the sidecars)
    used: list[int] = []
    real = alerts_mod._feed_frames

    def spy(eng: Any, scan: Any) -> None:
        used.append(1)
        real(eng, scan)

    monkeypatch.setattr(alerts_mod, "_feed_frames", spy)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "read")
    assert _episodes(logs, rules) == want
    assert used  # the frame path answered


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


def test_the_tutorial_day_agrees(tmp_path, monkeypatch):
    """The shipped rules on a generated tutorial-style log split into rotated files."""
    from ..reading.test_sidecar import _day  # a small tutorial-style day, written once

    logs = _day(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rules = load(None)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "off")
    want = _episodes(logs, rules)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")
    _episodes(logs, rules)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "read")
    assert json.dumps(_episodes(logs, rules)) == json.dumps(want)
