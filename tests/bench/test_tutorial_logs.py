"""bench/tutorial_logs.py: the independent tutorial-style log generator is stdlib only,
deterministic, writes what its truth file says (checked by re-reading the files with
plain zcat-like code here, not with ttsops), and --writers really damages the logs."""

from __future__ import annotations

import ast
import gzip
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "bench" / "tutorial_logs.py"
HEAD = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - (\S+) - ([A-Z]+) - (.*)\Z")
STAGES = ("text_normalize", "llm_prompt_gen", "llm_inference", "llm_postproc", "audio_render")
ID = re.compile(r"id=(ts_[0-9a-f]{8})")


def generate(out: Path, *args: str) -> dict:
    """Run the generator with ``-S`` (no site-packages: ttsops cannot be imported)."""
    res = subprocess.run([sys.executable, "-S", str(GEN), str(out), *args],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads((out.parent / f"{out.name}.truth.json").read_text(encoding="utf-8"))


def text_of(p: Path) -> str:
    data = p.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def files_of(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.name.startswith("app.log"))


def _first_ts(text: str) -> str:
    m = re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}|\"(?:asctime|timestamp)\": \"([^\"]+)",
                  text, re.M)
    return (m.group(1) or m.group(0)) if m else ""


def lines_of(d: Path, dedup: bool = False) -> list[str]:
    """Every line of every file, the files in the time order of their first record."""
    out: list[str] = []
    seen: set[str] = set()
    for t in sorted((text_of(p) for p in files_of(d)), key=_first_ts):
        if dedup and t in seen:
            continue
        seen.add(t)
        out.extend(t.splitlines())
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("gen") / "small"
    return out, generate(out, "--size", "small", "--seed", "3")


