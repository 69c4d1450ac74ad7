"""Logs for the alert rules' agreement tests (``test_alerts_frames``,
``test_alerts_shared``): the rule sets (the shipped rules, rules of every kind with short
windows, their edge settings, the README's example), random records (hypothesis) written
as rotated files and a live one, and one whole read of a day kept for several tests."""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from ttsops.forensics.analyses.rules import load
from ttsops.forensics.reading.scan import Query, Scan
from ttsops.forensics.reading.sources import open_snapshot

from ..linked_logs import copy_missing, link_files

RULES = """
[[rule]]
name = "disk"
kind = "match"
level = "ERROR"
where = "error_code=DISK_FULL"
quiet = "2m"

[[rule]]
name = "burst"
kind = "count"
event = "synthesis_complete"
where = "status=failed"
count = 2
within = "3m"

[[rule]]
name = "hot"
kind = "consecutive"
event = "cache_health"
where = "usage>90"
count = 2
within = "5m"

[[rule]]
name = "fails"
kind = "rate"
event = "synthesis_complete"
where = "status=failed"
above = 0.3
over = "4m"
min_count = 2

[[rule]]
name = "slow"
kind = "percentile"
event = "stage_time"
select = "stage=llm_inference"
field = "duration_ms"
q = 90
above = 1500
over = "5m"
min_count = 2
resolve_after = "1m"
"""

# window rules at their edges: no hold time, every record (q=0/100, min_count 0, a
# window of 0 s), conditions on pseudo fields and on fields that have no column of their own
EDGES = """
[[rule]]
name = "any_fail"
kind = "rate"
where = ["level=ERROR", "hour~^2024"]
above = 0.0
over = "0s"
min_count = 0
resolve_after = "0s"

[[rule]]
name = "noted"
kind = "count"
select = "note!=x"
where = "event~stage"
count = 1
within = "0s"

[[rule]]
name = "queue_max"
kind = "percentile"
event = "synthesis_complete"
where = "status=success"
field = "queue_ms"
q = 100
above = 1499.9
over = "30s"
resolve_after = "0s"

[[rule]]
name = "fast_min"
kind = "percentile"
field = "duration_ms"
q = 0
above = 900
over = "2m"
min_count = 3

[[rule]]
name = "median"
kind = "percentile"
event = "stage_time"
field = "duration_ms"
q = 50
above = 1800
over = "3m"
resolve_after = "10s"
"""


def _doc_rules() -> str:
    """The rules file shown in the README's alert rules section."""
    doc = (Path(__file__).resolve().parents[3] / "docs" / "readme" / "forensics-scale.md")
    text = doc.read_text("utf-8").split("## Alert rules", 1)[1]
    m = re.search(r"```toml\n(.*?)```", text, re.S)
    assert m, "the README's rules example"
    return m.group(1)


RULE_SETS = {"shipped": None, "kinds": RULES, "edges": EDGES, "readme": _doc_rules()}


def rules_of(name: str, d: Path) -> list[Any]:
    text = RULE_SETS[name]
    if text is None:
        return load(None)
    (d / f"{name}.toml").write_text(text, encoding="utf-8")
    return load(d / f"{name}.toml")


_NUM = st.sampled_from([100, 1800, 2500, 900, 1500, "1499.9ms", "1800 ms", "x", 0])
RECORDS = st.one_of(
    st.tuples(st.sampled_from(["INFO", "ERROR"]), st.just("synthesis_complete"),
              st.one_of(st.sampled_from(["status=failed, error_code=DISK_FULL",
                                         "status=success", "status=failed"]),
                        st.builds("status=success, queue_ms={}".format, _NUM))),
    st.tuples(st.just("INFO"), st.just("stage_time"),
              st.builds(lambda s, d: f"stage={s}, duration_ms={d}",
                        st.sampled_from(["llm_inference", "audio_render"]),
                        _NUM)),
    st.tuples(st.sampled_from(["WARNING", "CRITICAL"]), st.just("cache_health"),
              st.sampled_from(["usage=95%", "usage=50%", "usage=91.5%"])),
    st.tuples(st.sampled_from(["ERROR", "CRITICAL"]), st.just("request_failed"),
              st.just("error_code=DISK_FULL")),
    st.tuples(st.just("INFO"), st.just("webui_event"), st.sampled_from(["kind=error",
                                                                        "kind=play"])),
    st.tuples(st.just("INFO"), st.just("other"), st.just("note=stage_time")),
    st.tuples(st.just("RAW"), st.just(""), st.just("- app.tts_en")),
)
_GAP = st.sampled_from([0, 0.001, 0.4, 3, 10, 20, 30, 45, 61, 130, 400])


