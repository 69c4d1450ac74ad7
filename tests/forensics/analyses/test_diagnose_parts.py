"""``diagnose``'s companion tables (``diagnose_parts``, ``reading.companion``): the
syntheses joined from per-file parts are those of the join over the same files (random
records split anywhere, ids spanning files, every ``--stage-time`` mode); and on
tutorial-style rotated files the companions are written once, read after, never read
beside a sidecar that fails its checks or from another file version, and the answer
(the whole JSON and text) is the record path's and the frames' pass without companions,
also with ``until`` at a file's edges and with a damaged file."""

from __future__ import annotations

import gzip
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttsops.forensics.analyses import diagnose, diagnose_frames, diagnose_parts, diagnose_pieces
from ttsops.forensics.reading import companion, sidecar, synth_frames
from ttsops.forensics.reading.sources import open_snapshot
from ttsops.logformat import dialects
from ttsops.logline import STAGES

from ..companion_days import day_with_cache, linked_day, loads
from ..synth_ops import OP, cut, records

REAL = diagnose_frames.collect
COLUMNS = [*sidecar.RECORD_COLUMNS, *(f"k_{k}" for k in sidecar.HOT)]
FIELDS, METRICS = diagnose_pieces.FIELDS, diagnose_parts.METRICS

def _rows(df: Any) -> list[dict[str, Any]]:
    return [] if df is None else df.to_dicts()


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], float) and math.isnan(x[k]):
                assert isinstance(y[k], float) and math.isnan(y[k]), (k, x, y)
            else:
                assert x[k] == y[k], (k, x, y)


def _kept(part: diagnose_parts.Part, where: Path, mode: str) -> diagnose_parts.Part:
    """The part as a later run reads it: written as a companion and read back."""
    side = where / "k.parquet"
    side.touch()
    tag = diagnose_parts.tag(mode)
    assert companion.save(side, "k", "diagnose", tag, part.height, part.tables(),
                          part.values()) is not None
    got = companion.load(side, "k", "diagnose", tag, part.height)
    assert got is not None
    back = diagnose_parts.Part.of(*got)
    back.rows_of = part.rows_of  # (the run reads them from the file's sidecar)
    return back


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OP, max_size=60), st.lists(st.integers(1, 20), min_size=1, max_size=5),
       st.sampled_from(["auto", "cumulative", "per-stage"]), st.integers(1, 4))
@example([("synthesis_start", "ts_a", "", "5", False),
          ("stage_time", "ts_a", "text_normalize", "5", False),
          ("synthesis_start", "ts_a", "", "5", False),  # (an id open, started again)
          ("stage_time", "ts_a", "llm_prompt_gen", "12.5", False),
          ("synthesis_complete", "ts_a", "", "30 ms", False)], [2], "auto", 1)
def test_parts_join_as_the_files_join(ops, cuts, mode, per) -> None:
    """Each file's part joined within it, the ids open across its start joined again
    (``per`` files at a time): the syntheses (every column, ``seq`` too) of
    ``SynthJoin`` over the same files, and the records open at the end."""
    files = cut(records(ops), cuts)
    frames = [sidecar.frame_of(recs, COLUMNS) for recs in files]
    want, join = synth_frames.syntheses(frames, FIELDS, METRICS, STAGES, mode)
    pj = diagnose_parts.PartJoin(mode)
    got = []
    base = 0
    group: list[tuple[diagnose_parts.Part, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, df in enumerate(frames):
            part = diagnose_parts.make(df, mode)
            if i % 2:
                part = _kept(part, Path(tmp), mode)
            group.append((part, base))
            base += df.height + 1
            if len(group) == per or i == len(frames) - 1:
                got.append(pj.feed(group))
                group = []
    import polars as pl

    _same(_rows(pl.concat(got, how="vertical_relaxed")) if got else [], _rows(want))
    # the records still open at the end are the join's
    for k in diagnose_parts.OPEN_KINDS:
        assert pj.carry.get(k, pl.DataFrame()).to_dicts() == join.carry[k].to_dicts() \
            if frames else True
    # (the ids open, and how many records each: what ``TooMany`` counts)
    want_open: dict[str, int] = {}
    for f in join.carry.values() if frames else ():
        for x in f.get_column("id").to_list():
            want_open[x] = want_open.get(x, 0) + 1
    assert pj.opened == want_open


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OP, max_size=60), st.lists(st.integers(1, 20), min_size=1, max_size=5),
       st.integers(1, 3))
