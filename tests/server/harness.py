"""A real `ttsops serve` process on a free loopback port, its log dir in tmp, and helpers
to read its log back (the real sink's files, parsed by the real grammar)."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from console import TTSOPS
from ttsops.logline import Record, iter_records


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client made here. httpx builds a new one for each client
    it makes (``httpx.get`` included), loading the CA bundle: ~25 ms of CPU each time,
    ~1 s per server start when /healthz was polled that way. These servers speak plain
    http, so the context is never used for a connection."""
    return ssl.create_default_context()


def client(**kw: Any) -> httpx.Client:
    """An ``httpx.Client`` that shares :func:`tls_context`."""
    return httpx.Client(verify=tls_context(), **kw)


def request(method: str, url: str, **kw: Any) -> httpx.Response:
    """``httpx.request`` (and ``get``, ``post``, ``options`` below) with the shared
    :func:`tls_context` instead of a new one per call."""
    return httpx.request(method, url, verify=tls_context(), **kw)


def get(url: str, **kw: Any) -> httpx.Response:
    return request("GET", url, **kw)


def post(url: str, **kw: Any) -> httpx.Response:
    return request("POST", url, **kw)


def options(url: str, **kw: Any) -> httpx.Response:
    return request("OPTIONS", url, **kw)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    log_dir: Path
    proc: subprocess.Popen[bytes]
    output: Path

    def client(self, **kw: Any) -> httpx.Client:
        return client(base_url=self.url, timeout=kw.pop("timeout", 60), **kw)

    def records(self) -> list[Record]:
        path = self.log_dir / "app.log"
        if not path.exists():
            return []
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            return list(iter_records(fh))

    def wait_records(self, pred: Callable[[list[Record]], bool],
                     timeout: float = 15.0) -> list[Record]:
        """The log once ``pred`` holds on it (the writer thread is asynchronous)."""
        deadline = time.monotonic() + timeout
        while True:
            recs = self.records()
            if pred(recs):
                return recs
            if time.monotonic() > deadline:
                raise AssertionError(f"log never satisfied the condition; last "
                                     f"{len(recs)} records: "
                                     f"{[(r.event, r.fields) for r in recs[-15:]]}")
            time.sleep(0.05)

    def of_id(self, sid: str) -> list[Record]:
        return [r for r in self.records() if r.get("id") == sid]

    def wait_status(self, pred: Callable[[dict[str, Any]], bool], what: str,
                    timeout: float = 15.0) -> dict[str, Any]:
        """The pool's status (``/readyz``: queue_depth, states ...) once ``pred`` holds on
        it: a test waits for the state it needs instead of sleeping and hoping."""
        deadline = time.monotonic() + timeout
        with self.client(timeout=5) as probe:
            while True:
                status: dict[str, Any] = probe.get("/readyz").json()
                if pred(status):
                    return status
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting until {what}: {status}")
                time.sleep(0.01)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with self.client(timeout=2) as probe:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited: {self.output.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if probe.get("/readyz").status_code == 200:
                        return
                time.sleep(0.05)
        raise AssertionError("server never became ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_server(root: Path, *, engine: str = "espeak", workers: int = 1,
                 ready: bool = True, **settings: Any) -> Server:
    """``python -m ttsops serve`` with TTSOPS_* settings; waits for /healthz (and
    /readyz unless ``ready=False``)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTSOPS_")}
    env.update({"TTSOPS_LOG_DIR": str(root / "logs"), "TTSOPS_CACHE_DIR": str(root / "cache"),
                "PYTHONUNBUFFERED": "1"})
    for k, v in settings.items():
        env[f"TTSOPS_{k.upper()}"] = str(v).lower() if isinstance(v, bool) else str(v)
    output = root / "server.out"
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            [*TTSOPS, "serve", "--host", "127.0.0.1", "--port",
             str(port), "--workers", str(workers), "--engine", engine],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    server = Server(f"http://127.0.0.1:{port}", root / "logs", proc, output)
    deadline = time.monotonic() + 60
    with server.client(timeout=2) as probe:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {output.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if probe.get("/healthz").status_code == 200:
                    break
            assert time.monotonic() < deadline, "server never answered /healthz"
            time.sleep(0.05)
    if ready:
        server.wait_ready()
    return server
