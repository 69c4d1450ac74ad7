# ruff: noqa: E501 -- shell pipelines are kept on one line each
"""``ttsops logs`` on logs written the tutorial's way (plain stdlib ``logging``, whole-file
gzip rotation, ``bench/tutorial_logs.py``), against the tutorial's own shell pipelines on
the same files, measured in the same run, medians of several interleaved runs.

    python bench/bench_tutorial.py [--runs 5] [--month] [--only NAME] [--no-line-path]

Run it with the interpreter of a fresh virtual environment that has ttsops installed:
ours run as a user runs them (that environment's ``ttsops`` console script, interpreter
start included), the shell as people run it (``LC_ALL=C``, ``/usr/bin`` only). Peak memory
is each process's own (``wait4``).

Targets (issue 14), each printed with the ratio it is judged by:

* fixed cost: ``logs window`` on a small indexed log <= 3x ``python -c pass`` (same env);
* the day (~40 MB of text in 8 whole-file ``.gz``): without an index, trace, window and
  patterns <= 1.0x their shell pipeline; after ``ttsops logs index`` <= 0.5x;
* whole-data commands (diagnose, report, check, alerts, stages) on the day <= 1.5 s;
* ``--month`` (~1 GB, generated once, minutes): indexed trace and window >= 50x faster
  than the shell; an unindexed full scan (``top errors --no-index``) within 1.5x of
  ``igzip -dc`` over the same files; whole-data commands <= 10 s and <= 500 MB.

The corpora are generated once into ``bench/out/`` (git-ignored) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from bench_forensics import frac, run_ours, run_shell  # noqa: E402

SCRIPT = Path(sys.executable).parent / "ttsops"
TTSOPS = [str(SCRIPT), "logs"]
PY = sys.executable
GZ = "app.log.*.gz"
BASE_NAME = "line path"


@dataclass
class Case:
    name: str
    ours: list[str]
    shell: str | None  # None: judged on its own time and memory
    limit: float  # ours/shell <= limit, or seconds when shell is None
    runs: int = 0
    ours_s: list[float] = field(default_factory=list)
    shell_s: list[float] = field(default_factory=list)
    peak_kb: int = 0
    mem_mb: float = 0.0  # memory limit, 0: none
    base: list[str] | None = None  # a baseline of ours (the line path), same run
    base_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # ours: user + system CPU
    shell_cpu_s: list[float] = field(default_factory=list)  # the shell's (whole pipeline)

    def verdict(self) -> tuple[float, bool]:
        mo = statistics.median(self.ours_s)
        value = mo / statistics.median(self.shell_s) if self.shell else mo
        ok = value <= self.limit and (not self.mem_mb or self.peak_kb / 1024 <= self.mem_mb)
        return value, ok


def generate(out: Path, size: str) -> Path:
    logs = out / "logs"
    if not truth_of(logs).exists():
        if logs.exists():
            shutil.rmtree(logs)
        print(f"generating the tutorial-style {size} into {logs} (once) ...", flush=True)
        jobs = ["--jobs", "2"] if size == "month" else []
        subprocess.run([PY, str(ROOT / "tutorial_logs.py"), str(logs), "--size", size,
                        "--seed", "7", *jobs], check=True, stdout=subprocess.DEVNULL)
    return logs


def use_cache(logs: Path) -> Path:
    """Sidecars (parsed rotated files, forensics/reading/sidecar.py) of a corpus go to its own
    cache beside it (``XDG_CACHE_HOME`` of every command run after this)."""
    cache = logs.parent / "cache"
    os.environ["XDG_CACHE_HOME"] = str(cache)
    return cache


def truth_of(logs: Path) -> Path:
    return logs.parent / f"{logs.name}.truth.json"


def indexed_copy(logs: Path) -> Path:
    """The same files after ``ttsops logs index`` (a copy: the originals stay unindexed);
    an existing copy is indexed again (``up to date`` at once; an index another parser
    made has its counts computed anew -- delete the copy to get this version's blocks)."""
    dst = logs.parent / "indexed"
    if not (dst / "app.log.1.gz").exists():
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(logs, dst)
    subprocess.run([*TTSOPS, "index", str(dst), "--no-progress"], check=True,
                   stdout=subprocess.DEVNULL)
    return dst


def shell_cases(truth: dict, prefix: str, indexed: bool, hour: tuple[str, str],
                sid: str, limit: float) -> list[Case]:
    a, b = hour
    files = ["--files", GZ]
    seed_window = (f'zcat {GZ} 2>/dev/null | awk \'$1" "$2 >= "{a}" && $1" "$2 <= "{b}"\' '
                   '| grep -E "(ERROR|WARNING)" | wc -l')
    seed_trace = f'zcat {GZ} 2>/dev/null | grep "{sid}" | sort'
    seed_patterns = (f'zcat {GZ} 2>/dev/null | grep "synthesis_complete.*status=failed" | '
                     "awk -F', ' '{for(i=1;i<=NF;i++) if($i ~ /text_len=/) print $i; for(i=1;i<=NF;i++) if($i ~ /error_code=/) print $i}' | "
                     "paste -d' ' - - | sort | uniq -c | sort -nr")
    extra = [] if indexed else ["--no-index"]
    return [
        Case(f"{prefix} window", [*TTSOPS, "window", *files, "--since", a, "--until", b,
                                  "--json", *extra], seed_window, limit),
        Case(f"{prefix} trace", [*TTSOPS, "trace", sid, *files, "--json", *extra],
             seed_trace, limit),
        Case(f"{prefix} patterns", [*TTSOPS, "patterns", *files, "--where", "status=failed",
                                    "--by", "text_len,error_code", "--json", *extra],
             seed_patterns, limit),
    ]


# the whole-data commands' baseline: the line path (no sidecars), or with --baseline
# another installation's ttsops (e.g. the code before the sidecars), same run
LINE_PATH = ["/usr/bin/env", "TTSOPS_LOGS_SIDECAR=off"]
# the first read writes the sidecars (the default, ``read``, only uses them)
WRITE_SIDECARS = ["/usr/bin/env", "TTSOPS_LOGS_SIDECAR=auto"]
BASE_TTSOPS = [str(SCRIPT), "logs"]


def whole_cases(prefix: str, limit_s: float, mem_mb: float, runs: int) -> list[Case]:
    files = ["--files", GZ]
    return [Case(f"{prefix} {name}", [*TTSOPS, *argv, *files], None, limit_s, runs=runs,
                 mem_mb=mem_mb, base=[*LINE_PATH, *BASE_TTSOPS, *argv, *files])
            for name, argv in (("diagnose", ["diagnose", "--json"]),
                               ("report", ["report", "-o", "/dev/null"]),
                               ("check", ["check", "--json"]),
                               ("alerts", ["alerts", "--json"]),
                               ("stages", ["stages", "--json"]))]


def pick(truth: dict) -> tuple[tuple[str, str], str]:
    """The burst's hour (the on-call question) and one sample id to trace."""
    burst = truth["incidents"]["burst"]
    start = burst["start_ts"][:13] + ":00:00"
    hour = (start, start[:11] + f"{int(start[11:13]) + 1:02d}:00:00")
    sid = sorted(truth["sample_traces"])[0]
    return hour, sid


def measure(c: Case, cwd: Path, runs: int) -> None:
    for _ in range(c.runs or runs):  # interleaved: ours and the shell see the same machine
        if c.shell:
            took_sh, _out_sh, cpu_sh = run_shell(c.shell, cwd)
            c.shell_s.append(took_sh)
            c.shell_cpu_s.append(cpu_sh)
        if c.base:
            c.base_s.append(run_ours(c.base, cwd)[0])
        took, kb, _out, cpu = run_ours(c.ours, cwd)
        c.ours_s.append(took)
        c.cpu_s.append(cpu)
        c.peak_kb = max(c.peak_kb, kb)


def report(title: str, cases: list[Case]) -> list[dict]:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{title} (load average at the end: {load})\n")
    print("| case | ours (median s) | baseline (median s) | ours/baseline | target | met | peak MB "
          "| ours CPU (median s) | shell CPU (median s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for c in cases:
        value, ok = c.verdict()
        base = f"{statistics.median(c.shell_s):.3f}" if c.shell else \
            f"{BASE_NAME} {statistics.median(c.base_s):.3f}" if c.base_s else "-"
        shown = frac(value) if c.shell else f"{value:.2f} s"
        target = f"<= {c.limit:g}" + ("" if c.shell else " s") + \
            (f", <= {c.mem_mb:g} MB" if c.mem_mb else "")
        print(f"| {c.name} | {statistics.median(c.ours_s):.3f} | {base} | {shown} | {target} "
              f"| {'yes' if ok else 'NO'} | {c.peak_kb / 1024:.0f} "
              f"| {statistics.median(c.cpu_s):.3f} "
              f"| {statistics.median(c.shell_cpu_s) if c.shell_cpu_s else float('nan'):.3f} |")
        rows.append({"case": c.name, "ours_s": c.ours_s, "shell_s": c.shell_s,
                     "value": value, "limit": c.limit, "met": ok, "peak_mb": c.peak_kb / 1024,
                     "ours": c.ours[1:], "shell": c.shell, "line_path_s": c.base_s,
                     "ours_cpu_s": c.cpu_s, "shell_cpu_s": c.shell_cpu_s})
    return rows


def fixed_cost(runs: int) -> list[Case]:
    """An indexed query on a small log against the bare interpreter of the same env."""
    out = ROOT / "out" / "tutorial-small"
    logs = generate(out, "small")
    idx = indexed_copy(logs)
    bare = Case("bare interpreter (python -c pass)", [PY, "-c", "pass"], None, 1e9)
    q = Case("indexed window on a small log", [*TTSOPS, "window", "--files", GZ, "--json"],
             None, 1e9)
    for _ in range(runs):
        measure(bare, idx, 1)
        measure(q, idx, 1)
    q.shell = "python -c pass"
    q.shell_s = bare.ours_s
    q.limit = 3.0
    return [q]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--month", action="store_true", help="Also the ~1 GB month (minutes).")
    ap.add_argument("--only", help="Run only the cases whose name contains this.")
    ap.add_argument("--no-line-path", action="store_true",
                    help="Skip the whole-data commands' baseline (the line path without "
                    "sidecars: minutes per command on the month).")
    ap.add_argument("--baseline", help="The whole-data commands' baseline: this ttsops "
                    "script (another installation) instead of ours without sidecars.")
    args = ap.parse_args()
    global BASE_NAME
    if args.baseline:
        BASE_TTSOPS[:] = [args.baseline, "logs"]
        BASE_NAME = "before"
    if not SCRIPT.is_file():
        raise SystemExit(f"no ttsops console script beside {PY}: run this with the "
                         "interpreter of the environment ttsops is installed in")
    import ttsops

    subprocess.run([PY, "-m", "compileall", "-q", str(Path(ttsops.__file__).parent)],
                   check=True)
    results: dict[str, list[dict]] = {}

    def want(c: Case) -> bool:
        if args.no_line_path:
            c.base = None
        return not args.only or args.only in c.name

    fc = [c for c in fixed_cost(args.runs) if want(c)]
    if fc:
        results["fixed cost"] = report("Fixed cost (whole process)", fc)

    day = generate(ROOT / "out" / "tutorial-day", "day")
    truth = json.loads(truth_of(day).read_text())
    hour, sid = pick(truth)
    dayx = indexed_copy(day)
    plain = [c for c in shell_cases(truth, "day, no index:", False, hour, sid, 1.0) if want(c)]
    for c in plain:
        measure(c, day, args.runs)
    indexed = [c for c in shell_cases(truth, "day, indexed:", True, hour, sid, 0.5) if want(c)]
    for c in indexed:
        measure(c, dayx, args.runs)
    whole = [c for c in whole_cases("day:", 1.5, 0, 3) if want(c)]
    if whole:  # the first read writes the sidecars (into the bench's own cache): once
        cold = Case("day: first read, writes the sidecars (diagnose)",
                    [*WRITE_SIDECARS, *TTSOPS, "diagnose", "--json", "--files", GZ], None,
                    1e9, runs=1)
        rcold = Case("day: report's first run, writes its companions",
                     [*TTSOPS, "report", "-o", "/dev/null", "--files", GZ], None, 1e9,
                     runs=1)
        shutil.rmtree(use_cache(day), ignore_errors=True)
        measure(cold, day, 1)
        measure(rcold, day, 1)
        whole[:0] = [cold, rcold]
    for c in whole[2:]:
        measure(c, day, args.runs)
    size = sum(p.stat().st_size for p in day.glob(GZ))
    results["day"] = report(f"The tutorial day ({len(list(day.glob(GZ)))} rotated files, "
                            f"{size / 1e6:.1f} MB gzip)", [*plain, *indexed, *whole])

    if args.month:
        month = generate(ROOT / "out" / "tutorial-month", "month")
        mtruth = json.loads(truth_of(month).read_text())
        mhour, msid = pick(mtruth)
        monthx = indexed_copy(month)
        idx = [c for c in shell_cases(mtruth, "month, indexed:", True, mhour, msid, 0.02)
               if want(c) and "patterns" not in c.name]
        for c in idx:
            measure(c, monthx, max(3, args.runs // 2))
        scan = Case("month, no index: top errors vs igzip -dc",
                    [*TTSOPS, "top", "errors", "--files", GZ, "--json", "--no-index"],
                    f"igzip -dc {GZ} > /dev/null", 1.5, runs=3)
        # each whole-data command 3 times (the line path, minutes a run, once)
        mwhole = [c for c in whole_cases("month:", 10.0, 500, 3) if want(c)]
        for c in mwhole:
            c.runs = 1 if c.base else 3
        cold = []
        if mwhole:
            mcold = Case("month: first read, writes the sidecars (diagnose)",
                         [*WRITE_SIDECARS, *TTSOPS, "diagnose", "--json", "--files", GZ],
                         None, 1e9, runs=1)
            # report's own companions (its charts, its rules' pre-filter) are written by
            # its first run: measured apart, once, so its median is of the runs after
            rcold = Case("month: report's first run, writes its companions",
                         [*TTSOPS, "report", "-o", "/dev/null", "--files", GZ], None, 1e9,
                         runs=1)
            shutil.rmtree(use_cache(month), ignore_errors=True)
            measure(mcold, month, 1)
            measure(rcold, month, 1)
            cold = [mcold, rcold]
        for c in [scan, *mwhole]:
            if want(c):
                measure(c, month, 3)
        results["month"] = report("The tutorial month", [*idx, *(c for c in [scan] if want(c)),
                                                         *cold, *mwhole])
    out = ROOT / "out" / "tutorial_results.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
