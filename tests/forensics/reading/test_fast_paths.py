"""The fast paths equal the plain ones on any input (property tests): grep in raw bytes
against grep in decoded text, the head-only parse against the grammar, the window's
head-only counting against record-by-record counting, the Polars rows of the vectorised
stages path against the record-by-record parser, and its batch-by-batch join against the
Assembler."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ttsops.forensics.analyses.window import WindowCounts
from ttsops.forensics.reading import vector
from ttsops.forensics.reading.scan import (
    ID_CHARS,
    common_prefix,
    grep_bytes,
    grep_lines,
    has_token,
    may_hold_window,
)
from ttsops.logformat.fastparse import head_parse, iter_records
from ttsops.logline import ReadStats, Record, parse, render

EVENTS = ["synthesis_start", "stage_time", "synthesis_complete", "synthesis_failed",
          "cache_health", "http_request"]
KEYS = ["id", "stage", "duration_ms", "queue_ms", "status", "error_code", "warning_code",
        "voice", "text", "x"]
value = st.one_of(
    st.sampled_from(["ts_00000001", "ts_00000002", "llm_inference", "audio_render", "12.5",
                     "7", "failed", "success", "DISK_FULL", "alloy", "٣٤", "5ms", "", "a b",
                     'q"uote', "x,y", "k=v", "中文", "-3e2", ".5", "+4"]),
    st.text(max_size=6))
record = st.builds(
    Record,
    ts=st.sampled_from(["2024-06-12 14:00:00,000", "2024-06-12 14:30:00,500",
                        "2024-06-12 15:00:00,000", "2024-06-12 13:59:59,999"]),
    logger=st.sampled_from(["ttsops.pipeline", "app"]),
    level=st.sampled_from(["INFO", "WARNING", "ERROR", "CRITICAL"]),
    event=st.sampled_from(EVENTS),
    fields=st.dictionaries(st.sampled_from(KEYS), value, max_size=5),
    traceback=st.lists(st.sampled_from(["Traceback (most recent call last):", "  x", "E: y"]),
                       max_size=2))
foreign = st.sampled_from([
    "2024-06-12 14:00:01,000 - app - ERROR - failed to load model",
    "2024-06-12 14:00:01,000 - app - INFO - stage_time:id=ts_00000001",
    "2024-06-12 14:00:02,000 - a b - INFO - stage_time: id=x",
    "２０２４-06-12 14:00:00,000 - app - INFO - stage_time: id=ts_1, stage=s, duration_ms=3",
    "Traceback (most recent call last):", "  File x", "ValueError: stage_time bad",
    "junk stage_time id=ts_00000001", "", "\t", "{\"ts\": \"2024-06-12T14:10:00.000Z\", "
    "\"level\": \"info\", \"event\": \"stage_time\", \"id\": \"ts_9\", \"stage\": \"q\", "
    "\"duration_ms\": 4}", "{broken json stage_time", "٣ digits first",
    "2024-06-12 14:00:00,000 - app - INFO - synthesis_complete: id=ts_00000001, "
    "id=ts_00000002, status=failed, duration_ms=9",
    # dialects: the tutorial's lines, level aliases, unstructured and metric lines, JSON
    # in the stdlib's and structlog's keys
    "2024-06-12 14:00:01,000 - app.tts_engine - INFO - stage_time: stage=llm_inference, "
    "id=ts_00000001, duration_ms=483",
    "2024-06-12 14:00:01,000 - app.tts_engine - ERROR - synthesis_failed: id=ts_00000001, "
    "error_code=SCIPY_FFT_INVALID, Invalid input to scipy.fft",
    "2024-06-12 14:00:01,000 - app - INFO - synthesis_complete: id=ts_00000002, "
    "status=failed, duration_ms=523, text_len=2048 chars, error_code=DISK_FULL, disk full",
    "2024-06-12 14:00:02,000 - app.webui - WARN - cache_health: path=/app/cache, "
    "used=512MB, usage=92.1%",
    "2024-06-12 14:00:02,000 - app.webui - FATAL - stage_time: stage=x, id=ts_9, "
    "duration_ms=1",
    "2024-06-12 14:00:03,000 - app - ERROR - ERROR: scipy.fft failed on input len=1024 for "
    "ts_00000001, exc=RuntimeWarning: invalid value",
    "2024-06-12 14:00:03,000 - root - INFO - total_duration_ms=523",
    "2024-06-12 14:00:03,000 - root - INFO - stage_time",
    '{"asctime": "2024-06-12 14:10:00,000", "name": "app", "levelname": "WARN", '
    '"message": "stage_time: stage=audio_render, id=ts_00000002, duration_ms=70"}',
    '{"timestamp": "2024-06-12T14:20:00.123456Z", "level": "info", "logger": "app", '
    '"event": "synthesis_complete", "id": "ts_00000002", "status": "success", '
    '"duration_ms": 80}'])
num = st.sampled_from(["523.1", "7", "1.2.3", "5ms", "٣٤", "-1", "0.5", "", "1e3"])
ident = st.sampled_from(["ts_00000001", "ts_00000002", "ts_x:y", "a b", "", "中"])


@st.composite
def canonical(draw: st.DrawFn) -> str:
    """Lines in (or near) the layout ttsops writes, which the Polars path splits itself."""
    ts = draw(st.sampled_from(["2024-06-12 14:00:00,000", "2024-06-12 15:00:00,000"]))
    ctx = draw(st.sampled_from(["", "request_id=ab12, ", "request_id=ab12, trace_id=ff, ",
                                "trace_id=ff, request_id=ab12, "]))
    kind = draw(st.sampled_from(["synthesis_start", "stage_time", "synthesis_complete"]))
    body = f"{ctx}id={draw(ident)}"
    if kind == "stage_time":
        body += f", stage={draw(st.sampled_from(['llm_inference', 'x y', '']))}, " \
                f"duration_ms={draw(num)}"
    elif kind == "synthesis_complete":
        body += f", status=failed, duration_ms={draw(num)}, queue_ms={draw(num)}"
    body += draw(st.sampled_from(["", ", elapsed_ms=4", ", id=ts_dup", ", text=\"a, b\"",
                                  ", bad value=1", ",", ", x=1, elapsed_ms=5",
                                  ", free text after", ", elapsed_ms=x",
                                  ", note=elapsed_ms=3"]))
    return f"{ts} - ttsops.pipeline - INFO - {kind}: {body}"


@st.composite
def dialect_line(draw: st.DrawFn) -> str:
    """A line another writer could have written: the tutorial's text (level aliases,
    cumulative-looking stage times, a code followed by free text, unit suffixes,
    unstructured and key=value-only messages) or JSON with the stdlib's or structlog's
    keys."""
    ts = draw(st.sampled_from(["2024-06-12 14:00:00,000", "2024-06-12 14:30:00,500",
                               "2024-06-12 15:00:00,000", "2024-06-12 13:59:59,999"]))
    level = draw(st.sampled_from(["INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"]))
    sid = draw(st.sampled_from(["ts_00000001", "ts_00000002", "ts_a1b2"]))
    n = draw(st.sampled_from(["12", "483", "7.5", "2048 chars", "1240ms", "92.1%", "x"]))
    free = draw(st.sampled_from(["", ", Invalid input to scipy.fft", ", disk full, retry",
                                 ", a=b c"]))
    msg = draw(st.sampled_from([
        f"stage_time: stage=llm_inference, id={sid}, duration_ms={n}",
        f"stage_time: id={sid}, stage=audio_render, duration_ms={n}{free}",
        f"synthesis_complete: id={sid}, status=failed, duration_ms={n}, queue_ms=1, "
        f"text_len={n}, error_code=DISK_FULL{free}",
        f"synthesis_start: id={sid}, text_len={n}, voice=alloy{free}",
        f"synthesis_failed: id={sid}, error_code=SCIPY_FFT_INVALID{free}",
        f"ERROR: scipy.fft failed on input len=1024 for {sid}, exc=RuntimeWarning: x",
        f"total_duration_ms={n}", "failed to load model", f"cache_health: usage={n}"]))
    form = draw(st.sampled_from(["text", "text", "stdlib", "structlog"]))
    if form == "text":
        return f"{ts} - app.tts_engine - {level} - {msg}"
    import json

    if form == "stdlib":
        return json.dumps({"asctime": ts, "name": "app", "levelname": level, "message": msg})
    iso = ts[:10] + "T" + ts[11:19] + "." + ts[20:] + "Z"
    return json.dumps({"event": msg, "level": level.lower(), "timestamp": iso})


line_block = st.lists(st.one_of(record.map(render), foreign, canonical(), dialect_line()),
                      min_size=1, max_size=25)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(line_block, st.lists(st.sampled_from(["stage_time", "ts_00000001", "failed", "ERROR",
                                             "中文", " - WARNING - "]), min_size=1,
                            max_size=2),
       st.lists(st.sampled_from(["failed", "synthesis_complete", "ts_00000002"]),
                max_size=2), st.binary(max_size=4))
def test_grep_bytes_equals_grep_text(lines, needles, require, junk):
    buf = "\n".join(lines).encode() + junk + b"\n"
    assert grep_bytes(buf, tuple(needles), tuple(require)) == \
        grep_lines(buf.decode("utf-8", "replace"), tuple(needles), tuple(require))


@settings(max_examples=300, deadline=None)
@given(st.one_of(record.map(lambda r: render(r).split("\n")[0]), foreign, dialect_line(),
                 st.text()))
def test_head_parse_equals_the_grammar(line):
    h = head_parse(line)
    if h is not None:
        rec = parse(line)
        assert rec is not None and (rec.ts, rec.level, rec.event) == h


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(line_block, st.lists(record.map(render), min_size=1, max_size=25)),
       st.booleans())
def test_window_head_counting_equals_record_counting(lines, keep_ids):
    from ttsops.forensics.reading.scan import window_lines

    since, until = "2024-06-12 14:00:00,000", "2024-06-12 15:00:00,000"
    # as Scan.batches hands lines over: the window's text check done
    flat = window_lines([x for ln in lines for x in ln.split("\n")], since, until)
    fast, rs_fast = WindowCounts(keep_ids), ReadStats()
    fast.feed_lines(flat, rs_fast, since, until)
    slow, rs_slow = WindowCounts(keep_ids), ReadStats()
    for rec in iter_records(flat, rs_slow):
        from ttsops.logindex import norm_ts

        rec.ts = norm_ts(rec.ts) if rec.ts[10:11] != " " else rec.ts
        if since <= rec.ts < until:
            slow.feed(rec)
    assert vars(fast) == vars(slow)
    assert vars(rs_fast) == vars(rs_slow)


metric_message = st.sampled_from([
    "total_duration_ms=695", "total_duration_ms=7.5", "k=v", "_a=1", "k=v=w", "k=", "k= v",
    "K=v", "k=v ", "k=v, j=w", "k=v, k=w", "k=\"q\"", "k=中文", "k=v\u2028", "k=a b",
    "k=\x85", "total_duration_ms=2048 chars", "k:v", "k", "k=v,", "=v", "k=v\t"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["INFO", "ERROR", "WARNING", "WARN", "DEBUG"]),
                          metric_message,
                          st.sampled_from(["2024-06-12 14:10:00,000",
                                           "2024-06-12 15:00:00,000"])),
                min_size=1, max_size=12),
       st.lists(record.map(render), max_size=3), st.booleans())
def test_window_counts_metric_lines_in_bulk_as_the_grammar_reads_them(metrics, others,
                                                                     keep_ids):
    """Metric lines (a message of one ``key=value``, the tutorial's ``total_duration_ms``)
    are counted from the bulk head match; the counts equal those of the record parser."""
    from ttsops.forensics.reading.scan import window_lines

    since, until = "2024-06-12 14:00:00,000", "2024-06-12 15:00:00,000"
    lines = [f"{ts} - root - {lvl} - {msg}" for lvl, msg, ts in metrics] + others
    flat = window_lines([x for ln in lines for x in ln.split("\n")], since, until)
    fast, rs_fast = WindowCounts(keep_ids), ReadStats()
    fast.feed_lines(flat, rs_fast, since, until)
    slow, rs_slow = WindowCounts(keep_ids), ReadStats()
    for rec in iter_records(flat, rs_slow):
        if since <= rec.ts < until:
            slow.feed(rec)
    assert vars(fast) == vars(slow)
    assert vars(rs_fast) == vars(rs_slow)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(line_block, st.sampled_from([[], ["voice"], ["voice", "text"]]))
def test_polars_rows_equal_the_record_parser(lines, by):
    flat = [x for ln in lines for x in ln.split("\n")]
    data = ("\n".join(flat) + "\n").encode()
    since, until = "2024-06-12 14:00:00,000", "2024-06-12 15:00:00,000"
    got = sorted(vector.batch_rows(data, 0, by, since, until).rows())
    want = sorted(vector._python_rows(list(enumerate(flat)), by, since, until))
    assert got == want


@given(st.lists(st.sampled_from(["2024-06-12 13:59:59,999 - a - INFO - e: k=v",
                                 "2024-06-12 14:00:00,000 - a - INFO - e: k=v",
                                 "2024-06-12 16:00:00,000 - a - INFO - e: k=v",
                                 "\tcontinued", "junk", "{\"ts\": \"x\"}"]), max_size=8))
def test_a_chunk_is_only_dropped_when_none_of_its_lines_can_be_in_the_window(lines):
    from ttsops.forensics.reading.scan import window_lines

    since, until = "2024-06-12 14:00:00,000", "2024-06-12 15:00:00,000"
    buf = ("\n".join(lines) + "\n").encode()
    if not may_hold_window(buf, common_prefix(since, until)):
        assert window_lines(lines, since, until) == []


quoted_value = st.lists(st.sampled_from([*'ab, =\\"\\nut0123456789AFDU{}',
                                        "\\u0041", "\\U0010FFFF", "\\U0011FFFF",
                                        "\\uD800", "中", "\t", "\\\\"]),
                        max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "id", "message", "x_1"]),
                          st.one_of(quoted_value.map(lambda v: f'"{v}"'),
                                    st.sampled_from(["1", "ts_1", "", "a b", '"'])),
                          ), min_size=1, max_size=4),
       st.sampled_from([", ", ",", " ,", ", , "]))
def test_parse_line_with_quoted_values_equals_the_grammar(pairs, sep):
    from ttsops.logformat.fastparse import parse_line

    body = sep.join(f"{k}={v}" for k, v in pairs)
    line = f"2024-06-12 14:22:38,415 - app - ERROR - synthesis_failed: {body}"
    assert parse_line(line) == parse(line)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"2024 a\n", b"\tx\n", b"\t\n", b"\n", b"2024 b", b"c\n",
                                 b"2024-06 " * 40 + b"\n", b"\ty" * 30]), max_size=60),
       st.lists(st.integers(1, 400), min_size=1, max_size=20), st.booleans())
def test_cutter_hands_out_whole_records_and_loses_nothing(parts, sizes, keep):
    from ttsops.forensics.reading import _inflate, reader

    data = b"".join(parts)
    old = _inflate.READ_BYTES
    _inflate.READ_BYTES = 64  # small, so that every path of the cutter runs
    try:
        cut = _inflate.Cutter(reader.ReadCounters())
        chunks, pos, k = [], 0, 0
        while pos < len(data):
            n = sizes[k % len(sizes)]
            k += 1
            out = cut.feed(data[pos:pos + n])
            pos += n
            if out:
                chunks.append(out)
        rest = cut.finish(keep_partial=keep)
    finally:
        _inflate.READ_BYTES = old
    for c in chunks:  # every chunk but the rest ends where a record starts
        assert c.endswith(b"\n")
    joined = b"".join(chunks)
    for i, c in enumerate(chunks[1:], 1):
        assert not c.startswith(b"\t"), (i, chunks)
    expect = data if keep or data.endswith(b"\n") else data[:data.rfind(b"\n") + 1]
    assert joined + (rest or b"") == expect
    if rest:
        assert not rest.startswith(b"\t") or not chunks


def _synthesis_lines(draw_ops: list[tuple[int, str, str, int]],
                     layout: str = "plain") -> list[str]:
    """``plain``: per-stage values as ttsops' layout without elapsed_ms (some read as
    cumulative: they never decrease); ``own``: with elapsed_ms (never cumulative);
    ``tutorial``: the tutorial's layout, values growing per id (cumulative)."""
    out = []
    grown: dict[str, int] = {}
    for i, (kind, sid, stage, n) in enumerate(draw_ops):
        ts = f"2024-06-12 14:{i // 60 % 60:02d}:{i % 60:02d},{n % 1000:03d}"
        head = f"{ts} - ttsops.pipeline - INFO - "
        if kind == 0:
            out.append(f"{head}synthesis_start: id={sid}, voice=v{n % 3}")
        elif kind == 1 and layout == "own":
            out.append(f"{head}stage_time: id={sid}, stage={stage}, duration_ms={n}, "
                       f"elapsed_ms={n + 1}")
        elif kind == 1 and layout == "tutorial":
            grown[sid] = grown.get(sid, 0) + n
            out.append(f"{head}stage_time: stage={stage}, id={sid}, "
                       f"duration_ms={grown[sid]}")
        elif kind == 1:
            out.append(f"{head}stage_time: id={sid}, stage={stage}, duration_ms={n}")
        else:
            out.append(f"{head}synthesis_complete: id={sid}, status=success, "
                       f"duration_ms={n * 3}.5, queue_ms={n % 7}")
    return out


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 1, 1, 2]),
                          st.sampled_from(["ts_a", "ts_b", "ts_c", "ts_d"]),
                          st.sampled_from(["llm_inference", "audio_render", "text_normalize"]),
                          st.integers(0, 999)), min_size=1, max_size=60),
       st.lists(st.integers(1, 20), min_size=1, max_size=8),
       st.sampled_from([[], ["voice"]]),
       st.sampled_from([None, "2024-06-12 14:00:20,000"]),
       st.sampled_from(["plain", "own", "tutorial"]),
       st.sampled_from(["auto", "auto", "cumulative", "per-stage"]))
