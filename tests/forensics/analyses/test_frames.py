"""The vectorised forms of the whole-data analyses over sidecar frames
(``sidecar.frames``) give what their record-by-record forms give on the same records:
numbers read from fields (``Record.num``), the dialect table of ``logs check``, the
report's per-minute charts, the stage join's rows. Random records (hypothesis) in ttsops'
own grammar, the tutorial's dialect and JSON lines; values with units, white space of
every kind, digits of other scripts, quotes and backslashes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttsops.forensics.analyses.dialect import DialectStats
from ttsops.forensics.reading import sidecar, vector_frames
from ttsops.forensics.rendering.report import Collect
from ttsops.forensics.rendering.report_minutes import Minutes
from ttsops.logformat import parse, record
from ttsops.logformat.record import Record, to_number

_WS = st.sampled_from([" ", "\t", "\n", "\x0b", "\x1c", "\x85", "\xa0", "\u2003", ""])
_NUMLIKE = st.builds(
    lambda sign, a, dot, b, exp, ws, unit: f"{sign}{a}{dot}{b}{exp}{ws}{unit}",
    st.sampled_from(["", "-", "+"]), st.sampled_from(["", "0", "12", "2048", "٣", "7"]),
    st.sampled_from(["", "."]), st.sampled_from(["", "5", "25"]),
    st.sampled_from(["", "e3", "E-2", "e", "e+999"]), _WS,
    st.sampled_from(["", "ms", "chars", "%", "MB", "x1", "abcdefghi", '"', "\\", "²"]))
_VALUE = st.one_of(_NUMLIKE, st.text(max_size=12),
                   st.sampled_from(["", "DISK_FULL", "failed", "success", "ts_1"]))
_KEYS = st.sampled_from(["id", "stage", "duration_ms", "queue_ms", "elapsed_ms", "status",
                         "error_code", "usage", "text_len", "msg", "voice"])
_BITS = st.integers(0, 511)


@given(_VALUE)
@example("1.")
@example(" \u20037ms")
@example("٣4")
@example("\x1c5")
def test_num_expr_is_to_number(v):
    got = pl.DataFrame({"v": [v, None]}, schema={"v": pl.Utf8}).select(
        x=vector_frames.num_expr(pl.col("v"))).get_column("x").to_list()
    assert got[1] is None
    want = to_number(v)
    if want is not None and want != want:  # (NaN cannot come from the regex: no "nan")
        return
    assert got[0] == want


def _records(draw_list: list[tuple[str, str, str, dict[str, str], int]]) -> list[Record]:
    return [Record(f"2024-06-12 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d},"
                   f"{(i * 997 + bits * 13) % 1000:03d}", "app", lv, ev, fields,
                   ["Traceback ..."] if i % 7 == 0 else [], bits)
            for i, (lv, ev, _x, fields, bits) in enumerate(draw_list)]


_RECORD = st.tuples(st.sampled_from(["INFO", "ERROR", "WARNING", "CRITICAL", "DEBUG"]),
                    st.sampled_from(["synthesis_complete", "stage_time", "cache_health",
                                     "synthesis_start", "unstructured", "", "metric"]),
                    st.just(""), st.dictionaries(_KEYS, _VALUE, max_size=6), _BITS)


def _frame(recs: list[Record], extra: tuple[str, ...] = ()) -> pl.DataFrame:
    cols = list(sidecar.RECORD_COLUMNS)
    cols += [c for c in (*extra, *(f"k_{k}" for k in sidecar.HOT)) if c not in cols]
    return sidecar.frame_of(recs, cols)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_RECORD, max_size=40), st.integers(0, 40))
@example([("INFO", "metric", "", {"text_len": "12\tms", "voice": "7\xa0%"}, 0)], 0)
@example([("INFO", "metric", "", {"msg": "a", "text_len": "2048 chars"}, 2)], 1)
@example([("INFO", "metric", "", {"a": "12\tms"}, 0), ("INFO", "metric", "", {"a": "5 ms"}, 0),
          ("INFO", "metric", "", {"a": "7\tms"}, 0)], 0)
@example([("INFO", "metric", "", {"a": "5 ms"}, 0), ("INFO", "metric", "", {"a": "12\tms"}, 0),
          ("INFO", "metric", "", {"a": "1 ms"}, 0)], 0)
def test_dialect_counted_by_frames_is_record_by_record(rows, cut):
    recs = _records(rows)
    one = DialectStats()
    for r in recs:
        one.feed(r)
    two = DialectStats()
    for part in (recs[:cut], recs[cut:]):  # two files
        df = _frame(part)
        two.feed_frame(df)
    modes = {"cumulative": 2, "per-stage": 1}
    assert two.to_json(modes) == one.to_json(modes)
    assert (two.records, two.units, two.stage_time, two.stage_elapsed, two.flags,
            two.aliases, two.examples) == (one.records, one.units, one.stage_time,
                                           one.stage_elapsed, one.flags, one.aliases,
                                           one.examples)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_RECORD, max_size=40), st.integers(0, 40), st.booleans())
# several values of a stage, end to end and queue wait in one minute (their order kept)
@example([("INFO", "stage_time", "", {"stage": "b", "duration_ms": "5"}, 0),
          ("INFO", "stage_time", "", {"stage": "a", "duration_ms": "9.5"}, 0),
          ("INFO", "stage_time", "", {"stage": "b", "duration_ms": "7"}, 0),
          ("INFO", "synthesis_complete", "", {"duration_ms": "3", "queue_ms": "1",
                                             "status": "failed"}, 0),
          ("INFO", "synthesis_complete", "", {"duration_ms": "4", "queue_ms": "0.1"}, 0)],
         0, True)
def test_report_minutes_from_frames_are_record_by_record(rows, cut, utc):
    recs = _records(rows)
    one, two = Collect(utc), Collect(utc)
    for i, r in enumerate(recs):
        one.feed(r, "a" if i < cut else "b")
    for path, part in (("a", recs[:cut]), ("b", recs[cut:])):
        two.feed_frame(_frame(part, Collect.FRAME_COLUMNS), path)
    for name in ("ok", "failed", "codes", "stage", "e2e", "queue", "usage", "records",
                 "levels", "first", "last", "file_span"):
        a, b = _minutes(getattr(one, name)), _minutes(getattr(two, name))
        assert b == a, name
        if isinstance(a, dict):
            assert list(b) == list(a), f"{name}: order"  # (the charts list them so)


def _minutes(x):
    """A chart's values per minute (``Minutes``) as the dict of arrays they stand for."""
    if isinstance(x, Minutes):
        return x.as_dict()
    if isinstance(x, dict) and x and all(isinstance(v, Minutes) for v in x.values()):
        return {k: v.as_dict() for k, v in x.items()}
    return x


