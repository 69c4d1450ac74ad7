# ruff: noqa: E501 -- shell pipelines are kept on one line each
"""Fleet scale (issue 18): the ship rate into ClickHouse, and window, trace, patterns,
stages with ``--source`` on the logs loaded into two shards, against the seed's shell
pipelines on the same files, in the same run (interleaved, medians of ``--runs``).

    python bench/bench_fleet.py [DIR] [--shards 2] [--runs 3] [--ship-runs 1] [--json out.json]
        [--url URL --server-pids PID,PID] [--only trace,patterns] [--baseline OLD_TTSOPS]

DIR defaults to the tutorial month (``bench/out/tutorial-month``: copy it from
/work/corpus first; its ``logs.truth.json`` names the burst hour and an id to trace).
Starts its own servers (Debian's ``clickhouse-server`` as plain processes, as the tests
do). The machine is shared: every figure comes with the CPU time it took -- ours is the
``ttsops`` process tree's (rusage of the children) plus the servers' (``/proc``), the
shell's that of the pipeline -- and the load average. The ship rate is also given per
CPU second, and as the rate two free cores would give (rows / (CPU seconds / 2)).

Targets: ship >= 100 k rows/s on two cores; each command <= 200 ms and >= 20x faster
than the shell pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "tests"))
from fleet import chserver  # noqa: E402

TTSOPS = str(Path(sys.executable).parent / "ttsops")
GZ = "app.log.*.gz"
SHELL_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}


def server_cpu(servers: list[chserver.Server] | list[int]) -> float:
    total = 0
    for s in servers:
        pid = s if isinstance(s, int) else s.proc.pid if s.proc is not None else 0
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        total += int(parts[11]) + int(parts[12])
    return total / os.sysconf("SC_CLK_TCK")


def run(argv: list[str], cwd: Path, servers: list[chserver.Server] | list[int],
        env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """(wall s, CPU s of the process tree, CPU s of the servers, stdout)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s0 = server_cpu(servers)
    t = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode not in (0, 1):
        raise SystemExit(f"{argv}: exit {p.returncode}: {p.stderr[-500:]}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, server_cpu(servers) - s0, p.stdout


def sql_time(url: str, t0: float, t1: float) -> tuple[float, int, int]:
    """(seconds, queries, rows read) of the queries the server of ``url`` ran for a
    client between ``t0`` and ``t1`` (``system.query_log``: the servers log every query
    when the benchmark starts them; the shards' parts are inside their initial query)."""
    from clickhouse_driver import Client

    from ttsops.fleet.url import parse_url

    u = parse_url(url)
    c = Client(u.host, port=u.port, user=u.user, password=u.password)
    try:
        c.execute("SYSTEM FLUSH LOGS")
        (ms, n, rows), = c.execute(
            "SELECT sum(query_duration_ms), count(), sum(read_rows) FROM system.query_log "
            "WHERE type = 2 AND is_initial_query AND query_start_time >= %(a)s AND "
            "query_start_time <= %(b)s AND position(query, 'system.query_log') = 0 AND "
            "query != 'SELECT 1'", {"a": int(t0), "b": int(t1) + 1})
    except Exception:
        return float("nan"), 0, 0
    finally:
        c.disconnect()
    return (ms or 0) / 1000, int(n), int(rows or 0)


def cases(truth: dict, url: str) -> list[tuple[str, list[str], str]]:
    """(name, our argv, the seed's pipeline) -- bench_tutorial.py's pipelines, and for
    stages the same style (stage_time lines, values by stage, ranks 50/95/99)."""
    burst = truth["incidents"]["burst"]
    a = burst["start_ts"][:13] + ":00:00"
    b = a[:11] + f"{int(a[11:13]) + 1:02d}:00:00"
    sid = sorted(truth["sample_traces"])[0]
    src = ["--source", url, "--json"]
    return [
        ("window", [TTSOPS, "logs", "window", "--since", a, "--until", b, *src],
         f'zcat {GZ} 2>/dev/null | awk \'$1" "$2 >= "{a}" && $1" "$2 <= "{b}"\' | grep -E "(ERROR|WARNING)" | wc -l'),
        ("trace", [TTSOPS, "logs", "trace", sid, *src],
         f'zcat {GZ} 2>/dev/null | grep "{sid}" | sort'),
        ("patterns", [TTSOPS, "logs", "patterns", "--where", "status=failed", "--by",
                      "text_len,error_code", *src],
         f'zcat {GZ} 2>/dev/null | grep "synthesis_complete.*status=failed" | '
         "awk -F', ' '{for(i=1;i<=NF;i++) if($i ~ /text_len=/) print $i; for(i=1;i<=NF;i++) if($i ~ /error_code=/) print $i}' | "
         "paste -d' ' - - | sort | uniq -c | sort -nr"),
        ("stages", [TTSOPS, "logs", "stages", *src],
         f'zcat {GZ} 2>/dev/null | grep "stage_time" | '
         "awk -F', ' '{for(i=1;i<=NF;i++){if($i ~ /stage=/){split($i,a,\"=\");s=a[2]} if($i ~ /duration_ms=/){split($i,b,\"=\");d=b[2]}} print s, d}' | "
         "sort -k1,1 -k2,2n | awk '{n[$1]++; x[$1, n[$1]] = $2} END {for (s in n) print s, n[s], x[s, int(n[s]*0.5)+1], x[s, int(n[s]*0.95)+1], x[s, int(n[s]*0.99)+1]}'"),
    ]


def ship(logs: Path, url: str, servers: list[chserver.Server]) -> dict:
    load = os.getloadavg()
    wall, cpu, scpu, out = run([TTSOPS, "logs", "ship", str(logs), "--to", url, "--host",
                                "web-1", "--json"], logs, servers)
    rows = json.loads(out)["rows"]
    got = {"rows": rows, "wall_s": round(wall, 2), "client_cpu_s": round(cpu, 2),
           "server_cpu_s": round(scpu, 2), "load": [round(x, 1) for x in load],
           "rows_per_s_wall": round(rows / wall),
           "rows_per_cpu_s": round(rows / (cpu + scpu)),
           "rows_per_s_two_cores": round(rows / ((cpu + scpu) / 2))}
    print(f"ship {logs}: {rows} rows in {wall:.1f} s wall ({got['rows_per_s_wall']:,} rows/s); "
          f"CPU client {cpu:.1f} s + servers {scpu:.1f} s -> {got['rows_per_s_two_cores']:,} "
          f"rows/s on two free cores; load {load[0]:.1f}", flush=True)
    return got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default=str(ROOT / "out" / "tutorial-month"))
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ship-runs", type=int, default=1,
                    help="ship the logs this many times (each into a new database)")
    ap.add_argument("--json")
    ap.add_argument("--url", help="query this database (shipped before) instead of "
                                  "starting servers and shipping")
    ap.add_argument("--server-pids", default="",
                    help="with --url: the servers' process ids (comma-separated), for "
                         "their CPU time")
    ap.add_argument("--only", default="", help="these commands only (comma-separated)")
    ap.add_argument("--baseline", default="",
                    help="another ttsops executable (e.g. a script running an older "
                         "checkout) measured in the same interleaved runs: 'before'")
    a = ap.parse_args()
    # an installed ttsops has its bytecode; a checkout run with PYTHONDONTWRITEBYTECODE
    # would compile ~50 modules at every start (0.2-0.3 s of each command)
    import ttsops

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(ttsops.__file__).parent)],
                   check=False, capture_output=True)
    base = Path(a.dir).resolve()
    logs = base / "logs"
    truth = json.loads((base / "logs.truth.json").read_text())
    out: dict = {"dir": str(base), "shards": a.shards, "runs": a.runs, "ship": [],
                 "queries": []}
    if a.url:
        pids = [int(x) for x in a.server_pids.split(",") if x]
        queries(truth, a.url, logs, pids, a, out)
        return
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    servers = (chserver.cluster(root, a.shards, query_log=True) if a.shards > 1
               else [chserver.start(root, query_log=True)])
    try:
        port = servers[0].tcp_port
        tail = f"?cluster={chserver.CLUSTER}" if a.shards > 1 else ""
        url = ""
        for i in range(a.ship_runs):
            url = f"clickhouse://127.0.0.1:{port}/bench{i}{tail}"
            out["ship"].append(ship(logs, url, servers))
        queries(truth, url, logs, servers, a, out)
    finally:
        for sv in servers:
            sv.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def queries(truth: dict, url: str, logs: Path, servers: list[chserver.Server] | list[int],
            a: argparse.Namespace, out: dict) -> None:
    only = [x for x in a.only.split(",") if x]
    for name, ours, shell in cases(truth, url):
        if only and name not in only:
            continue
        o, s, q, b, bq = [], [], [], [], []
        for _ in range(a.runs):  # interleaved: all see the same machine
            s.append(run(["bash", "-o", "pipefail", "-c", shell], logs, [], SHELL_ENV))
            t0 = time.time()
            o.append(run(ours, logs, servers))
            q.append(sql_time(url, t0, time.time()))
            if a.baseline:  # (query_log's times are whole seconds: a second of its own)
                time.sleep(1.05 - time.time() % 1)
                t0 = time.time()
                b.append(run([a.baseline, *ours[1:]], logs, servers))
                bq.append(sql_time(url, t0, time.time()))
        med = {k: statistics.median(x[i] for x in v) for k, v, i in (
            ("ours", o, 0), ("ours_cpu", o, 1), ("ours_server_cpu", o, 2),
            ("ours_sql", q, 0), ("ours_queries", q, 1), ("ours_rows_read", q, 2),
            ("shell", s, 0), ("shell_cpu", s, 1),
            ("before", b, 0), ("before_cpu", b, 1), ("before_server_cpu", b, 2),
            ("before_sql", bq, 0), ("before_queries", bq, 1)) if v}
        row = {"command": name, **{k: round(v, 3) for k, v in med.items()},
               "shell_over_ours": round(med["shell"] / med["ours"], 1),
               "shell_cpu_over_ours_cpu": round(
                   med["shell_cpu"] / (med["ours_cpu"] + med["ours_server_cpu"]), 1),
               "load": round(os.getloadavg()[0], 1)}
        if b:
            row["shell_over_before"] = round(med["shell"] / med["before"], 1)
        out["queries"].append(row)
        print(f"{name:9s} --source {med['ours'] * 1000:7.0f} ms (cpu {med['ours_cpu'] * 1000:5.0f}"
              f" + server {med['ours_server_cpu'] * 1000:5.0f} ms)   shell {med['shell'] * 1000:7.0f} ms"
              f" (cpu {med['shell_cpu'] * 1000:6.0f} ms)   shell/ours {row['shell_over_ours']:5.1f}x"
              f"   load {row['load']}", flush=True)
        print(f"{'':9s}   wall: {med['ours_sql'] * 1000:5.0f} ms in {med['ours_queries']:.0f} SQL "
              f"queries ({med['ours_rows_read']:,.0f} rows read), the rest "
              f"{(med['ours'] - med['ours_sql']) * 1000:5.0f} ms in the client; CPU shell/ours "
              f"(client + servers) {row['shell_cpu_over_ours_cpu']:.1f}x", flush=True)
        if b:
            print(f"{'':9s}   before: {med['before'] * 1000:5.0f} ms (cpu {med['before_cpu'] * 1000:5.0f}"
                  f" + server {med['before_server_cpu'] * 1000:5.0f} ms; {med['before_sql'] * 1000:5.0f}"
                  f" ms in {med['before_queries']:.0f} SQL queries)   shell/before "
                  f"{row['shell_over_before']:5.1f}x", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
