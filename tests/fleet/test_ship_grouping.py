"""``ship`` groups a file's lines into records exactly as every reader does
(``logformat.iter_records``): the same records, tracebacks attached to the same record,
the same lines left over as no record; the text of the rows is the file's text."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttsops.fleet.ship import _records, _Text
from ttsops.logformat import ReadStats, iter_records

LINES = st.sampled_from([
    "2024-06-12 14:22:38,415 - ttsops.pipeline - INFO - synthesis_start: id=ts_1, text_len=5",
    "2024-06-12 14:22:39,000 - app - ERROR - synthesis_failed: id=ts_2, error_code=X, boom now",
    "2024-06-12 14:22:40,000 - app - WARN - cache_health: usage=91.2%",
    "2024-06-12 14:22:41,000 - app - INFO - done ts_00ab12 in 3 s",
    '{"ts": "2024-06-12 14:22:42,000", "level": "INFO", "event": "x", "id": "ts_3"}',
    "\tTraceback (most recent call last):",
    '\t  File "x.py", line 1, in f',
    "Traceback (most recent call last):",
    "ValueError: bad",
    "  File \"y.py\", line 2",
    "just some text",
    "",
    "{not json",
    "2024-06-12 14:22:43,000 - app - NOTALEVEL - x: a=1",
])


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(LINES, max_size=30), st.booleans())
def test_ship_groups_lines_as_the_readers_do(tmp_path: Path, lines: list[str], crlf: bool):
    eol = "\r\n" if crlf else "\n"
    p = tmp_path / "app.log"
    p.write_bytes("".join(x + eol for x in lines).encode())
    got = list(_records(_Text(p, 0, None)))
    stats = ReadStats()
    want = list(iter_records(lines, stats))
    recs = [r for r, _lines, _end in got if r is not None]
    assert [(r.ts, r.level, r.event, r.fields, r.traceback) for r in recs] == \
        [(r.ts, r.level, r.event, r.fields, r.traceback) for r in want]
    # the lines that are no record are shipped as rows of their own, one each
    assert sum(1 for r, _l, _e in got if r is None) == stats.skipped
    # offsets never go down, and the last is the end of the text
    ends = [e for _r, _l, e in got]
    assert ends == sorted(ends)
    # the rows' texts, read again in their order (what --source reads), give the same
    again = ReadStats()
    texts = [x for _r, ls, _e in got for x in ls]
    assert [(r.ts, r.fields, r.traceback) for r in iter_records(texts, again)] == \
        [(r.ts, r.fields, r.traceback) for r in want]
    assert again.skipped == stats.skipped
    if got:
        last_content = max(i for i, x in enumerate(lines) if x) if any(lines) else -1
        assert ends[-1] == sum(len(x) + len(eol) for x in lines[:last_content + 1])
