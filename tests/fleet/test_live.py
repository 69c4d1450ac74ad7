"""Live shipping (``TTSOPS_LOG_SHIP_URL``): the real server rotates its log and ships each
rotated file once, in a child process; ClickHouse away is a warning, never a failed
request, and what was left is shipped after a restart."""

from __future__ import annotations

import gzip
import time

from server.harness import start_server
from ttsops.logformat import iter_records


def records(log_dir, rotated_only: bool = True) -> list:
    """The records in the rotated files (and app.log) now; read again when a file was
    renamed away meanwhile (the server rotates every 4 KiB)."""
    for _ in range(50):
        try:
            out = []
            for p in sorted(log_dir.glob("app.log*")):
                if p.name.endswith(".gz"):
                    with gzip.open(p, "rt", encoding="utf-8") as f:
                        out.extend(iter_records(f))
                elif not rotated_only and p.name in ("app.log", "app.log.0"):
                    with open(p, encoding="utf-8") as f:
                        out.extend(iter_records(f))
            return out
        except (FileNotFoundError, EOFError, gzip.BadGzipFile):
            time.sleep(0.05)
    raise AssertionError("the log directory never held still")


def rotated_records(log_dir) -> int:
    return len(records(log_dir))


def ship_failures(log_dir) -> list:
    return [r for r in records(log_dir, rotated_only=False) if r.event == "log_ship_failed"]


def speak(server, n: int) -> None:
    with server.client() as c:
        for i in range(n):
            r = c.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy",
                                                 "input": f"hello number {i}",
                                                 "response_format": "wav"})
            assert r.status_code == 200, r.text


def count(ch, db: str, distinct: bool = False) -> int:
    """Rows shipped (``distinct``: distinct (file, record number): equal when none twice)."""
    from clickhouse_driver import Client

    c = Client("127.0.0.1", port=ch.tcp_port)
    try:
        if not c.execute(f"SELECT count() FROM system.tables WHERE database = '{db}' "
                         "AND name = 'ttsops_logs'")[0][0]:
            return 0
        what = "uniqExact(file, seq)" if distinct else "count()"
        return int(c.execute(f"SELECT {what} FROM {db}.ttsops_logs")[0][0])
    finally:
        c.disconnect()


def test_rotated_files_are_shipped_once_and_after_a_restart(ch_single, tmp_path):
    url = f"clickhouse://127.0.0.1:{ch_single.tcp_port}/live"
    down = "clickhouse://127.0.0.1:1/live"  # nothing listens: the shipper fails
    s = start_server(tmp_path / "a", engine="fake", workers=1, log_max_bytes=4096,
                     log_backup_count=100_000, log_ship_url=down, log_ship_interval_s=0.3)
    try:
        speak(s, 30)  # requests answered while every ship fails
        deadline = time.monotonic() + 60
        while not ship_failures(s.log_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        failed = ship_failures(s.log_dir)
        assert failed
        assert failed[0].fields["warning_code"] == "LOG_SHIP_FAILED"
        assert "cannot reach" in failed[0].fields["message"]
    finally:
        s.stop()
    assert rotated_records(tmp_path / "a" / "logs") > 0
    assert count(ch_single, "live") == 0
    # restarted with ClickHouse there: what was left is shipped, then what rotates next
    s = start_server(tmp_path / "a", engine="fake", workers=1, log_max_bytes=4096,
                     log_backup_count=100_000, log_ship_url=url, log_ship_interval_s=0.3)
    try:
        speak(s, 30)
        deadline = time.monotonic() + 180  # a ship is a child process: slow when loaded
        caught_up = False
        while time.monotonic() < deadline and not caught_up:
            want = rotated_records(tmp_path / "a" / "logs")
            caught_up = count(ch_single, "live") >= want > 0
            time.sleep(0.3)
        assert caught_up, [r.fields for r in ship_failures(s.log_dir)][-3:]
        time.sleep(1.0)  # a few more looks: nothing is shipped twice
        assert count(ch_single, "live") == count(ch_single, "live", distinct=True)
    finally:
        s.stop()
