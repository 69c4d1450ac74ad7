"""``ttsops synth`` as a user runs it: a real process, real files, the real log sink. The
refusals (bad input, an engine that fails) run through the console script's own function
in this process (``refused``): the exit status, messages and records a process gives,
without a Python start and its imports for each (~0.8 s of CPU apiece)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from console import TTSOPS
from forensics.forensics_helpers import entry_in_process
from ttsops.logline import iter_records

from .conftest import decode


def run(args, tmp_path, stdin=None, **env):
    e = dict(os.environ)
    e.update({"TTSOPS_LOG_DIR": str(tmp_path / "logs"),
              "TTSOPS_CACHE_DIR": str(tmp_path / "cache")})
    e.update({k: str(v) for k, v in env.items()})
    return subprocess.run([*TTSOPS, "synth", *args], cwd=tmp_path,
                          input=stdin, capture_output=True, env=e, timeout=120)


@pytest.fixture
def refused(tmp_path, monkeypatch):
    """``run`` in this process (``entry_in_process``), in ``tmp_path`` as ``run`` is."""
    monkeypatch.chdir(tmp_path)

    def run_here(args, tmp_path, stdin=None, **env):
        e = {"TTSOPS_LOG_DIR": str(tmp_path / "logs"),
             "TTSOPS_CACHE_DIR": str(tmp_path / "cache")}
        e.update({k: str(v) for k, v in env.items()})
        return entry_in_process("synth", *args, env=e, stdin=stdin)

    return run_here


def records(tmp_path):
    with open(tmp_path / "logs" / "app.log", encoding="utf-8") as fh:
        return list(iter_records(fh))


def of(recs, sid, event=None):
    return [r for r in recs if r.get("id") == sid and (event is None or r.event == event)]


def test_synth_chinese_to_mp3(tmp_path):
    out = tmp_path / "out.mp3"
    p = run(["今天天气真好", "-o", str(out)], tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    text = p.stdout.decode()
    sid = re.search(r"id: (ts_[0-9a-f]{16})", text).group(1)
    for stage in ("text_normalize", "llm_prompt_gen", "llm_inference", "llm_postproc",
                  "audio_render"):
        assert re.search(rf"{stage}\s+[\d.]+ ms", text)
    x, sr = decode(out.read_bytes())
    assert 1.0 <= x.size / sr <= 5.0
    assert float(np.sqrt(np.mean(x ** 2))) > 0.02
    recs = records(tmp_path)
    assert [r.event for r in of(recs, sid)] == [
        "synthesis_start", "stage_time", "stage_time", "stage_time", "stage_time",
        "stage_time", "audio_metrics", "synthesis_complete"]
    (c,) = of(recs, sid, "synthesis_complete")
    assert c.get("status") == "success" and c.get("model_stage") == "audio_render"
    assert any(r.event == "engine_load" for r in recs)


def test_synth_json_and_options(tmp_path):
    out = tmp_path / "hello.wav"
    p = run(["Hello from the command line", "-o", str(out), "--voice", "onyx", "--speed",
             "1.5", "--json"], tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    doc = json.loads(p.stdout)
    assert doc["status"] == "success" and doc["format"] == "wav" and doc["voice"] == "onyx"
    assert set(doc["stages"]) >= {"text_normalize", "audio_render"}
    x, sr = decode(out.read_bytes())
    assert abs(x.size / sr * 1000 - doc["duration_ms"]) < 5


def test_synth_stdin_to_stdout(tmp_path):
    p = run(["-", "-o", "-", "--format", "wav"], tmp_path, stdin=b"Hello there\n")
    assert p.returncode == 0, p.stderr.decode()
    x, sr = decode(p.stdout)
    assert x.size / sr > 0.3
    assert b"id: ts_" in p.stderr


def _failed(tmp_path, p, code):
    assert p.returncode == 1
    err = p.stderr if isinstance(p.stderr, str) else p.stderr.decode()
    assert f"error: {code}:" in err
    return err


@pytest.mark.parametrize("args,code", [
    (["   "], "TEXT_EMPTY"),
    (["Hello", "--voice", "galadriel"], "VOICE_UNKNOWN"),
    (["Hello", "--lang", "km"], "LANG_UNSUPPORTED"),
    (["Hello", "--speed", "9"], "SPEED_OUT_OF_RANGE"),
    (["Hello", "--format", "opus", "--sample-rate", "22050"], "INVALID_REQUEST"),
])
def test_synth_input_errors(tmp_path, args, code, refused):
    p = refused([*args, "-o", str(tmp_path / "x.mp3")], tmp_path)
    err = _failed(tmp_path, p, code)
    sid = re.search(r"id: (ts_[0-9a-f]{16})", err).group(1)
    recs = records(tmp_path)
    (f,) = of(recs, sid, "synthesis_failed")
    assert f.level == "ERROR" and f.get("error_code") == code and f.traceback
    (c,) = of(recs, sid, "synthesis_complete")
    assert c.get("status") == "failed" and c.get("error_code") == code
    assert not (tmp_path / "x.mp3").exists()


def test_synth_text_too_long(tmp_path, refused):
    p = refused(["x" * 101, "-o", "x.wav"], tmp_path, TTSOPS_MAX_INPUT_CHARS=100)
    _failed(tmp_path, p, "TEXT_TOO_LONG")


def test_synth_invalid_utf8_from_stdin(tmp_path, refused):
    p = refused(["-", "-o", "x.wav"], tmp_path, stdin=b"caf\xe9 au lait")
    _failed(tmp_path, p, "TEXT_INVALID")


def test_synth_aac_needs_no_ffmpeg(tmp_path):
    p = run(["Hello", "-o", "x.aac"], tmp_path, PATH="/nonexistent")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "x.aac").read_bytes()[:2] in (b"\xff\xf1", b"\xff\xf9")


def test_synth_nan_from_engine(tmp_path, refused):
    p = refused(["hello #nan", "-o", "x.wav", "--engine", "fake"], tmp_path)
    _failed(tmp_path, p, "SCIPY_FFT_INVALID")
    recs = records(tmp_path)
    (c,) = [r for r in recs if r.event == "synthesis_complete"]
    assert c.get("model_stage") == "llm_postproc" and c.get("error_code") == "SCIPY_FFT_INVALID"


def test_synth_engine_exception(tmp_path, refused):
    p = refused(["hello #raise", "-o", "x.wav", "--engine", "fake"], tmp_path)
    _failed(tmp_path, p, "ENGINE_FAILED")


def test_synth_model_load_failed(tmp_path):
    p = run(["Hello", "-o", "x.wav"], tmp_path, TTSOPS_ESPEAK_DATA_PATH=tmp_path / "nowhere")
    err = _failed(tmp_path, p, "MODEL_LOAD_FAILED")
    assert "nowhere" in err
    (r,) = [r for r in records(tmp_path) if r.event == "model_load_failed"]
    assert r.level == "ERROR" and r.get("engine") == "espeak"
    assert r.get("error_code") == "MODEL_LOAD_FAILED" and r.traceback
    assert r.num("duration_ms") is not None


def test_synth_unknown_engine(tmp_path, refused):
    p = refused(["Hello", "-o", "x.wav", "--engine", "nosuch"], tmp_path)
    _failed(tmp_path, p, "MODEL_LOAD_FAILED")


def test_synth_cache_hit_second_time(tmp_path):
    a = run(["Hello again", "-o", "a.wav", "--json"], tmp_path)
    b = run(["Hello again", "-o", "b.wav", "--json"], tmp_path)
    assert json.loads(a.stdout)["cache_hit"] is False
    assert json.loads(b.stdout)["cache_hit"] is True
    assert Path(tmp_path, "a.wav").read_bytes() == Path(tmp_path, "b.wav").read_bytes()
    c = run(["Hello again", "-o", "c.wav", "--json", "--no-cache"], tmp_path)
    assert json.loads(c.stdout)["cache_hit"] is False