def test_a_frame_made_of_records_is_their_sidecar(tmp_path):
    """``frame_of`` (the files without a sidecar) and a written sidecar give one frame."""
    lines = ["2024-06-12 00:00:01,000 - app - INFO - stage_time: stage=llm_inference, "
             "id=ts_1, duration_ms=725",
             '{"asctime": "2024-06-12 00:00:02,000", "name": "app", "levelname": "ERROR", '
             '"message": "synthesis_failed: id=ts_1, error_code=DISK_FULL, No space"}',
             "2024-06-12 00:00:03,000 - app - WARN - cache_health: usage=97.5%, free_mb=3"]
    recs = [r for r in (parse(ln) for ln in lines) if r is not None]
    assert len(recs) == 3 and recs[1].dialect & record.JSON_STDLIB
    cols = [*sidecar.RECORD_COLUMNS, *(f"k_{k}" for k in sidecar.HOT)]
    df = sidecar.frame_of(recs, cols)
    assert sidecar.records_of(df) == recs
    assert json.loads(df.get_column("fields")[1]) == recs[1].fields
    assert df.get_column("k_error_code").to_list() == [None, "DISK_FULL", None]
    assert df.get_column("k_usage").to_list() == [None, None, "97.5%"]


# --- logs check: the records' checks a file's frame at a time --------------------------