def test_too_many_in_flight_only_where_the_join_may_overflow(ops, cuts, most) -> None:
    """``PartJoin`` gives up (the caller takes the frames' pass, which decides exactly)
    whenever the join over the same files overflows."""
    files = cut(records(ops), cuts)
    frames = [sidecar.frame_of(recs, COLUMNS) for recs in files]
    join = synth_frames.SynthJoin(FIELDS, METRICS, STAGES, "auto", max_pending=most)
    pj = diagnose_parts.PartJoin("auto", max_pending=most)
    gave_up = False
    base = 0
    for df in frames:
        join.feed(synth_frames.rows(df, base, FIELDS, METRICS))
        if not gave_up:
            try:
                pj.feed([(diagnose_parts.make(df, "auto"), base)])
            except diagnose_parts.TooMany:
                gave_up = True
        base += df.height + 1
    assert gave_up or not join.overflow


# --- the command, on rotated files ------------------------------------------------------

def _run(logs: Path, monkeypatch: pytest.MonkeyPatch, how: str,
         until: str | None = None) -> str:
    """``diagnose`` (data and text): ``parts`` (companions), ``frames`` (the frames' pass
    without them), ``records`` (the record path); each checks its path was taken."""
    taken: list[bool] = []

    def spy(*a: Any, **kw: Any) -> Any:
        got = None if how == "records" else REAL(*a, **kw, companions=how == "parts")
        taken.append(got is not None)
        return got

    monkeypatch.setattr(diagnose_frames, "collect", spy)
    with open_snapshot([logs], []) as snap:
        rep = diagnose.run(snap, None, until)
    assert taken == [how != "records"]
    return json.dumps([rep.data, rep.text], sort_keys=True, default=str)


def _companions(cache: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns
            for p in (cache / "ttsops" / "sidecar").glob("*.diagnose.ttc")}


@pytest.fixture
def day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The day made for this test alone (it writes into a log file)."""
    return day_with_cache(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def made_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The day and the record path's answer on it (the first whole read: the sidecars
    written), made once."""
    root = tmp_path_factory.mktemp("diagnose-day")
    with pytest.MonkeyPatch.context() as m:
        logs, _cache = day_with_cache(root, m)
        return root, _run(logs, m, "records")


@pytest.fixture
def ran_day(made_day: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> tuple[Path, Path, str]:
    """``made_day`` as this test's own (for tests that do not write into the logs), as
    the record path left it (``TTSOPS_LOGS_SIDECAR=auto``), and its answer."""
    logs, cache = linked_day(made_day[0], tmp_path, monkeypatch)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")
    return logs, cache, made_day[1]


def test_written_once_read_after_same_answer(ran_day, monkeypatch) -> None:
    logs, cache, want = ran_day  # (the record path's answer)
    sidecars = list((cache / "ttsops" / "sidecar").glob("*.parquet"))
    assert len(sidecars) >= 5
    assert json.loads(want)[0]["findings"]
    assert _companions(cache) == {}  # (the record path writes none)
    assert _run(logs, monkeypatch, "frames") == want
    assert _companions(cache) == {}
    seen = loads(monkeypatch)
    assert _run(logs, monkeypatch, "parts") == want  # made from the frames, and written
    made = _companions(cache)
    assert len(made) == len(sidecars) and seen and not any(seen)
    seen.clear()
    assert _run(logs, monkeypatch, "parts") == want  # read
    assert seen and all(seen) and len(seen) == len(sidecars)
    assert _companions(cache) == made  # not written again


def test_read_only_setting_reads_and_writes_them(ran_day, monkeypatch) -> None:
    """``TTSOPS_LOGS_SIDECAR=read`` (the default) uses existing sidecars and writes the
    companions (tables of what they hold, not a parse of the logs)."""
    logs, cache, want = ran_day  # (the record path's, auto: it wrote the sidecars)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "read")
    assert _run(logs, monkeypatch, "parts") == want
    assert _companions(cache)
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "off")
    before = _companions(cache)
    assert _run(logs, monkeypatch, "records") == want
    assert _companions(cache) == before


