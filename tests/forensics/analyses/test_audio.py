"""audio: robust per-voice baselines find exactly the injected anomalies; the fixed
threshold of the seed also flags a voice that is simply low."""

from __future__ import annotations

from ttsops.forensics.analyses.stats import mad, median, percentile

from ..forensics_helpers import cli, cli_json


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


def test_too_few_samples_is_no_baseline_not_no_anomalies(incident):
    # 30 minutes: every voice has fewer than min_n=20 samples; was "no anomalies: every
    # value is within its group's baseline" over an empty baselines table
    d, _ = incident
    w = ("--since", "2024-06-12 19:40", "--until", "2024-06-12 20:10")
    rc, out, _err = cli("audio", "--dir", str(d), *w)
    assert rc == 0
    text = " ".join(out.split())
    assert "no anomalies" not in text
    assert "no baseline could be built" in text and "min_n=20" in text
    rep = cli_json("audio", "--dir", str(d), *w)
    assert rep["baselines"] == [] and rep["no_baseline"]
    assert all(g["n"] < 20 for g in rep["no_baseline"])
    assert sum(g["n"] for g in rep["no_baseline"]) == rep["summary"]["syntheses with audio_metrics"]
    # a lower --min-n builds them again
    rc, out, _err = cli("audio", "--dir", str(d), *w, "--min-n", "3")
    assert "no baseline could be built" not in " ".join(out.split())


def test_sig_keeps_significant_digits():
    from ttsops.forensics.analyses.stats import sig

    assert [sig(x) for x in (1987.9, 0.01234, 0.5, 0.0, 12.345, -0.0004567, 100.0)] == \
        ["1988", "0.0123", "0.5", "0", "12.3", "-0.000457", "100"]
