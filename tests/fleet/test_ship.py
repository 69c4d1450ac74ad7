"""``ttsops logs ship``: each record once. A re-run ships nothing; a file that grew ships
only its new records, also after it was rotated and compressed; a ship killed mid-way
resumes without a duplicate or a gap; bad URLs and unreachable servers are one line."""

from __future__ import annotations

import functools
import gzip
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ttsops.logformat import iter_records

from .test_source_agreement import in_process, ttsops


def ship(paths: list[str], url: str, *extra: str) -> dict:
    """A ship run in this process (the console script's function); the tests of the
    process -- a kill, exit status, one line on stderr -- run the script (``ttsops``)."""
    p = in_process("logs", "ship", *paths, "--to", url, "--host", "h", "--json", *extra)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def client(server):
    from clickhouse_driver import Client

    return Client("127.0.0.1", port=server.tcp_port)


def rows_of(server, db: str) -> tuple[int, int]:
    """(rows, distinct (file, seq)): equal when nothing was shipped twice."""
    c = client(server)
    n, distinct = c.execute(f"SELECT count(), uniqExact(file, seq) FROM {db}.ttsops_logs")[0]
    c.disconnect()
    return n, distinct


def records_in(d: Path) -> int:
    n = 0
    for p in d.iterdir():
        opener = gzip.open if p.name.endswith(".gz") else open
        with opener(p, "rt", encoding="utf-8", errors="replace") as f:
            n += sum(1 for _ in iter_records(f))
    return n


@functools.cache
def corpus_records(d: Path) -> int:
    """``records_in`` of a corpus (read-only: counted once for the tests that ask)."""
    return records_in(d)


def test_reship_ships_nothing_twice(ch_single, corpora, tmp_path):
    url = f"clickhouse://127.0.0.1:{ch_single.tcp_port}/reship"
    first = ship([str(corpora["tut"])], url)
    assert first["rows"] == corpus_records(corpora["tut"]) > 0
    again = ship([str(corpora["tut"])], url)
    assert again["rows"] == 0
    assert {f["status"] for f in again["files"]} == {"up to date"}
    n, distinct = rows_of(ch_single, "reship")
    assert n == distinct == first["rows"]


