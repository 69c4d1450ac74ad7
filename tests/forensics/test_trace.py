"""trace: records of one id in order, with traceback and the stage timeline."""

from __future__ import annotations

from .forensics_helpers import cli, cli_json


def _an_id(d, truth, code):
    rep = cli_json("patterns", "--dir", str(d), "--where", f"error_code={code}", "--by", "id",
                   "-n", "1")
    return rep["groups"][0]["key"]["id"]


def test_trace_of_a_failed_synthesis_has_its_timeline_and_where(incident):
    d, truth = incident
    sid = _an_id(d, truth, "SCIPY_FFT_INVALID")
    rep = cli_json("trace", sid, "--dir", str(d))
    events = [r["event"] for r in rep["records"]]
    assert events[0] == "synthesis_start" and "synthesis_failed" in events
    assert events.count("stage_time") == 4  # audio_render never ran
    failed = next(r for r in rep["records"] if r["event"] == "synthesis_failed")
    assert failed["fields"]["where"] == truth["injected"]["failing_pattern"]["where"]
    assert failed["traceback"][0].startswith("Traceback")
    (tl,) = rep["timelines"]
    names = [c["name"] for c in tl["components"]]
    assert names == ["text_normalize", "queue_wait", "llm_prompt_gen", "llm_inference",
                     "llm_postproc"]
    assert tl["status"] == "failed" and tl["model_stage"] == "llm_postproc"
    ts = [r["ts"] for r in rep["records"]]
    assert ts == sorted(ts)


def test_trace_index_prunes_blocks_and_agrees_with_full_scan(incident):
    d, truth = incident
    sid = _an_id(d, truth, "DISK_FULL")
    a = cli_json("trace", sid, "--dir", str(d))
    b = cli_json("trace", sid, "--dir", str(d), "--no-index")
    assert a["records"] == b["records"]
    assert a["read"]["blocks_read"] < 10 < a["read"]["blocks_skipped"]


def test_trace_several_ids_and_unknown_id(incident):
    d, truth = incident
    x, y = _an_id(d, truth, "TEXT_EMPTY"), _an_id(d, truth, "VOICE_UNKNOWN")
    rep = cli_json("trace", x, y, "--dir", str(d))
    assert {t["id"] for t in rep["timelines"]} == {x, y}
    rc, _out, err = cli("trace", "ts_nothere", "--dir", str(d))
    assert rc == 1 and "no record mentions ts_nothere" in err


def test_trace_table_output_shows_traceback_and_bars(incident):
    d, truth = incident
    sid = _an_id(d, truth, "DISK_FULL")
    rc, out, _ = cli("trace", sid, "--dir", str(d))
    assert rc == 0
    assert "No space left on device" in out
    assert "timeline of " + sid in out and "█" in out
