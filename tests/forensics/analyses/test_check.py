"""check: passes on what the service writes, fails with examples on what it must not."""

from __future__ import annotations

import gzip

from ttsops import events
from ttsops.logsink import LogSink

from ..forensics_helpers import cli, cli_json


def test_simulated_service_logs_pass(incident):
    d, _ = incident
    rep = cli_json("check", "--dir", str(d))
    assert rep["passed"], [i for i in rep["items"] if i["status"] == "FAIL"]
    assert {i["status"] for i in rep["items"]} == {"pass"}


def test_a_deployment_that_logs_badly_fails_each_item(tmp_path):
    sink = LogSink(tmp_path, max_bytes=1 << 20)
    prev = events.set_sink(sink)
    log = events.get_logger("app.tts_engine")
    log.info("synthesis_start", id="ts_00000001", text_len=3)
    log.info("synthesis_complete", id="ts_00000001", status="success", duration_ms=5,
             cache_hit="false")  # no stage_time
    log.info("synthesis_complete", id="ts_00000002", status="failed", duration_ms=5)  # no code
    log.info("synthesis_complete", id="ts_00000003", status="failed", duration_ms=5,
             error_code="SOMETHING_ELSE")
    log.info("synthesis_complete", status="success")  # no id, no duration
    sink.close()
    events.set_sink(prev)
    with open(tmp_path / "app.log", "a") as f:
        f.write("ERROR: failed to load model\n")
        f.write("2024-06-12 14:22:38,415 - app - INFO - tick: n=1\n")  # time goes back
    with gzip.open(tmp_path / "app.log.1.gz", "wt") as f:  # foreign gzip: no index
        f.write("2000-01-01 00:00:00,000 - x - INFO - old: a=1\n")
    rc, out, _err = cli("check", "--dir", str(tmp_path), "--json")
    assert rc == 1
    import json

    items = {i["name"]: i for i in json.loads(out)["items"]}
    for name in ("complete_fields", "complete_has_start", "failure_code", "failure_traceback",
                 "stage_times", "registry_codes", "monotonic", "parsable", "indexed"):
        assert items[name]["status"] == "FAIL", name
        assert items[name]["examples"], name
    assert "failed to load model" in items["parsable"]["examples"][0]


def _lines(n: int, start_s: int = 0) -> list[str]:
    out = []
    for i in range(n):
        s = start_s + i
        out.append(f"2024-06-12 {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d},000 - app - "
                   f"INFO - tick: n={i}\n")
    return out


def test_one_misdated_line_is_one_or_two_bad_steps(tmp_path):
    # one future-dated line in 2000 made every later line "step back" (bad=1489)
    for name, bad_line in (("future", "2024-06-13 23:00:00,000 - app - INFO - tick: n=x\n"),
                           ("past", "2024-06-11 01:00:00,000 - app - INFO - tick: n=x\n")):
        d = tmp_path / name
        d.mkdir()
        lines = _lines(2000)
        lines.insert(500, bad_line)
        (d / "app.log").write_text("".join(lines))
        items = {i["name"]: i for i in cli_json("check", "--dir", str(d))["items"]}
        mono = items["monotonic"]
        assert mono["status"] == "FAIL" and 1 <= mono["bad"] <= 2, (name, mono)
        assert mono["checked"] == 2001
        assert "record just before" in mono["what"]


def test_steps_within_the_tolerance_pass(tmp_path):
    lines = _lines(100)
    # 0.5 s back (two threads racing to the log): within the default 1 s; 3 s back: one
    lines.insert(51, "2024-06-12 00:00:49,500 - app - INFO - tick: n=x\n")
    (tmp_path / "app.log").write_text("".join(lines))
    items = {i["name"]: i for i in cli_json("check", "--dir", str(tmp_path))["items"]}
    assert items["monotonic"]["status"] == "pass"
    lines.insert(81, "2024-06-12 00:01:17,000 - app - INFO - tick: n=y\n")
    (tmp_path / "app.log").write_text("".join(lines))
    items = {i["name"]: i for i in cli_json("check", "--dir", str(tmp_path))["items"]}
    assert items["monotonic"]["bad"] == 1
