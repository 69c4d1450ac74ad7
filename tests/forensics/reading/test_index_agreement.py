"""Index against scan: the same log files, once as the sink wrote them (block gzip with
the embedded index) and once recompressed by plain gzip (no index, one member), give
identical answers to every query -- only the cost differs. Also with --no-index, and
with the vectorised and the record-by-record path of `stages`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from ttsops.logindex import read_index
from ttsops.logsink import LogSink

from ..forensics_helpers import cli

pytestmark = pytest.mark.skipif(shutil.which("gzip") is None, reason="needs gzip")


def _indexed_and_plain(d: Path, root: Path) -> tuple[Path, Path]:
    a, b = root / "indexed" / "logs", root / "plain" / "logs"  # same name: same host
    shutil.copytree(d, a)
    shutil.copytree(d, b)
    for p in sorted(b.glob("app.log.*.gz")):
        text = subprocess.run(["gzip", "-dc", str(p)], capture_output=True, check=True).stdout
        p.write_bytes(subprocess.run(["gzip", "-6", "-c"], input=text, capture_output=True,
                                     check=True).stdout)
        assert read_index(p) is None
    assert all(read_index(p) is not None for p in a.glob("app.log.*.gz"))
    return a, b


@pytest.fixture(scope="module")
def copies(incident, tmp_path_factory) -> tuple[Path, Path, dict]:
    d, truth = incident
    a, b = _indexed_and_plain(d, tmp_path_factory.mktemp("agree"))
    return a, b, truth


# request ids of which "probe-zh" is a prefix, suffix or part (each a different id)
PROBES = ["probe-zh", "probe-zh_4096", "probe-zh.2", "x-probe-zh", "probe-zh:1", "probe-zhx",
          "probe-zh/3", "probe-zh@b", "probe-zh+c"]


@pytest.fixture(scope="module")
def probes(tmp_path_factory) -> tuple[Path, Path, Counter[str]]:
    """Rotated, indexed logs (and a plain-gzip copy) holding the ids of ``PROBES``; the
    number of records of each."""
    root = tmp_path_factory.mktemp("probes")
    src = root / "src"
    sink = LogSink(src, max_bytes=30_000, block_bytes=2048, backup_count=1000)
    n: Counter[str] = Counter()
    for i in range(4000):
        rid = PROBES[(i // 40) % len(PROBES)] if i % 40 < 3 else f"req_{i:016x}"
        n[rid] += 1
        sink.submit((1718150400.0 + i, "ttsops.server.http", "INFO", "http_request",
                     {"request_id": rid, "id": f"ts_{i:016x}", "status": "200"}, []))
    sink.close()
    os.unlink(src / ".app.log.lock")
    assert len(list(src.glob("app.log.*.gz"))) >= 5
    a, b = _indexed_and_plain(src, root)
    return a, b, n


def _answer(d: Path, *args: str) -> dict:
    rc, out, err = cli(*args, "--dir", str(d), "--json")
    assert rc in (0, 1), err
    doc = json.loads(out)
    doc.pop("read", None)
    if doc.get("command") == "check":  # whether files carry an index is the difference
        failed = {i["name"] for i in doc["items"] if i["status"] == "FAIL"}
        assert failed <= {"indexed"}, failed
        doc["items"] = [i for i in doc["items"] if i["name"] != "indexed"]
        doc["tables"] = {k: [r for r in v if r.get("item") != "indexed"]
                         for k, v in doc["tables"].items()}
        doc.pop("passed")
        doc["summary"].pop("items failed")
    return json.loads(json.dumps(doc).replace(str(d), "<DIR>"))


def _ids(d: Path) -> list[str]:
    out = subprocess.run(["bash", "-c", 'zcat app.log.*.gz | grep synthesis_failed | '
                          "sed -r 's/.*, id=([^,]+),.*/\\1/' | sort -u | head -3"],
                         cwd=d, capture_output=True, text=True, check=True).stdout.split()
    rid = subprocess.run(["bash", "-c", "zcat app.log.*.gz | grep -m1 synthesis_complete | "
                          "sed -r 's/.*request_id=([0-9a-f]+).*/\\1/'"], cwd=d,
                         capture_output=True, text=True, check=True).stdout.strip()
    return [*out, rid]


QUERIES = [
    ("window",),
    ("window", "--since", "2024-06-12 14:00:00", "--until", "2024-06-12 15:00:00"),
    ("window", "--since", "2024-06-12 09:00", "--until", "2024-06-12 11:00:00,500"),
    ("window", "--since", "2024-06-12 03:07:13,250", "--until", "2024-06-12 21:00:01"),
    ("window", "--since", "2024-06-12", "--until", "2024-06-12"),
    ("patterns", "--where", "status=failed", "--by", "text_len,error_code"),
    # blocks answered from their index's failed lines, the window's ends read
    ("patterns", "--where", "status=failed", "--where", "cache_hit=false",
     "--by", "hour,error_code",
     "--since", "2024-06-12 09:00", "--until", "2024-06-12 15:00:00,500"),
    ("patterns", "--where", "status=failed", "--where", "text_len>200", "--by", "model_stage"),
    ("patterns", "--where", "status=success", "--by", "voice,lang"),
    ("patterns", "--event", "webui_event", "--by", "kind,ua"),
    ("top", "errors", "-n", "0"),
    ("top", "warnings"),
    ("stages",),
    ("stages", "--by", "voice", "--since", "2024-06-12 16:00", "--until", "2024-06-12 18:00"),
    ("stages", "--where", "lang=zh"),
    ("cache",),
    ("audio",),
    ("precursors",),
    ("check",),
    ("diagnose",),
    ("diagnose", "--since", "2024-06-12 09:00", "--until", "2024-06-12 12:00"),
    ("alerts",),
]


@pytest.mark.parametrize("query", QUERIES, ids=[" ".join(q) for q in QUERIES])
def test_indexed_and_unindexed_copies_agree(copies, query):
    a, b, _ = copies
    indexed = _answer(a, *query)
    assert indexed == _answer(b, *query)
    assert indexed == _answer(a, *query, "--no-index")


def _trace_everywhere(a: Path, b: Path, ident: str) -> list[dict]:
    """trace ``ident``: indexed, plain gzip, --no-index (the answers, without the line
    saying what the index skipped when nothing was found)."""
    out = [_answer(a, "trace", ident), _answer(b, "trace", ident),
           _answer(a, "trace", ident, "--no-index"), _answer(b, "trace", ident, "--no-index")]
    for doc in out:
        doc.pop("empty", None)
    return out


def test_trace_agrees_for_synthesis_and_request_ids(copies):
    a, b, _ = copies
    for ident in _ids(a):
        got = _answer(a, "trace", ident)
        assert got["records"], ident
        assert got == _answer(b, "trace", ident) == _answer(a, "trace", ident, "--no-index")


def test_trace_of_a_part_of_an_id_finds_nothing_on_every_path(copies):
    """A partial id once found nothing with the index (blooms hold whole ids) and the
    records of the whole id without it (the scan matched substrings)."""
    a, b, _ = copies
    sid, rid = _ids(a)[0], _ids(a)[-1]
    for part in (sid[:-1], sid[:-4], rid[:-1], rid[2:]):
        answers = _trace_everywhere(a, b, part)
        assert all(doc["records"] == [] for doc in answers), part
        assert all(doc == answers[0] for doc in answers), part


def test_trace_of_an_id_that_is_a_prefix_of_others_finds_only_itself(probes):
    """``probe-zh`` once also pulled in ``probe-zh_4096`` (and the rest of ``PROBES``)."""
    a, b, n = probes
    for ident in PROBES:
        answers = _trace_everywhere(a, b, ident)
        assert all(doc == answers[0] for doc in answers), ident
        got = answers[0]["records"]
        assert len(got) == n[ident] > 0, ident
        assert {r["fields"]["request_id"] for r in got} == {ident}
    for part in ("probe-z", "probe-zh_409", "robe-zh", "probe-zh_40960", "zh"):
        answers = _trace_everywhere(a, b, part)
        assert all(doc["records"] == [] for doc in answers), part


@pytest.mark.parametrize("args", [("stages",), ("stages", "--by", "voice,format"),
                                  ("stages", "--since", "2024-06-12 14:10")])
def test_stages_vectorised_and_record_by_record_agree(copies, monkeypatch, args):
    a, b, _ = copies
    monkeypatch.setenv("TTSOPS_LOGS_VECTOR", "always")
    fast = _answer(a, *args), _answer(b, *args)
    monkeypatch.setenv("TTSOPS_LOGS_VECTOR", "never")
    slow = _answer(a, *args), _answer(b, *args)
    assert fast[0] == fast[1] == slow[0] == slow[1]
    assert fast[0]["summary"]["syntheses"] > 0


def test_window_answers_blocks_from_the_index_and_the_rest_by_reading(copies):
    a, _b, truth = copies
    args = ("window", "--since", "2024-06-12 03:07:13,250", "--until", "2024-06-12 21:00:01")
    rc, out, _ = cli(*args, "--dir", str(a), "--json")
    assert rc == 0
    read = json.loads(out)["read"]
    assert read["blocks_from_index"] > 10 and read["blocks_read"] <= 4 * 2
    whole = _answer(a, "window")
    assert whole["records"] == truth["records"] and whole["levels"] == truth["levels"]


def test_logs_index_gives_the_plain_copy_an_index_and_the_same_bytes(copies, tmp_path):
    _, b, _ = copies
    c = tmp_path / "c"
    shutil.copytree(b, c)
    before = {p.name: subprocess.run(["gzip", "-dc", str(p)], capture_output=True,
                                     check=True).stdout for p in c.glob("app.log.*.gz")}
    rc, out, err = cli("index", str(c), "--json", "--no-progress")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["summary"]["indexed"] == len(before)
    for name, text in before.items():
        p = c / name
        assert read_index(p) is not None
        assert subprocess.run(["gzip", "-t", str(p)]).returncode == 0
        assert subprocess.run(["gzip", "-dc", str(p)], capture_output=True,
                              check=True).stdout == text
    rc, out, _ = cli("index", str(c), "--json", "--no-progress")
    assert json.loads(out)["summary"] == {"files": len(before), "up to date": len(before)}
    for q in (("window", "--since", "2024-06-12 14:00"), ("stages",), ("top", "errors")):
        assert _answer(c, *q) == _answer(b, *q)