def test_grown_and_rotated_file_ships_only_new_records(ch_single, tmp_path):
    url = f"clickhouse://127.0.0.1:{ch_single.tcp_port}/grow"
    d = tmp_path / "logs"
    d.mkdir()
    line = "2024-06-12 10:00:{:02d},000 - app - INFO - synthesis_start: id=ts_{:08x}, text_len=5\n"
    live = d / "app.log"
    live.write_text("".join(line.format(i, i) for i in range(10)))
    assert ship([str(d)], url)["rows"] == 10
    with live.open("a") as f:
        f.write("".join(line.format(i, i) for i in range(10, 15)))
    assert ship([str(d)], url)["rows"] == 5
    # rotation: app.log compressed to app.log.1.gz (same first line: the same file), a
    # record added before, and a new live file
    with live.open("a") as f:
        f.write(line.format(15, 15))
    with live.open("rb") as s, gzip.open(d / "app.log.1.gz", "wb") as t:
        shutil.copyfileobj(s, t)
    live.write_text(line.format(30, 30) + line.format(31, 31))
    got = ship([str(d)], url)
    assert got["rows"] == 3
    n, distinct = rows_of(ch_single, "grow")
    assert n == distinct == 18
    c = client(ch_single)
    ids = [r[0] for r in c.execute("SELECT id FROM grow.ttsops_logs ORDER BY ts")]
    assert ids == [f"ts_{i:08x}" for i in (*range(16), 30, 31)]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_rotation_during_a_ship_loses_and_doubles_nothing(ch_single, tmp_path, monkeypatch,
                                                            workers):
    """The service rotates while its live shipper runs: after the ship named its files
    (app.log.1.gz is A, app.log.2.gz is B) each is renamed one up and a new app.log.1.gz
    comes. Each path is read as the file whose identity was taken, never another under
    that identity: a file that moved is left to the next run, which ships it."""
    from ttsops.fleet import ship as shipmod
    from ttsops.logformat.names import rotated_name
    from ttsops.logsink import shift_rotated

    url = f"clickhouse://127.0.0.1:{ch_single.tcp_port}/rot{workers}"
    d = tmp_path / "logs"
    d.mkdir()
    line = "2024-06-12 10:{:02d}:{:02d},000 - app - INFO - synthesis_start: id=ts_{:08x}\n"

    def gz(name: str, minute: int, n: int) -> None:
        with gzip.open(d / name, "wt") as f:
            f.write("".join(line.format(minute, i, minute * 100 + i) for i in range(n)))

    gz(rotated_name(2), 1, 7)  # B, the older
    gz(rotated_name(1), 2, 3)  # A
    real_plan = shipmod._plan

    def plan_then_rotate(*a, **k):
        got = real_plan(*a, **k)
        shift_rotated(d, keep=100)  # A -> .2, B -> .3 (as the rotator does, by renames)
        gz(rotated_name(1), 3, 5)  # C
        return got

    monkeypatch.setattr(shipmod, "_plan", plan_then_rotate)
    first = ship([str(d)], url, "--workers", workers)
    monkeypatch.setattr(shipmod, "_plan", real_plan)
    assert {f["status"] for f in first["files"]} == {"moved"}, first["files"]
    assert rows_of(ch_single, f"rot{workers}") == (0, 0)
    again = ship([str(d)], url, "--workers", workers)
    assert again["rows"] == 15 == records_in(d)
    assert rows_of(ch_single, f"rot{workers}") == (15, 15)
    c = client(ch_single)
    by_file = dict(c.execute(f"SELECT path, count() FROM rot{workers}.ttsops_logs GROUP BY path"))
    c.disconnect()
    assert {Path(p).name: n for p, n in by_file.items()} == {
        rotated_name(1): 5, rotated_name(2): 3, rotated_name(3): 7}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_killed_ship_resumes_without_duplicates(ch_single, corpora, tmp_path, workers):
    """Killed mid-way (with 2 workers: the process that started them; they die with
    it), then shipped again: every record once. Inserts of 500 rows: a file of the
    corpus (~860 records) is two of them, so the kill lands within a file as between
    files (each insert costs the server ~0.1 s of CPU, its views' SQL analysed: at 200
    rows an insert this test was 4 s of the server's CPU)."""
    db = f"resume{workers}"
    url = f"clickhouse://127.0.0.1:{ch_single.tcp_port}/{db}"
    full = corpus_records(corpora["sim"])
    c = client(ch_single)
    p = subprocess.Popen(["ttsops", "logs", "ship", str(corpora["sim"]), "--to", url,
                          "--host", "h", "--batch-rows", "500", "--workers", workers],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_at = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and p.poll() is None:
            try:
                n = c.execute(f"SELECT count() FROM {db}.ttsops_logs")[0][0]
            except Exception:
                n = 0
            if n >= full // 3:
                p.send_signal(signal.SIGKILL)
                killed_at = n
                break
            time.sleep(0.05)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    assert killed_at is not None and killed_at < full, "the ship ended before the kill"
    time.sleep(1)  # an insert whose data had all arrived is committed after the kill
    before = rows_of(ch_single, db)[0]
    time.sleep(1)  # nothing more arrives: no worker outlived the ship
    assert rows_of(ch_single, db)[0] == before < full
    got = ship([str(corpora["sim"])], url)
    assert got["rows"] == full - before
    n, distinct = rows_of(ch_single, db)
    assert n == distinct == full
    # each file's rows are numbered 0, 1, ... in order, across the two ships
    bad = c.execute(f"SELECT count() FROM (SELECT file, min(seq) AS a, max(seq) AS b, "
                    f"count() AS k FROM {db}.ttsops_logs GROUP BY file) WHERE a != 0 OR "
                    "b != k - 1")[0][0]
    assert bad == 0


@pytest.mark.parametrize("url, says", [
    ("http://127.0.0.1/x", "clickhouse://"),
    ("clickhouse://127.0.0.1:9000/", "no database"),
    ("clickhouse://127.0.0.1:9000/db?shard=1", "unknown parameter"),
    ("clickhouse://127.0.0.1:1/db", "cannot reach"),
])
def test_bad_url_or_server_is_one_line(url, says, corpora):
    if "cannot reach" in says:
        pytest.importorskip("clickhouse_driver")
    p = ttsops("logs", "ship", str(corpora["tut"]), "--to", url)
    assert p.returncode == 2
    assert says in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_missing_path_is_one_line(ch_single, tmp_path):
    url = f"clickhouse://127.0.0.1:{ch_single.tcp_port}/x"
    p = ttsops("logs", "ship", str(tmp_path / "nope"), "--to", url)
    assert p.returncode == 2 and "no such directory" in p.stderr


def test_unknown_cluster_is_one_line(ch_single, corpora):
    url = f"clickhouse://127.0.0.1:{ch_single.tcp_port}/x?cluster=nosuch"
    p = ttsops("logs", "ship", str(corpora["tut"]), "--to", url)
    assert p.returncode == 2 and "cluster" in p.stderr and "Traceback" not in p.stderr
    assert os.environ.get("PATH")


def test_connecting_leaves_the_environment_as_it_was(ch_single, monkeypatch):
    """``connect`` sets the driver's lazy-date variable for the driver's import only: a
    process that ships or asks in-process (a library caller, these tests) keeps its own
    environment, and so do the processes it starts (it once stayed set for good)."""
    from ttsops.fleet.client import connect
    from ttsops.fleet.url import parse_url

    monkeypatch.delenv("CLICKHOUSE_DRIVER_LASY_DATE_LUT", raising=False)
    before = dict(os.environ)
    connect(parse_url(f"clickhouse://127.0.0.1:{ch_single.tcp_port}/x")).disconnect()
    assert dict(os.environ) == before

