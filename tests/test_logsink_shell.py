"""The seed document's shell pipelines, run for real on gzip files the sink wrote."""

from __future__ import annotations

import random
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from ttsops import events
from ttsops.logline import Record, iter_records, quote, render
from ttsops.logsink import LogSink

T0 = 1718200800.0  # 2024-06-12 14:00:00 UTC
NASTY = ['今天天气真好', 'paid=5, id=ts_forged, x', 'say "hi"\nnext', 'a, b', '2024-06-12 14:30']


def sh(cmd: str, cwd: Path) -> str:
    return subprocess.run(["bash", "-c", cmd], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """3000 syntheses over two hours written through the real sink, all rotated to .gz."""
    d = tmp_path_factory.mktemp("logs")
    sink = LogSink(d, max_bytes=120_000, block_bytes=16_000, backup_count=1000)
    rnd = random.Random(7)
    truth = []
    for i in range(3000):
        t = T0 + i * 2.4 + rnd.random()
        sid, rid = f"ts_{i:08x}", f"req-{i}"
        text = rnd.choice(NASTY)
        failed = rnd.random() < 0.15
        code = rnd.choice(["TEXT_EMPTY", "SCIPY_FFT_INVALID", "MODEL_LOAD_TIMEOUT"])
        tlen = {"TEXT_EMPTY": "1 char", "SCIPY_FFT_INVALID": "2048 chars",
                "MODEL_LOAD_TIMEOUT": "512 chars"}[code] if failed else f"{len(text)} chars"
        ctx = {"request_id": rid}
        sink.submit((t, "app.tts_engine", "INFO", "synthesis_start",
                     {**ctx, "id": sid, "text": text, "text_len": tlen, "lang": "zh",
                      "voice": "alloy", "cache_hit": "false"}, []))
        if rnd.random() < 0.1:
            sink.submit((t + 0.01, "app.text", "WARNING", "text_sanitized",
                         {**ctx, "id": sid, "warning_code": "TEXT_SANITIZED", "removed": "2"},
                         []))
        if failed:
            sink.submit((t + 0.2, "app.tts_engine", "ERROR", "synthesis_failed",
                         {**ctx, "id": sid, "error_code": code, "where": "app.x:f:387"},
                         ["Traceback (most recent call last):", '  File "x.py", line 387',
                          f"RuntimeWarning: {text}"]))
        fields = {**ctx, "id": sid, "status": "failed" if failed else "success",
                  "duration_ms": "214", "text_len": tlen}
        if failed:
            fields["error_code"] = code
        sink.submit((t + 0.21, "app.tts_engine", "INFO", "synthesis_complete", fields, []))
        truth.append((t, sid, rid, failed, tlen, code))
    sink.flush()
    # push everything into .gz: fill the live file until it rotates
    for j in range(2000):
        sink.submit((T0 + 9000 + j, "app", "INFO", "filler", {"n": str(j)}, []))
    sink.close()
    while (d / "app.log").stat().st_size:  # rotate the remainder too
        sink = LogSink(d, max_bytes=4096, block_bytes=16_000, backup_count=1000)
        sink.submit((T0 + 20000, "app", "INFO", "filler", {"pad": "z" * 5000}, []))
        sink.close()
    records = []
    for p in sorted(d.glob("app.log.*.gz"), key=lambda p: -int(p.name.split(".")[2])):
        text = subprocess.run(["zcat", str(p)], capture_output=True, text=True).stdout
        records += list(iter_records(text.splitlines()))
    assert len(list(d.glob("app.log.*.gz"))) >= 10
    return d, truth, records


def test_window_count_pipeline(corpus):
    d, _, records = corpus
    a, b = "2024-06-12 14:30:00", "2024-06-12 15:00:00"
    out = sh(f"zcat app.log.*.gz 2>/dev/null | awk '$1\" \"$2 >= \"{a}\" && $1\" \"$2 <= \"{b}\"'"
             ' | grep -E "(ERROR|WARNING)" | wc -l', d)
    truth = sum(1 for r in records if a <= r.ts <= b and r.level in ("ERROR", "WARNING"))
    assert truth > 20
    assert int(out) == truth


def test_window_ids_pipeline(corpus):
    d, _, records = corpus
    a, b = "2024-06-12 14:00:00", "2024-06-12 15:00:00"
    out = sh(f"zcat app.log.*.gz 2>/dev/null | awk '$1\" \"$2 >= \"{a}\" && $1\" \"$2 <= \"{b}\"'"
             " | grep \"synthesis_start\" | sed -r 's/.*id=([^,]+),.*/\\1/' | sort -u", d)
    truth = sorted({r.fields["id"] for r in records
                    if r.event == "synthesis_start" and a <= r.ts <= b})
    assert len(truth) > 1000
    assert out.split() == truth


def test_trace_pipeline(corpus):
    d, truth, records = corpus
    sids = [s for _, s, _, failed, *_ in truth if failed][:5]
    for sid in sids:
        out = sh(f'zcat app.log.*.gz 2>/dev/null | grep "{sid}" | sort', d).splitlines()
        mine = [r for r in records if r.fields.get("id") == sid]
        assert [r.event for r in mine if r.event != "text_sanitized"] == [
            "synthesis_start", "synthesis_failed", "synthesis_complete"]
        assert out == sorted(render(Record(r.ts, r.logger, r.level, r.event, r.fields))
                             for r in mine)


def test_failure_pattern_pipeline(corpus):
    d, truth, _ = corpus
    out = sh('zcat app.log.*.gz 2>/dev/null | grep "synthesis_complete.*status=failed" | '
             "awk -F', ' '{for(i=1;i<=NF;i++) if($i ~ /text_len=/) print $i; "
             "for(i=1;i<=NF;i++) if($i ~ /error_code=/) print $i}' | "
             "paste -d' ' - - | sort | uniq -c | sort -nr", d)
    got = Counter()
    for line in out.splitlines():
        n, rest = line.split(None, 1)
        got[rest] = int(n)
    want = Counter(f"text_len={quote(tlen)} error_code={code}"
                   for _, _, _, failed, tlen, code in truth if failed)
    assert len(want) == 3 and got == want


def test_every_gz_passes_gzip_t(corpus):
    d, _, _ = corpus
    rotated = sorted(d.glob("app.log.*.gz"))
    assert len(rotated) >= 10  # a loop over no files would pass
    for p in rotated:
        assert subprocess.run(["gzip", "-t", str(p)]).returncode == 0


def test_events_api_lines_work_with_the_seed_sed(tmp_path):
    """Through the event API (context vars first), the sed still yields the synthesis id."""
    sink = LogSink(tmp_path)
    events.set_sink(sink)
    with events.context(request_id="req-abc", trace_id="0af7651916cd43dd8448eb211c80319c"):
        events.get_logger("app").info("synthesis_start", id="ts_1234abcd",
                                      text="paid=5, id=x", lang="zh")
    sink.close()
    out = sh("grep synthesis_start app.log | sed -r 's/.*id=([^,]+),.*/\\1/'", tmp_path)
    assert out.split() == ["ts_1234abcd"]