# found by this property: ts_a completes twice as slow as ts_b and ts_c; which of its two
# syntheses is among the 3 slowest goes by the largest component, as record by record
@example([(1, "ts_a", "audio_render", 5), (2, "ts_a", "x", 7), (1, "ts_b", "audio_render", 5),
          (2, "ts_b", "x", 7), (1, "ts_c", "audio_render", 5), (2, "ts_c", "x", 7),
          (1, "ts_a", "llm_inference", 5), (2, "ts_a", "x", 7)], [10], [], None, "plain",
         "auto")
def test_stage_join_equals_the_assembler(ops, cuts, by, since, layout, mode):
    """Batches joined by ``StageJoin`` (any split, ids completing twice or never, a stage
    repeated, records after the last complete; stage times per stage, with elapsed_ms,
    or cumulative, read in any ``--stage-time`` mode) give the Assembler's syntheses."""
    from ttsops.forensics.analyses.stages import StageTimes
    from ttsops.forensics.reading.assemble import Assembler

    lines = _synthesis_lines(ops, layout)
    fast = StageTimes(by, slowest=3)
    join = vector.StageJoin(by, since, fast, slowest=3, stage_time=mode)
    pos, k, base = 0, 0, 0
    while pos < len(lines):  # the batches, as collect_stages hands them over
        part = lines[pos:pos + cuts[k % len(cuts)]]
        pos, k = pos + len(part), k + 1
        join.feed(vector.batch_rows(("\n".join(part) + "\n").encode(), base, by, None, None))
        base += len(part) + 1
    slow, asm = StageTimes(by, slowest=3), Assembler(stage_time=mode)
    for ln in lines:
        rec = parse(ln)
        assert rec is not None
        s = asm.feed(rec)
        if s is not None and (since is None or s.ts >= since):
            slow.feed(s)
    assert fast.n == slow.n
    assert fast.rows() == slow.rows()
    assert sorted(fast.slow) == sorted(slow.slow)
    assert +fast.stage_modes == +slow.stage_modes


