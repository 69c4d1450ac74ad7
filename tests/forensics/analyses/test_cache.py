"""cache: hit rate, usage trend and the outage's counts against the truth."""

from __future__ import annotations

from ..forensics_helpers import cli_json


def test_cache_counts_and_usage(incident):
    d, truth = incident
    rep = cli_json("cache", "--dir", str(d))
    p = truth["injected"]["precursor"]
    assert rep["warnings"]["CACHE_WRITE_FAILED"] == p["cache_write_failed"]
    assert rep["warnings"]["DISK_FULL"] == p["disk_full_failures"]
    assert rep["warnings"]["CACHE_DIR_USAGE_HIGH"] == truth["events"]["cache_dir_usage"]
    assert rep["first_warning"]["CACHE_DIR_USAGE_HIGH"] == p["first_warning"]
    assert rep["max_dir_usage"] == p["max_usage"] == 100.0
    timeline = rep["tables"]["timeline"]
    assert sum(r["syntheses"] for r in timeline) == truth["syntheses"]
    assert sum(r["write_failed"] for r in timeline) == p["cache_write_failed"]
    assert 0.1 < rep["hit_rate"] < 0.4


def test_cache_trend_sees_the_creeping_disk(incident):
    d, truth = incident
    a = truth["windows"]["disk_creep"][0]
    rep = cli_json("cache", "--dir", str(d), "--since", a, "--until", "2024-06-12 09:20")
    assert rep["usage_slope_pct_per_h"] > 3.0
    assert rep["full_in_s"] is not None and rep["full_in_s"] < 6 * 3600
