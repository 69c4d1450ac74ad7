"""logs tail: a real writer process rotating underneath (several rotations between two
polls at times), the real CLI following it; no record lost or doubled, alerts once per
episode at the right record, the same alerts as `logs alerts` over the same files."""

from __future__ import annotations

import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from console import TTSOPS

from ..forensics_helpers import cli_json

N = 3000
T0 = 1718150400.0  # 2024-06-12 00:00:00 UTC
# cache usage of the health reports (one every 50 records, 50 s apart)
USAGE = [60, 70, 95, 96, 97, 98, 60, 91, 92, 50, 93, 94, 95, 96, 60, 60, 99, 98, 97, 60,
         60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60,
         60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60]
MODEL_FAIL_AT = (701, 712, 2403)  # two close together (one episode), one much later

RULES = """
[[rule]]
name = "disk"
kind = "consecutive"
event = "cache_health"
where = "usage>90"
count = 3
within = "10m"
resolve_after = "0s"

[[rule]]
name = "model"
kind = "match"
severity = "critical"
where = "error_code=MODEL_LOAD_FAILED"
quiet = "10m"
"""

WRITER = textwrap.dedent("""
    import random, sys, time
    from ttsops.logsink import LogSink
    d, n, t0 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    usage = [int(x) for x in sys.argv[4].split(",")]
    fail_at = {int(x) for x in sys.argv[5].split(",")}
    rng = random.Random(5)
    sink = LogSink(d, max_bytes=8000, block_bytes=2048, backup_count=100000)
    i = 0
    while i < n:
        burst = rng.choice([1, 5, 20, 150, 400])
        for _ in range(min(burst, n - i)):
            t = t0 + i
            if i % 50 == 0:
                u = usage[i // 50]
                sink.submit((t, "ttsops.cache", "INFO", "cache_health",
                             {"seq": str(i), "path": "/c", "usage": f"{u}.0%"}, []))
            elif i in fail_at:
                sink.submit((t, "ttsops.workers", "ERROR", "model_load_failed",
                             {"seq": str(i), "error_code": "MODEL_LOAD_FAILED"},
                             ["Traceback (most recent call last):", "  boom"]))
            else:
                sink.submit((t, "ttsops.pipeline", "INFO", "synthesis_complete",
                             {"seq": str(i), "id": f"ts_{i:08x}", "status": "success"}, []))
            i += 1
        sink.flush()
        time.sleep(rng.choice([0, 0, 0.002, 0.02, 0.1]))
    sink.close()
""")


def _expected() -> list[tuple[str, int]]:
    """(rule, seq of the record that fires it), from the pattern, independently."""
    out = []
    run = 0
    active = False
    for k, u in enumerate(USAGE):
        run = run + 1 if u > 90 else 0
        cond = run >= 3  # reports 50 s apart: 3 in a row are within 10 minutes
        if cond and not active:
            out.append(("disk", k * 50))
        active = cond
    last = None
    for s in MODEL_FAIL_AT:
        if last is None or s - last > 600:
            out.append(("model", s))
        last = s
    return sorted(out, key=lambda x: x[1])


def _ts(seq: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(T0 + seq)) + ",000"


