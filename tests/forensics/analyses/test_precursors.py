"""precursors: the injected creeping cache-disk warning ranks first for the DISK_FULL
burst; the failed model load is the first sign of the ENGINE_NOT_READY burst."""

from __future__ import annotations

from ttsops.forensics.analyses.precursors import Precursors, client_caused
from ttsops.forensics.reading.timeargs import shift
from ttsops.logline import Record

from ..forensics_helpers import cli, cli_json


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


def test_a_burst_that_began_before_the_window_counts(incident):
    # was "bursts: 0": only bursts starting at or after --since were kept
    d, truth = incident
    ml = truth["injected"]["model_load"]
    since = shift(ml["ts"], 600.0)[:19]
    until = shift(ml["ts"], 1200.0)[:19]
    rep = cli_json("precursors", "--dir", str(d), "--since", since, "--until", until)
    (b,) = [b for b in rep["bursts"] if b["code"] == "ENGINE_NOT_READY"]
    assert b["before_window"] and b["start"] < since
    assert 0 < b["in_window"] < b["count"]
    assert b["precursors"][0]["key"] == "MODEL_LOAD_FAILED"
    assert b["precursors"][0]["first"] == ml["ts"] and b["precursors"][0]["supported"]
    rc, out, _ = cli("precursors", "--dir", str(d), "--since", since, "--until", until)
    text = " ".join(out.split())
    assert rc == 0 and "before the window" in text and "first sign: MODEL_LOAD_FAILED" in text
    # a look-back shorter than the time the burst had been running: followed back to
    # its real start, and the look-back is taken before that
    rep = cli_json("precursors", "--dir", str(d), "--since", since, "--until", until,
                   "--lookback", "2m")
    (b2,) = [b for b in rep["bursts"] if b["code"] == "ENGINE_NOT_READY"]
    assert b2["start"] == b["start"]
    assert b2["precursors"][0]["key"] == "MODEL_LOAD_FAILED"


def _rec(ts: str, level: str, event: str, **f: str) -> Record:
    return Record(f"2024-06-12 {ts},000", "app", level, event, f)


def test_precursor_support():
    col = Precursors(lookback_s=6 * 3600)
    # one client warning before a small burst of client errors: no support
    col.feed(_rec("00:00:00", "WARNING", "text_sanitized", warning_code="TEXT_SANITIZED"))
    for s in ("00:01:00", "00:02:00", "00:03:00"):
        col.feed(_rec(s, "ERROR", "synthesis_failed", error_code="TEXT_EMPTY"))
    # a model that failed to load just before: support (one error, same family, close)
    col.feed(_rec("01:00:00", "ERROR", "model_load_failed", error_code="MODEL_LOAD_FAILED"))
    for s in ("01:00:05", "01:01:00", "01:02:00"):
        col.feed(_rec(s, "ERROR", "synthesis_failed", error_code="ENGINE_NOT_READY"))
    # a lone error hours before a burst: no support
    for s in ("06:00:00", "06:01:00", "06:02:00"):
        col.feed(_rec(s, "ERROR", "synthesis_failed", error_code="ENGINE_CRASHED"))
    bursts = {b.code: b for b in col.finish()}
    te = bursts["TEXT_EMPTY"]
    assert te.client and not te.candidates[0]["supported"]
    en = bursts["ENGINE_NOT_READY"]
    assert not en.client
    assert en.candidates[0]["key"] == "MODEL_LOAD_FAILED" and en.candidates[0]["supported"]
    ec = bursts["ENGINE_CRASHED"]
    c = next(c for c in ec.candidates if c["key"] == "MODEL_LOAD_FAILED")
    assert not c["supported"]
    assert client_caused("VOICE_UNKNOWN") and client_caused("TEXT_SANITIZED")
    assert not client_caused("QUEUE_FULL") and not client_caused("SCIPY_FFT_INVALID")
