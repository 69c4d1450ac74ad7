"""`ttsops serve` as a user runs it: its options, a graceful stop (in-flight requests
finish, workers end, server_stop logged), and uvicorn's own access log kept out."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import subprocess
import time

import pytest

from console import TTSOPS

from . import harness

pytestmark = pytest.mark.slow


def test_serve_help_lists_its_options():
    out = subprocess.run([*TTSOPS, "serve", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for opt in ("--host", "--port", "--workers", "--engine", "--log-dir"):
        assert opt in out.stdout


def test_sigterm_lets_in_flight_requests_finish_and_stops_workers(server_factory):
    s = server_factory(engine="fake", workers=2)
    recs = s.wait_records(lambda rs: sum(r.event == "engine_load" for r in rs) == 2)
    pids = [int(r.get("pid")) for r in recs if r.event == "engine_load"]
    with cf.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(harness.post, s.url + "/v1/audio/speech", timeout=30,
                        json={"model": "tts-1", "voice": "alloy", "input": "#sleep=1500 bye"})
        s.wait_records(lambda rs: any(r.event == "stage_time" and
                                      r.get("stage") == "llm_prompt_gen" for r in rs))
        s.proc.send_signal(signal.SIGTERM)
        r = fut.result()
    assert r.status_code == 200
    # uvicorn ends the process with the signal it handled, after the graceful shutdown
    assert s.proc.wait(30) in (0, -signal.SIGTERM)
    recs = s.records()  # the process has ended: the log is complete
    assert any(r.event == "server_stop" for r in recs)
    assert not any(r.logger == "uvicorn.access" for r in recs)
    deadline = time.monotonic() + 10
    for pid in pids:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, f"worker {pid} outlived the server"
            time.sleep(0.1)


def test_port_in_use_fails_with_a_message_on_the_terminal(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TTSOPS_")}
        env.update(TTSOPS_LOG_DIR=str(tmp_path / "logs"), TTSOPS_CACHE_DIR=str(tmp_path / "c"))
        r = subprocess.run([*TTSOPS, "serve", "--port", str(port),
                            "--workers", "1", "--engine", "fake"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "failed to start" in r.stderr and "address already in use" in r.stderr
    assert "serving http" not in r.stderr  # it never served: no banner before the bind


def _serve(tmp_path, *args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    """Each of these fails before it binds a port (a timeout here means it served)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTSOPS_")}
    env.update({"TTSOPS_LOG_DIR": str(tmp_path / "logs"), "TTSOPS_CACHE_DIR": str(tmp_path / "c"),
                "TTSOPS_WORKERS": "1", **env_vars})
    return subprocess.run([*TTSOPS, "serve", *args],
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args,env_vars,says", [
    ((), {"TTSOPS_PORT": "abc"}, "TTSOPS_PORT='abc': Input should be a valid integer"),
    ((), {"TTSOPS_WORKERS": "-1", "TTSOPS_LOG_LEVEL": "LOUD"},
     "TTSOPS_LOG_LEVEL='LOUD': Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'; "
     "TTSOPS_WORKERS='-1': Input should be greater than or equal to 0"),
    (("--engine", "nope"), {}, "unknown engine 'nope'; known: espeak, fake"),
    (("--log-dir", "/proc/no/such/dir"), {}, "cannot write the log in /proc/no/such/dir"),
])
def test_a_bad_setting_is_one_line_not_a_traceback(tmp_path, args, env_vars, says):
    r = _serve(tmp_path, *args, **env_vars)
    assert r.returncode == 1, r.stderr
    assert says in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_second_server_on_the_same_log_directory_is_refused(server_factory, tmp_path):
    s = server_factory(engine="fake", workers=1)
    r = _serve(tmp_path, "--engine", "fake", TTSOPS_LOG_DIR=str(s.log_dir))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "another process is writing" in r.stderr
    assert harness.get(s.url + "/healthz").status_code == 200  # the first one is untouched
