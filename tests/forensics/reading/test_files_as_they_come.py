"""Logs as other tools leave them: logrotate's names, uncompressed rotated files, files
whose names lie about their order, byte-identical copies, standard input, local time,
special files in the log directory, several processes rotating one file. The logs are
written by plain stdlib ``logging`` (``stdlib_logs``), not by ttsops."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys

from ttsops.forensics.reading.sources import open_snapshot

from .. import stdlib_logs as sl
from ..forensics_helpers import cli, cli_json


def _window(*args: str) -> dict:
    return cli_json("window", *args)


def _gz_files(d):
    return sorted(d.glob("app.log.*.gz"), key=lambda p: int(p.name.split(".")[2]))


def test_dateext_names_are_read_and_ordered_by_content_not_name(tmp_path):
    d = tmp_path / "logs"
    ids = sl.write_day(d, requests=400)
    rotated = _gz_files(d)  # app.log.1.gz (newest) ... app.log.N.gz (oldest)
    assert len(rotated) >= 5
    # logrotate's dateext names, dated so that name order is the reverse of time order
    for i, p in enumerate(rotated):
        p.rename(d / f"app.log-202406{10 + i:02d}.gz")
    rep = _window("--dir", str(d))
    assert rep["summary"]["files read"] == len(rotated) + 1
    assert rep["summary"]["syntheses started"] == len(ids)
    with open_snapshot([d]) as snap:
        heads = [f.head_ts for f in snap.files]
    assert heads == sorted(heads)
    # ordered by content, the check sees no step back in time
    chk = cli_json("check", "--dir", str(d))
    mono = next(i for i in chk["items"] if i["name"] == "monotonic")
    assert mono["status"] == "pass" and mono["bad"] == 0
    # a trace spans the files in time order
    tr = cli_json("trace", ids[len(ids) // 2], "--dir", str(d))
    ts = [r["ts"] for r in tr["records"]]
    assert ts == sorted(ts) and len(ts) == 7


def test_uncompressed_rotated_files_are_read(tmp_path):
    d = tmp_path / "logs"
    ids = sl.write_day(d, requests=300, gz=False)
    assert (d / "app.log.1").exists() and (d / "app.log.3").exists()
    rep = _window("--dir", str(d))
    assert rep["summary"]["syntheses started"] == len(ids)
    assert rep["summary"]["completed"].startswith(f"{len(ids)} ")


def test_byte_identical_files_are_read_once_and_reported(tmp_path):
    d = tmp_path / "logs"
    ids = sl.write_day(d, requests=300)
    rotated = _gz_files(d)
    shutil.copy(rotated[1], d / f"app.log.{len(rotated) + 1}.gz")
    code, out, err = cli("window", "--dir", str(d), "--json")
    assert code == 0, err
    assert json.loads(out)["summary"]["syntheses started"] == len(ids)
    assert "byte-identical" in err and rotated[1].name in err
    # a trace of an id in the copied file returns each record once
    with gzip.open(rotated[1], "rt") as fh:
        sid = next(ln.split("id=")[1].split(",")[0] for ln in fh if "synthesis_start" in ln)
    tr = cli_json("trace", sid, "--dir", str(d))
    lines = [(r["ts"], r["event"], r["fields"].get("stage")) for r in tr["records"]]
    assert len(lines) == len(set(lines)) == 7
    chk = cli_json("check", "--dir", str(d))
    dup = next(i for i in chk["items"] if i["name"] == "duplicate_files")
    assert dup["status"] == "FAIL" and dup["bad"] == 1


def _run(args: list[str], data: bytes, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ttsops", "logs", *args], input=data,
                          capture_output=True, timeout=timeout)


def test_standard_input_plain_and_gzip(tmp_path):
    d = tmp_path / "logs"
    ids = sl.write_day(d, requests=300)
    files = [*reversed(_gz_files(d))]
    gz_bytes = b"".join(p.read_bytes() for p in files)  # `cat app.log.*.gz |`
    text = b"".join(gzip.decompress(p.read_bytes()) for p in files) + \
        (d / "app.log").read_bytes()
    n_rot = sum(gzip.decompress(p.read_bytes()).count(b"synthesis_start") for p in files)
    for data, want in ((gz_bytes, n_rot), (text, len(ids))):
        res = _run(["window", "--files", "-", "--json"], data)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["summary"]["syntheses started"] == want
    # with other files: stdin is one more stream, merged by time
    res = _run(["window", "--files", "-", "--files", str(d / "app.log"), "--json"], gz_bytes)
    assert json.loads(res.stdout)["summary"]["syntheses started"] == len(ids)
    # damaged gzip on stdin: answered from the readable part, exit 3
    res = _run(["window", "--files", "-"], gz_bytes[: len(gz_bytes) // 2])
    assert res.returncode == 3 and b"Traceback" not in res.stderr
    assert b"<stdin>" in res.stderr


def test_stdin_named_twice_is_a_usage_error():
    res = _run(["window", "--files", "-", "--files", "-"], b"")
    assert res.returncode == 2 and res.stderr.count(b"\n") == 1


def test_tz_finds_logs_written_in_local_time(tmp_path):
    d = tmp_path / "logs"
    # a server at UTC+8 writing asctime in local time: 2024-06-12 08:00 local = 00:00Z
    ids = sl.write_day(d, requests=240, every_s=60.0, offset_h=8)
    with gzip.open(_gz_files(d)[-1], "rt") as fh:
        assert fh.readline().startswith("2024-06-12 08:00")
    for args in (["--since", "2024-06-12T10:00+08:00", "--until", "2024-06-12T11:00+08:00"],
                 ["--since", "2024-06-12 10:00", "--until", "2024-06-12 11:00", "--tz",
                  "+08:00"],
                 ["--since", "2024-06-12T02:00Z", "--until", "2024-06-12T03:00Z", "--tz",
                  "Asia/Shanghai"],
                 ["--since", "2024-06-12T10:00+08:00", "--until", "2024-06-12T11:00+08:00",
                  "--tz", "+0800"]):
        if "--tz" not in args:
            # without --tz the zone-qualified time is read as UTC: nothing there
            rep = _window("--dir", str(d), *args)
            assert rep["summary"].get("syntheses started", 0) == 0
            continue
        rep = _window("--dir", str(d), *args)
        assert rep["summary"]["syntheses started"] == 60, args
    assert len(ids) == 240
    code, _out, err = cli("window", "--dir", str(d), "--tz", "Mars/Olympus")
    assert code == 2 and "not a time zone" in err and err.count("\n") == 1


def test_fifo_socket_in_log_dir_are_skipped_never_opened(tmp_path):
    d = tmp_path / "logs"
    ids = sl.write_day(d, requests=300)
    n_live = (d / "app.log").read_bytes().count(b"synthesis_start")
    (d / "app.log").unlink()
    os.mkfifo(d / "app.log")  # nobody writes it: opening it for reading would block
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "app.log.0"))
    try:
        res = subprocess.run([sys.executable, "-m", "ttsops", "logs", "window", "--dir",
                              str(d), "--json"], capture_output=True, text=True, timeout=60)
    finally:
        sock.close()
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["summary"]["syntheses started"] == len(ids) - n_live
    assert "FIFO" in res.stderr and "socket" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_fifo_named_on_the_command_line_is_read_like_a_pipe(tmp_path):
    d = tmp_path / "logs"
    sl.write_day(d, requests=50, max_bytes=0)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "ttsops", "logs", "window", "--files",
                             str(fifo), "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    with open(fifo, "wb") as w:  # like <(cat app.log)
        w.write((d / "app.log").read_bytes())
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["summary"]["syntheses started"] == 50


def test_check_lists_every_never_completed_id(tmp_path):
    d = tmp_path / "logs"
    lost = frozenset(range(20, 380, 30))  # 12 syntheses that never complete
    ids = sl.write_day(d, requests=400, incomplete=lost)
    want = sorted(ids[i] for i in lost)
    out = tmp_path / "nc.txt"
    code, _o, err = cli("check", "--dir", str(d), "--ids-out", str(out))
    assert code == 1, err
    assert out.read_text().split() == want
    rep = cli_json("check", "--dir", str(d))
    assert rep["never_completed"] == want
    item = next(i for i in rep["items"] if i["name"] == "start_has_complete")
    assert item["bad"] == 12 and len(item["examples"]) == 3
    code, out_s, err = cli("check", "--dir", str(d), "--ids-out", "-")
    assert out_s.split() == want and "logging contract" in err
    code, _o, err = cli("check", "--dir", str(d), "--ids-out", str(tmp_path / "no" / "x"))
    assert code == 2 and err.count("\n") == 1


def test_one_writer_passes_the_multi_writer_items(tmp_path):
    d = tmp_path / "logs"
    sl.write_day(d, requests=400)
    rep = cli_json("check", "--dir", str(d))
    items = {i["name"]: i for i in rep["items"]}
    for name in ("duplicate_files", "file_overlap", "split_ids"):
        assert items[name]["status"] == "pass", items[name]
        assert items[name]["checked"] > 0
    assert not any("several processes" in t for t in rep.get("text", []))


def test_several_processes_rotating_one_file_are_named(tmp_path):
    d = tmp_path / "logs"
    written = sl.multi_writer(d, writers=3, per_writer=600, max_bytes=30_000)
    code, out, _err = cli("check", "--dir", str(d))
    assert code == 1
    rep = cli_json("check", "--dir", str(d))
    items = {i["name"]: i for i in rep["items"]}
    bad = [n for n in ("duplicate_files", "file_overlap", "split_ids") if items[n]["bad"]]
    assert bad, items
    assert "several processes appear to write and rotate the same log file" in out
    assert "QueueHandler" in out and "likely lost" in out
    # records were lost: fewer starts seen than the processes wrote
    seen = _window("--dir", str(d))["summary"]["syntheses started"]
    assert seen < len(written)


def test_shared_file_writers_deterministic_damage_is_named(tmp_path):
    # three handlers on one file, taking turns (no scheduling races): the first file is
    # appended by all three (records out of order), later files are rotated early
    d = tmp_path / "logs"
    written = sl.shared_file_writers(d, every_s=0.5)
    rep = cli_json("check", "--dir", str(d))
    items = {i["name"]: i for i in rep["items"]}
    assert items["interleaving"]["status"] == "FAIL"
    assert "records are earlier than the record before them" in \
        items["interleaving"]["examples"][0]
    assert items["rotation_sizes"]["status"] == "FAIL"
    assert items["rotation_sizes"]["bad"] >= 2
    seen = _window("--dir", str(d))["summary"]["syntheses started"]
    assert seen < len(written)
    # the same requests through one handler: every item passes
    one = tmp_path / "one"
    sl.write_day(one, requests=900, every_s=1.0, max_bytes=40_000)
    items = {i["name"]: i for i in cli_json("check", "--dir", str(one))["items"]}
    for name in ("interleaving", "rotation_sizes", "file_overlap", "duplicate_files",
                 "split_ids"):
        assert items[name]["status"] == "pass", items[name]


def test_tail_refuses_a_fifo_named_app_log(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    os.mkfifo(d / "app.log")
    res = subprocess.run([sys.executable, "-m", "ttsops", "logs", "tail", "--dir", str(d),
                          "--for", "0s"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    assert "FIFO" in res.stderr and res.stderr.count("\n") == 1


def test_files_of_one_size_that_differ_only_inside_are_both_read(tmp_path):
    """Equal size, equal first and last bytes, one byte apart in the middle: not
    duplicates; a true copy among them is."""
    from ttsops.forensics.reading.sources import drop_duplicates, open_snapshot

    body = bytearray(b"x" * 20000)
    a = tmp_path / "a.log"
    b = tmp_path / "b.log"
    c = tmp_path / "c.log"
    a.write_bytes(bytes(body))
    body[10000] = ord("y")
    b.write_bytes(bytes(body))
    c.write_bytes(a.read_bytes())
    snap = open_snapshot([], [str(a), str(b), str(c)], use_index=False)
    try:
        names = sorted(f.name for f in snap.files)
        assert names == ["a.log", "b.log"] or names == ["b.log", "c.log"]
        assert len(snap.duplicates) == 1
        kept, pairs = drop_duplicates(list(snap.files))
        assert len(kept) == 2 and pairs == []
    finally:
        snap.close()
