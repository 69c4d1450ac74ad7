"""ClickHouse servers for the tests: Debian's ``clickhouse-server`` run as plain processes
(no systemd), each with a config, a data directory and free ports of its own, stopped
at the end. ``cluster(n)`` starts ``n`` of them, each configured with a ``remote_servers``
cluster whose shards are all of them (the ``Distributed`` case)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CLUSTER = "ttsops_test"

_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage>{log}</default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
"""


def binary() -> str | None:
    """The server binary, or None when ClickHouse is not installed."""
    return shutil.which("clickhouse-server") or (
        "/usr/sbin/clickhouse-server" if os.path.exists("/usr/sbin/clickhouse-server")
        else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    root: Path
    tcp_port: int = 0
    http_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    shards: list[int] = field(default_factory=list)
    query_log: bool = False  # every query in system.query_log (the benchmark's breakdown)

    @property
    def url(self) -> str:
        return f"clickhouse://127.0.0.1:{self.tcp_port}/default"

    def config(self) -> str:
        shards = "".join(
            f"<shard><replica><host>127.0.0.1</host><port>{p}</port></replica></shard>"
            for p in self.shards)
        remote = (f"<remote_servers><{CLUSTER}>{shards}</{CLUSTER}></remote_servers>"
                  if self.shards else "")
        r = self.root
        return f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{r}/log/server.log</log>
    <errorlog>{r}/log/server.err.log</errorlog><size>10M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{self.tcp_port}</tcp_port>
  <http_port>{self.http_port}</http_port>
  <path>{r}/data/</path>
  <tmp_path>{r}/tmp/</tmp_path>
  <user_files_path>{r}/user_files/</user_files_path>
  <format_schema_path>{r}/format_schemas/</format_schema_path>
  <users_config>{r}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>134217728</mark_cache_size>
  <uncompressed_cache_size>134217728</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
  <query_log><database>system</database><table>query_log</table>
    <flush_interval_milliseconds>500</flush_interval_milliseconds></query_log>
  {remote}
</yandex>
"""

    def start(self, timeout: float = 30.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """The server's process started (``wait_ready``: until it listens)."""
        exe = binary()
        assert exe is not None
        for d in ("log", "data", "tmp", "user_files", "format_schemas"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "users.xml").write_text(_USERS.format(
            log="<log_queries>1</log_queries>" if self.query_log else ""))
        (self.root / "config.xml").write_text(self.config())
        self.proc = subprocess.Popen(
            [exe, f"--config-file={self.root / 'config.xml'}"], cwd=self.root,
            stdout=open(self.root / "log" / "stdout", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"clickhouse-server exited {self.proc.returncode}: "
                                   + self._log_tail())
            try:
                with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("clickhouse-server did not listen in time: " + self._log_tail())

    def _log_tail(self) -> str:
        out = []
        for name in ("stdout", "server.err.log"):
            p = self.root / "log" / name
            if p.exists():
                out.append(p.read_text(errors="replace")[-1500:])
        return "\n".join(out)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def discard(servers: list[Server]) -> None:
    """Servers whose data nobody reads again (a session's, in pytest's tmp dir) killed, not
    shut down: a shutdown waits for the server's merges, 9.6 s for the session's three
    after ``test_source_agreement``, at the end of a test process's run."""
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
    for s in servers:
        if s.proc is not None:
            s.proc.wait(10)
        s.proc = None


def stop_all(servers: list[Server]) -> None:
    """Stop ``servers`` together: each is asked to stop, then each is waited for (a
    server takes a second or two to shut down: in turn, their sum)."""
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.terminate()
    for s in servers:
        s.stop()


def start(root: Path, query_log: bool = False) -> Server:
    s = Server(root, free_port(), free_port(), query_log=query_log)
    s.start()
    return s


def cluster(root: Path, n: int = 2, query_log: bool = False) -> list[Server]:
    """``n`` servers, each knowing the cluster ``CLUSTER`` of all ``n`` as shards."""
    ports = [(free_port(), free_port()) for _ in range(n)]
    servers = [Server(root / f"shard{i}", t, h, shards=[p[0] for p in ports],
                      query_log=query_log)
               for i, (t, h) in enumerate(ports)]
    try:  # (started together: each takes a second or so to listen)
        for s in servers:
            s.launch()
        for s in servers:
            s.wait_ready()
    except Exception:
        stop_all(servers)
        raise
    return servers
