"""``ship`` makes the rows of a file's lines exactly as the record loop would (the
oracle below: ``logformat.parse`` a line at a time, lines grouped as every reader
groups them), however the text is cut into runs: the same records, tracebacks attached
to the same record, the same lines left over as no record, the same golden columns,
texts and end offsets; the rows' texts, read again, give the same records."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttsops.fleet.schema import NUMBER_FIELDS, STRING_FIELDS
from ttsops.fleet.shipfile import Done, runs
from ttsops.fleet.shiprows import FileRows
from ttsops.logformat import FOREIGN_TB, ReadStats, iter_records, parse, to_number, unescape_tb
from ttsops.logformat.timestamps import norm_ts

HEAD = "2024-06-12 14:22:38,415 - "
LINES = st.sampled_from([
    HEAD + "ttsops.pipeline - INFO - synthesis_start: id=ts_1, text_len=5",
    "2024-06-12 14:22:39,000 - app - ERROR - synthesis_failed: id=ts_2, error_code=X, boom now",
    "2024-06-12 14:22:40,000 - app - WARN - cache_health: usage=91.2%",
    "2024-06-12 14:22:41,000 - app - INFO - done ts_00ab12 in 3 s",
    '{"ts": "2024-06-12 14:22:42,000", "level": "INFO", "event": "x", "id": "ts_3"}',
    "\tTraceback (most recent call last):",
    '\t  File "x.py", line 1, in f',
    "\tline with \\t an escape",
    "Traceback (most recent call last):",
    "ValueError: bad",
    "  File \"y.py\", line 2",
    "just some text",
    "",
    "{not json",
    "2024-06-12 14:22:43,000 - app - NOTALEVEL - x: a=1",
    # the lines the vectorised path takes, and their near misses
    HEAD + 'app.tts - INFO - synthesis_start: id=ts_9, text="今天天气真好，我们去公园。", '
           'lang=zh, voice=nova, text_len=98 chars',
    HEAD + 'app - INFO - synthesis_start: id=ts_9, text="a, b", lang=zh',
    HEAD + 'app - INFO - synthesis_start: id=ts_9, text="a\\"b", lang=zh',
    HEAD + 'app - INFO - synthesis_start: id=ts_9, text= "x", lang=zh',
    HEAD + "root - INFO - stage_time: stage=llm_inference, id=ts_9, duration_ms=267",
    HEAD + "root - INFO - stage_time: stage=a, id=ts_9, duration_ms=1., queue_ms=+5",
    HEAD + "root - INFO - stage_time: stage=a, id=ts_9, duration_ms=.5e3, elapsed_ms=1e999",
    HEAD + "root - INFO - stage_time: stage=a, stage=b, id=ts_9",
    HEAD + "root - INFO - stage_time: stage=a,  id=ts_9",
    HEAD + "root - INFO - stage_time: stage= a b , id=  ts_9 , duration_ms= 12 ms",
    HEAD + "root - INFO - stage_time: ",
    HEAD + "root - INFO - total_duration_ms=619",
    HEAD + "root - INFO - total_duration_ms=619, n=2",
    HEAD + "root - INFO - total_duration_ms=619, note=ts_abc",
    HEAD + "root - INFO - total_duration_ms=619, request_id=r1",
    HEAD + "root - INFO - total_duration_ms=619, id=ts_1",
    HEAD + "root - INFO - ERROR: failed to load model",
    HEAD + "root - INFO - event: a=é",
    HEAD + "root - DEBUG - x_y: status=ok, error_code=, warning_code=W1, voice=v, lang=en",
    HEAD + "a b - INFO - e: a=1",
    HEAD + "app - INFO - e: a=1 - b=2",
    "2024-06-12T14:22:38.415Z - app - INFO - e: a=1",
    "١٠٢٤-06-12 14:22:38,415 - app - INFO - e: a=1",
])


def oracle(lines: list[str]) -> list[tuple]:
    """The rows of the record loop: (ts, logger, level, event, strings, numbers, keys,
    vals, traceback, text, end); a line that is no record has ts None (dated by the
    record before it: not compared here)."""
    out: list[tuple] = []
    cur = None
    cur_lines: list[str] = []
    held: list[str] = []
    cur_end = 0
    pos = 0

    def row(rec, texts, end):
        f = rec.fields
        ts = rec.ts if rec.ts[10:11] == " " else norm_ts(rec.ts)
        return (ts, rec.logger, rec.level, rec.event, [f.get(k, "") for k in STRING_FIELDS],
                [to_number(f.get(k)) for k in NUMBER_FIELDS], list(f), list(f.values()),
                rec.traceback, "\n".join(texts), end)

    def other(line, end):
        return (None, "", "", "", [""] * len(STRING_FIELDS), [None] * len(NUMBER_FIELDS),
                [], [], [], line, end)

    for raw in lines:
        pos += len(raw.encode()) + 1
        line = raw.rstrip("\r")
        if line.startswith("\t"):
            if cur is not None:
                cur.traceback.append(unescape_tb(line[1:]))
                cur_lines.append(line)
                cur_end = pos
            else:
                out.append(other(line, pos))
            continue
        rec = parse(line)
        if rec is None:
            if cur is not None and line and FOREIGN_TB.match(line):
                cur.traceback.append(line)
                cur_lines.append(line)
                cur_end = pos
            elif line:
                if cur is not None:
                    held.append(line)
                    cur_end = pos
                else:
                    out.append(other(line, pos))
            continue
        if cur is not None:
            out.append(row(cur, cur_lines, cur_end))
            out.extend(other(h, cur_end) for h in held)
            held = []
        cur, cur_lines, cur_end = rec, [line], pos
    if cur is not None:
        out.append(row(cur, cur_lines, cur_end))
        out.extend(other(h, cur_end) for h in held)
    return out


def shipped(lines: list[str], eol: str, cuts: list[int], tmp: Path) -> list[tuple]:
    p = tmp / "app.log"
    p.write_bytes("".join(x + eol for x in lines).encode())
    fr = FileRows("")
    got_lines: list[str] = []
    got_ends: list[int] = []
    for ls, es in runs(p, 0, None, Done()):
        got_lines += ls
        got_ends += es
    # the runs as the reader cut them, then cut again where hypothesis says
    at = 0
    for c in sorted(set(cuts)):
        if at < c < len(got_lines):
            fr.add(got_lines[at:c], got_ends[at:c], False)
            at = c
    fr.add(got_lines[at:], got_ends[at:], True)
    r = fr.rows
    strings, numbers = r.strings, r.numbers
    return [(ts, lg, lv, ev, [s[i] for s in strings], [n[i] for n in numbers], k, v, tb,
             tx, e) for i, (ts, lg, lv, ev, k, v, tb, tx, e) in enumerate(
                 zip(r.ts, r.logger, r.level, r.event, r.keys, r.vals, r.traceback, r.text,
                     r.end, strict=True))]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(LINES, max_size=30), st.booleans(), st.lists(st.integers(0, 30), max_size=4))
def test_rows_are_the_record_loops(tmp_path: Path, lines: list[str], crlf: bool,
                                   cuts: list[int]):
    eol = "\r\n" if crlf else "\n"
    want = oracle([x + ("\r" if crlf else "") for x in lines])
    got = shipped(lines, eol, cuts, tmp_path)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if w[0] is None:
            assert g[1:] == w[1:]
        else:
            assert g == w
    # offsets never go down, and the last is the end of the text
    ends = [e for *_x, e in got]
    assert ends == sorted(ends)
    if got:
        last = max(i for i, x in enumerate(lines) if x)
        assert ends[-1] == sum(len((x + eol).encode()) for x in lines[:last + 1])
    # the rows' texts, read again in their order (what --source reads), give the same
    stats, again = ReadStats(), ReadStats()
    texts = [t for *_x, t, _e in got]
    lines_read = [t for x in texts for t in x.split("\n")]
    assert [(r.ts, r.fields, r.traceback) for r in iter_records(lines_read, again)] == \
        [(r.ts, r.fields, r.traceback) for r in iter_records(lines, stats)]
    assert again.skipped == stats.skipped


def test_a_record_cut_between_runs_keeps_its_traceback(tmp_path: Path):
    lines = [HEAD + "app - ERROR - synthesis_failed: id=ts_1, error_code=E",
             "Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: x",
             HEAD + "app - INFO - synthesis_start: id=ts_2"]
    for cut in range(1, len(lines)):
        got = shipped(lines, "\n", [cut], tmp_path)
        assert [g[8] for g in got] == [lines[1:4], []]
