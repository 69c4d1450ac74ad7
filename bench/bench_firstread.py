"""The first read of rotated files: ``ttsops logs diagnose`` with a cold sidecar cache
(``TTSOPS_LOGS_SIDECAR=auto``: it parses every rotated file and writes its sidecar), on
the tutorial month's files, against named baselines in the same run, interleaved, each
run cold (its own empty cache):

* ``zcat | wc -l`` over the same files (decompressing them, nothing more): the ratio;
* the line path (``TTSOPS_LOGS_SIDECAR=off``: diagnose parsing everything, writing
  nothing);
* with ``--baseline PATH``: another installation's ``ttsops`` doing the same cold first
  read (e.g. the format-3 code's venv), its own cache;
* ours on one core (``TTSOPS_LOGS_WORKERS=1``: no worker processes, no read-ahead
  threads) and ours as it runs (worker processes write the sidecars, ``firstread``);
* then, once, the later read (diagnose from the sidecars just written): its time and
  peak memory.

Wall time, CPU (user+sys of the whole process tree, ``wait4``) and peak RSS, medians of
``--runs``; the load average before and after. The machine is shared: judge by CPU.

    python bench/bench_firstread.py [--files 24] [--runs 3] [--month] [--baseline PATH]

``--files N``: the first N rotated files of the month (copied once into
``bench/out/firstread-N``); ``--month``: all of them (one run unless ``--runs``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from bench_forensics import run_ours, run_shell  # noqa: E402

OUT = ROOT / "out"
GZ = "app.log.*.gz"
DIAGNOSE = ["logs", "diagnose", "--json", "--no-progress", "--files", GZ]


def month() -> Path:
    logs = OUT / "tutorial-month" / "logs"
    if not any(logs.glob(GZ)):
        print(f"generating the tutorial month into {logs} (once, minutes) ...", flush=True)
        subprocess.run([sys.executable, str(ROOT / "tutorial_logs.py"), str(logs), "--size",
                        "month", "--seed", "7", "--jobs", "2"], check=True,
                       stdout=subprocess.DEVNULL)
    return logs


def subset(src: Path, n: int) -> Path:
    """The first ``n`` rotated files by rotation number (a copy, made once)."""
    files = sorted(src.glob(GZ), key=lambda p: int(p.name.split(".")[2]))[:n]
    dst = OUT / f"firstread-{n}" / "logs"
    if sorted(p.name for p in dst.glob(GZ)) != sorted(p.name for p in files):
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir(parents=True)
        for p in files:
            shutil.copy2(p, dst / p.name)
    return dst


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--runs", type=int, default=0, help="default 3, 1 with --month")
    ap.add_argument("--month", action="store_true")
    ap.add_argument("--baseline", help="another installation's ttsops script")
    args = ap.parse_args()
    src = month()
    logs = src if args.month else subset(src, args.files)
    runs = args.runs or (1 if args.month else 3)
    ours = str(Path(sys.executable).parent / "ttsops")
    nfiles = len(list(logs.glob(GZ)))
    size = sum(p.stat().st_size for p in logs.glob(GZ))
    print(f"{nfiles} rotated files, {size / 1e6:.1f} MB gzip ({logs}); {runs} run(s) each, "
          f"interleaved, every run with an empty cache; load {load()}", flush=True)

    cases: dict[str, list[str] | str] = {
        "zcat | wc -l (baseline)": f"zcat {GZ} | wc -l",
        "line path, no sidecars (diagnose)": ["env", "TTSOPS_LOGS_SIDECAR=off", ours,
                                              *DIAGNOSE],
    }
    if args.baseline:
        cases["baseline: first read"] = ["env", "TTSOPS_LOGS_SIDECAR=auto", args.baseline,
                                         *DIAGNOSE]
    cases["ours: first read, one core"] = ["env", "TTSOPS_LOGS_SIDECAR=auto",
                                           "TTSOPS_LOGS_WORKERS=1", ours, *DIAGNOSE]
    cases["ours: first read"] = ["env", "TTSOPS_LOGS_SIDECAR=auto", ours, *DIAGNOSE]
    got: dict[str, list[tuple[float, float, int]]] = {k: [] for k in cases}
    keep = Path(tempfile.mkdtemp(prefix="firstread-cache-"))
    try:
        for i in range(runs):
            for name, cmd in cases.items():
                cache = Path(tempfile.mkdtemp(prefix="firstread-", dir=keep))
                os.environ["XDG_CACHE_HOME"] = str(cache)
                if isinstance(cmd, str):
                    took, _out, cpu = run_shell(cmd, logs)
                    peak = 0
                else:
                    took, peak, _o, cpu = run_ours(cmd, logs)
                got[name].append((took, cpu, peak))
                print(f"  run {i + 1} {name}: {took:.1f} s wall, {cpu:.1f} s CPU, "
                      f"{peak / 1024:.0f} MB  (load {load()})", flush=True)
                if name == "ours: first read" and i == runs - 1:
                    later = run_ours(["env", "TTSOPS_LOGS_SIDECAR=read", ours, *DIAGNOSE],
                                     logs)
                    got["ours: later read, from the sidecars"] = [(later[0], later[3],
                                                                   later[1])]
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        shutil.rmtree(keep, ignore_errors=True)

    def med(name: str) -> tuple[float, float, float]:
        rows = got[name]
        return (statistics.median(t for t, _c, _p in rows),
                statistics.median(c for _t, c, _p in rows), max(p for _t, _c, p in rows) / 1024)

    bases = ["zcat | wc -l (baseline)", "line path, no sidecars (diagnose)"]
    if args.baseline:
        bases.append("baseline: first read")
    print(f"\nmedians of {runs} (wall s / CPU s, peak MB); ratios wall/CPU against "
          f"{', '.join(repr(b) for b in bases)}; load now {load()}")
    for name in got:
        w, c, p = med(name)
        ratios = "  ".join(f"{w / med(b)[0]:.2f}/{c / med(b)[1]:.2f}" for b in bases)
        print(f"{name:40s} {w:7.1f} {c:7.1f} {p:6.0f}   {ratios}")

if __name__ == "__main__":
    main()
