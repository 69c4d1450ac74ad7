"""top errors|warnings: counts, where and hints against the truth."""

from __future__ import annotations

from ttsops.errors import REGISTRY

from ..forensics_helpers import cli, cli_json


def test_top_errors_counts_where_and_hint(incident):
    d, truth = incident
    rep = cli_json("top", "errors", "--dir", str(d), "-n", "10")
    codes = {c["code"]: c for c in rep["codes"]}
    expect = {k.split(":", 1)[1]: v for k, v in truth["codes"].items() if k.startswith("ERROR")}
    assert {k: c["count"] for k, c in codes.items()} == expect
    counts = [c["count"] for c in rep["codes"]]
    assert counts == sorted(counts, reverse=True)
    for code, where in truth["where"].items():
        assert list(codes[code]["where"]) == [where]
        assert codes[code]["hint"] == REGISTRY[code].hint


def test_top_warnings_includes_codeless_events(incident):
    d, truth = incident
    rep = cli_json("top", "warnings", "--dir", str(d), "-n", "20")
    codes = {c["code"]: c["count"] for c in rep["codes"]}
    assert codes["CACHE_DIR_USAGE_HIGH"] == truth["events"]["cache_dir_usage"]
    assert codes["WEBUI_PLAYBACK_FAILED"] == truth["injected"]["webui"]["errors"]
    assert "(cache_health)" in codes


def test_top_table_limits_rows(incident):
    d, _ = incident
    rc, out, _ = cli("top", "errors", "--dir", str(d), "-n", "2", "--csv")
    assert rc == 0 and len(out.splitlines()) == 3