_ID_CLASS = r"A-Za-z0-9_.:@/+\-"


@settings(max_examples=300, deadline=None)  # a 0.3 ms case took 618 ms on a loaded box
@given(st.text(alphabet=st.sampled_from(list("ab_-.:@/+=, \\\"é中\n\t")), max_size=30),
       st.text(alphabet=st.sampled_from("ab_-.:"), min_size=1, max_size=4))
@example("ab ab_", "ab")
@example("ab_ ab", "ab")
def test_whole_token_search_equals_the_regex(text, needle):
    """``has_token`` (find, then check the two neighbours) against a regular expression
    with the id alphabet (``ID_CHARS``) as word characters."""
    assert {c for c in map(chr, range(0x250)) if re.fullmatch(f"[{_ID_CLASS}]", c)} == ID_CHARS
    want = re.search(f"(?<![{_ID_CLASS}]){re.escape(needle)}(?![{_ID_CLASS}])", text)
    assert has_token(text, needle) == (want is not None)


lenient_body = st.lists(st.tuples(st.sampled_from(["a", "b", "id", "text_len", "x_1"]),
                                  st.lists(st.sampled_from([*"ab1 =,\"\\\r", ", ", "\u00a0",
                                                            "chars", "ts_ab12", "中", ":"]),
                                           max_size=5).map("".join)),
                        min_size=1, max_size=4)


