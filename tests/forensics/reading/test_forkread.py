"""Reading and filtering in one forked child while the caller parses (``forkread``): the
same records, read statistics, counters and problems as reading in the caller, damaged
input included; an error in the child is raised in the caller; a consumer that stops
early leaves no child behind; a busy machine reads in the caller."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ttsops.forensics.reading import forkread, scan
from ttsops.forensics.reading.match import Select, common_prefix
from ttsops.forensics.reading.scan import Query, Scan
from ttsops.forensics.reading.sources import open_snapshot

from .test_sources import _write

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs fork (Linux)")


def _forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the children ``forkread`` forks from now on."""
    pids: list[int] = []
    real = os.fork

    def fork() -> int:
        pid = real()
        if pid:
            pids.append(pid)
        return pid
    monkeypatch.setattr(forkread.os, "fork", fork)
    return pids


def _run(d, monkeypatch, fork: bool, **q):
    monkeypatch.delenv("TTSOPS_LOGS_WORKERS", raising=False)
    monkeypatch.setattr(scan, "FORK_BYTES", 0 if fork else 1 << 60)
    monkeypatch.setattr(forkread, "spare_cpu", lambda: True)
    monkeypatch.setattr(forkread, "_threads", lambda: 1)  # (the test process has pools)
    pids = _forks(monkeypatch)
    with open_snapshot([d]) as snap:
        sc = Scan(snap, Query(**q))
        recs = [(r.ts, r.fields.get("seq"), tuple(r.traceback)) for r in sc.records()]
        stats = (vars(sc.stats.read), vars(sc.stats.counters), sc.stats.skipped_by_file,
                 sc.stats.dropped)
        problems = [(p.path, p.message, p.hole) for p in snap.problems]
    assert bool(pids) == fork
    for pid in pids:  # every child was waited for
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    return recs, stats, problems


QUERIES = [
    {"needles": ("synthesis_start",), "use_index": False},
    {"needles": ("ts_0000007",), "use_index": False},
    {"needles": ("ERROR",), "tracebacks": False, "use_index": False},
    {"needles": ("synthesis_start",), "require": ("seq=2",), "count_event": "synthesis_start",
     "tracebacks": False, "use_index": False},
    {"since": "2024-06-12 00:02:00,000", "until": "2024-06-12 00:07:30,000",
     "use_index": False},
    {"since": "2024-06-12 00:00:00", "until": "2024-06-12 01:00:00", "use_index": False},
    {"since": "2024-06-12 00:02:00,000", "until": "2024-06-12 00:07:30,000"},
]


@pytest.mark.parametrize("q", QUERIES, ids=["needle", "id", "heads-only", "counted",
                                            "window", "whole-window", "window-indexed"])
def test_same_answer_as_reading_in_the_caller(tmp_path, monkeypatch, q):
    d = _write(tmp_path, 3000)
    alone = _run(d, monkeypatch, False, **q)
    forked = _run(d, monkeypatch, True, **q)
    assert forked == alone
    assert alone[0], "the query selects something"


