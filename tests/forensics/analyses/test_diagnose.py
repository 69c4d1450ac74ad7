"""diagnose names every injected fault, in plain words, with an example trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttsops.forensics.analyses.precursors import client_caused
from ttsops.forensics.reading.timeargs import shift
from ttsops.simulate import SimConfig, generate

from ..forensics_helpers import cli, cli_json


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


def test_a_window_inside_an_outage_names_the_model_load(incident):
    # the ENGINE_NOT_READY burst began before --since: was dropped, so diagnose said
    # "100% failure, ENGINE_NOT_READY" and never named the model load failure
    d, truth = incident
    ml = truth["injected"]["model_load"]
    since, until = shift(ml["ts"], 600.0)[:19], shift(ml["ts"], 1200.0)[:19]
    rep = cli_json("diagnose", "--dir", str(d), "--since", since, "--until", until)
    pre = [f for f in rep["findings"] if f["kind"] == "precursor"]
    (f,) = [f for f in pre if f["data"]["burst"]["code"] == "ENGINE_NOT_READY"]
    assert f["data"]["precursor"]["key"] == "MODEL_LOAD_FAILED"
    assert f["data"]["burst"]["before_window"] and f["data"]["burst"]["start"] < since
    assert "MODEL_LOAD_FAILED" in f["title"] and "before the window" in f["title"]


def test_findings_count_is_what_is_listed(incident):
    d, _ = incident
    rep = cli_json("diagnose", "--dir", str(d))
    assert any(f["severity"] == "info" for f in rep["findings"])
    assert rep["summary"]["findings"] == len(rep["findings"])


@pytest.fixture(scope="module")
def failures_webui(tmp_path_factory) -> tuple[Path, dict]:
    """The "-d js" audit run: failures + webui, JSON format, 6 hours."""
    root = tmp_path_factory.mktemp("fw")
    truth = generate(root / "logs", SimConfig(requests=1500, seed=3, fmt="json",
                                              scenarios=("failures", "webui"),
                                              duration_s=6 * 3600.0), root / "t.json")
    return root / "logs", truth


def test_client_errors_rank_below_server_failures(failures_webui):
    # was: "[high] TEXT_EMPTY fails the inputs with text_len=0" at #1, the injected
    # SCIPY_FFT_INVALID (a server 500) third as medium
    d, truth = failures_webui
    rep = cli_json("diagnose", "--dir", str(d))
    pats = {f["data"]["error_code"]: f for f in rep["findings"] if f["kind"] == "input_pattern"}
    te, fft = pats["TEXT_EMPTY"], pats["SCIPY_FFT_INVALID"]
    assert te["affected"] >= 10 and te["severity"] == "medium" and te["data"]["client"]
    assert fft["rank"] < te["rank"] and not fft["data"]["client"]
    assert fft["data"]["value"] == truth["injected"]["failing_pattern"]["value"]
    for f in rep["findings"]:
        if f["kind"] == "precursor":
            assert f["data"]["precursor"]["supported"]
            assert f["severity"] != "high" or not client_caused(f["data"]["burst"]["code"])


def _write(path: Path, lines: list[str]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "app.log").write_text("".join(x + "\n" for x in lines))


def _ts(i: int) -> str:
    return f"2024-06-12 10:{i // 60 % 60:02d}:{i % 60:02d},{i % 1000:03d}"


def _synth(i: int, sid: str, status: str = "success", **audio: float) -> list[str]:
    p = " - ttsops.pipeline - INFO - "
    out = [f"{_ts(i)}{p}synthesis_start: id={sid}, text_len=10, voice=alloy, format=mp3"]
    if audio:
        out.append(f"{_ts(i)}{p}audio_metrics: id={sid}, "
                   + ", ".join(f"{k}={v}" for k, v in audio.items()))
    extra = "" if status == "success" else ", error_code=SCIPY_FFT_INVALID"
    out.append(f"{_ts(i)}{p}synthesis_complete: id={sid}, status={status}, duration_ms=500, "
               f"text_len=10, cache_hit=true{extra}")
    return out


def test_webui_finding_is_safe_and_says_what_it_knows(tmp_path):
    lines = _synth(1, "ts_00000001") + _synth(2, "ts_00000002")
    w = " - ttsops.webui - WARNING - webui_event: warning_code=WEBUI_PLAYBACK_FAILED, kind=error"
    bad = '"boom \\u001b[31m[bold]red[/bold]"'
    lines += [f"{_ts(10)}{w}, id=ts_00000001, detail={bad}, verified=true",
              f"{_ts(11)}{w}, id=ts_00000001, detail={bad}, verified=true",
              f"{_ts(12)}{w}, id=ts_0000dead, detail={bad}, verified=true"]
    # reports whose synthesis token the server did not check are not counted (issue 15:
    # anyone could post 2,000 'playback errors' naming a victim's synthesis)
    lines += [f"{_ts(13 + i)}{w}, detail=forged, verified=false" for i in range(50)]
    lines += [f"{_ts(70 + i)}{w}, id=ts_00000002, detail=old" for i in range(50)]
    _write(tmp_path, lines)
    rep = cli_json("diagnose", "--dir", str(tmp_path))
    (f,) = [f for f in rep["findings"] if f["kind"] == "webui"]
    assert f["data"]["ids"] == {"success": 1, "failed": 0, "unseen": 1, "no_id": 0}
    _rc, out, _ = cli("diagnose", "--dir", str(tmp_path))
    text = " ".join(out.split())
    assert "\x1b" not in out and "\\x1b" in text
    assert "[bold]red" in text  # shown as written, not taken as markup
    assert "(user agent not logged)" in text and "on ?" not in text
    assert "1 reports name syntheses this log does not have" in text
    assert "the server answered these syntheses successfully" not in text
    assert "the server answered 1 of the 2 syntheses they name successfully" in text


def test_audio_ratios_keep_their_digits(tmp_path):
    lines: list[str] = []
    for i in range(40):
        r = 0.10 + 0.001 * (i % 7)
        if i in (30, 31, 32):
            r = 0.62 + 0.01 * (i - 30)
        lines += _synth(i, f"ts_{i:08x}", silence_ratio=round(r, 4),
                        spectral_centroid=2000 + 3 * (i % 5))
    _write(tmp_path, lines)
    rep = cli_json("diagnose", "--dir", str(tmp_path))
    (f,) = [f for f in rep["findings"] if f["kind"] == "audio"]
    # was "(median 0, these 1..1)"
    assert "silence_ratio on voice alloy (median 0.103, these 0.62..0.64)" in f["title"]


def test_too_few_audio_samples_is_not_audio_fine(tmp_path):
    lines: list[str] = []
    for i in range(8):
        lines += _synth(i, f"ts_{i:08x}", silence_ratio=0.1, spectral_centroid=2000)
    _write(tmp_path, lines)
    rep = cli_json("diagnose", "--dir", str(tmp_path))
    (f,) = [f for f in rep["findings"] if f["kind"] == "audio"]
    assert f["data"]["no_baseline"] and "not checked" in f["title"]
    assert "alloy n=8" in f["details"][0] and "min_n=20" in f["details"][0]
