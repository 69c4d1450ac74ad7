"""trace: records of one id in order, with traceback and the stage timeline."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from console import TTSOPS
from ttsops.forensics.analyses.trace import mentions
from ttsops.forensics.reading.scan import ID_CHARS, grep_bytes, grep_lines, has_token
from ttsops.logline import Record

from ..forensics_helpers import cli, cli_json


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
    assert rc == 1 and "no record has the id ts_nothere" in err


def test_trace_table_output_shows_traceback_and_bars(incident):
    d, truth = incident
    sid = _an_id(d, truth, "DISK_FULL")
    rc, out, _ = cli("trace", sid, "--dir", str(d))
    assert rc == 0
    assert "No space left on device" in out
    assert "timeline of " + sid in out and "█" in out


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point; a hang (an empty needle never advanced) fails, not blocks."""
    return subprocess.run([*TTSOPS, "logs", *args],
                          capture_output=True, text=True, timeout=60)


def test_an_empty_or_blank_id_is_a_usage_error_not_a_hang(incident):
    d, truth = incident
    sid = _an_id(d, truth, "DISK_FULL")
    for ids in ([""], [sid, ""], ["  "], ["\t"]):
        for flags in ((), ("--no-index",)):
            res = _run("trace", *ids, "--dir", str(d), *flags)
            assert res.returncode == 2, (ids, res.stderr)
            lines = res.stderr.strip().split("\n")
            assert len(lines) == 1 and lines[0].startswith("ttsops logs: error: ") and \
                "empty" in lines[0], res.stderr
            assert res.stdout == ""


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """TimeoutError instead of spinning forever (the search loops are Python code)."""
    def alarm(*_a: object) -> None:
        raise TimeoutError("still searching")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_the_scan_refuses_an_empty_needle():
    buf = b"2024-06-12 14:00:00,000 - app - INFO - e: id=ts_1\n" * 3
    with _deadline(10):
        for call in (lambda: grep_bytes(buf, ("",)), lambda: grep_bytes(buf, ("ts_1", "")),
                     lambda: grep_lines(buf.decode(), ("",)),
                     lambda: grep_bytes(buf, ("ts_1",), ("",)),
                     lambda: grep_lines(buf.decode(), ("ts_1",), ("",)),
                     lambda: has_token("abc", "")):
            with pytest.raises(ValueError, match="empty"):
                call()


def test_the_id_alphabet_is_the_request_id_sanitisers():
    """Every character the server lets into a request id (and the ``_`` of generated ids)
    is part of an id, anything else bounds one."""
    from ttsops.server.middleware import sanitize_request_id

    for c in map(chr, range(0x100)):
        allowed = sanitize_request_id(f"a{c}b") is not None or c == "_"
        assert (c in ID_CHARS) == allowed, repr(c)


def test_ids_match_as_whole_tokens():
    assert has_token("request_id=probe-zh, id=ts_1", "probe-zh")
    assert not has_token("request_id=probe-zh_4096, id=ts_1", "probe-zh")
    assert not has_token("id=ts_1417ce93", "ts_1417ce9")
    assert not has_token("id=xts_1417ce93", "ts_1417ce93")
    for left, right in [("", ""), (" ", ","), ('"', '"'), ("=", " "), ("(", ")"), ("é", "中")]:
        assert has_token(f"{left}ts_1{right}", "ts_1"), (left, right)
    for c in "_.:@/+-aZ9":  # what an id (the request-id sanitiser's alphabet) may hold
        assert not has_token(f"ts_1{c}", "ts_1") and not has_token(f"{c}ts_1", "ts_1")
    assert has_token("ts_1 ts_1x", "ts_1") and has_token("ts_1x ts_1", "ts_1")
    rec = Record("2024-06-12 14:00:00,000", "app", "ERROR", "e",
                 {"request_id": "probe-zh_4096", "msg": "retry of x=probe-zh"},
                 ["Traceback", "  in /tmp/probe-zh/x.py"])
    # an id is an id field's whole value; free text and tracebacks that mention it are
    # other records (issue 15: an input equal to a victim's id joined the victim's trace)
    assert not mentions(rec, ["probe-zh"]) and mentions(rec, ["probe-zh_4096"])
    for key in ("id", "request_id", "trace_id", "synthesis_request_id", "job"):
        assert mentions(Record("t", "a", "INFO", "e", {key: "ts_1"}), ["ts_1"]), key
    for key in ("input", "text", "voice", "detail", "message", "msg", "ids"):
        assert not mentions(Record("t", "a", "INFO", "e", {key: "ts_1"}), ["ts_1"]), key


def test_a_part_of_an_id_finds_nothing_with_or_without_the_index(incident):
    """``ts_1417ce9`` (one digit short) once found nothing with the index (the blooms hold
    whole ids) and the records of ``ts_1417ce93`` without it (the scan matched
    substrings)."""
    d, truth = incident
    sid = _an_id(d, truth, "DISK_FULL")
    full = cli_json("trace", sid, "--dir", str(d), "--no-index")
    assert full["records"]
    for part in (sid[:-1], sid[:-3], sid[1:], sid[3:]):
        for flags in ((), ("--no-index",)):
            rc, _out, err = cli("trace", part, "--dir", str(d), *flags)
            assert rc == 1 and f"no record has the id {part}" in err, (part, flags)
    # a blank around a whole id is not part of it
    assert cli_json("trace", f" {sid} ", "--dir", str(d))["records"] == full["records"]


def test_find_reads_nothing_for_blank_ids(incident):
    """The library call (diagnose and report trace their examples with it) does not raise
    for a blank example id: a blank id mentions nothing."""
    from ttsops.forensics.analyses.trace import find
    from ttsops.forensics.reading.sources import open_snapshot

    d, truth = incident
    sid = _an_id(d, truth, "DISK_FULL")
    snap = open_snapshot([str(d)], [])
    try:
        for ids in ([], [""], [" ", "\t"]):
            hits, scan = find(snap, ids)
            assert hits == [] and scan.stats.counters.bytes_compressed == 0
        hits, _ = find(snap, ["", sid])
        assert hits and all(mentions(r, [sid]) for r, _f in hits)
    finally:
        snap.close()


def test_markup_and_control_characters_in_a_records_values_print_literally(tmp_path):
    """A traceback line, a stage name and a model_stage are log values: '[/bold]' in them
    is text (it crashed rich before), and an escape sequence is shown, not obeyed."""
    from ttsops.logline import quote

    evil = "x [/bold] \x1b[31mred\x1b[0m"
    head = "2024-06-12 10:00:00,000 - ttsops.pipeline - "
    lines = [
        head + "INFO - stage_time: id=ts_evil, stage=" + quote(evil)
        + ", duration_ms=5, elapsed_ms=5",
        head + "ERROR - synthesis_failed: id=ts_evil, error_code=ENGINE_FAILED, where="
        + quote(evil),
        "\tTraceback: " + evil,
        head + "INFO - synthesis_complete: id=ts_evil, status=failed, duration_ms=9, "
        "model_stage=" + quote(evil) + ", error_code=ENGINE_FAILED",
    ]
    (tmp_path / "app.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc, out, err = cli("trace", "ts_evil", "--dir", str(tmp_path))
    assert rc == 0, err
    assert "\x1b" not in out and "\\x1b[31mred" in out
    assert "[/bold]" in out and "(last stage x [/bold]" in out