def test_not_read_beside_a_damaged_sidecar_nor_for_another_version(day, monkeypatch):
    logs, cache = day
    want = _run(logs, monkeypatch, "records")
    _run(logs, monkeypatch, "parts")
    made = _companions(cache)
    d = cache / "ttsops" / "sidecar"
    # a sidecar that fails its checks: its companion is not looked up (the file is read)
    victim = sorted(d.glob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    seen = loads(monkeypatch)
    assert _run(logs, monkeypatch, "parts") == want
    assert len(seen) == len(made) - 1 and all(seen)
    # a companion that fails its checks (cut short): ignored, made again
    comp = d / sorted(made)[1]
    comp.write_bytes(comp.read_bytes()[:200])
    seen.clear()
    assert _run(logs, monkeypatch, "parts") == want
    assert seen.count(False) == 1
    key = comp.name.split(".")[0]
    assert companion.load(d / f"{key}.parquet", key, "diagnose", diagnose_parts.tag("auto"),
                          _rows_of(d, key)) is not None
    # a companion whose bytes are damaged inside a table (its length intact): the same
    # answer (the file's frame read, or the pass without companions), made again after
    for victim in sorted(_companions(cache))[:2]:
        raw = bytearray((d / victim).read_bytes())
        raw[-300:-200] = bytes(100)
        (d / victim).write_bytes(bytes(raw))
    assert _run(logs, monkeypatch, "parts") == want
    assert _run(logs, monkeypatch, "parts") == want
    seen.clear()
    assert _run(logs, monkeypatch, "parts") == want
    assert seen and all(seen)
    # another version of a file (appended to: another identity): another key, its
    # companion made anew; the old one is never read for it
    gz = sorted(logs.glob("*.gz"))[2]
    with gzip.open(gz, "ab") as fh:
        fh.write(b"2024-06-12 23:59:59,000 - app - INFO - note: appended\n")
    fresh = _run(logs, monkeypatch, "records")
    seen.clear()
    assert _run(logs, monkeypatch, "parts") == fresh
    assert seen.count(False) == 1


def _rows_of(d: Path, key: str) -> int:
    got = sidecar.scan_checked(d / f"{key}.parquet", key, [])
    assert got is not None
    return got[1].records


def _times(logs: Path) -> list[tuple[str, str]]:
    """Each rotated file's first and last record time, in the files' order."""
    out = []
    with open_snapshot([logs], []) as snap:
        for f in snap.files:
            if f.gz:
                with gzip.open(f.path, "rt") as fh:
                    recs = [ln[:23] for ln in fh if ln[:2] == "20"]
                out.append((min(recs), max(recs)))
    return sorted(out)


def test_until_at_a_files_edges(ran_day, monkeypatch) -> None:
    """A file wholly before ``until`` is read from its companion, one it cuts from its
    frame: the answer is the record path's with ``until`` on a record of a file, on a
    file's last record, just after it, and before everything."""
    logs, cache, _want = ran_day  # (the record path run: the sidecars written)
    _run(logs, monkeypatch, "parts")
    spans = _times(logs)
    hi = spans[2][1]
    mid = spans[3][0][:20] + "500"
    after = hi[:20] + f"{int(hi[20:]) + 1:03d}" if hi[20:] != "999" else hi
    for until in (hi, after, mid, spans[0][0]):
        want = _run(logs, monkeypatch, "records", until)
        seen = loads(monkeypatch)
        assert _run(logs, monkeypatch, "parts", until) == want, until
        assert _run(logs, monkeypatch, "frames", until) == want, until
        monkeypatch.undo()
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
        monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "auto")
        if until == after:
            assert seen and any(seen)


def test_a_damaged_file(day, monkeypatch) -> None:
    """A rotated file with a hole (bytes overwritten in its middle): the same answer
    from companions as from the record path."""
    logs, _cache = day
    gz = sorted(logs.glob("*.gz"))[3]
    raw = bytearray(gz.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 64] = os.urandom(64)
    gz.write_bytes(bytes(raw))
    want = _run(logs, monkeypatch, "records")
    assert _run(logs, monkeypatch, "parts") == want
    assert _run(logs, monkeypatch, "parts") == want
    assert _run(logs, monkeypatch, "frames") == want


@pytest.mark.parametrize("mode", ["per-stage", "cumulative"])
def test_stage_time_modes(ran_day, monkeypatch, mode) -> None:
    """A companion made under one ``--stage-time`` mode is not read under another."""
    logs, _cache, _want = ran_day  # (the record path run: the sidecars written)
    _run(logs, monkeypatch, "parts")
    auto = _run(logs, monkeypatch, "parts")
    dialects.set_stage_time_mode(mode)
    try:
        want = _run(logs, monkeypatch, "records")
        # (auto reads the tutorial's stage times as cumulative: per stage differs)
        assert (want != auto) == (mode == "per-stage")
        seen = loads(monkeypatch)
        assert _run(logs, monkeypatch, "parts") == want
        assert seen and not any(seen)
        assert _run(logs, monkeypatch, "parts") == want
    finally:
        dialects.set_stage_time_mode("auto")
