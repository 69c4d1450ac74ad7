"""``diagnose`` over sidecar frames (``diagnose_frames``) gives the record path's answer,
the whole JSON, on the same files: the simulator's incident day (ttsops' own writer:
warnings with ids, model loads, workers), its web page audit run (web page error reports
whose synthesis status is looked up, failures answered 2xx), tutorial-style logs
(cumulative stage_time, tracebacks, ids that never complete), several writers sharing one
rotating file, and the dialect fixture. Each case checks that the frames' pass was taken
(so the comparison is not the record path against itself); ``report`` (which feeds its
charts from the same pass) likewise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ttsops.forensics.analyses import diagnose, diagnose_frames
from ttsops.forensics.analyses.rules import load as load_rules
from ttsops.forensics.reading.sources import open_snapshot
from ttsops.forensics.rendering import report as report_mod
from ttsops.simulate import SimConfig, generate

from ..dialect_fixture import write as write_dialect
from ..stdlib_logs import shared_file_writers, write_day

REAL = diagnose_frames.collect
REAL_TRACES = diagnose_frames.example_traces


def _diagnose(logs: Path, monkeypatch: pytest.MonkeyPatch, frames: bool) -> str:
    taken: list[bool] = []
    real = REAL

    def spy(*a: Any, **kw: Any) -> Any:
        got = real(*a, **kw) if frames else None
        taken.append(got is not None)
        return got

    monkeypatch.setattr(diagnose_frames, "collect", spy)
    monkeypatch.setattr(diagnose_frames, "example_traces",
                        REAL_TRACES if frames else (lambda *a, **kw: None))
    with open_snapshot([logs], []) as snap:
        rep = diagnose.run(snap, None, None)
    assert taken == [frames]
    # the text holds the example traces as timelines
    return json.dumps([rep.data, rep.text], sort_keys=True, default=str)


def _report(logs: Path, monkeypatch: pytest.MonkeyPatch, frames: bool) -> str:
    monkeypatch.setattr(diagnose_frames, "collect",
                        REAL if frames else (lambda *a, **kw: None))
    monkeypatch.setattr(diagnose_frames, "example_traces",
                        REAL_TRACES if frames else (lambda *a, **kw: None))
    with open_snapshot([logs], []) as snap:
        page, summary = report_mod.build(snap, None, None, rules=load_rules())
    return "\n".join(ln for ln in page.splitlines() if "generated 20" not in ln) \
        + json.dumps(summary, sort_keys=True)


def _agree(logs: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> dict[str, Any]:
    """The frames' answers are the record path's; the latter's data."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")  # the first whole read writes them
    slow = _diagnose(logs, monkeypatch, False)
    assert len(list((cache / "ttsops" / "sidecar").glob("*.parquet"))) >= 1
    assert json.loads(slow)[0]["findings"]
    assert "example" in slow
    assert _diagnose(logs, monkeypatch, True) == slow
    assert _report(logs, monkeypatch, True) == _report(logs, monkeypatch, False)
    data: dict[str, Any] = json.loads(slow)[0]
    return data


def test_simulator_incident_day(incident, monkeypatch, tmp_path):
    _agree(incident[0], monkeypatch, tmp_path / "c")


def test_simulator_web_page_audit(monkeypatch, tmp_path):
    logs = tmp_path / "logs"
    generate(logs, SimConfig(requests=1500, seed=3, scenarios=("failures", "webui"),
                             duration_s=6 * 3600.0, max_bytes=60_000), tmp_path / "t.json")
    text = "".join(p.read_text(errors="replace") for p in logs.glob("*.log"))
    data = _agree(logs, monkeypatch, tmp_path / "c")  # (the record path's answer)
    kinds = {f["kind"] for f in data["findings"]}
    assert "webui" in " ".join(kinds) or "webui_event" not in text


def test_tutorial_style_day(monkeypatch, tmp_path):
    write_day(tmp_path / "logs", requests=600, incomplete=frozenset({5, 77}),
              tracebacks=frozenset(range(200, 230)))
    _agree(tmp_path / "logs", monkeypatch, tmp_path / "c")


def test_several_writers(monkeypatch, tmp_path):
    shared_file_writers(tmp_path / "logs", requests=900)
    _agree(tmp_path / "logs", monkeypatch, tmp_path / "c")


@pytest.mark.parametrize("json_keys", [None, "stdlib", "structlog"])
def test_dialect_fixture(json_keys, monkeypatch, tmp_path):
    write_dialect(tmp_path / "logs", json_keys=json_keys)
    _agree(tmp_path / "logs", monkeypatch, tmp_path / "c")


def test_example_traces_read_at_once_are_those_read_file_by_file(monkeypatch, tmp_path):
    """The rotated files alone (``--files``: every one has a sidecar): the example traces
    come from one Polars scan of all the sidecars (``_picked_at_once``), and are those of
    the file-by-file read and of the record path; the rows that scan picks are those
    ``sidecar.frames`` picks file by file, in the same order."""
    import polars as pl

    from ttsops.forensics.reading import sidecar

    logs = tmp_path / "logs"
    write_day(logs, requests=600, incomplete=frozenset({5, 77}),
              tracebacks=frozenset(range(200, 230)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")  # the first whole read writes them
    files = sorted(logs.glob("*.gz"))
    assert len(files) >= 3
    at_once: list[bool] = []
    real = diagnose_frames._picked_at_once

    def spy(*a: Any, **kw: Any) -> Any:
        got = real(*a, **kw)
        at_once.append(got is not None)
        return got

    def run() -> str:
        with open_snapshot([], files) as snap:
            rep = diagnose.run(snap, None, None)
        return json.dumps([rep.data, rep.text], sort_keys=True, default=str)

    run()  # (writes the sidecars)
    monkeypatch.setattr(diagnose_frames, "_picked_at_once", spy)
    fast = run()
    assert at_once == [True] and "example" in fast
    monkeypatch.setattr(diagnose_frames, "_picked_at_once", lambda *a, **kw: None)
    assert run() == fast
    monkeypatch.setattr(diagnose_frames, "example_traces", lambda *a, **kw: None)
    assert run() == fast  # (the record path's second pass)

    cols = [*sidecar.RECORD_COLUMNS, "k_id", "k_request_id"]
    where = pl.col("event") == "synthesis_complete"  # (in every file)
    with open_snapshot([], files) as snap:
        scan = diagnose_frames._scan(snap, None, None, True, True)
        assert scan is not None
        got = real(scan, cols, where)
        each = pl.concat([df for _f, df in sidecar.frames(scan, cols, where)])
    assert got is not None and got.height > 100
    assert got.equals(each)
