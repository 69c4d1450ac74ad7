"""Logs written the tutorial's way (plain stdlib logging, ``dialect_fixture``) answered
right by every command, on every read path: cumulative stage_time converted, codes
followed by free text, unit suffixes, WARN/FATAL, unstructured and standalone lines,
stdlib and structlog JSON keys."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ttsops.forensics.analyses.stats import percentile
from ttsops.logformat.dialects import set_stage_time_mode

from .. import dialect_fixture
from ..forensics_helpers import cli_json


@pytest.fixture(scope="module")
def tut(tmp_path_factory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("tut") / "logs"
    return d, dialect_fixture.write(d)


@pytest.fixture(autouse=True)
def _auto_stage_time():
    yield
    set_stage_time_mode("auto")  # the option sets it for the process


def _indexed(d: Path, root: Path) -> Path:
    """A copy whose rotated file carries a block index (``ttsops logs index``)."""
    c = root / "indexed"
    if not c.exists():
        shutil.copytree(d, c)
        from ttsops.forensics.reading import indexer

        res = indexer.run(indexer.candidates([str(c)], []), block_bytes=4096)
        assert all(r.status in ("indexed", "recompressed") for r in res), res
    return c


PATHS = ["line", "vector", "indexed"]


def _stages(d: Path, path: str, tmp: Path, *extra: str) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TTSOPS_LOGS_VECTOR", "always" if path == "vector" else "never")
        src = _indexed(d, tmp) if path == "indexed" else d
        return cli_json("stages", "--dir", str(src), *(("--no-index",) if path == "line"
                                                         else ()), *extra)


@pytest.mark.parametrize("path", PATHS)
def test_stages_reads_cumulative_stage_time_per_stage(tut, path, tmp_path_factory):
    d, truth = tut
    doc = _stages(d, path, tmp_path_factory.getbasetemp())
    rows = {r["component"]: r for r in doc["data"]["rows"]} if "data" in doc else \
        {r["component"]: r for r in doc["rows"]}
    for stage, values in truth["stages"].items():
        r = rows[stage]
        assert r["n"] == len(values), stage
        assert r["p50"] == percentile(sorted(values), 50), stage
        assert r["mean"] == pytest.approx(sum(values) / len(values)), stage
    shares = sum(rows[s]["share_pct"] for s in truth["stages"])
    assert 95.0 <= shares <= 100.0  # the rest is the time after the last stage
    st = doc.get("stage_time") or doc["data"]["stage_time"]
    assert st["cumulative"] > 0 and st["per_stage"] == 0


def test_stage_time_override(tut, tmp_path_factory):
    d, truth = tut
    doc = _stages(d, "line", tmp_path_factory.getbasetemp(), "--stage-time", "per-stage")
    rows = {r["component"]: r for r in doc["rows"]}
    # read as written: llm_inference's value is the time since the start
    assert rows["llm_inference"]["p50"] > percentile(sorted(truth["stages"]["llm_inference"]),
                                                     50)


def test_codes_followed_by_free_text(tut):
    d, truth = tut
    top = cli_json("top", "errors", "--dir", str(d), "-n", "0")
    codes = {c["code"]: c for c in top["codes"]}
    for code, n in truth["errors"].items():
        assert codes[code]["count"] == n
        assert codes[code]["hint"] != "(not a registry code)"
    assert codes["(unstructured)"]["count"] == truth["unstructured"]
    assert codes["(worker_exit)"]["count"] == 1  # FATAL: counted with the errors
    cache = cli_json("cache", "--dir", str(d))
    assert cache["summary"]["DISK_FULL errors"] == truth["errors"]["DISK_FULL"]
    alerts = cli_json("alerts", "--dir", str(d))
    assert "disk_full" in {e["rule"] for e in alerts["episodes"]}


def test_window_counts_aliases_and_unstructured_lines(tut):
    d, truth = tut
    w = cli_json("window", "--dir", str(d))
    want = dict(truth["levels"])
    assert w["levels"] == want  # WARN counted as WARNING, FATAL as CRITICAL
    assert w["unparsable_lines"] == 0
    assert w["events"]["metric"] == len(truth["ids"])  # total_duration_ms lines
    assert w["events"]["unstructured"] == truth["unstructured"]
    assert w["failure_codes"] == truth["failed"]


def test_trace_draws_each_stage_after_the_one_before(tut):
    d, truth = tut
    sid = next(iter(truth["slow"]))
    doc = cli_json("trace", sid, "--dir", str(d))
    (tl,) = doc["timelines"]
    assert tl["stage_time"] == "cumulative"
    comps = tl["components"]
    assert [c["name"] for c in comps] == list(dialect_fixture.STAGES)
    end = 0.0
    for c in comps:
        assert c["start_ms"] == end
        end += c["duration_ms"]
    assert {c["name"]: c["duration_ms"] for c in comps}["llm_inference"] == truth["slow"][sid]


def test_unstructured_line_is_given_the_id_it_names(tut):
    d, truth = tut
    sid = truth["named"][0]
    doc = cli_json("trace", sid, "--dir", str(d))
    recs = [r for r in doc["records"] if r["event"] == "unstructured"]
    assert len(recs) == 1 and recs[0]["fields"]["id"] == sid and recs[0]["level"] == "ERROR"


def test_diagnose_sees_the_outage_and_the_slow_stage(tut):
    """The codes are read bare: the failures are counted under DISK_FULL, the burst of
    them is found with the cache warnings before it (how high it ranks is the precursor
    ranking's business); the slow stage is named from per-stage times."""
    d, truth = tut
    doc = cli_json("diagnose", "--dir", str(d))
    kinds = {f["kind"]: f for f in doc["findings"]}
    n = truth["failed"]["DISK_FULL"]
    assert any(x.startswith(f"DISK_FULL: {n} ") for x in kinds["failure_rate"]["details"])
    assert "llm_inference is the slow part" in kinds["slow_period"]["title"]
    # the failing input, not the stage the writer names on failures only
    assert any(f["title"] == "SCIPY_FFT_INVALID fails the inputs with text_len=2048 chars"
               for f in doc["findings"]), [f["title"] for f in doc["findings"]]
    pre = cli_json("precursors", "--dir", str(d))
    (burst,) = [b for b in pre["bursts"] if b["code"] == "DISK_FULL"]
    assert burst["count"] == n and burst["precursors"][0]["key"] == "cache_health"


def test_where_and_buckets_read_numbers_with_units(tut):
    d, truth = tut
    doc = cli_json("patterns", "--dir", str(d), "--where", "text_len>=2000",
                   "--by", "error_code")
    assert doc["matching"] == truth["len2048"]
    doc = cli_json("patterns", "--dir", str(d), "--bucket", "text_len=0,1,2000",
                   "--by", "text_len,error_code")
    groups = {tuple(g["key"].values()): g["count"] for g in doc["groups"]}
    assert groups[(">=2000", "SCIPY_FFT_INVALID")] == truth["len2048"]
    assert groups[("[0,1)", "TEXT_EMPTY")] == truth["errors"]["TEXT_EMPTY"]


def test_check_names_the_dialect(tut):
    d, truth = tut
    doc = cli_json("check", "--dir", str(d))
    dia = doc["dialect"]
    assert dia["dialect"].startswith("tutorial-style text")
    asp = {a["aspect"]: a for a in dia["aspects"]}
    assert asp["stage_time"]["recognised"].startswith("cumulative")
    assert asp["free text after a value"]["records"] == sum(truth["errors"].values())
    assert asp["level aliases"]["recognised"] == "WARN->WARNING, FATAL->CRITICAL"
    assert asp["unstructured lines"]["records"] == truth["unstructured"]
    assert asp["key=value-only lines"]["records"] == len(truth["ids"])
    assert asp["unit suffixes"]["records"] > 0


@pytest.mark.parametrize("keys", ["stdlib", "structlog"])
def test_json_lines_give_the_text_answers(tut, keys, tmp_path):
    d, _truth = tut
    j = tmp_path / keys
    dialect_fixture.write(j, json_keys=keys)
    for args in (["window"], ["top", "errors", "-n", "0"], ["stages"]):
        a, b = cli_json(*args, "--dir", str(d)), cli_json(*args, "--dir", str(j))
        for k in ("read", "files"):
            a.pop(k, None)
            b.pop(k, None)
        assert a == b, args
    doc = cli_json("check", "--dir", str(j))
    assert keys in doc["dialect"]["dialect"]


def test_bad_input_in_every_dialect_is_a_clear_exit(tut, tmp_path):
    """A damaged gzip among tutorial-style files: an answer, exit 3, no traceback."""
    d, _truth = tut
    c = tmp_path / "damaged"
    shutil.copytree(d, c)
    gz = c / "app.log.1.gz"
    data = gz.read_bytes()
    gz.write_bytes(data[:len(data) // 2])
    import sys

    p = subprocess.run([sys.executable, "-m", "ttsops", "logs", "stages", "--dir", str(c)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 3, p.stderr
    assert "Traceback" not in p.stderr


def test_indexed_and_unindexed_give_the_same_answers(tut, tmp_path_factory):
    """The tutorial-style file recompressed with a block index (``logs index``) answers
    every command as the whole-file gzip does (and as --no-index does)."""
    d, truth = tut
    idx = _indexed(d, tmp_path_factory.getbasetemp())
    sid = truth["named"][0]
    for args in (["window"], ["top", "errors", "-n", "0"], ["top", "warnings", "-n", "0"],
                 ["trace", sid], ["alerts"], ["patterns", "--by", "error_code"],
                 ["check"], ["cache"], ["precursors"]):
        want = cli_json(*args, "--dir", str(d))
        for extra in ((), ("--no-index",)):
            got = cli_json(*args, "--dir", str(idx), *extra)
            for doc in (want, got):
                doc.pop("read", None)
                if args[0] == "check":  # whether the file carries an index differs
                    doc["items"] = [i for i in doc["items"] if i["name"] != "indexed"]
                    doc.pop("tables", None)
                    doc.pop("summary", None)
                    doc.pop("passed", None)
                if args[0] == "trace":
                    for r in doc["records"]:
                        r.pop("file", None)
                        r.pop("host", None)  # the directory's name
                    doc.pop("tables", None)
            assert got == want, (args, extra)