def test_a_damaged_file_is_reported_once_and_the_rest_answered(tmp_path, monkeypatch):
    d = _write(tmp_path, 3000)
    victim = d / "app.log.3.gz"
    full = victim.read_bytes()
    victim.write_bytes(full[: len(full) // 2])
    for q in ({"needles": ("synthesis_start",)},
              {"since": "2024-06-12 00:00:30,000", "until": "2024-06-12 00:09:00,000"}):
        alone = _run(d, monkeypatch, False, use_index=False, **q)
        forked = _run(d, monkeypatch, True, use_index=False, **q)
        assert forked == alone
        assert len(forked[2]) == 1 and "app.log.3.gz" in forked[2][0][0]


def test_several_hosts_each_read_by_a_child_merge_as_when_read_in_the_caller(
        tmp_path, monkeypatch):
    """Two streams merged by time: the second child is forked while the first runs."""
    a = _write(tmp_path / "host-a", 3000, start=1718150400.0)
    b = _write(tmp_path / "host-b", 3000, start=1718150400.1, prefix="tb_")
    got = {}
    for fork in (False, True):
        monkeypatch.delenv("TTSOPS_LOGS_WORKERS", raising=False)
        monkeypatch.setattr(scan, "FORK_BYTES", 0 if fork else 1 << 60)
        monkeypatch.setattr(forkread, "spare_cpu", lambda: True)
        monkeypatch.setattr(forkread, "_threads", lambda: 1)  # (the test process's pools)
        pids = _forks(monkeypatch)
        with open_snapshot([a, b]) as snap:
            got[fork] = [(r.ts, r.fields["id"]) for r in Scan(
                snap, Query(needles=("synthesis_start",), use_index=False)).records()]
        assert len(pids) == (2 if fork else 0)
    assert got[True] == got[False] and len(got[True]) == 6000


def _units(d, q: Query):
    snap = open_snapshot([d])
    sc = Scan(snap, q)
    return snap, sc.units(snap.stream_files(0))


def test_an_error_in_the_child_is_raised_in_the_caller(tmp_path):
    d = _write(tmp_path, 3000)
    snap, units = _units(d, Query(needles=("synthesis_start",), use_index=False))

    def select(chunk: bytes) -> list[str]:
        raise ValueError(f"no good: {len(chunk) > 0}")
    with snap, pytest.raises(ValueError, match="no good: True"):
        list(forkread.items(units, select))


def test_a_consumer_that_stops_early_leaves_no_child(tmp_path, monkeypatch):
    d = _write(tmp_path, 3000)
    q = Query(needles=("synthesis_start",), use_index=False)
    snap, units = _units(d, q)
    pids = _forks(monkeypatch)
    with snap:
        it = forkread.items(units, Select(q, b""))
        unit, lines = next(it)
        assert lines and unit is units[0]
        it.close()
    assert len(pids) == 1
    with pytest.raises(ChildProcessError):  # killed and waited for
        os.waitpid(pids[0], os.WNOHANG)


def test_the_child_hands_a_run_of_lines_over_undecoded_and_the_caller_finishes_it(tmp_path):
    """``Select.raw`` in the child, ``Select.finish`` in the caller: what ``Select`` hands
    out in one process, chunk by chunk (a window whose chunks are cut to runs of lines)."""
    d = _write(tmp_path, 3000)
    since, until = "2024-06-12 00:02:00,000", "2024-06-12 00:07:30,000"
    q = Query(since, until, use_index=False)
    sel = Select(q, common_prefix(since, until))
    snap, units = _units(d, q)
    with snap:
        want = [(u.key, sel(c)) for u in units for c in u.run(u)]
        want = [(k, lines) for k, lines in want if lines is not None]
        raws = [sel.raw(c) for u in units for c in u.run(u)]
    assert any(isinstance(r, tuple) for r in raws), "some chunk is handed over undecoded"
    snap, units = _units(d, q)
    with snap:
        got = [(u.key, lines) for u, lines in forkread.items(units, sel.raw, sel.finish)
               if lines is not None]
    assert [(k[1], x) for k, x in got] == [(k[1], x) for k, x in want] and want


@pytest.mark.parametrize("load", [(64.0, 1), (0.2, 64), (64.0, 64)])
def test_a_busy_machine_reads_in_the_caller(tmp_path, monkeypatch, load):
    """Busy on the minute's average, or right now: no child."""
    d = _write(tmp_path, 3000)
    monkeypatch.delenv("TTSOPS_LOGS_WORKERS", raising=False)
    monkeypatch.setattr(scan, "FORK_BYTES", 0)
    monkeypatch.setattr(forkread, "_load", lambda: load)
    assert not forkread.spare_cpu()
    pids = _forks(monkeypatch)
    with open_snapshot([d]) as snap:
        n = sum(1 for _ in Scan(snap, Query(needles=("synthesis_start",),
                                            use_index=False)).records())
    assert n == 3000 and not pids
    monkeypatch.setattr(forkread, "_load", lambda: (0.2, 1))
    assert forkread.spare_cpu() == (len(os.sched_getaffinity(0)) >= 2)


def test_a_real_time_process_has_a_cpu_whatever_the_load(monkeypatch):
    monkeypatch.setattr(forkread, "_load", lambda: (64.0, 64))
    monkeypatch.setattr(forkread.os, "sched_getscheduler", lambda pid: os.SCHED_FIFO)
    assert forkread.spare_cpu() == (len(os.sched_getaffinity(0)) >= 2)
    monkeypatch.setattr(forkread.os, "sched_getscheduler", lambda pid: os.SCHED_OTHER)
    assert not forkread.spare_cpu()


def test_the_load_is_read_from_the_system():
    load1, running = forkread._load()
    assert load1 >= 0 and running >= 1  # this process runs


def test_the_setting_keeps_the_threads(tmp_path, monkeypatch):
    """``TTSOPS_LOGS_WORKERS`` says how many threads read: no child then."""
    d = _write(tmp_path, 3000)
    monkeypatch.setenv("TTSOPS_LOGS_WORKERS", "2")
    monkeypatch.setattr(scan, "FORK_BYTES", 0)
    monkeypatch.setattr(forkread, "spare_cpu", lambda: True)
    monkeypatch.setattr(forkread, "_threads", lambda: 1)  # (the test process has pools)
    pids = _forks(monkeypatch)
    with open_snapshot([d]) as snap:
        n = sum(1 for _ in Scan(snap, Query(needles=("synthesis_start",),
                                            use_index=False)).records())
    assert n == 3000 and not pids


@pytest.mark.parametrize("tail", ["", "\n", "\n\n", "\n2024-06-12 15:00:00,000 - a - INFO - e: x=1",
                                  "\n\n2024-06-12 15:00:00,000 - a - INFO - e: x=1\n"])
def test_a_run_handed_over_undecoded_keeps_its_empty_lines(tail):
    """An empty line at the end of a run cut out of a chunk is a line of the run (kept,
    as ``window_lines`` keeps it); only the empty "line" after the chunk's final newline
    is none."""
    from ttsops.forensics.reading.match import window_lines

    since, until = "2024-06-12 14:00:00", "2024-06-12 15:00:00"
    buf = ("2024-06-12 13:59:59,999 - a - INFO - e: x=0\n"
           "2024-06-12 14:00:00,000 - a - INFO - e: x=1\n"
           "2024-06-12 14:30:00,000 - a - INFO - e: x=2" + tail).encode()
    flat = buf.decode().split("\n")
    if flat[-1] == "":
        flat.pop()
    sel = Select(Query(since, until), common_prefix(since, until))
    raw = sel.raw(buf)
    assert isinstance(raw, tuple)
    assert sel.finish(raw) == window_lines(flat, since, until) == sel(buf)


@pytest.fixture(scope="module")
def tutorial_day(tmp_path_factory):
    """Logs written the tutorial's way (plain stdlib ``logging``, gzip rotation, the
    incidents), unindexed."""
    from ..test_tutorial_acceptance import generate

    out = tmp_path_factory.mktemp("forkread") / "logs"
    return out, generate(out, "--seed", "5")


def test_the_tutorials_questions_answered_the_same_by_a_child(tutorial_day, monkeypatch):
    """window, trace, patterns and top on the tutorial's logs: the same JSON whether a
    child reads (forced here: any size, any load) or the caller does; trace, which has
    an id's few records to parse, never forks."""
    from ..forensics_helpers import entry_in_process

    d, truth = tutorial_day
    b = truth["incidents"]["burst"]
    sid = sorted(truth["sample_traces"])[0]
    files = ["--files", str(d / "app.log*")]
    asks = [["window", *files, "--since", b["start_ts"][:13] + ":00:00",
             "--until", b["end_ts"][:19], "--json", "--no-index"],
            ["trace", sid, *files, "--json", "--no-index"],
            ["patterns", *files, "--where", "status=failed", "--by", "text_len,error_code",
             "--json", "--no-index"],
            ["top", "errors", *files, "--json", "--no-index"]]
    monkeypatch.setattr(forkread, "spare_cpu", lambda: True)
    monkeypatch.setattr(forkread, "_threads", lambda: 1)  # (the test process has pools)
    for ask in asks:
        monkeypatch.setattr(scan, "FORK_BYTES", 1 << 60)
        alone = entry_in_process("logs", *ask, env={"TTSOPS_LOGS_WORKERS": "1"})
        monkeypatch.setattr(scan, "FORK_BYTES", 0)
        pids = _forks(monkeypatch)
        forked = entry_in_process("logs", *ask, env={"TTSOPS_LOGS_WORKERS": None})
        assert (forked.returncode, forked.stdout) == (alone.returncode, alone.stdout), ask
        assert alone.returncode == 0 and alone.stdout.strip(), ask
        if ask[0] in ("window", "patterns"):  # trace: an id's few records, no child
            assert pids, f"{ask[0]} read through a child"
        if ask[0] == "trace":
            assert not pids, "trace parses little: no child"


def test_the_caller_reads_the_units_itself_while_the_child_does_not_come(tmp_path,
                                                                         monkeypatch):
    """The units are shared out as they come: a child held back (here until the caller
    has handed on every unit) leaves them all to the caller, which reads them in order
    with their own problems and counters; the answer is the one read in one process."""
    d = _write(tmp_path, 3000)
    q = Query(needles=("synthesis_start",), use_index=False)
    snap, units = _units(d, q)
    with snap:
        want = [(u.key[0].name, u.key[1], x) for u in units for c in u.run(u)
                if (x := Select(q, b"")(c)) is not None]
    gate_r, gate_w = os.pipe()
    real = forkread._child

    def held(units, select, claims, out):
        os.close(gate_w)
        os.read(gate_r, 1)  # the end of the stream: the caller closed its end
        real(units, select, claims, out)

    monkeypatch.setattr(forkread, "_child", held)
    snap, units = _units(d, q)
    counters = [u.state["counters"] for u in units]
    with snap:
        it = forkread.items(units, Select(q, b""))
        got = []
        ended = 0
        while ended < len(units):
            u, x = next(it)
            if x is None:
                ended += 1
            else:
                got.append((u.key[0].name, u.key[1], x))
        os.close(gate_w)
        os.close(gate_r)
        assert next(it, None) is None
    assert got == want and want
    assert all(u.state["counters"] is c for u, c in zip(units, counters, strict=True))


def test_units_are_taken_once_from_either_end_and_a_dead_holder_lets_go():
    import fcntl

    claims = forkread._Claims(7)
    try:
        got = [claims.take(front=True), claims.take(front=False), claims.take(front=False)]
        pid = os.fork()
        if pid == 0:  # takes the lock and dies holding it
            fcntl.lockf(claims.fd, fcntl.LOCK_EX)
            os._exit(0)
        os.waitpid(pid, 0)
        while (i := claims.take(front=len(got) % 2 == 0)) is not None:
            got.append(i)
        assert got[:3] == [0, 6, 5] and sorted(got) == list(range(7))
    finally:
        os.close(claims.fd)
    empty = forkread._Claims(0)
    assert empty.take(front=True) is None and empty.take(front=False) is None
    os.close(empty.fd)


def test_no_fork_beside_native_threads():
    """Polars' pool (started by its import) is invisible to ``threading``; a fork beside
    it could leave the child waiting on a lock one of its threads held. A fresh
    interpreter: available before Polars, not after (the old check said yes to both)."""
    code = ("import os, threading\n"
            "from ttsops.forensics.reading import forkread\n"
            "before = forkread.available()\n"
            "import polars as pl\n"
            "pl.DataFrame({'a': list(range(1000))}).select(pl.col('a').sum())\n"
            "print(before, forkread.available(), threading.active_count(),"
            " len(os.listdir('/proc/self/task')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "POLARS_MAX_THREADS": "2"}).stdout
    before, after, py_threads, os_threads = out.split()
    assert (py_threads, before) == ("1", "True")
    assert int(os_threads) > 1, "Polars started threads of its own"
    assert after == "False"

