"""``report``'s per-file companions (``rendering.report_parts``): the charts of files
merged from each file's ``Collect`` (kept as a companion, read back) are the charts of
one ``Collect`` fed every file's frame (random records split anywhere: minutes across
files, stages and codes first seen in later files, gauges, times the canonical path does
not take); and on tutorial-style rotated files the whole page and summary are those of
the reading without companions (diagnose's frames handed to the charts and rules), on
the first run (companions written) and after (read), with ``until`` at a file's edges,
with ``since``, under another ``--stage-time`` mode, beside damaged companions, a
damaged file and a file appended to."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttsops.forensics.analyses import alerts as alerts_mod
from ttsops.forensics.analyses.rules import load as load_rules
from ttsops.forensics.reading import companion, sidecar
from ttsops.forensics.reading.sources import open_snapshot
from ttsops.forensics.rendering import report as report_mod
from ttsops.forensics.rendering import report_parts
from ttsops.forensics.rendering.report_data import Collect
from ttsops.logformat import dialects
from ttsops.logformat.record import Record

from ..companion_days import day_with_cache, linked_day, loads
from ..stdlib_logs import write_day

COLUMNS = [*sidecar.RECORD_COLUMNS, *(f"k_{k}" for k in sidecar.HOT)]

REC = st.tuples(
    st.sampled_from(["synthesis_complete", "stage_time", "cache_health", "error", "info"]),
    st.sampled_from(["", "llm_inference", "audio_render", "custom"]),
    st.sampled_from(["5", "12.5", "30 ms", "x", "", "70000", "0.001"]),
    st.booleans(),
    st.integers(0, 200),  # seconds after the record before
    st.booleans())  # a time the canonical path does not take (second 60)


def _records(items: list[tuple[str, str, str, bool, int, bool]]) -> list[Record]:
    out = []
    t = 0
    for i, (ev, stage, num, flag, gap, odd) in enumerate(items):
        t += gap
        m, s = divmod(t, 60)
        ts = f"2024-06-12 {m // 60 % 24:02d}:{m % 60:02d}:{60 if odd else s:02d},{i % 1000:03d}"
        f: dict[str, str] = {"id": f"r{i % 7}"}
        lvl = "INFO"
        if ev == "synthesis_complete":
            f.update(status="failed" if flag else "success", duration_ms=num, queue_ms=num)
            if flag:
                f["error_code"] = "DISK_FULL"
        elif ev == "stage_time":
            f.update(stage=stage, duration_ms=num)
        elif ev == "cache_health":
            f.update(usage=num)
        elif ev == "error":
            lvl = "CRITICAL" if flag else "ERROR"
            if stage:
                f["error_code"] = stage.upper()
        out.append(Record(ts, "app", lvl, ev, f, [], 0))
    return out


def _state(col: Collect) -> str:
    """Everything a ``Collect`` holds, in its order (minutes, stages, codes, values)."""
    return json.dumps({
        "records": col.records, "levels": list(col.levels.items()),
        "first": col.first, "last": col.last, "span": col.file_span,
        "ok": sorted(col.ok.items()), "failed": sorted(col.failed.items()),
        "codes": [(c, sorted(v.items())) for c, v in col.codes.items()],
        "e2e": [(m, a.tolist()) for m, a in col.e2e.as_dict().items()],
        "queue": [(m, a.tolist()) for m, a in col.queue.as_dict().items()],
        "stage": [(s, [(m, a.tolist()) for m, a in v.as_dict().items()])
                  for s, v in col.stage.items()],
        "usage": col.usage})


def _kept(part: Collect, where: Path, path: str) -> Collect:
    """A file's charts as a later run reads them: written as a companion, read back."""
    side = where / "k.parquet"
    side.touch()
    tag = report_parts.tag("auto", True)
    tables, head = report_parts.tables_of(part)
    assert companion.save(side, "k", report_parts.NAME, tag, 3, tables, head) is not None
    got = companion.load(side, "k", report_parts.NAME, tag, 3)
    assert got is not None
    return report_parts.collect_of(got[0], got[1], path, True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(REC, max_size=80), st.lists(st.integers(1, 25), min_size=1, max_size=4))
@example([("stage_time", "custom", "5", False, 0, False),
          ("stage_time", "llm_inference", "5", False, 61, False)], [1])
def test_files_merged_are_the_files_fed_at_once(items, cuts) -> None:
    recs = _records(items)
    files: list[list[Record]] = []
    pos = k = 0
    while pos < len(recs):
        files.append(recs[pos:pos + cuts[k % len(cuts)]])
        pos, k = pos + len(files[-1]), k + 1
    frames = [(sidecar.frame_of(f, COLUMNS).select(Collect.FRAME_COLUMNS), f"f{i}")
              for i, f in enumerate(files)]
    want = Collect(True)
    want.feed_frames(frames)
    got = Collect(True)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (df, path) in enumerate(frames):
            part = Collect(True)
            part.feed_frame(df, path)
            if i % 2 == 0:
                part = _kept(part, Path(tmp), path)
            report_parts.merge(got, part)
    assert _state(got) == _state(want)
    if want.first is not None:  # the charts' buckets too
        t0 = 1718150400.0
        a, b = want.view(t0, 300, 400, []), got.view(t0, 300, 400, [])
        assert (a.ok, a.failed, a.codes, a.e2e, a.queue, a.stage) == \
            (b.ok, b.failed, b.codes, b.e2e, b.queue, b.stage)


