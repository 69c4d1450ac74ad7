"""The unit-suffix flag the sidecar keeps per record (``units``) counts what ``logs
check``'s dialect table counts record by record, and gives the same example: for any
field values, the three ways agree -- record by record (``DialectStats.feed``), a frame's
JSON searched by Polars (``_units_frame``, a frame without the flag), and the flag with
the JSON read only for the example's record."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.forensics.analyses.dialect import DialectStats
from ttsops.forensics.reading.sidecar import RECORD_COLUMNS, UNITS, frame_of
from ttsops.logformat import Record
from ttsops.logformat.units import has_unit

_piece = st.sampled_from(["12", "3.5", "0", "-4", "+7", "ms", "s", "%", "kB", " ", "\t",
                          "\u00a0", "\u2003", "x", "é", "١", ".", "abcdefghi", "\n", ""])
value = st.lists(_piece, max_size=5).map("".join)
fields = st.dictionaries(st.sampled_from(["a", "b", "duration_ms", "msg", "rtf"]), value,
                         max_size=4)


def _stats(recs: list[Record], how: str) -> tuple[int, dict[str, str]]:
    ds = DialectStats()
    if how == "records":
        for r in recs:
            ds.feed(r)
        return ds.units, ds.examples
    cols = [*RECORD_COLUMNS, "k_elapsed_ms"]
    full = frame_of(recs, [*cols, UNITS])
    # a frame of 3 records at a time, as a file at a time
    for i in range(0, len(recs), 3):
        part = full.slice(i, 3)
        if how == "json":
            ds.feed_frame(part.select(cols))
        else:
            def rows_of(rows: list[int], part: Any = part) -> Any:
                return part[sorted(rows)].select(RECORD_COLUMNS)

            ds.feed_frame(part.drop("fields", "logger"), rows_of)
    return ds.units, ds.examples


@settings(max_examples=150, deadline=None)
@given(st.lists(fields, max_size=12))
def test_the_flag_the_json_and_the_records_agree(fss: list[dict[str, str]]) -> None:
    recs = [Record("2024-06-12 00:00:00,000", "app", "INFO", "e", fs, [], 0) for fs in fss]
    want = _stats(recs, "records")
    assert want[0] == sum(has_unit(fs) for fs in fss)
    assert _stats(recs, "json") == want
    assert _stats(recs, "flag") == want


def test_times_not_canonical_are_checked_record_by_record_without_the_json() -> None:
    # a frame without ``fields`` and ``logger`` (as read from a sidecar): the records
    # are made with the rows ``rows_of`` gives, as from the whole frame
    from pathlib import Path

    from ttsops.forensics.analyses.check import FRAME_HOT, Checker
    from ttsops.forensics.reading.logfiles import LogFile

    recs = [Record(ts, "app", "INFO", ev, fs, [], 0) for ts, ev, fs in (
        ("2024-06-12 00:00:05,000", "synthesis_complete", {"id": "a", "status": "ok"}),
        ("2024-06-12 00:00:00", "synthesis_complete", {"id": "b", "duration_ms": "3ms",
                                                       "status": "ok",
                                                       "error_code": "NOPE"}))]
    cols = [*RECORD_COLUMNS, UNITS, *(f"k_{k}" for k in FRAME_HOT)]
    full = frame_of(recs, cols)
    f = LogFile(Path("/logs/app.log.1.gz"), "rotated", 0, "logs", True)
    got = []
    for df, rows_of in ((full, None),
                        (full.drop("fields", "logger"),
                         lambda rows: full[sorted(rows)].select(RECORD_COLUMNS))):
        chk = Checker()
        chk.frame_checks(f, df, rows_of)
        got.append({k: (i.checked, i.bad, i.examples) for k, i in chk.items.items()})
    assert got[0] == got[1]
    assert got[0]["complete_fields"][1] == 1 and got[0]["monotonic"][1] == 1
