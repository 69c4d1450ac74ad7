"""Fleet scale (issue 18): ship rate into ClickHouse, and the time of the logs commands
with ``--source`` (the database) against ``--dir`` (the file engine) on the same logs.

Starts its own ClickHouse servers (Debian's ``clickhouse-server`` as plain processes,
as the tests do): one server, or with ``--shards 2`` two servers behind a Distributed
table. Ratios are medians of ``--runs`` runs in the same session; the machine is noisy.

    python bench/bench_fleet.py DIR [--shards 2] [--runs 3] [--json out.json]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fleet import chserver

QUERIES = [
    ["window"],
    ["trace", "{id}"],
    ["top", "errors"],
    ["patterns"],
    ["stages"],
]


def timed(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the ttsops process): on a shared machine the CPU
    time is the steadier figure (the server's own time is in the wall time only)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(["ttsops", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    servers = (chserver.cluster(root, a.shards) if a.shards > 1
               else [chserver.start(root)])
    try:
        url = f"clickhouse://127.0.0.1:{servers[0].tcp_port}/bench" + (
            f"?cluster={chserver.CLUSTER}" if a.shards > 1 else "")
        t = time.perf_counter()
        p = subprocess.run(["ttsops", "logs", "ship", a.dir, "--to", url, "--host", "web-1",
                            "--json"], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
        shipped = json.loads(p.stdout)
        text = subprocess.run(["ttsops", "logs", "trace", "--help"], capture_output=True)
        assert text.returncode == 0
        # an id to trace: the first failed synthesis the files know
        w = subprocess.run(["ttsops", "logs", "patterns", "--dir", a.dir, "--where",
                            "status=failed", "--by", "id", "-n", "1", "--json"],
                           capture_output=True, text=True)
        rows = json.loads(w.stdout).get("tables", {}).get("groups", [])
        sid = rows[0]["id"] if rows else "ts_0"
        out = {"dir": a.dir, "shards": a.shards, "rows": shipped["rows"],
               "ship_s": round(wall, 2), "ship_rows_per_s": round(shipped["rows"] / wall),
               "ship_rows_per_s_inside": shipped["rows_per_s"], "queries": []}
        print(f"shipped {shipped['rows']} rows in {wall:.2f} s: "
              f"{shipped['rows'] / wall:,.0f} rows/s ({a.shards} shard(s))")
        for q in QUERIES:
            q = [x.replace("{id}", sid) for x in q]
            src = [timed(["logs", *q, "--source", url, "--json"]) for _ in range(a.runs)]
            fil = [timed(["logs", *q, "--dir", a.dir, "--json"]) for _ in range(a.runs)]
            ms, mf = (statistics.median(x[0] for x in v) for v in (src, fil))
            cs, cf = (statistics.median(x[1] for x in v) for v in (src, fil))
            out["queries"].append({"command": " ".join(q), "source_s": round(ms, 3),
                                   "files_s": round(mf, 3), "files_over_source":
                                   round(mf / ms, 2), "source_cpu_s": round(cs, 3),
                                   "files_cpu_s": round(cf, 3)})
            print(f"{' '.join(q):<24} --source {ms * 1000:7.0f} ms (cpu {cs * 1000:5.0f})"
                  f"   --dir {mf * 1000:7.0f} ms (cpu {cf * 1000:5.0f})   wall ratio "
                  f"{mf / ms:5.2f}")
        if a.json:
            Path(a.json).write_text(json.dumps(out, indent=1))
    finally:
        for s in servers:
            s.stop()
        os.system(f"rm -rf {root}")


if __name__ == "__main__":
    main()