def test_imports_nothing_but_the_standard_library():
    tree = ast.parse(GEN.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    assert roots, "no imports found: the scan is broken"
    assert roots <= set(sys.stdlib_module_names), roots - set(sys.stdlib_module_names)
    # and the -S runs of every fixture here really cannot see ttsops
    res = subprocess.run([sys.executable, "-S", "-c", "import ttsops"], capture_output=True,
                         text=True)
    assert res.returncode != 0 and "ModuleNotFoundError" in res.stderr


def test_deterministic_for_a_seed(tmp_path):
    a = generate(tmp_path / "a", "--size", "small", "--seed", "5")
    b = generate(tmp_path / "b", "--size", "small", "--seed", "5")
    c = generate(tmp_path / "c", "--size", "small", "--seed", "6")
    for t in (a, b, c):
        t["generator"].pop("elapsed_s")
    assert a == b
    fa, fb = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert [p.name for p in fa] == [p.name for p in fb]
    for x, y in zip(fa, fb, strict=True):
        assert x.read_bytes() == y.read_bytes(), x.name  # gzip headers carry simulated time
    assert a["files"] != c["files"] and a["never_completed_ids"] != c["never_completed_ids"]


def test_truth_counts_equal_a_plain_reread(small):
    d, truth = small
    lines = lines_of(d)
    heads = [m for m in map(HEAD.match, lines) if m]
    assert len(lines) == truth["physical_lines"]
    assert len(heads) == truth["log_records"]
    assert len(lines) - len(heads) == truth["traceback_lines"] + truth["malformed_lines"]
    assert sum(1 for x in lines if x.startswith("Traceback (most recent")) >= truth["tracebacks"]
    for m in truth["malformed_examples"]:
        assert m in lines
    assert Counter(m.group(3) for m in heads) == truth["levels"]
    assert {"WARN", "FATAL", "CRITICAL", "WARNING"} <= set(truth["levels"])
    errs, warns, failed = Counter(), Counter(), Counter()
    for m in heads:
        lvl, msg = m.group(3), m.group(4)
        c = re.search(r"(?:error_code|warning_code)=([A-Z0-9_]+)", msg)
        if c and lvl in ("ERROR", "CRITICAL", "FATAL"):
            errs[c.group(1)] += 1
        elif c and lvl in ("WARNING", "WARN"):
            warns[c.group(1)] += 1
        if msg.startswith("synthesis_complete:") and "status=failed" in msg:
            failed[c.group(1)] += 1
    assert errs == truth["error_codes"] and warns == truth["warning_codes"]
    assert failed == truth["failed_by_code"]
    started = [ID.search(m.group(4)).group(1) for m in heads
               if m.group(4).startswith("synthesis_start:")]
    done = {ID.search(m.group(4)).group(1) for m in heads
            if m.group(4).startswith("synthesis_complete:")}
    assert len(started) == len(set(started)) == truth["requests"]["started"]
    assert sorted(set(started) - done) == truth["never_completed_ids"]
    assert len(truth["never_completed_ids"]) == truth["requests"]["never_completed"] >= 10


def _stage_values(heads) -> tuple[dict, dict, dict]:
    start_hour: dict[str, str] = {}
    cum: dict[str, list[tuple[str, int]]] = defaultdict(list)
    e2e: dict[str, int] = {}
    for m in heads:
        msg = m.group(4)
        if msg.startswith("synthesis_start:"):
            start_hour[ID.search(msg).group(1)] = m.group(1)[:13]
        elif msg.startswith("stage_time:"):
            st = re.search(r"stage=(\w+), id=(ts_\w+), duration_ms=(\d+)\Z", msg)
            cum[st.group(2)].append((st.group(1), int(st.group(3))))
        elif msg.startswith("synthesis_complete:"):
            e2e[ID.search(msg).group(1)] = int(re.search(r"duration_ms=(\d+)", msg).group(1))
    return start_hour, cum, e2e


def test_stage_time_is_cumulative_and_truth_is_its_differences(small):
    d, truth = small
    heads = [m for m in map(HEAD.match, lines_of(d)) if m]
    start_hour, cum, e2e = _stage_values(heads)
    per: dict[str, list[int]] = defaultdict(list)
    hourly: dict[tuple[str, str], list[int]] = defaultdict(list)
    for rid, vals in cum.items():
        assert [s for s, _v in vals] == list(STAGES[:len(vals)])
        ms = [v for _s, v in vals]
        assert ms == sorted(ms)  # cumulative: never decreasing
        if rid in e2e and len(ms) == 5:
            assert 0 <= e2e[rid] - ms[-1] <= 10  # ends near end to end
        prev = 0
        for (s, v) in vals:
            per[s].append(v - prev)
            hourly[(start_hour[rid], s)].append(v - prev)
            prev = v
    for s in STAGES:
        want = truth["stages"]["overall"][s]
        got = np.percentile(per[s], [50, 95, 99])
        assert len(per[s]) == want["n"]
        assert list(got) == pytest.approx([want["p50"], want["p95"], want["p99"]], abs=1e-6)
    slow = truth["incidents"]["slow_stage"]
    assert slow["stage"] == "llm_inference"
    vals = hourly[(slow["hour"], slow["stage"])]
    assert np.percentile(vals, 50) == pytest.approx(slow["p50_in_hour"])
    assert slow["p50_in_hour"] > 3 * slow["p50_overall"]
    # the cumulative values themselves would blame the last stage
    assert truth["stages"]["overall"]["audio_render"]["p50"] < 60
    assert sum(v["share"] for v in truth["stages"]["overall"].values()) <= 1.0


def test_the_dialect_and_the_incidents_are_in_the_files(small):
    d, truth = small
    lines = lines_of(d)
    heads = [m for m in map(HEAD.match, lines) if m]
    # free text after the code, and the unit after text_len
    failed = [m.group(4) for m in heads if m.group(4).startswith("synthesis_failed:")]
    assert failed and all(re.search(r"error_code=[A-Z_]+, [A-Z][A-Za-z]", x) for x in failed)
    assert any("text_len=2048 chars" in m.group(4) for m in heads)
    assert sum(1 for m in heads if re.fullmatch(r"total_duration_ms=\d+", m.group(4))) > 100
    # cache_health only above 85%, and the last one hours before the end
    health = [(m.group(1), float(re.search(r"usage=([\d.]+)%", m.group(4)).group(1)))
              for m in heads if m.group(4).startswith("cache_health:")]
    assert health and all(u > 85 for _t, u in health)
    cache = truth["incidents"]["cache"]
    assert health[-1][0] == cache["last_cache_health_ts"] and cache["age_at_end_s"] > 10 * 3600
    # the burst: DISK_FULL only inside its window, preceded by cache_dir_usage warnings
    b = truth["incidents"]["burst"]
    disk = [m.group(1) for m in heads if m.group(3) == "ERROR" and "=DISK_FULL" in m.group(4)]
    assert len(disk) == b["errors"] == b["errors_in_window"] >= 20
    assert all(b["start_ts"] <= t < b["end_ts"] for t in disk)
    usage = [m.group(1) for m in heads if m.group(4).startswith("cache_dir_usage:")]
    assert usage[0] < b["start_ts"] and b["precursors"][0]["first_ts"] == usage[0]
    # the background trickle of two client-error codes: steady, hour after hour
    for bg in truth["incidents"]["background"]:
        ts = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f") for m in heads
              if m.group(3) == "ERROR" and f"={bg['code']}," in m.group(4)]
        assert len(ts) == bg["count"] > 50
        per_hour = Counter(t.replace(minute=0, second=0, microsecond=0) for t in ts)
        assert max(per_hour.values()) <= 3 * bg["per_hour"]  # steady, never a burst
    # the failing length: every 2048-char request fails with SCIPY_FFT_INVALID
    fl = truth["incidents"]["failing_length"]
    ends = [m.group(4) for m in heads if m.group(4).startswith("synthesis_complete:")
            and "text_len=2048 chars" in m.group(4)]
    assert len(ends) == fl["requests"] == fl["failed"] > 0
    assert all("status=failed" in x and "error_code=SCIPY_FFT_INVALID" in x
               and "model_stage=llm_postproc" in x for x in ends)
    # muffled audio: the nova ids with a low spectral centroid
    voice = {ID.search(m.group(4)).group(1): re.search(r"voice=(\w+)", m.group(4)).group(1)
             for m in heads if m.group(4).startswith("synthesis_start:")}
    low = sorted(ID.search(m.group(4)).group(1) for m in heads
                 if m.group(4).startswith("audio_metrics:")
                 and int(re.search(r"spectral_centroid=(-?\d+)", m.group(4)).group(1)) < 1500
                 and voice[ID.search(m.group(4)).group(1)] == "nova")
    assert low == truth["incidents"]["audio"]["ids"] and len(low) >= 5
    # sample traces: what grep finds
    for rid, s in truth["sample_traces"].items():
        assert sum(1 for m in heads if rid in m.group(4)) == s["records"], s["kind"]
    # the end of app.log: a record with a traceback, then the last record
    tail = text_of(d / "app.log").splitlines()
    assert HEAD.match(tail[-1]).group(1) == truth["tail"][-1]["ts"]
    tb = truth["tail"][-2]["traceback_lines"]
    assert tb > 0 and HEAD.match(tail[-2 - tb]).group(1) == truth["tail"][-2]["ts"]


