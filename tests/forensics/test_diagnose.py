"""diagnose names every injected fault, in plain words, with an example trace."""

from __future__ import annotations

from .forensics_helpers import cli, cli_json


def _kinds(rep):
    out: dict[str, list[dict]] = {}
    for f in rep["findings"]:
        out.setdefault(f["kind"], []).append(f)
    return out


def test_diagnose_the_whole_incident_day(incident):
    d, truth = incident
    inj = truth["injected"]
    rep = cli_json("diagnose", "--dir", str(d))
    k = _kinds(rep)
    # symptom 4: the model load failure, with its engine and recovery
    (ml,) = k["model_load"]
    assert ml["data"]["ts"] == inj["model_load"]["ts"]
    assert ml["data"]["recovered"] == inj["model_load"]["recovered"]
    assert ml["severity"] == "critical"
    # symptom 2: the failing input pattern with its stage and where
    pat = next(f for f in k["input_pattern"] if f["data"]["error_code"] == "SCIPY_FFT_INVALID")
    fp = inj["failing_pattern"]
    assert (pat["data"]["field"], pat["data"]["value"]) == (fp["field"], fp["value"])
    assert pat["data"]["stage"] == fp["stage"] and pat["data"]["where"] == fp["where"]
    assert pat["affected"] == fp["count"]
    # symptom 3: the slow period is queue wait
    (slow,) = k["slow_period"]
    assert slow["data"]["component"] == inj["slow"]["component"]
    a, b = inj["slow"]["window"]
    assert slow["data"]["start"] < b and slow["data"]["end"] > a
    # the precursor of the disk outage
    pre = next(f for f in k["precursor"] if f["data"]["burst"]["code"] == "DISK_FULL")
    assert pre["data"]["precursor"]["key"] == inj["precursor"]["warning_code"]
    # audio and symptom 1
    assert k["audio"][0]["data"]["ids"] == inj["audio"]["ids"]
    assert k["webui"][0]["affected"] == inj["webui"]["errors"]
    # ranked, and the findings that name an id have an example trace in the text output
    sev = [f["severity"] for f in rep["findings"]]
    order = ["critical", "high", "medium", "info"]
    assert sev == sorted(sev, key=order.index)


def test_diagnose_names_the_slow_stage(slow_stage):
    d, truth = slow_stage
    rep = cli_json("diagnose", "--dir", str(d))
    (slow,) = _kinds(rep)["slow_period"]
    assert slow["data"]["component"] == truth["injected"]["slow_stage"]["component"]


def test_diagnose_a_window_uses_the_lookback_as_baseline(incident):
    d, truth = incident
    a, b = truth["injected"]["slow"]["window"]
    rep = cli_json("diagnose", "--dir", str(d), "--since", a, "--until", b)
    (slow,) = _kinds(rep)["slow_period"]
    assert slow["data"]["component"] == "queue_wait"
    rc, out, _ = cli("diagnose", "--dir", str(d), "--since", a, "--until", b)
    assert rc == 0
    assert "queue_wait is the slow part" in out and "example ts_" in out and "█" in out
