"""Process entry points for test_logsink (importable by spawned children)."""

from __future__ import annotations

import time

from ttsops import events
from ttsops.logsink import ForwardSink, LogSink


def forwarding_writer(mpq, proc: int, n: int) -> None:
    events.set_sink(ForwardSink(mpq))
    log = events.get_logger(f"proc{proc}")
    for i in range(n):
        with events.context(request_id=f"p{proc}-{i}"):
            log.info("synthesis_start", id=f"ts_{proc:02x}{i:06x}", seq=i,
                     text="今天天气真好, \"quoted\"")
        if i % 1000 == 999:
            time.sleep(0.01)  # a steady stream, so rotations happen all along


def crashing_writer(log_dir: str, start: int, n: int) -> None:
    """Writes seq start..start+n-1 with tiny rotations; the test SIGKILLs it midway."""
    sink = LogSink(log_dir, max_bytes=20_000, block_bytes=4_000, backup_count=10_000)
    events.set_sink(sink)
    log = events.get_logger("crash")
    for i in range(start, start + n):
        log.info("tick", seq=i, pad="x" * 50)
        if i % 200 == 0:
            sink.flush()
            time.sleep(0.001)
    sink.close()
