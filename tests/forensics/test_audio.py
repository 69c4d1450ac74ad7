"""audio: robust per-voice baselines find exactly the injected anomalies; the fixed
threshold of the seed also flags a voice that is simply low."""

from __future__ import annotations

from ttsops.forensics.stats import mad, median, percentile

from .forensics_helpers import cli, cli_json


def test_robust_baseline_finds_exactly_the_injected_ids(incident, tmp_path):
    d, truth = incident
    out = tmp_path / "ids.txt"
    rep = cli_json("audio", "--dir", str(d), "--ids-out", str(out))
    assert rep["ids"] == truth["injected"]["audio"]["ids"]
    assert out.read_text().split() == truth["injected"]["audio"]["ids"]
    assert {a["metric"] for a in rep["anomalies"]} == {"spectral_centroid"}
    assert {a["group"][0] for a in rep["anomalies"]} == {"nova"}


def test_fixed_threshold_flags_the_low_voice_too(incident):
    d, truth = incident
    rep = cli_json("audio", "--dir", str(d), "--where", "spectral_centroid<1800")
    assert set(truth["injected"]["audio"]["ids"]) <= set(rep["ids"])
    assert rep["by_voice"]["onyx"] > len(truth["injected"]["audio"]["ids"])


def test_no_audio_records_is_empty(incident):
    d, _ = incident
    rc, _o, err = cli("audio", "--dir", str(d), "--since", "2024-06-12 03:05",
                      "--until", "2024-06-12 03:20")
    assert rc == 1 and "no audio_metrics" in err


def test_stats_helpers():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert mad([1.0, 2.0, 3.0, 4.0, 100.0]) == 1.0
