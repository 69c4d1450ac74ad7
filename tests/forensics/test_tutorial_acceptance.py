"""Issue 14's acceptance: every ``ttsops logs`` command is right on logs written the
tutorial's way by code that is not ttsops.

The logs come from ``bench/tutorial_logs.py`` (plain stdlib ``logging``, the cookbook's
gzip rotation, the tutorial's own message code, injected incidents), generated once per
session; each answer (``--json``, through the ``ttsops`` console script's function, in
this process; the installed script itself where the process matters: exit status,
stderr, standard input, tail) is compared with the generator's ``truth.json``: codes
exact, per-stage times within 3%, the burst a critical or high finding with its
precursor, the slow stage named for its hour, no stale-gauge alarm, every never-completed
id listed, WARN/FATAL counted, logrotate's dateext names read, several writers' damage
reported, JSON lines and local-time logs read.

Where an answer's shape leaves a choice (a stage time over every stage_time record, or
only over the ids that completed), the truth carries each defensible population and the
answer must be within 3% of one of them.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ttsops.errors import REGISTRY

from .forensics_helpers import entry_in_process

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "bench" / "tutorial_logs.py"
STAGES = ("text_normalize", "llm_prompt_gen", "llm_inference", "llm_postproc", "audio_render")
ALIAS = {"WARN": "WARNING", "FATAL": "CRITICAL"}
HEAD = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - (\S+) - ([A-Z]+) - (.*)\Z")
TS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}")


def _ttsops_bin() -> str:
    exe = shutil.which("ttsops", path=str(Path(sys.executable).parent)) or shutil.which("ttsops")
    assert exe, "the ttsops console script is not installed in this environment"
    return exe


TTSOPS = _ttsops_bin()


# --- running the generator and ttsops ---------------------------------------------------


def generate(out: Path, *args: str) -> dict[str, Any]:
    res = subprocess.run([sys.executable, "-S", str(GEN), str(out), "--size", "small", *args],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads((out.parent / f"{out.name}.truth.json").read_text(encoding="utf-8"))


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([TTSOPS, "logs", *args], capture_output=True, input=stdin,
                          timeout=600)


def answer(*args: str, stdin: bytes | None = None) -> dict[str, Any]:
    """``ttsops logs ARGS --json``: answered (0, 1 or 3), no traceback, one JSON document.

    Taken in this process through the console script's own function (``ttsops.entry``,
    its click-free path included: ``entry_in_process``), which answers as the script in a
    subprocess without a Python start and the imports of each; with ``stdin``, from the
    script in a subprocess reading a real pipe. ``run`` (the subprocess) is what the
    tests of exit status, stderr and ``tail`` use."""
    if stdin is not None:
        res = run(*args, "--json", stdin=stdin)
        code, out, err = res.returncode, res.stdout.decode(), res.stderr.decode("utf-8", "replace")
    else:
        got = entry_in_process("logs", *args, "--json")
        code, out, err = got.returncode, got.stdout, got.stderr
    assert code in (0, 1, 3), f"exit {code}: {err.strip()[-600:]}"
    assert "Traceback (most recent call last)" not in err, err[-2000:]
    return json.loads(out)


def mismatches(pairs: list[tuple[str, Any, Any]]) -> list[str]:
    """(what, got, want) -> the lines that differ, so one test reports all of them."""
    return [f"{what}: got {got!r}, want {want!r}" for what, got, want in pairs if got != want]


def expect(bad: list[str]) -> None:
    """Fail with every mismatch, one per line."""
    assert not bad, "\n" + "\n".join(bad)


def canon_levels(levels: dict[str, int]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for k, v in levels.items():
        out[ALIAS.get(k.upper(), k.upper())] += v
    return dict(out)


def code_of(key: Any) -> str:
    """A code as the answer names it: 'DISK_FULL', '(cache_dir_usage)' -> 'cache_dir_usage'."""
    return str(key).strip("()").split(",")[0].strip()


def real_codes(d: dict[str, int]) -> dict[str, int]:
    """The registry-style codes of a count table (pseudo-keys like '(no code)' left out)."""
    return {k: v for k, v in d.items() if not str(k).startswith("(")}


def leading_number(v: Any) -> float | None:
    m = re.match(r"\s*(-?\d+(?:\.\d+)?)", str(v))
    return float(m.group(1)) if m else None


def within(got: float | None, want: float, rel: float = 0.03) -> bool:
    return got is not None and abs(got - want) <= rel * abs(want)


def stage_truths(truth: dict, stage: str, hour: str | None = None) -> list[dict]:
    """The truth's summaries of one stage over each defensible population."""
    st = truth["stages"]
    pops = [st, *st["populations"].values()]
    if hour is None:
        return [p["overall"][stage] for p in pops]
    return [p["per_hour"][hour][stage] for p in pops if hour in p["per_hour"]]