@settings(max_examples=500, deadline=None)
@given(lenient_body, st.sampled_from(["ev: ", ""]), st.sampled_from([", ", ",", " "]))
def test_parse_line_of_lenient_and_metric_messages_equals_the_grammar(pairs, event, sep):
    """The fast readings of a body with values holding spaces (``2048 chars``) and of a
    message of key=value pairs only (a metric line) give the grammar's record, dialect
    flags included."""
    from ttsops.logformat.fastparse import parse_line

    body = sep.join(f"{k}={v}" for k, v in pairs)
    line = f"2024-06-12 14:00:00,000 - root - INFO - {event}{body}"
    got, want = parse_line(line), parse(line)
    assert got == want
    assert got is None or got.dialect == want.dialect
    assert got is None or list(got.fields.items()) == list(want.fields.items())  # order


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(line_block, st.sampled_from([("2024-06-12 14:00:00,000", "2024-06-12 15:00:00,000"),
                                    ("2024-06-12 14:00:00,000", None),
                                    (None, "2024-06-12 14:30:00,500"),
                                    ("2024-06-12 15:00:00,001", "2024-06-12 16:00:00,000"),
                                    ("2024-06-12 13:00:00", "2024-06-12 14:30:00"),
                                    ("2024-06-12 14", "2024-06-12 14:00:00,000"),
                                    ("2024-06-12 14:30:00,500", "2024-06-12 14:00:00,000"),
                                    ("2024-06-12 14:00:00,000", "2024-06-12 14:00:00,000"),
                                    ("2024-06-12 09:00:00", "2024-06-12 15:00:00")]))