def test_rotation_is_the_cookbook_gzip_recipe(small):
    d, truth = small
    names = [p.name for p in files_of(d)]
    assert "app.log" in names and len(names) == truth["n_files"] >= 4
    for p in files_of(d):
        if p.name != "app.log":
            assert re.fullmatch(r"app\.log\.\d+\.gz", p.name)
            assert p.read_bytes()[:2] == b"\x1f\x8b"
            with gzip.open(p) as f:  # one whole-file gzip member per file
                assert f.read()
    # numbered newest first: app.log.1.gz follows app.log.2.gz in time
    by = {f["name"]: f for f in truth["files"]}
    assert by["app.log.2.gz"]["last_ts"] <= by["app.log.1.gz"]["first_ts"]
    assert [f["name"] for f in truth["files"]][-1] == "app.log"


def test_several_writers_really_damage_the_log(tmp_path):
    truth = generate(tmp_path / "w", "--size", "small", "--writers", "3", "--seed", "3")
    w = truth["writers"]
    assert w["n"] == 3 and len(w["per_process"]) == 3
    assert all(p["records"] > 1000 for p in w["per_process"])
    assert w["lost_records"] > 0.1 * truth["records"]
    # what the files hold (byte-identical files once) is what the truth says survived
    heads = [m for m in map(HEAD.match, lines_of(tmp_path / "w", dedup=True)) if m]
    assert len(heads) == sum(w["survived"]["levels"].values())
    assert Counter(m.group(3) for m in heads) == w["survived"]["levels"]
    assert sum(w["survived"]["levels"].values()) < truth["log_records"]
    # the processes' own rotations leave tiny files and files overlapping in time
    sizes = sorted(f["text_bytes"] for f in truth["files"])
    assert sizes[0] < 0.2 * truth["generator"]["max_bytes"] or w["duplicate_files"]
    for group in w["duplicate_files"]:
        shas = {f["sha256"] for f in truth["files"] if f["name"] in group}
        assert len(shas) == 1


