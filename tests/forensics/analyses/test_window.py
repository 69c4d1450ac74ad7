"""window against what the generator emitted (ground truth)."""

from __future__ import annotations

from ..forensics_helpers import cli, cli_json


def test_whole_log_counts_equal_what_was_emitted(incident):
    d, truth = incident
    rep = cli_json("window", "--dir", str(d))
    assert rep["records"] == truth["records"]
    assert rep["levels"] == truth["levels"]
    assert rep["events"] == truth["events"]
    assert rep["started"] == truth["syntheses"]
    assert rep["complete"] == truth["complete"]
    assert rep["failure_codes"] == truth["failed_by_code"]
    codes = {f"ERROR:{k}": v for k, v in rep["error_codes"].items() if not k.startswith("(")}
    codes |= {f"WARNING:{k}": v for k, v in rep["warning_codes"].items()
              if not k.startswith("(")}
    assert codes == truth["codes"]
    assert rep["unparsable_lines"] == 0


def test_failing_hour_has_the_injected_failure_rate(incident):
    d, truth = incident
    fp = truth["injected"]["failing_pattern"]
    a, b = fp["window"]
    rep = cli_json("window", "--dir", str(d), "--since", a, "--until", b)
    wc = fp["window_complete"]
    assert rep["complete"] == wc
    assert rep["failure_rate"] == wc["failed"] / sum(wc.values())
    assert rep["failure_codes"]["SCIPY_FFT_INVALID"] == fp["count"]


def test_window_index_and_full_scan_agree(incident):
    d, _ = incident
    args = ("window", "--dir", str(d), "--since", "2024-06-12 09:00", "--until",
            "2024-06-12 11:00:00,500")
    with_index = cli_json(*args)
    without = cli_json(*args, "--no-index")
    assert with_index["read"]["blocks_skipped"] > 0
    assert without["read"]["blocks_skipped"] == 0
    for k in ("records", "levels", "events", "error_codes", "warning_codes", "complete"):
        assert with_index[k] == without[k]


def test_empty_window_exits_1_and_says_what_the_logs_cover(incident):
    d, _ = incident
    rc, out, err = cli("window", "--dir", str(d), "--since", "2030-01-01", "--until",
                       "2030-01-02")
    assert rc == 1
    assert "no records between 2030-01-01" in err
    assert "the logs cover 2024-06-12" in err
    assert out == ""


def test_csv_is_the_counts_table(incident):
    d, truth = incident
    rc, out, _ = cli("window", "--dir", str(d), "--csv")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "kind,key,count"
    assert f"level,INFO,{truth['levels']['INFO']}" in lines