_TS = st.one_of(
    st.builds(lambda h, m, s, ms: f"2024-06-12 {h:02d}:{m:02d}:{s:02d},{ms:03d}",
              st.integers(0, 1), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999)),
    st.sampled_from(["2024-06-12T00:00:01.5", "2024-06-12 00:00:02.250"]))
_CODE = st.sampled_from([None, "", "DISK_FULL", "NOT_A_CODE", "TEXT_EMPTY", "CACHE_NEAR_FULL"])
_CHECK_RECORD = st.tuples(
    _TS, st.sampled_from(["INFO", "ERROR", "WARNING"]),
    st.sampled_from(["synthesis_start", "stage_time", "synthesis_complete",
                     "synthesis_failed", "audio_metrics", "http_request", "cache_health"]),
    st.sampled_from([None, "", "ts_a", "ts_b", "ts_c", "ts_d"]), _CODE, _CODE,
    st.sampled_from([None, "", "success", "failed"]),
    st.sampled_from([None, "", "1200", "35 ms"]),
    st.sampled_from([None, "text_normalize", "llm_inference", "audio_render"]),
    st.sampled_from([None, "false", "true"]), st.booleans())


def _check_records(rows: list[tuple[Any, ...]]) -> list[Record]:
    out = []
    for ts, lv, ev, sid, ec, wc, status, dur, stage, hit, tb in rows:
        f = {k: v for k, v in (("id", sid), ("error_code", ec), ("warning_code", wc),
                               ("status", status), ("duration_ms", dur), ("stage", stage),
                               ("cache_hit", hit), ("where", "engine" if tb else None))
             if v is not None}
        out.append(Record(ts, "app", lv, ev, f, ["Traceback ..."] if tb else []))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_CHECK_RECORD, max_size=50), st.lists(st.integers(0, 50), max_size=3),
       st.sampled_from([None, "2024-06-12 00:30:00,000"]), st.sampled_from([200_000, 1, 2, 3]),
       st.sampled_from([1, 7, 250_000]))
def test_check_by_frames_is_record_by_record(rows, cuts, since, id_file_max, batch):
    from ttsops.forensics.analyses import check_ids
    from ttsops.forensics.analyses.check import Checker
    from ttsops.forensics.reading.sources import LogFile

    recs = _check_records(rows)
    bounds = [0, *sorted(min(c, len(recs)) for c in cuts), len(recs)]
    files = [(LogFile(Path(f"/logs/app.log.{9 - i}.gz"), "rotated", 0, "logs", True),
              recs[a:b]) for i, (a, b) in enumerate(itertools.pairwise(bounds))]
    one, two = Checker(1000.0, since), Checker(1000.0, since)
    # (small: the least recently seen open ids dropped, the frame path record by record)
    one.ID_FILE_MAX = two.ID_FILE_MAX = id_file_max
    for f, part in files:
        for r in part:
            one.feed(r, f)
    cols = [*sidecar.RECORD_COLUMNS, *(f"k_{k}" for k in sidecar.HOT)]
    was = check_ids.BATCH
    check_ids.BATCH = batch  # (small: the syntheses joined after each file or a few)
    try:
        for f, part in files:
            df = sidecar.frame_of(part, cols)
            two.dialect.feed_frame(df)
            two.feed_frame(f, df)
    finally:
        check_ids.BATCH = was
    assert two.ids is not None or not recs

    def open_ids(c: Checker) -> list[tuple[str, int]]:
        if c.ids is None:  # the record path: the ids in the order they were last seen
            return [(k.split("\x00", 1)[1], n) for k, n in c.id_file.items()]
        return c.ids.open.sort("last").select("id", "no").rows()

    def state(c: Checker) -> Any:
        pending = c.pending()  # (the frame path joins what it has batched first)
        return ([(i.name, i.checked, i.bad, i.examples) for i in c.items.values()],
                c.file_records, c.file_back, c.inner_back, c.inner_n, c.small_overlaps,
                c.overlap_s, open_ids(c), c.last_ts,
                [(k, v[1], v[2], v[3]) for k, v in c.file_no.items()],
                pending, c.asm.stage_modes, c.dialect.to_json({}))

    assert state(two) == state(one)
