"""precursors: the injected creeping cache-disk warning ranks first for the DISK_FULL
burst; the failed model load is the first sign of the ENGINE_NOT_READY burst."""

from __future__ import annotations

from .forensics_helpers import cli_json


def test_disk_full_burst_is_preceded_by_the_cache_dir_usage_warning(incident):
    d, truth = incident
    p = truth["injected"]["precursor"]
    rep = cli_json("precursors", "--dir", str(d))
    bursts = {b["code"]: b for b in rep["bursts"]}
    b = bursts["DISK_FULL"]
    assert b["start"] == p["burst_start"]
    assert b["count"] == p["disk_full_failures"]
    first = b["precursors"][0]
    assert first["key"] == p["warning_code"]
    assert first["first"] == p["first_warning"]
    assert first["same_family"] and first["same_resource"]
    assert b["resources"]["path"] == [p["path"]]


def test_model_load_failure_precedes_the_engine_not_ready_burst(incident):
    d, truth = incident
    rep = cli_json("precursors", "--dir", str(d))
    b = next(b for b in rep["bursts"] if b["code"] == "ENGINE_NOT_READY")
    assert b["count"] == truth["injected"]["model_load"]["failed_requests"]
    assert b["precursors"][0]["key"] == "MODEL_LOAD_FAILED"
    assert b["precursors"][0]["first"] == truth["injected"]["model_load"]["ts"]


def test_window_and_lookback(incident):
    d, truth = incident
    p = truth["injected"]["precursor"]
    # a window that starts at the burst still sees warnings from the look-back
    rep = cli_json("precursors", "--dir", str(d), "--since", p["burst_start"][:19],
                   "--until", "2024-06-12 11:00", "--lookback", "2h")
    assert [b["code"] for b in rep["bursts"]] == ["DISK_FULL"]
    assert rep["bursts"][0]["precursors"][0]["key"] == "CACHE_DIR_USAGE_HIGH"
    short = cli_json("precursors", "--dir", str(d), "--since", p["burst_start"][:19],
                     "--until", "2024-06-12 11:00", "--lookback", "1m")
    keys = [c["key"] for c in short["bursts"][0]["precursors"]]
    assert "CACHE_DIR_USAGE_HIGH" not in keys
