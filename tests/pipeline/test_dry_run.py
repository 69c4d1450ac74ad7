"""`ttsops synth --dry-run [--json]`: the normalised text, its languages and segments,
without synthesising or logging; bad input fails as a synthesis would."""

from __future__ import annotations

import itertools
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.pipeline.normalize import language

from .test_cli import run


def test_dry_run_json_shows_reading_languages_and_segments(tmp_path):
    text = "您好，订单号：20240612001234，金额¥1,299.00，客服热线400-820-8820😀。Спасибо!"
    p = run([text, "--dry-run", "--json"], tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    doc = json.loads(p.stdout)
    assert doc["status"] == "dry_run" and doc["input"] == text
    assert "二零二四零六幺二零零幺二三四" in doc["text"]
    assert "一千二百九十九点零零元" in doc["text"] and "四零零八二零八八二零" in doc["text"]
    assert "😀" not in doc["text"] and not any(c.isdigit() for c in doc["text"])
    assert doc["lang"] == "zh+ru"
    assert [s["lang"] for s in doc["segments"]] == ["zh", "ru"]
    assert doc["segments"][1]["text"] == "Спасибо!"
    assert doc["voice"] == "alloy" and doc["engine"] == "espeak"
    # nothing synthesised, nothing logged, no file written
    assert not (tmp_path / "logs" / "app.log").exists()
    assert not any(f.suffix in (".mp3", ".wav") for f in tmp_path.iterdir())


def test_dry_run_text_output_and_stdin(tmp_path):
    p = run(["-", "--dry-run", "--voice", "marin"], tmp_path,
            stdin="预计3-5天送达，运费12.5元。".encode())
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode()
    assert "text: 预计三到五天送达,运费十二点五元。" in out
    assert "lang: zh" in out and "voice: marin" in out
    assert "[zh] 预计三到五天送达" in out


def test_dry_run_fails_like_a_synthesis(tmp_path):
    for args, code in ((["😀😀🎉", "--dry-run"], "TEXT_EMPTY"),
                       (["こんにちは世界", "--dry-run", "--json"], "LANG_UNSUPPORTED"),
                       (["Hello", "--dry-run", "--voice", "nobody"], "VOICE_UNKNOWN")):
        p = run(args, tmp_path)
        assert p.returncode == 1 and f"error: {code}:" in p.stderr.decode(), p.stderr
        if "--json" in args:
            assert json.loads(p.stdout)["error_code"] == code


def test_without_output_and_without_dry_run_is_a_usage_error(tmp_path):
    p = run(["Hello"], tmp_path)
    assert p.returncode == 2 and b"--output" in p.stderr


# --- properties of the language runs --------------------------------------------------
PIECES = ["你好", "世界", "こんにちは", "Hello", " world", "Привет", "مرحبا", "안녕",
          "123", "，", "。", " ", "!", "iPhone", "ありがとう", "東京"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12))
def test_runs_cover_the_text_in_order_and_alternate(parts):
    text = "".join(parts)
    runs = language.runs(text)
    assert "".join(t for _, t in runs) == text  # nothing lost, nothing invented
    assert all(a[0] != b[0] for a, b in itertools.pairwise(runs))
    label = language.label(runs)
    assert set(label.split("+")) == {lg for lg, _ in runs}


def test_runs_are_deterministic():
    text = "".join(random.Random(7).choice(PIECES) for _ in range(200))
    assert language.runs(text) == language.runs(text)
