"""``synth_frames``: the syntheses joined by Polars over sidecar frames are the
Assembler's, on the same records: the simulator's logs (ttsops' own writer: elapsed_ms,
warnings with ids), tutorial-style logs (cumulative stage_time, tracebacks, ids that never
complete), several processes sharing one rotating file (ids split across files, records
out of order), and random records (hypothesis: ids completing twice or never, a stage
repeated, stage times in every ``--stage-time`` mode, any split into files)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttsops.forensics.reading import sidecar, synth_frames
from ttsops.forensics.reading.assemble import Assembler
from ttsops.forensics.reading.scan import Query, Scan
from ttsops.forensics.reading.sources import open_snapshot
from ttsops.logformat.record import Record, to_number
from ttsops.logline import STAGES

from ..stdlib_logs import shared_file_writers, write_day
from ..synth_ops import OP, cut, records

FIELDS = ("text_len", "voice", "lang", "format", "engine", "cache_hit", "model_stage",
          "error_code")
METRICS = ("spectral_centroid", "rms", "peak", "silence_ratio", "clipped_ratio")


def _want(recs_by_file: list[list[Record]], mode: str | None = None) -> list[dict[str, Any]]:
    asm = Assembler(stage_time=mode)
    out = []
    for recs in recs_by_file:
        for rec in recs:
            s = asm.feed(rec)
            if s is None or s.complete is None:
                continue
            out.append({
                "id": s.id, "ts": s.ts, "status": s.status, "e2e": s.e2e, "queue": s.queue,
                **{f: s.get(f) for f in FIELDS},
                "where": s.failed.fields.get("where") if s.failed is not None else None,
                "audio_ts": s.audio.ts if s.audio is not None else None,
                **{f"m_{m}": s.audio.num(m) if s.audio is not None else None
                   for m in METRICS},
                **{f"st_{st}": s.stages.get(st) for st in STAGES}})
    return out


def _got(recs_by_file: list[list[Record]], mode: str | None = None) -> list[dict[str, Any]]:
    """The join's syntheses, the fields read from their own columns (``sidecar.HOT``);
    the same as when every field is decoded from the records' JSON."""
    out = []
    for names in ((*FIELDS, *METRICS), ()):
        frames = [sidecar.frame_of(recs, synth_frames.frame_columns(names))
                  for recs in recs_by_file]
        df, join = synth_frames.syntheses(frames, FIELDS, METRICS, STAGES, mode)
        assert not join.overflow
        out.append([] if df is None else [{k: v for k, v in d.items() if k != "seq"}
                                          for d in df.to_dicts()])
    assert any(f"k_{m}" in synth_frames.frame_columns(METRICS) for m in METRICS)
    _same(out[0], out[1])
    return out[0]


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            vx, vy = x[k], y[k]
            if isinstance(vx, float) and isinstance(vy, float) and math.isnan(vx):
                assert math.isnan(vy), (k, x, y)
            else:
                assert vx == vy, (k, x, y)


def _by_file(logs: Path) -> list[list[Record]]:
    out: list[list[Record]] = []
    with open_snapshot([logs], []) as snap:
        cur = None
        for rec, f in Scan(snap, Query(None, None, use_index=False)).hits():
            if f is not cur:
                out.append([])
                cur = f
            out[-1].append(rec)
    return out


@pytest.fixture(autouse=True)
def _line_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTSOPS_LOGS_SIDECAR", "off")


def test_simulator_logs(incident: tuple[Path, dict]) -> None:
    files = _by_file(incident[0])
    assert len(files) > 2
    want = _want(files)
    assert len(want) > 1000 and any(w["where"] for w in want) and any(w["audio_ts"]
                                                                       for w in want)
    _same(_got(files), want)


def test_tutorial_logs_cumulative(tmp_path: Path) -> None:
    write_day(tmp_path, requests=300, incomplete=frozenset({5, 77}),
              tracebacks=frozenset({9, 150}))
    files = _by_file(tmp_path)
    assert len(files) > 3
    want = _want(files)
    assert any(w["st_audio_render"] is not None for w in want)
    _same(_got(files), want)
    for mode in ("cumulative", "per-stage"):
        _same(_got(files, mode), _want(files, mode))


def test_shared_file_writers(tmp_path: Path) -> None:
    shared_file_writers(tmp_path, requests=600)
    files = _by_file(tmp_path)
    assert len(files) > 3
    _same(_got(files), _want(files))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OP, max_size=60), st.lists(st.integers(1, 20), min_size=1, max_size=5),
       st.sampled_from(["auto", "cumulative", "per-stage"]))
@example([("stage_time", "ts_a", "text_normalize", "5", False),
          ("stage_time", "ts_a", "llm_prompt_gen", "12.5", False),
          ("synthesis_complete", "ts_a", "", "30 ms", False)], [1], "auto")
def test_random_records(ops, cuts, mode) -> None:
    recs = records(ops)
    files = cut(recs, cuts)
    _same(_got(files, mode), _want(files, mode))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=8),
                          st.sampled_from(["12", "1.5e3", " 7", "7 ", "inf", "nan", "-0",
                                           "+.5", "1.", "1e999", "0x10", "1_000", "٣4",
                                           "12 ms", "-3e-2"])), max_size=20))
def test_numbers_are_to_number(values) -> None:
    import polars as pl

    raw = pl.Series(values, dtype=pl.Utf8)
    # the texts Polars does not cast read one by one, and by one plan (``few=0``)
    for got in (synth_frames.numbers(raw).to_list(), synth_frames.numbers(raw, 0).to_list()):
        for v, g in zip(values, got, strict=True):
            want = to_number(v)
            if want is not None and want != want:
                continue
            assert g == want or (g is None and want is None), (v, g, want)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OP, max_size=60), st.lists(st.integers(1, 20), min_size=1, max_size=5),
       st.integers(1, 3))
def test_overflow_is_the_assemblers_dropping(ops, cuts, most) -> None:
    """The join says ``overflow`` exactly when the Assembler, holding at most ``most``
    syntheses in flight, would have dropped one (then the caller reads records)."""
    recs = records(ops)
    files = cut(recs, cuts)
    asm = Assembler(max_pending=most)
    for rec in recs:
        asm.feed(rec)
    join = synth_frames.SynthJoin(FIELDS, METRICS, STAGES, max_pending=most)
    base = 0
    for recs_f in files:
        df = sidecar.frame_of(recs_f, synth_frames.frame_columns())
        join.feed(synth_frames.rows(df, base, FIELDS, METRICS))
        base += df.height + 1
    assert join.overflow == (asm.dropped > 0)
