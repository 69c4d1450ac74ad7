"""What starting the service costs: ``ttsops serve`` from its command to ready, against a
bare FastAPI app under uvicorn (the framework alone) started the same way, same run.

For each case (engine, workers) and the baseline, ``--runs`` times, interleaved: the time
from the command to the first 200 of ``/readyz`` (the baseline's ``/``), the CPU the
processes used until then plus one second (the main process and its children: engine
workers, the multiprocessing resource tracker), each process's resident memory then, and
the time SIGTERM takes to end it. Medians; ratios against the baseline's.

    python bench/bench_start.py [--runs 5]

To compare two versions of ttsops with one environment: ``PYTHONPATH=OTHER/src python
bench/bench_start.py`` (the console script and its workers import from there first).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CASES = [("fake", 1), ("espeak", 1), ("espeak", 2)]
BASELINE = """
import sys, fastapi, uvicorn
app = fastapi.FastAPI()
@app.get("/")
def root() -> dict[str, str]:
    return {"ok": "yes"}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def cpu_and_rss(pids: list[int]) -> tuple[float, list[float]]:
    cpu, rss = 0.0, []
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(f[11]) + int(f[12])) / TICK
            rss.append(int(Path(f"/proc/{p}/statm").read_text().split()[1])
                       * os.sysconf("SC_PAGE_SIZE") / 1e6)
        except (OSError, IndexError):
            continue
    return cpu, rss


def start(cmd: list[str], url: str, env: dict[str, str]) -> dict[str, object]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{cmd} exited {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.01)
    ready = time.perf_counter() - t0
    time.sleep(1.0)
    cpu, rss = cpu_and_rss(tree(proc.pid))
    t1 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    return {"ready_s": ready, "cpu_s": cpu, "main_mb": rss[0] if rss else 0.0,
            "child_mb": max(rss[1:], default=0.0),
            "stop_s": time.perf_counter() - t1}


def run_case(case: tuple[str, int] | None, root: Path) -> dict[str, object]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTSOPS_")}
    if case is None:
        return start([sys.executable, "-c", BASELINE, str(port)],
                     f"http://127.0.0.1:{port}/", env)
    engine, workers = case
    d = Path(tempfile.mkdtemp(dir=root))
    env.update(TTSOPS_LOG_DIR=str(d / "logs"), TTSOPS_CACHE_DIR=str(d / "cache"))
    exe = Path(sys.executable).parent / "ttsops"
    return start([str(exe), "serve", "--port", str(port), "--engine", engine,
                  "--workers", str(workers)], f"http://127.0.0.1:{port}/readyz", env)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-start-"))
    keys: list[tuple[str, int] | None] = [None, *CASES]
    got: dict[str, list[dict[str, object]]] = {}
    for _ in range(args.runs):
        for case in keys:
            name = "baseline" if case is None else f"{case[0]} x{case[1]}"
            got.setdefault(name, []).append(run_case(case, root))

    def med(name: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in got[name])  # type: ignore[arg-type]

    print(f"load average {os.getloadavg()[0]:.2f}; medians of {args.runs} runs, interleaved")
    print(f"{'case':<14}{'ready s':>9}{'x base':>8}{'CPU s':>8}{'x base':>8}"
          f"{'main MB':>9}{'child MB':>9}{'stop s':>8}")
    for name in got:
        print(f"{name:<14}{med(name, 'ready_s'):>9.2f}"
              f"{med(name, 'ready_s') / med('baseline', 'ready_s'):>8.2f}"
              f"{med(name, 'cpu_s'):>8.2f}{med(name, 'cpu_s') / med('baseline', 'cpu_s'):>8.2f}"
              f"{med(name, 'main_mb'):>9.1f}{med(name, 'child_mb'):>9.1f}"
              f"{med(name, 'stop_s'):>8.2f}")
    print("main MB: the server process's resident memory; child MB: its largest child's "
          "(an engine worker)")


if __name__ == "__main__":
    main()