def test_a_damaged_table_changes_nothing(tmp_path) -> None:
    """A companion whose table cannot be read raises before it changes the charts."""
    recs = _records([("synthesis_complete", "", "5", False, 10, False),
                     ("stage_time", "custom", "7", False, 70, False)])
    part = Collect(True)
    part.feed_frame(sidecar.frame_of(recs, COLUMNS).select(Collect.FRAME_COLUMNS), "f")
    tables, head = report_parts.tables_of(part)
    into = Collect(True)
    before = _state(into)
    with pytest.raises(ValueError):
        report_parts.merge_tables(into, tables, {**head, "sizes": [[0, 0]] * 3}, "f")
    with pytest.raises(KeyError):
        report_parts.merge_tables(into, {}, head, "f")
    assert _state(into) == before


# --- the command, on rotated files ------------------------------------------------------

def _page(logs: Path, monkeypatch: pytest.MonkeyPatch, how: str, since: str | None = None,
          until: str | None = None) -> str:
    """The report's page (without its time of making) and summary: ``parts`` (this
    module's reading, checked taken where it applies) or ``frames`` (the reading before
    it: diagnose's frames handed to the charts and the rules)."""
    taken: list[bool] = []
    real = report_mod._read_parts

    def spy(*a: Any, **kw: Any) -> Any:
        got = real(*a, **kw) if how == "parts" else None
        taken.append(got is not None)
        return got

    with monkeypatch.context() as m:
        m.setattr(report_mod, "_read_parts", spy)
        with open_snapshot([logs], []) as snap:
            html, summary = report_mod.build(snap, since, until, rules=load_rules())
    assert taken == ([how == "parts"] if since is None else [])
    return "\n".join(ln for ln in html.splitlines() if "generated 20" not in ln) \
        + json.dumps(summary, sort_keys=True)


def _companions(cache: Path) -> dict[str, int]:
    d = cache / "ttsops" / "sidecar"
    return {p.name: p.stat().st_mtime_ns
            for p in [*d.glob("*.report.ttc"), *d.glob("*.alerts-keep.ttc")]}


def _made_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    logs, cache = day_with_cache(tmp_path, monkeypatch)
    with open_snapshot([logs], []) as snap:  # (the first whole read writes the sidecars)
        report_mod.build(snap, None, None, rules=load_rules())
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "read")
    return logs, cache


@pytest.fixture(scope="module")
def made_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The day and its first whole read (sidecars and companions written), made once."""
    root = tmp_path_factory.mktemp("report-day")
    with pytest.MonkeyPatch.context() as m:
        _made_day(root, m)
    return root


@pytest.fixture
def day(made_day: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> tuple[Path, Path]:
    """``made_day`` as this test's own (for tests that do not write into the logs)."""
    logs, cache = linked_day(made_day, tmp_path, monkeypatch)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "read")
    return logs, cache