def texts_in_time_order(d: Path) -> list[str]:
    out = []
    for p in d.iterdir():
        if not p.name.startswith("app.log"):
            continue
        data = p.read_bytes()
        out.append((gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode())

    def first(t: str) -> str:
        m = TS.search(t)
        return m.group(0) if m else ""
    return sorted(out, key=first)


def findings_text(f: dict) -> str:
    return json.dumps(f, ensure_ascii=False)


# --- the logs (generated once) ------------------------------------------------------------


@pytest.fixture(scope="session")
def tut(tmp_path_factory) -> tuple[Path, dict]:
    """One day, the tutorial's way: gzip rotation, the incidents (seed 3)."""
    out = tmp_path_factory.mktemp("tutorial") / "logs"
    return out, generate(out, "--seed", "3")


@pytest.fixture(scope="session")
def writers(tmp_path_factory) -> tuple[Path, dict]:
    """Three processes, each with its own RotatingFileHandler on one app.log. Whether two
    rotated files come out byte-identical depends on the processes' timing: up to six
    seeds are tried for a run that has such files (the truth says which)."""
    root = tmp_path_factory.mktemp("writers")
    best = None
    for seed in range(1, 7):
        out = root / f"logs{seed}"
        truth = generate(out, "--writers", "3", "--seed", str(seed))
        best = (out, truth)
        if truth["writers"]["duplicate_files"]:
            break
    assert best is not None
    return best


@pytest.fixture(scope="session")
def dateext(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("dateext") / "logs"
    return out, generate(out, "--names", "dateext", "--days", "3", "--seed", "4")


@pytest.fixture(scope="session")
def json_stdlib(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("jsonstd") / "logs"
    return out, generate(out, "--json", "stdlib", "--seed", "3")


@pytest.fixture(scope="session")
def json_structlog(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("jsonsl") / "logs"
    return out, generate(out, "--json", "structlog", "--seed", "3")


@pytest.fixture(scope="session")
def local_time(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tz") / "logs"
    return out, generate(out, "--tz", "+08:00", "--seed", "3")


# --- window ---------------------------------------------------------------------------------


def _window_pairs(w: dict, truth: dict) -> list[tuple[str, Any, Any]]:
    return [
        ("records", w["records"], truth["log_records"]),
        ("levels (WARN/FATAL as WARNING/CRITICAL)", canon_levels(w["levels"]),
         truth["levels_canonical"]),
        ("error codes", real_codes(w["error_codes"]), truth["error_codes"]),
        ("warning codes", real_codes(w["warning_codes"]), truth["warning_codes"]),
        ("failure codes", w["failure_codes"], truth["failed_by_code"]),
        ("started", w["started"], truth["requests"]["started"]),
        ("complete", w["complete"], {"success": truth["requests"]["success"],
                                     "failed": truth["requests"]["failed"]}),
        ("unparsable lines", w["unparsable_lines"], truth["malformed_lines"]),
        ("first record", w["first"], truth["time_range"]["first_ts"]),
        ("last record", w["last"], truth["time_range"]["last_ts"]),
        ("files read", w["read"]["files"], truth["n_files"]),
    ]


def test_window_counts_everything_exactly(tut):
    d, truth = tut
    w = answer("window", "--dir", str(d))
    expect(mismatches(_window_pairs(w, truth)))


def test_window_of_the_burst(tut):
    d, truth = tut
    b = truth["incidents"]["burst"]
    w = answer("window", "--dir", str(d), "--since", b["start_ts"][:19],
               "--until", b["end_ts"][:19])
    expect(mismatches([
        ("DISK_FULL failures", w["failure_codes"].get("DISK_FULL"), b["errors_in_window"]),
        ("DISK_FULL error records", real_codes(w["error_codes"]).get("DISK_FULL"),
         b["errors_in_window"]),
    ]))


# --- trace ----------------------------------------------------------------------------------


def test_trace_each_sample_id(tut):
    d, truth = tut
    bad: list[str] = []
    for rid, s in truth["sample_traces"].items():
        t = answer("trace", rid, "--dir", str(d))
        recs = t["records"]
        bad += mismatches([(f"{s['kind']} {rid}: records", len(recs), s["records"])])
        for ev, tb in s["tracebacks"].items():
            got = [r["traceback"] for r in recs if r["event"] == ev]
            bad += mismatches([(f"{s['kind']} {rid}: {ev} traceback",
                                (len(got[0]), got[0][-1].strip()) if got and got[0] else None,
                                (tb["lines"], tb["last"]))])
        (tl,) = [x for x in t["timelines"] if x["id"] == rid]
        comps = {c["name"]: c for c in tl["components"] if c["name"] in STAGES}
        start = 0
        for stage, per in s["stage_time_per_stage"].items():
            c = comps.get(stage)
            got = (c["start_ms"], c["duration_ms"]) if c else None
            bad += mismatches([(f"{s['kind']} {rid}: {stage} (start, duration)", got,
                                (start, per))])
            start += per
    expect(bad)


# --- patterns -------------------------------------------------------------------------------


def test_patterns_find_the_failing_length(tut):
    d, truth = tut
    fl = truth["incidents"]["failing_length"]
    p = answer("patterns", "--dir", str(d), "--by", "text_len,error_code", "-w",
               "status=failed", "-n", "0")
    at_len = Counter()
    for g in p["groups"]:
        if leading_number(g["key"]["text_len"]) == fl["value"]:
            at_len[code_of(g["key"]["error_code"])] += g["count"]
    q = answer("patterns", "--dir", str(d), "-w", f"text_len>={fl['value']}", "--by",
               "status,error_code", "-n", "0")
    got = {(g["key"]["status"], code_of(g["key"]["error_code"])): g["count"]
           for g in q["groups"]}
    expect(mismatches([
        ("failures at the length", dict(at_len), {fl["code"]: fl["failed"]}),
        ("every synthesis at the length", got, {("failed", fl["code"]): fl["requests"]}),
    ]))


# --- top --------------------------------------------------------------------------------------


def test_top_errors_codes_exact(tut):
    d, truth = tut
    t = answer("top", "errors", "--dir", str(d), "-n", "0")
    codes = {c["code"]: c["count"] for c in t["codes"]}
    hints = {c["code"]: c["hint"] for c in t["codes"]}
    lv = truth["levels_canonical"]
    bad = mismatches([
        ("codes", real_codes(codes), truth["error_codes"]),
        ("total error records", t["total"], lv.get("ERROR", 0) + lv.get("CRITICAL", 0)),
    ])
    for code in truth["error_codes"]:
        if code in REGISTRY and hints.get(code) == "(not a registry code)":
            bad.append(f"{code}: a registry code shown as '(not a registry code)'")
    expect(bad)


def test_top_warnings_codes_exact(tut):
    d, truth = tut
    t = answer("top", "warnings", "--dir", str(d), "-n", "0")
    codes = {c["code"]: c["count"] for c in t["codes"]}
    expect(mismatches([
        ("codes", real_codes(codes), truth["warning_codes"]),
        ("total warning records (WARN included)", t["total"],
         truth["levels_canonical"]["WARNING"]),
    ]))


# --- stages -----------------------------------------------------------------------------------


def test_stages_are_per_stage_times(tut):
    d, truth = tut
    s = answer("stages", "--dir", str(d))
    rows = {r["component"]: r for r in s["rows"]}
    bad = []
    for stage in STAGES:
        r = rows.get(stage)
        for q in ("p50", "p95"):
            wants = [t[q] for t in stage_truths(truth, stage)]
            got = r[q] if r else None
            if not any(within(got, w) for w in wants):
                bad.append(f"{stage} {q}: got {got}, want within 3% of {wants}")
    shares = {k: rows[k]["share_pct"] for k in STAGES if k in rows}
    if sum(shares.values()) > 100.5:
        bad.append(f"stage shares add up to {sum(shares.values()):.1f}%: {shares}")
    want = truth["stages"]["overall"]["llm_inference"]["share"] * 100
    if not within(shares.get("llm_inference"), want):
        bad.append(f"llm_inference share {shares.get('llm_inference')}%, want {want:.1f}%")
    expect(bad)


def test_stages_in_the_slow_hour(tut):
    d, truth = tut
    slow = truth["incidents"]["slow_stage"]
    s = answer("stages", "--dir", str(d), "--since", slow["start_ts"][:19], "--until",
               slow["end_ts"][:19])
    rows = {r["component"]: r for r in s["rows"]}
    bad = []
    for stage in STAGES:
        wants = [t["p50"] for t in stage_truths(truth, stage, slow["hour"])]
        got = rows[stage]["p50"] if stage in rows else None
        if not any(within(got, w) for w in wants):
            bad.append(f"{stage} p50 in {slow['hour']}: got {got}, want within 3% of {wants}")
    expect(bad)


# --- cache and audio --------------------------------------------------------------------------


def test_cache_counts_and_no_stale_extrapolation(tut):
    d, truth = tut
    c = answer("cache", "--dir", str(d))
    summary = c["summary"]
    cache = truth["incidents"]["cache"]
    bad = mismatches([
        ("DISK_FULL errors", summary.get("DISK_FULL errors"), truth["error_codes"]["DISK_FULL"]),
        ("CACHE_WRITE_FAILED", summary.get("CACHE_WRITE_FAILED"),
         truth["warning_codes"]["CACHE_WRITE_FAILED"]),
        ("cache_dir_usage warnings", c["warnings"].get("cache_dir_usage"),
         truth["events"]["cache_dir_usage"]),
        ("last usage", c["usage_last"], cache["last_usage"]),
        # the last cache_health is hours old (it is written only above 85%): no forecast
        ("full_in_s", c["full_in_s"], None),
    ])
    text = json.dumps(summary, ensure_ascii=False)
    if "full in" in text:
        bad.append(f"a 'full in' forecast from a record {cache['age_at_end_s']} s old: {text}")
    expect(bad)


def test_audio_finds_the_muffled_ids(tut):
    d, truth = tut
    a = answer("audio", "--dir", str(d))
    assert sorted(a["ids"]) == truth["incidents"]["audio"]["ids"]


# --- precursors -------------------------------------------------------------------------------


def test_precursors_rank_the_real_burst_first(tut):
    d, truth = tut
    b = truth["incidents"]["burst"]
    pre_keys = {p["code"] or p["event"] for p in b["precursors"]}
    p = answer("precursors", "--dir", str(d))
    bursts = p["bursts"]
    bad = []
    if not bursts:
        bad.append("no bursts")
    else:
        top = bursts[0]
        if code_of(top["code"]) != b["code"]:
            rank = [code_of(x["code"]) for x in bursts].index(b["code"]) + 1 \
                if b["code"] in [code_of(x["code"]) for x in bursts] else None
            bad.append(f"first burst is {top['code']!r}; {b['code']} is #{rank} of {len(bursts)}")
        else:
            if not (top["start"] < b["end_ts"] and top["end"] >= b["start_ts"]):
                bad.append(f"burst {top['start']}..{top['end']} is not in {b['start_ts']}.."
                           f"{b['end_ts']}")
            keys = [code_of(x["key"]) for x in top["precursors"]]
            if not keys or keys[0] not in pre_keys:
                bad.append(f"best precursor {keys[:1]}, want one of {sorted(pre_keys)}")
    for bg in truth["incidents"]["background"]:
        n = sum(1 for x in bursts if code_of(x["code"]) == bg["code"])
        if n > 1:
            bad.append(f"the steady {bg['code']} (~{bg['per_hour']:.0f}/h) is {n} bursts")
    expect(bad)


# --- check ------------------------------------------------------------------------------------


def test_check_lists_every_never_completed_id(tut, tmp_path):
    d, truth = tut
    ids = tmp_path / "ids.txt"
    c = answer("check", "--dir", str(d), "--ids-out", str(ids))
    items = {i["name"]: i for i in c["items"]}
    got = sorted(ids.read_text().split()) if ids.exists() else None
    expect(mismatches([
        ("ids written by --ids-out", got, truth["never_completed_ids"]),
        ("start_has_complete bad", items.get("start_has_complete", {}).get("bad"),
         len(truth["never_completed_ids"])),
        ("unparsable lines", items.get("parsable", {}).get("bad"), truth["malformed_lines"]),
    ]))


def test_check_names_the_dialect(tut):
    d, _truth = tut
    c = answer("check", "--dir", str(d))
    text = json.dumps(c, ensure_ascii=False)
    bad = []
    if "cumulative" not in text:
        bad.append("check does not say that stage_time is cumulative (and converted)")
    if "QueueHandler" in text:
        bad.append("check reports several writers on a one-writer log")
    expect(bad)


# --- diagnose ---------------------------------------------------------------------------------


def test_diagnose_the_tutorial_day(tut):
    d, truth = tut
    rep = answer("diagnose", "--dir", str(d))
    fs = rep["findings"]
    inc = truth["incidents"]
    b = inc["burst"]
    pre_keys = {p["code"] or p["event"] for p in b["precursors"]}
    bad: list[str] = []

    def in_burst(f: dict) -> bool:
        return any(b["start_ts"][:16] <= t[:16] <= b["end_ts"][:16]
                   for t in TS.findall(findings_text(f)))

    burst = [f for f in fs if f["severity"] in ("critical", "high")
             and b["code"] in findings_text(f) and in_burst(f)]
    if not burst:
        bad.append(f"no critical/high finding for the {b['code']} burst {b['start_ts']}..")
    elif not any(any(k in findings_text(f) for k in pre_keys) for f in burst):
        bad.append(f"the {b['code']} finding names none of its precursors {sorted(pre_keys)}")
    slow = inc["slow_stage"]
    periods = [f for f in fs if f["kind"] == "slow_period"]
    hit = [f for f in periods if f["data"]["start"] < slow["end_ts"]
           and f["data"]["end"] > slow["start_ts"]]
    if [f["data"]["component"] for f in hit] != [slow["stage"]]:
        bad.append(f"slow period {slow['start_ts']}..: named "
                   f"{[f['data']['component'] for f in hit]}, want [{slow['stage']!r}]")
    fl = inc["failing_length"]
    pats = [f for f in fs if f["kind"] == "input_pattern"
            and code_of(f["data"]["error_code"]) == fl["code"]]
    if not any(f["data"]["field"] == fl["field"]
               and leading_number(f["data"]["value"]) == fl["value"] for f in pats):
        bad.append(f"no input pattern {fl['field']}={fl['value']} for {fl['code']}: "
                   f"{[(f['data']['field'], f['data']['value']) for f in pats]}")
    for f in fs:
        if "full in" in findings_text(f):
            bad.append(f"stale-gauge forecast: {f['title']}")
        elif f["kind"] == "cache_disk" and f["severity"] in ("critical", "high"):
            bad.append(f"a {f['severity']} cache-disk alarm from a record "
                       f"{inc['cache']['age_at_end_s']} s old: {f['title']}")
    shares = [f for f in fs if f["kind"] == "time_share"]
    for f in shares:
        if f"to {slow['stage']}" not in f["title"]:
            bad.append(f"time share: {f['title']}")
    ml = [f for f in fs if f["kind"] == "model_load"]
    if [f["data"]["ts"] for f in ml] != [inc["model_load"]["ts"]]:
        bad.append(f"model load findings {[f['data']['ts'] for f in ml]}, want "
                   f"[{inc['model_load']['ts']}]")
    expect(bad)


# --- alerts -----------------------------------------------------------------------------------


def test_alerts_fire_on_the_codes(tut):
    d, truth = tut
    a = answer("alerts", "--dir", str(d))
    by: dict[str, list[dict]] = {}
    for e in a["episodes"]:
        by.setdefault(e["rule"], []).append(e)
    b = truth["incidents"]["burst"]
    disk = [e["ts"] for e in by.get("disk_full", [])]
    bad = []
    if len(disk) != 1 or not (b["start_ts"] <= disk[0] < b["end_ts"]):
        bad.append(f"disk_full episodes {disk}, want one in {b['start_ts']}..{b['end_ts']}")
    ml = [e["ts"] for e in by.get("model_load_failed", [])]
    if ml != [truth["incidents"]["model_load"]["ts"]]:
        bad.append(f"model_load_failed episodes {ml}, want "
                   f"[{truth['incidents']['model_load']['ts']}]")
    expect(bad)


# --- report and tail --------------------------------------------------------------------------


def test_report_covers_the_whole_day(tut, tmp_path):
    d, truth = tut
    out = tmp_path / "r.html"
    r = answer("report", "--dir", str(d), "-o", str(out))
    tr = truth["time_range"]
    assert out.stat().st_size > 10_000
    expect(mismatches([
        ("window", r["summary"]["window"], f"{tr['first_ts']} .. {tr['last_ts']}"),
        ("records", r["summary"]["records"], truth["log_records"]),
        ("syntheses", r["summary"]["syntheses"], truth["requests"]["completed"]),
    ]))


def test_tail_counts_records(tut):
    d, truth = tut
    want = truth["tail"][-2:]
    res = run("tail", "--dir", str(d), "-n", "2", "--for", "0s", "--no-alerts", "--json")
    objs = [json.loads(x) for x in res.stdout.decode().splitlines() if x.strip()]
    txt = run("tail", "--dir", str(d), "-n", "2", "--for", "0s", "--no-alerts")
    lines = txt.stdout.decode().splitlines()
    heads = [x for x in lines if HEAD.match(x)]
    expect(mismatches([
        ("tail --json exit", res.returncode, 0),
        ("tail --json -n 2 timestamps", [o.get("ts") for o in objs], [x["ts"] for x in want]),
        ("tail -n 2 record heads", [HEAD.match(x).group(1) for x in heads],
         [x["ts"] for x in want]),
        ("tail -n 2 starts with a record (not inside a traceback)",
         bool(lines) and bool(HEAD.match(lines[0])), True),
        ("tail -n 2 prints at most the records' own lines", len(lines) <= 2 + sum(
            x["traceback_lines"] for x in want), True),
    ]))


# --- files as they come -----------------------------------------------------------------------


def test_standard_input(tut):
    d, truth = tut
    data = "".join(texts_in_time_order(d)).encode()
    w = answer("window", "--files", "-", stdin=data)
    pairs = [p for p in _window_pairs(w, truth) if p[0] != "files read"]
    expect(mismatches(pairs))


def test_indexed_files_give_the_same_answers(tut, tmp_path):
    d, truth = tut
    idx = tmp_path / "logs"
    shutil.copytree(d, idx)
    res = run("index", str(idx))
    assert res.returncode == 0, res.stderr.decode()[-600:]
    w = answer("window", "--dir", str(idx))
    t = answer("top", "errors", "--dir", str(idx), "-n", "0")
    top = ("top errors", real_codes({c["code"]: c["count"] for c in t["codes"]}),
           truth["error_codes"])
    expect(mismatches([*_window_pairs(w, truth), top]))


def test_a_damaged_file_is_exit_3_and_one_message(tut, tmp_path):
    d, _truth = tut
    bad_dir = tmp_path / "logs"
    shutil.copytree(d, bad_dir)
    victim = bad_dir / "app.log.2.gz"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    res = run("window", "--dir", str(bad_dir), "--json")
    err = res.stderr.decode()
    assert res.returncode == 3, err
    assert "Traceback" not in err and "app.log.2.gz" in err
    json.loads(res.stdout)


def test_dateext_files_are_read(dateext):
    d, truth = dateext
    w = answer("window", "--dir", str(d))
    expect(mismatches(_window_pairs(w, truth)))


def test_json_lines_stdlib_keys(json_stdlib):
    d, truth = json_stdlib
    w = answer("window", "--dir", str(d))
    expect(mismatches(_window_pairs(w, truth)))


def test_json_lines_structlog_keys(json_structlog):
    d, truth = json_structlog
    w = answer("window", "--dir", str(d))
    s = answer("stages", "--dir", str(d))
    rows = {r["component"]: r for r in s["rows"]}
    pairs = _window_pairs(w, truth)
    got = rows.get("llm_inference", {}).get("p50")
    wants = [t["p50"] for t in stage_truths(truth, "llm_inference")]
    if not any(within(got, x) for x in wants):
        pairs.append(("llm_inference p50 (within 3%)", got, wants))
    expect(mismatches(pairs))


def test_local_time_logs_with_tz(local_time):
    d, truth = local_time
    b = truth["incidents"]["burst"]
    local = answer("window", "--dir", str(d), "--tz", "+08:00",
                   "--since", b["start_ts"][:19] + "+08:00", "--until", b["end_ts"][:19] + "+08:00")
    utc = answer("window", "--dir", str(d), "--tz", "+08:00",
                 "--since", b["start_utc"][:19] + "+00:00", "--until", b["end_utc"][:19] + "+00:00")
    expect(mismatches([
        ("DISK_FULL in the local window", local["failure_codes"].get("DISK_FULL"),
         b["errors_in_window"]),
        ("DISK_FULL in the same window in UTC", utc["failure_codes"].get("DISK_FULL"),
         b["errors_in_window"]),
    ]))


# --- several writers ------------------------------------------------------------------------


def test_check_names_several_writers(writers):
    d, truth = writers
    res = run("check", "--dir", str(d), "--json")
    text = res.stdout.decode()
    bad = []
    if res.returncode not in (1, 3):
        bad.append(f"check exit {res.returncode} on a damaged log")
    if "QueueHandler" not in text:
        bad.append("check does not name several writers on one file (and the fix)")
    for group in truth["writers"]["duplicate_files"]:
        if not all(name in text for name in group):
            bad.append(f"byte-identical files {group} not reported")
    expect(bad)


def test_several_writers_counts_read_duplicates_once(writers):
    d, truth = writers
    w = answer("window", "--dir", str(d))
    sv = truth["writers"]["survived"]
    expect(mismatches([
        ("levels", canon_levels(w["levels"]), canon_levels(sv["levels"])),
        ("error codes", real_codes(w["error_codes"]), sv["error_codes"]),
    ]))


def test_several_writers_trace_once(writers):
    d, truth = writers
    seen: dict[str, str] = {}
    heads: list[str] = []
    for p in sorted(d.iterdir()):
        data = p.read_bytes()
        t = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()
        if t in seen.values():
            continue
        seen[p.name] = t
        heads += [x for x in t.splitlines() if HEAD.match(x)]
    groups = truth["writers"]["duplicate_files"]
    # an id from a duplicated file if there is one, else the first id of the log
    src = seen.get(groups[0][0], "") if groups else "".join(seen.values())
    m = re.search(r"synthesis_start: id=(ts_[0-9a-f]{8})", src)
    assert m, "no synthesis in the files"
    rid = m.group(1)
    want = sum(1 for x in heads if rid in x)
    t = answer("trace", rid, "--dir", str(d))
    assert len(t["records"]) == want