def write_logs(logs: Path, items: list[tuple[str, str, str]], gaps: list[float],
           cuts: list[int]) -> None:
    t = 12 * 3600.0
    lines: list[str] = []
    for n, ((lv, ev, body), g) in enumerate(zip(items, gaps, strict=True)):
        t += g
        ms = round(t * 1000)
        ts = f"2024-06-12 {ms // 3_600_000 % 24:02d}:{ms // 60_000 % 60:02d}:" \
             f"{ms // 1000 % 60:02d},{ms % 1000:03d}"
        if lv == "RAW":  # a line cut short: starts like a record, is none
            lines.append(f"{ts} {body}")
        else:
            lines.append(f"{ts} - app - {lv} - {ev}: id=ts_{n}, {body}")
    bounds = sorted({min(c, len(lines)) for c in cuts})
    parts = [lines[a:b] for a, b in zip([0, *bounds], [*bounds, len(lines)], strict=True)]
    *rotated, live = parts
    for k, part in enumerate(rotated):
        with gzip.open(logs / f"app.log.{len(rotated) - k}.gz", "wt", encoding="utf-8") as fh:
            fh.write("".join(x + "\n" for x in part))
    (logs / "app.log").write_text("".join(x + "\n" for x in live), encoding="utf-8")


def drawn_logs(tmp_path_factory: Any, monkeypatch: Any, name: str,
               items: list[tuple[str, str, str]], gaps: Any, cuts: list[int]
               ) -> tuple[Path, Path]:
    """A fresh directory with its own sidecar cache and ``items`` written as logs (the
    gaps drawn now unless given as a list): (the directory, its logs)."""
    if not isinstance(gaps, list):
        gaps = gaps.draw(st.lists(_GAP, min_size=len(items), max_size=len(items)))
    d = tmp_path_factory.mktemp(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(d / "cache"))
    logs = d / "logs"
    logs.mkdir()
    write_logs(logs, items, gaps, cuts)
    return d, logs


def scan_whole(logs: Path) -> None:
    """Every record of ``logs`` scanned once (with ``TTSOPS_LOGS_SIDECAR=auto`` this
    writes the rotated files' sidecars)."""
    with open_snapshot([logs], []) as snap:
        for _rec in Scan(snap, Query()).records():
            pass


def read_once(tmp_path_factory: Any, src: Path, name: str,
              read: Callable[[Path], None] = scan_whole) -> Path:
    """A directory holding ``src``'s files linked (``logs``) and the cache (``cache``)
    of one whole ``read`` of them (``TTSOPS_LOGS_SIDECAR=auto``: the sidecars written):
    for several tests' ``_agree`` over links to the same files (``whole_read``)."""
    d = tmp_path_factory.mktemp(name)
    link_files(src, d / "logs")
    with pytest.MonkeyPatch.context() as m:
        m.setenv("XDG_CACHE_HOME", str(d / "cache"))
        m.setenv("TTSOPS_LOGS_SIDECAR", "auto")
        read(d / "logs")
    return d


def linked_from(whole_read: Path, tmp_path: Path, monkeypatch: Any) -> Path:
    """A test's own ``logs`` under ``tmp_path``: the files of ``read_once``'s directory
    linked (the same identities), with an empty cache of its own (``XDG_CACHE_HOME``),
    into which ``read_whole`` copies that read's."""
    logs = link_files(whole_read / "logs", tmp_path / "logs")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return logs


def read_whole(logs: Path, whole_read: Path | None,
               read: Callable[[Path], None] = scan_whole) -> None:
    """``logs`` read whole (``read``) into the cache ``XDG_CACHE_HOME`` names; with
    ``whole_read`` (``read_once``'s directory, ``logs`` linked to its files: the same
    identities) what that read wrote is copied in instead of reading again."""
    if whole_read is None:
        read(logs)
    else:  # (what it writes, written once)
        copy_missing(whole_read / "cache", Path(os.environ["XDG_CACHE_HOME"]))
