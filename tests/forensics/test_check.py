"""check: passes on what the service writes, fails with examples on what it must not."""

from __future__ import annotations

import gzip

from ttsops import events
from ttsops.logsink import LogSink

from .forensics_helpers import cli, cli_json


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