@pytest.mark.slow
def test_tail_follows_rotations_without_loss_or_duplicates_and_alerts_once(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    (d / "app.log").touch()  # the writer appends to it: tail can open it first
    tail = subprocess.Popen([*TTSOPS, "logs", "tail", "-d", str(d),
                             "--from-start", "--json", "--rules", str(rules),
                             "--poll", "0.05"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(  # tail holds app.log open: start
            os.path.realpath(f"/proc/{tail.pid}/fd/{fd}") == str(d / "app.log")
            for fd in os.listdir(f"/proc/{tail.pid}/fd")):
        assert tail.poll() is None, tail.communicate()[1]
        time.sleep(0.02)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(d), str(N), str(T0),
                               ",".join(map(str, USAGE)),
                               ",".join(map(str, MODEL_FAIL_AT))])
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert tail.stdout is not None
        for line in tail.stdout:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    assert writer.wait(120) == 0
    seqs: list[int] = []
    alerts: list[dict] = []

    def take(line: str) -> None:
        obj = json.loads(line)
        (alerts.append(obj["alert"]) if "alert" in obj else seqs.append(int(obj["seq"])))
    deadline = time.monotonic() + 60
    while len(seqs) < N and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        take(line)
    tail.send_signal(signal.SIGINT)
    assert tail.wait(30) == 0
    while (line := lines.get(timeout=10)) is not None:
        take(line)
    assert tail.stderr is not None
    err = tail.stderr.read()
    rotated = len(list(d.glob("app.log.*.gz")))
    assert rotated >= 10  # the writer really rotated underneath, many times
    followed = int(re.search(r"(\d+) rotations followed", err).group(1))
    assert followed >= 3 and "lost track" not in err
    assert seqs == list(range(N))  # every record once, in order
    got = [(a["rule"], a["ts"]) for a in alerts]
    want = [(rule, _ts(seq)) for rule, seq in _expected()]
    assert got == want
    # the alert names the record that fired it
    for a in alerts:
        assert a["ts"] in a["line"]
    # over history, the same rules give the same episodes
    rep = cli_json("alerts", "--dir", str(d), "--rules", str(rules))
    assert [(e["rule"], e["ts"]) for e in rep["episodes"]] == want


def _seq_line(i: int, pad: int = 0) -> str:
    return (f"{_ts(i)} - ttsops.pipeline - INFO - synthesis_complete: seq={i}, "
            f"id=ts_{i:08x}, status=success" + (f", pad={'x' * pad}" if pad else "") + "\n")


def test_follower_notices_copytruncate_and_reads_the_rest_from_the_copy(tmp_path):
    from ttsops.forensics.analyses.tail import Follower

    d = tmp_path / "logs"
    d.mkdir()
    live = d / "app.log"
    live.write_text("".join(_seq_line(i) for i in range(1, 11)))
    fol = Follower(d, from_start=True)
    try:
        got = fol.poll()
        with live.open("a") as f:  # written after the last look: only in the copy
            f.write("".join(_seq_line(i) for i in range(11, 16)))
        (d / "app.log.1").write_bytes(live.read_bytes())  # copytruncate
        os.truncate(live, 0)
        with live.open("a") as f:  # and past the old read position before the next look
            f.write("".join(_seq_line(i, pad=80) for i in range(16, 41)))
        got += fol.poll()
        assert [int(re.search(rb"seq=(\d+)", x).group(1)) for x in got] == \
            list(range(1, 41))
        assert [str(p) for p in fol.problems] == \
            [f"{d}: app.log was truncated; reading it from the start"]
        fol.problems.clear()
        os.truncate(live, 0)  # `: > app.log`, no copy: what is written next is read
        with live.open("a") as f:
            f.write(_seq_line(41))
        assert [x.decode() + "\n" for x in fol.poll()] == [_seq_line(41)]
        assert len(fol.problems) == 1
        assert fol.poll() == [] and len(fol.problems) == 1  # warned once
    finally:
        fol.close()


CT_WRITER = textwrap.dedent("""
    import os, shutil, sys, time
    d, line = sys.argv[1], sys.argv[2]
    path = os.path.join(d, "app.log")
    def write(i, pad=0):
        with open(path, "a") as f:
            f.write(line.replace("SEQ", str(i)).replace("PAD", "x" * pad) + "\\n")
    for i in range(1, 141):
        write(i)
        time.sleep(0.004)
    for i in range(141, 151):  # a burst just before the copy: only in the copy
        write(i)
    shutil.copyfile(path, os.path.join(d, "app.log.1"))
    os.truncate(path, 0)
    for i in range(151, 301):  # past the old read position before tail looks again
        write(i, pad=100)
        if i > 250:
            time.sleep(0.004)
""")


def test_tail_survives_copytruncate_without_loss_or_duplicates(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    (d / "app.log").touch()
    line = (f"{_ts(0)} - ttsops.pipeline - INFO - synthesis_complete: seq=SEQ, "
            "status=success, pad=PAD")
    tail = subprocess.Popen([*TTSOPS, "logs", "tail", "-d", str(d),
                             "--from-start", "--no-alerts", "--json", "--poll", "0.05",
                             "--for", "6s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
            os.path.realpath(f"/proc/{tail.pid}/fd/{fd}") == str(d / "app.log")
            for fd in os.listdir(f"/proc/{tail.pid}/fd")):
        assert tail.poll() is None, tail.communicate()[1]
        time.sleep(0.02)
    subprocess.run([sys.executable, "-c", CT_WRITER, str(d), line], check=True, timeout=60)
    out, err = tail.communicate(timeout=60)
    assert tail.returncode == 0, err
    seqs = [int(json.loads(x)["seq"]) for x in out.splitlines()]
    assert seqs == list(range(1, 301))
    assert err.count("app.log was truncated; reading it from the start") == 1


def test_tail_for_0s_prints_what_is_there_and_stops(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    (d / "app.log").write_text("".join(_seq_line(i) for i in range(1, 4)))
    res = subprocess.run([*TTSOPS, "logs", "tail", "-d", str(d),
                          "--from-start", "--no-alerts", "--for", "0s"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "".join(_seq_line(i) for i in range(1, 4))


def test_tail_says_it_waits_for_app_log(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    tail = subprocess.Popen([*TTSOPS, "logs", "tail", "-d", str(d),
                             "--from-start", "--no-alerts", "--for", "0s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert tail.stderr is not None
    first = tail.stderr.readline()
    assert first == f"ttsops logs tail: waiting for {d / 'app.log'}\n"
    (d / "app.log").write_text(_seq_line(1))
    out, err = tail.communicate(timeout=30)
    assert tail.returncode == 0, err
    assert out == _seq_line(1)


def test_tail_escapes_control_characters_only_on_a_terminal(tmp_path):
    from ttsops.forensics.analyses import tail as mod

    d = tmp_path / "logs"
    d.mkdir()
    raw = _seq_line(1).replace("status=success", "status=\x1b]0;pwned\x07")
    (d / "app.log").write_text(raw)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True
    for out, want in ((io.StringIO(), raw), (Tty(), raw.replace("\x1b", "\\x1b")
                                                       .replace("\x07", "\\x07"))):
        mod.run(d, from_start=True, duration=0.3, out=out, err=io.StringIO())
        assert out.getvalue() == want