def test_json_variants(tmp_path):
    for kind, keys, tz in (("stdlib", {"asctime", "name", "levelname", "message"}, None),
                           ("structlog", {"event", "level", "logger", "timestamp"}, "+08:00")):
        out = tmp_path / kind
        truth = generate(out, "--size", "small", "--json", kind,
                         *(["--tz", tz] if tz else []))
        objs, other = [], []
        for line in lines_of(out):
            try:
                objs.append(json.loads(line))
            except ValueError:
                other.append(line)
        assert len(objs) == truth["log_records"] and len(other) == truth["malformed_lines"]
        assert truth["traceback_lines"] == 0 and truth["tracebacks"] > 0
        extra = {"exc_info"} if kind == "stdlib" else {"exception"}
        assert all(keys <= set(o) <= keys | extra for o in objs)
        assert sum(1 for o in objs if set(o) & extra) == truth["tracebacks"]
        if kind == "stdlib":
            assert Counter(o["levelname"] for o in objs) == truth["levels"]
        else:
            assert all(o["timestamp"].endswith("+08:00") for o in objs)
            assert Counter(o["level"] for o in objs) == {k.lower(): v for k, v in
                                                         truth["levels"].items()}


def test_tz_writes_local_time(tmp_path):
    truth = generate(tmp_path / "tz", "--size", "small", "--tz", "+08:00")
    tr = truth["time_range"]
    local = datetime.strptime(tr["first_ts"], "%Y-%m-%d %H:%M:%S,%f")
    utc = datetime.strptime(tr["first_utc"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert local - utc == timedelta(hours=8)
    assert tr["first_ts"].startswith("2024-06-12 00:00")  # the local day
    first = HEAD.match(lines_of(tmp_path / "tz")[0])
    assert first.group(1) == tr["first_ts"]


def test_dateext_names(tmp_path):
    out = tmp_path / "dx"
    truth = generate(out, "--size", "small", "--days", "3", "--names", "dateext")
    names = sorted(p.name for p in files_of(out))
    assert names == ["app.log", "app.log-20240613.gz", "app.log-20240614.gz",
                     "app.log-20240615.gz"]
    for p in files_of(out):
        if p.name == "app.log":
            continue
        day = date(int(p.name[8:12]), int(p.name[12:14]), int(p.name[14:16]))
        stamps = {m.group(1)[:10] for m in map(HEAD.match, text_of(p).splitlines()) if m}
        assert stamps == {str(day - timedelta(days=1))}  # logrotate names by its run day
    heads = [m for m in map(HEAD.match, lines_of(out)) if m]
    assert len(heads) == truth["log_records"]


def test_plain_numbered_names(tmp_path):
    out = tmp_path / "pl"
    truth = generate(out, "--size", "small", "--names", "plain")
    for p in files_of(out):
        assert re.fullmatch(r"app\.log(\.\d+)?", p.name) and p.read_bytes()[:2] != b"\x1f\x8b"
    assert len(files_of(out)) == truth["n_files"] >= 4


def test_bad_arguments_are_one_line(tmp_path):
    for args in (["--tz", "8 hours"], ["--size", "year"], ["--writers", "0"]):
        res = subprocess.run([sys.executable, "-S", str(GEN), str(tmp_path / "x"), *args],
                             capture_output=True, text=True)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr


def test_days_written_in_parallel_are_the_same_log(tmp_path):
    """--jobs writes each day in its own process; only the rotation points may differ."""
    one = generate(tmp_path / "one", "--size", "small", "--days", "3", "--jobs", "1")
    two = generate(tmp_path / "two", "--size", "small", "--days", "3", "--jobs", "2")
    assert "\n".join(lines_of(tmp_path / "one")) == "\n".join(lines_of(tmp_path / "two"))
    for t in (one, two):
        for k in ("generator", "files", "n_files", "text_bytes"):
            t.pop(k)
    assert one == two
    names = sorted(p.name for p in files_of(tmp_path / "two"))
    assert "app.log" in names and all(re.fullmatch(r"app\.log(\.\d+\.gz)?", n) for n in names)
