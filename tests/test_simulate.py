"""The simulator writes through the real sink and event API, rotates, and its ground
truth matches an independent count of what is in the files (plain gzip + the grammar)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter

import pytest

from console import TTSOPS
from ttsops.logindex import read_index
from ttsops.logline import iter_records
from ttsops.simulate import SimConfig, generate


def _all_records(d):
    lines: list[str] = []
    for p in sorted(d.glob("app.log.*.gz"), key=lambda p: -int(p.name.split(".")[2])):
        with gzip.open(p, "rt", encoding="utf-8") as f:
            lines.extend(f.read().split("\n")[:-1])
    lines.extend((d / "app.log").read_text(encoding="utf-8").split("\n")[:-1])
    return list(iter_records(lines))


def test_truth_equals_an_independent_count(tmp_path):
    d = tmp_path / "logs"
    truth = generate(d, SimConfig(requests=800, seed=11, scenarios=("failures", "disk_full"),
                                  max_bytes=40_000, block_bytes=8_192))
    recs = _all_records(d)
    assert len(recs) == truth["records"]
    assert dict(Counter(r.level for r in recs)) == truth["levels"]
    assert dict(Counter(r.event for r in recs)) == truth["events"]
    rotated = list(d.glob("app.log.*.gz"))
    assert len(rotated) >= 10
    assert all(read_index(p) is not None for p in rotated)
    ts = [r.ts for r in recs]
    assert ts == sorted(ts)  # written in time order, requests interleaved
    starts = [r for r in recs if r.event == "synthesis_start"]
    assert len({r.fields["id"] for r in starts}) == len(starts) == truth["syntheses"]
    # context fields come first, the synthesis id after them (the seed's sed relies on it)
    assert all(list(r.fields)[:1] == ["request_id"] for r in starts)
    failed = [r for r in recs if r.event == "synthesis_failed"]
    assert all(r.traceback and r.fields["where"].count(":") == 2 for r in failed)
    assert Counter(r.fields["error_code"] for r in failed) == Counter(truth["failed_by_code"])


def test_simulated_records_have_the_services_fields(tmp_path):
    """The simulator writes its synthesis records through the service's builders: every
    synthesis_complete carries what the service's does (lang, voice, format, engine)."""
    from ttsops.events import ListSink, set_sink
    from ttsops.pipeline import records

    d = tmp_path / "logs"
    generate(d, SimConfig(requests=150, seed=3, scenarios=("failures",), max_bytes=1 << 20))
    recs = _all_records(d)
    sink = ListSink()
    prev = set_sink(sink)
    try:  # the field names of the service's own synthesis_complete, as it writes them
        records.complete("ts_1", status="success", duration_ms=1.0, queue_ms=0.0, text_len=1,
                         audio_size_kb=1, rtf=0.1, cache_hit=False, cache_saved=True,
                         model_stage="audio_render", lang="en", voice="alloy", format="mp3",
                         engine="espeak")
    finally:
        set_sink(prev)
    service = set(sink.items[0][4])
    completes = [r for r in recs if r.event == "synthesis_complete"]
    assert completes
    for r in completes:
        assert {"lang", "voice", "format", "engine"} <= set(r.fields), r
        assert set(r.fields) - {"request_id", "trace_id", "error_code", "rtf"} <= service


def test_same_seed_same_logs_and_json_format(tmp_path):
    a = generate(tmp_path / "a", SimConfig(requests=200, seed=5, scenarios=("queue",)))
    b = generate(tmp_path / "b", SimConfig(requests=200, seed=5, scenarios=("queue",)))
    assert (tmp_path / "a" / "app.log").read_bytes() == (tmp_path / "b" / "app.log").read_bytes()
    assert a == b
    generate(tmp_path / "j", SimConfig(requests=100, seed=5, fmt="json"))
    first = (tmp_path / "j" / "app.log").read_text().split("\n")[0]
    assert json.loads(first)["event"] == "engine_load"


def test_cli(tmp_path):
    out = tmp_path / "logs"
    res = subprocess.run([*TTSOPS, "simulate", "logs", str(out), "-n",
                          "300", "-s", "incident", "--max-bytes", "50000", "--duration", "6h",
                          "--start", "2024-06-12 00:00"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    truth = json.loads((tmp_path / "logs.truth.json").read_text())
    assert truth["end"] == "2024-06-12 06:00:00,000"
    assert "model_load" in truth["injected"] and "precursor" in truth["injected"]
    again = subprocess.run([*TTSOPS, "simulate", "logs", str(out)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "already holds logs" in again.stderr


def test_block_size_below_1024_is_refused_before_anything_is_written(tmp_path):
    """``--block-bytes 0`` once wrote every rotated file empty (and a truth file that
    disagreed with them)."""
    for bad in ("0", "-1", "1023"):
        out = tmp_path / f"logs{bad}"
        res = subprocess.run([*TTSOPS, "simulate", "logs", str(out),
                              "-n", "300", "--duration", "2h", "--max-bytes", "50000",
                              "--block-bytes", bad], capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 2, res.stderr
        assert "--block-bytes" in res.stderr and "1024" in res.stderr
        assert not out.exists() and not (tmp_path / f"logs{bad}.truth.json").exists()
    with pytest.raises(ValueError, match="1024"):
        generate(tmp_path / "api", SimConfig(requests=50, block_bytes=0))
    assert not (tmp_path / "api").exists()
    res = subprocess.run([*TTSOPS, "simulate", "logs",
                          str(tmp_path / "ok"), "-n", "300", "--duration", "2h",
                          "--max-bytes", "50000", "--block-bytes", "1024"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    truth = json.loads((tmp_path / "ok.truth.json").read_text())
    assert len(_all_records(tmp_path / "ok")) == truth["records"]
    rotated = list((tmp_path / "ok").glob("app.log.*.gz"))
    assert rotated and all(read_index(p) is not None for p in rotated)


def test_the_generator_imports_neither_click_nor_the_reading_side():
    """``ttsops.simulate`` is a library (tests, benchmarks): its command line lives in
    ``simulate_cli``; nothing of ``forensics`` (the reading side) is below it."""
    code = ("import sys, ttsops.simulate\n"
            "print('click' in sys.modules, "
            "[m for m in sys.modules if m.startswith('ttsops.forensics')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False []"