def test_a_chunk_judged_whole_is_what_the_line_check_keeps(lines, window):
    """``chunk_in_window``'s all-or-nothing verdict is ``window_lines``' answer."""
    from ttsops.forensics.reading.scan import chunk_in_window, window_lines

    since, until = window
    flat = [x for ln in lines for x in ln.split("\n")]
    buf = ("\n".join(flat) + "\n").encode()
    verdict = chunk_in_window(buf, since, until)
    kept = window_lines(flat, since, until)
    if verdict is True:
        assert kept == flat
    elif verdict is False:
        assert kept == []


_EDGE_TIMES = st.integers(0, 4 * 3600 * 1000).map(
    lambda ms: f"2024-06-12 {12 + ms // 3600000:02d}:{ms // 60000 % 60:02d}:"
               f"{ms // 1000 % 60:02d},{ms % 1000:03d}")
_EDGE_OTHER = st.sampled_from(["\tTraceback (most recent call last):", "", "  File x",
                               "ERROR: scipy.fft failed on input len=1024", "{\"ts\": 1}",
                               "٣ Arabic-Indic digit", "é accent", "12345 not a time",
                               "2024-06-12 14", "2024-06-12T14:00:00,000 - a - INFO - e: a=1"])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_EDGE_TIMES, min_size=1, max_size=30),
       st.lists(st.tuples(st.integers(0, 40), _EDGE_OTHER), max_size=6),
       st.booleans(), st.booleans(),
       st.sampled_from([("2024-06-12 13:00:00", "2024-06-12 14:00:00"),
                        ("2024-06-12 13:30:00,250", "2024-06-12 15:00:00,000"),
                        ("2024-06-12 12:00:00", "2024-06-12 12:00:01"),
                        ("2024-06-12 14", "2024-06-12 15"),
                        ("2024-06-12 11:00:00", "2024-06-12 17:00:00")]))
