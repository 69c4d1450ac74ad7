# ruff: noqa: E501 -- the seed's shell commands are kept verbatim
"""window, trace and patterns agree exactly with the seed's own shell pipelines, run for
real (bash, zcat, awk, grep, sed, sort, uniq, paste) on the gzip files the sink wrote."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .forensics_helpers import cli, cli_json

pytestmark = pytest.mark.skipif(subprocess.run(["bash", "-c", "command -v zcat awk paste"],
                                               capture_output=True).returncode != 0,
                                reason="needs zcat, awk, paste")


def sh(cmd: str, cwd: Path) -> str:
    res = subprocess.run(["bash", "-c", cmd], cwd=cwd,
                         capture_output=True, text=True, env={"LC_ALL": "C", "PATH":
                                                              "/usr/bin:/bin"}, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


WINDOWS = [("2024-06-12 14:00:00", "2024-06-12 15:00:00"),  # the failing hour
           ("2024-06-12 09:30:00", "2024-06-12 10:10:00"),  # the disk outage
           ("2024-06-12 00:00:00", "2024-06-13 00:00:00")]  # everything


@pytest.mark.parametrize(("a", "b"), WINDOWS)
def test_window_counts_and_ids_match_the_seed_pipelines(incident, tmp_path, a, b):
    d, _truth = incident
    awk = f"""awk '$1" "$2 >= "{a}" && $1" "$2 <= "{b}"'"""
    n_shell = int(sh(f'zcat app.log.*.gz 2>/dev/null | {awk} | grep -E "(ERROR|WARNING)" '
                     "| wc -l", d))
    sh(f'zcat app.log.*.gz 2>/dev/null | {awk} | grep "synthesis_start" | '
       f"sed -r 's/.*id=([^,]+),.*/\\1/' | sort -u > {tmp_path}/bad_ids.txt", d)
    files = sorted(str(p) for p in d.glob("app.log.*.gz"))
    files_args = [x for f in files for x in ("--files", f)]
    rep = cli_json("window", *files_args, "--since", a, "--until", b,
                   "--ids-out", str(tmp_path / "ids.txt"))
    assert rep["levels"].get("ERROR", 0) + rep["levels"].get("WARNING", 0) == n_shell
    assert (tmp_path / "ids.txt").read_bytes() == (tmp_path / "bad_ids.txt").read_bytes()
    assert rep["started"] == len((tmp_path / "ids.txt").read_text().split())
    assert n_shell > 0


def test_window_over_the_directory_includes_the_live_file(incident, tmp_path):
    d, _ = incident
    n_shell = int(sh('{ zcat app.log.*.gz; cat app.log; } | grep -E "(ERROR|WARNING)" | wc -l',
                     d))
    rep = cli_json("window", "--dir", str(d))
    assert rep["levels"]["ERROR"] + rep["levels"]["WARNING"] == n_shell


def _failed_ids(d: Path, code: str, n: int) -> list[str]:
    out = sh(f'zcat app.log.*.gz | grep "synthesis_complete.*error_code={code}" | '
             f"sed -r 's/.*, id=([^,]+),.*/\\1/' | head -{n}", d)
    return out.split()


@pytest.mark.parametrize("code", ["SCIPY_FFT_INVALID", "DISK_FULL", "ENGINE_NOT_READY"])
def test_trace_lines_match_zcat_grep_sort(incident, code):
    d, _ = incident
    ids = _failed_ids(d, code, 2)
    assert ids
    for sid in ids:
        shell = sh(f'zcat app.log.*.gz 2>/dev/null | grep "{sid}" | sort', d)
        rc, out, _err = cli("trace", sid, "--dir", str(d), "--lines")
        assert rc == 0
        heads = [ln for ln in out.splitlines() if not ln.startswith("\t")]
        assert sorted(heads) == shell.splitlines()
        # in time order, with the traceback attached to its record
        assert [h[:23] for h in heads] == sorted(h[:23] for h in heads)
        assert any(ln.startswith("\tTraceback") for ln in out.splitlines())
        assert f"error_code={code}" in out


def test_trace_by_request_id_matches_grep(incident):
    d, _ = incident
    line = sh('zcat app.log.*.gz | grep "trace_id=" | grep synthesis_complete | head -1', d)
    for key in ("request_id", "trace_id"):
        rid = re.search(key + r"=([0-9a-f]+)", line).group(1)
        shell = sh(f'zcat app.log.*.gz | grep "{rid}" | sort', d)
        _rc, out, _ = cli("trace", rid, "--dir", str(d), "--lines")
        heads = [ln for ln in out.splitlines() if not ln.startswith("\t")]
        assert sorted(heads) == shell.splitlines()


SEED_PATTERNS = r"""zcat app.log.*.gz 2>/dev/null | grep "synthesis_complete.*status=failed" | \
awk -F', ' '{for(i=1;i<=NF;i++) if($i ~ /text_len=/) print $i; for(i=1;i<=NF;i++) if($i ~ /error_code=/) print $i}' | \
paste -d' ' - - | \
sort | uniq -c | sort -nr"""


def test_patterns_match_the_seed_awk_paste_uniq_pipeline(incident):
    d, _truth = incident
    shell: dict[tuple[str, str], int] = {}
    for line in sh(SEED_PATTERNS, d).splitlines():
        m = re.fullmatch(r"\s*(\d+) text_len=(\S+) error_code=(\S+)", line)
        assert m, line
        shell[(m.group(2), m.group(3))] = int(m.group(1))
    files = [x for p in sorted(d.glob("app.log.*.gz")) for x in ("--files", str(p))]
    rep = cli_json("patterns", *files, "--where", "status=failed", "--by", "text_len,error_code")
    tool = {(g["key"]["text_len"], g["key"]["error_code"]): g["count"] for g in rep["groups"]}
    assert tool == shell
    # and the biggest group is the injected one
    top = max(shell, key=lambda k: shell[k])
    assert top == ("2048", "SCIPY_FFT_INVALID")


def test_the_grep_counts_lines_not_levels_and_the_tool_counts_levels(tmp_path):
    """Where the seed's grep -E "(ERROR|WARNING)" is loose (an INFO line that mentions
    ERROR), the tool counts by level; both are shown so the difference is explicit."""
    from ttsops import events
    from ttsops.logsink import LogSink

    sink = LogSink(tmp_path, max_bytes=10_000, block_bytes=2048)
    prev = events.set_sink(sink)
    log = events.get_logger("t")
    for i in range(300):
        log.info("synthesis_complete", id=f"ts_{i:08x}", status="failed",
                 error_code="INTERNAL_ERROR", text_len=3)
        log.error("synthesis_failed", id=f"ts_{i:08x}", error_code="INTERNAL_ERROR")
    sink.close()
    events.set_sink(prev)
    n_shell = int(sh('{ zcat app.log.*.gz; cat app.log; } | grep -E "(ERROR|WARNING)" | wc -l',
                     tmp_path))
    rep = cli_json("window", "--dir", str(tmp_path))
    assert n_shell == 600  # every complete line mentions INTERNAL_ERROR
    assert rep["levels"] == {"INFO": 300, "ERROR": 300}