@pytest.fixture
def own_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The day made for this test alone (it appends to a log file)."""
    return _made_day(tmp_path, monkeypatch)


def test_written_once_read_after_same_page(day, monkeypatch) -> None:
    logs, cache = day
    for p in _companions(cache):
        (cache / "ttsops" / "sidecar" / p).unlink()
    want = _page(logs, monkeypatch, "frames")
    assert "alert episodes" in want
    sidecars = list((cache / "ttsops" / "sidecar").glob("*.parquet"))
    assert _companions(cache) == {}  # (the reading before writes none)
    charts, keeps = loads(monkeypatch, "report"), loads(monkeypatch, "alerts-keep")
    assert _page(logs, monkeypatch, "parts") == want  # made from the frames, written
    made = _companions(cache)
    assert len(made) == 2 * len(sidecars) and charts and not any(charts + keeps)
    charts.clear()
    keeps.clear()
    assert _page(logs, monkeypatch, "parts") == want  # read
    assert len(charts) == len(keeps) == len(sidecars) and all(charts + keeps)
    assert _companions(cache) == made  # not written again
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "off")  # (no sidecars: the record path)
    assert _page(logs, monkeypatch, "frames") == want


def test_damaged_companions_and_another_file_version(own_day, monkeypatch) -> None:
    logs, cache = own_day
    want = _page(logs, monkeypatch, "frames")
    _page(logs, monkeypatch, "parts")
    d = cache / "ttsops" / "sidecar"
    made = sorted(_companions(cache))
    # cut short (fails its checks) and damaged inside a table (its length intact): the
    # same page (the file's frame read again, every column), made again after
    short = d / made[0]
    short.write_bytes(short.read_bytes()[:200])
    for victim in made[1:4]:
        raw = bytearray((d / victim).read_bytes())
        raw[-300:-200] = bytes(100)
        (d / victim).write_bytes(bytes(raw))
    assert _page(logs, monkeypatch, "parts") == want
    assert _page(logs, monkeypatch, "parts") == want
    seen = loads(monkeypatch, "report")
    assert _page(logs, monkeypatch, "parts") == want
    assert seen and all(seen)
    # another version of a file (appended to: another identity): its companions made
    # anew, the old ones never read for it
    gz = sorted(logs.glob("*.gz"))[2]
    with gzip.open(gz, "ab") as fh:
        fh.write(b"2024-06-12 23:59:59,000 - app - INFO - synthesis_complete: id=zz, "
                 b"status=success, duration_ms=5\n")
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")
    fresh = _page(logs, monkeypatch, "frames")
    assert fresh != want
    seen.clear()
    assert _page(logs, monkeypatch, "parts") == fresh
    assert seen.count(False) == 1


def _times(logs: Path) -> list[tuple[str, str]]:
    out = []
    for gz in logs.glob("*.gz"):
        with gzip.open(gz, "rt") as fh:
            recs = [ln[:23] for ln in fh if ln[:2] == "20"]
        out.append((min(recs), max(recs)))
    return sorted(out)


def test_a_window_at_a_files_edges(day, monkeypatch) -> None:
    """``until`` on a file's last record, just after it, inside a file; ``since`` (its
    own reading, with a look-back: no companions)."""
    logs, _cache = day
    _page(logs, monkeypatch, "parts")
    spans = _times(logs)
    hi = spans[2][1]
    mid = spans[3][0][:20] + "500"
    after = hi[:20] + f"{int(hi[20:]) + 1:03d}" if hi[20:] != "999" else hi
    for until in (hi, after, mid):
        want = _page(logs, monkeypatch, "frames", until=until)
        assert _page(logs, monkeypatch, "parts", until=until) == want, until
    since = spans[1][0]
    assert _page(logs, monkeypatch, "parts", since=since) == \
        _page(logs, monkeypatch, "frames", since=since)


@pytest.mark.parametrize("mode", ["per-stage", "cumulative"])
def test_stage_time_modes(day, monkeypatch, mode) -> None:
    """Companions made under one ``--stage-time`` mode are not read under another."""
    logs, _cache = day
    _page(logs, monkeypatch, "parts")
    dialects.set_stage_time_mode(mode)
    try:
        want = _page(logs, monkeypatch, "frames")
        seen = loads(monkeypatch, "report")
        assert _page(logs, monkeypatch, "parts") == want
        assert seen and not any(seen)
        seen.clear()
        assert _page(logs, monkeypatch, "parts") == want
        assert seen and all(seen)
    finally:
        dialects.set_stage_time_mode("auto")


def test_a_damaged_file(tmp_path, monkeypatch) -> None:
    """A rotated file with a hole: the page (its grey band) as before, twice."""
    logs = tmp_path / "logs"
    write_day(logs, requests=700, max_bytes=30_000)
    gz = sorted(logs.glob("*.gz"))[3]
    raw = bytearray(gz.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 64] = os.urandom(64)
    gz.write_bytes(bytes(raw))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "off")
    want = _page(logs, monkeypatch, "frames")
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")
    with open_snapshot([logs], []) as snap:
        report_mod.build(snap, None, None, rules=load_rules())
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "read")
    assert _page(logs, monkeypatch, "frames") == want
    for _ in range(2):
        with open_snapshot([logs], []) as snap:
            html, summary = report_mod.build(snap, None, None, rules=load_rules())
        assert "\n".join(ln for ln in html.splitlines() if "generated 20" not in ln) \
            + json.dumps(summary, sort_keys=True) == want


def test_rules_without_a_literal(day, monkeypatch, tmp_path) -> None:
    """Rules without a literal pre-filter (no ``raw`` read, no pre-filter companion)."""
    logs, cache = day
    rules = tmp_path / "r.toml"
    rules.write_text('[[rule]]\nname = "many"\nkind = "count"\ncount = 3\nwithin = "1m"\n'
                     'severity = "warning"\nlevel = "INFO"\n')
    for p in (cache / "ttsops" / "sidecar").glob("*.alerts-keep.ttc"):
        p.unlink()
    with open_snapshot([logs], []) as snap:  # (the rules' own read: the reference)
        want, _ = alerts_mod.evaluate(snap, None, None, load_rules(str(rules)))
    assert want
    for _ in range(2):
        with open_snapshot([logs], []) as snap:
            _html, summary = report_mod.build(snap, None, None,
                                              rules=load_rules(str(rules)))
        assert summary["alert episodes"] == len(want)
    assert not list((cache / "ttsops" / "sidecar").glob("*.alerts-keep.ttc"))