def test_an_edge_chunk_cut_to_its_window_is_what_the_line_check_keeps(
        times, others, ordered, final_newline, window):
    """A chunk at an edge of the window (time-ordered records, tracebacks, foreign and
    empty lines between them) is cut to the window in the bytes (``window_span``) where it
    can be; what ``Select`` hands out is always ``window_lines``' answer."""
    from ttsops.forensics.reading.match import Select, common_prefix, window_span
    from ttsops.forensics.reading.scan import Query, window_lines

    since, until = window
    lines = [f"{t} - app - INFO - synthesis_start: id=ts_{i:08x}"
             for i, t in enumerate(sorted(times) if ordered else times)]
    for pos, other in others:
        lines.insert(min(pos, len(lines)), other)
    buf = ("\n".join(lines) + ("\n" if final_newline else "")).encode()
    flat = buf.decode().split("\n")
    if flat and flat[-1] == "":
        flat.pop()
    want = window_lines(flat, since, until)
    got = Select(Query(since, until), common_prefix(since, until))(buf)
    assert (got or []) == want
    span = window_span(buf, since, until)
    if span is not None:
        a, b = span
        cut = buf[a:b].decode().split("\n")
        if b == len(buf) and cut[-1] == "":
            cut.pop()
        assert cut == want


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(line_block, st.lists(st.sampled_from([" - ERROR - ", " - CRITICAL - ", " - FATAL - ",
                                             " - WARNING - ", " -", "  - ERROR - ", " E"]),
                            min_size=2, max_size=3, unique=True),
       st.lists(st.sampled_from([" - ERROR - ", "-ERROR - ", "x- ERROR - ", " - - FATAL - ",
                                 "\n- CRITICAL - "]), max_size=4))
def test_grep_bytes_for_needles_sharing_their_first_byte_equals_grep_text(lines, needles,
                                                                          traps):
    """Several needles that all start with the same byte (the level needles of ``top``)
    are searched without it; a hit counts only where that byte precedes it, so the lines
    found are those of the text search (traps: the rest of a needle after another byte)."""
    buf = "\n".join([*lines, *traps]).encode() + b"\n"
    assert grep_bytes(buf, tuple(needles)) == \
        grep_lines(buf.decode("utf-8", "replace"), tuple(needles))
