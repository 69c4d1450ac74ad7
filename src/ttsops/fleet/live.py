"""Live shipping from the service (``TTSOPS_LOG_SHIP_URL``): each rotated log file is
shipped to ClickHouse once it is complete.

A thread of the service looks at the log directory every ``TTSOPS_LOG_SHIP_INTERVAL_S``
and runs ``ttsops logs ship`` on the rotated files in a child process (its parsing never
holds the service's interpreter; a request never waits for it). Shipping is idempotent,
so what was not shipped before a restart -- or while ClickHouse was down -- is shipped at
the next look; a failure is one ``log_ship_failed`` warning (``LOG_SHIP_FAILED``) and the
next look comes later (doubled each time, up to 10 minutes). The live ``app.log`` is
left to the next rotation: a file is shipped when it is complete.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from ..events import get_logger

log = get_logger("ttsops.fleet")
MAX_WAIT_S = 600.0


def rotated(log_dir: Path) -> list[Path]:
    """The complete (rotated) files of ``log_dir``, oldest first."""
    from ..forensics.reading.sources import dir_names

    try:
        return [log_dir / n for n, role in dir_names(str(log_dir)) if role == "rotated"]
    except OSError:
        return []


class LiveShipper:
    def __init__(self, url: str, log_dir: Path, interval_s: float = 30.0,
                 host: str | None = None) -> None:
        self.url = url
        self.log_dir = Path(log_dir)
        self.interval_s = interval_s
        self.host = host or socket.gethostname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[str] | None = None
        self.shipped_rows = 0
        self.failures = 0

    def start(self) -> LiveShipper:
        self._thread = threading.Thread(target=self._run, name="ttsops-log-ship", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()  # an interrupted ship resumes at the next start
        if self._thread is not None:
            self._thread.join(10)

    def once(self) -> bool:
        """Ship the rotated files now; True when it worked (or there was nothing)."""
        files = rotated(self.log_dir)
        if not files:
            return True
        cmd = [sys.executable, "-m", "ttsops", "logs", "ship", *map(str, files),
               "--to", self.url, "--host", self.host, "--json", "--no-progress"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, env=env)
        out, err = self._child.communicate()
        code = self._child.returncode
        self._child = None
        if self._stop.is_set():
            return True
        if code not in (0, 3):
            self.failures += 1
            msg = (err.strip().splitlines() or [f"exit {code}"])[-1]
            log.warning("log_ship_failed", warning_code="LOG_SHIP_FAILED",
                        message=msg.removeprefix("ttsops logs: error: ")[:300],
                        files=len(files))
            return False
        try:
            rows = int(json.loads(out).get("rows", 0))
        except (ValueError, AttributeError):
            rows = 0
        self.shipped_rows += rows
        if rows:
            log.info("log_shipped", rows=rows, files=len(files))
        return True

    def _run(self) -> None:
        wait = 0.0  # the first look at once: what a restart left unshipped
        while not self._stop.wait(wait):
            try:
                ok = self.once()
            except Exception as e:  # never let the thread die: retried later
                log.warning("log_ship_failed", warning_code="LOG_SHIP_FAILED",
                            message=f"{type(e).__name__}: {e}"[:300])
                ok = False
            wait = self.interval_s if ok else min(max(wait, self.interval_s) * 2, MAX_WAIT_S)
