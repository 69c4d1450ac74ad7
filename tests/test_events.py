from __future__ import annotations

import asyncio

import pytest

from ttsops import events
from ttsops.logline import iter_records, render
from ttsops.logsink import LogSink


def test_fields_formatting_and_context_order(captured):
    log = events.get_logger("ttsops.test")
    with events.context(request_id="req-1", trace_id="4bf92f3577b34da6a3ce929d0e0e4736"):
        log.info("synthesis_start", id="ts_0000abcd", text_len=6, cache_hit=False, rms=0.0241,
                 skipped=None)
    (_, logger, level, event, fields, tb), = captured
    assert (logger, level, event, tb) == ("ttsops.test", "INFO", "synthesis_start", [])
    # context first, then the event's own fields: the seed's sed extracts the synthesis id
    assert list(fields) == ["request_id", "trace_id", "id", "text_len", "cache_hit", "rms"]
    assert fields["cache_hit"] == "false" and fields["rms"] == "0.0241"


def test_context_is_per_task(captured):
    log = events.get_logger("t")

    async def one(n: int) -> None:
        with events.context(request_id=f"r{n}"):
            await asyncio.sleep(0.01 * (3 - n))
            log.info("e", n=n)

    async def main() -> None:
        await asyncio.gather(*(one(n) for n in range(3)))

    asyncio.run(main())
    assert sorted((f["request_id"], f["n"]) for *_, f, _tb in captured) == [
        ("r0", "0"), ("r1", "1"), ("r2", "2")]


def test_error_with_exception_has_where_and_traceback(captured):
    log = events.get_logger("t")

    def explode() -> None:
        raise ValueError("user said:\n2024-06-12 14:30:00,000 - x - ERROR - forged: a=b")

    try:
        explode()
    except ValueError as e:
        log.error("synthesis_failed", exc=e, error_code="INTERNAL_ERROR")
    item = captured[0]
    fields, tb = item[4], item[5]
    assert fields["exc_type"] == "ValueError"
    module, func, line = fields["where"].split(":")
    assert module == __name__ and func == "explode" and int(line) > 0
    assert tb[0].startswith("Traceback") and any("explode" in t for t in tb)
    # the exception's message (user input with a newline) stays one traceback line
    text = render(events_record(item))
    assert not any(line.lstrip().startswith("2024") for line in text.splitlines()[1:])
    rec, = iter_records(text.splitlines())
    assert rec.traceback[-1].startswith("ValueError: user said:\n2024")


def events_record(item):
    from ttsops.logline import Record
    _t, logger, level, event, fields, tb = item
    return Record("2024-06-12 14:30:00,000", logger, level, event, fields, tb)


def test_invalid_field_names_are_refused(captured):
    log = events.get_logger("t")
    for bad in ("Bad", "ts", "level", "with-dash"):
        with pytest.raises(ValueError):
            log.info("e", **{bad: 1})


def test_level_filter():
    sink = events.ListSink()
    events.set_sink(sink, "WARNING")
    log = events.get_logger("t")
    log.info("quiet")
    log.warning("loud")
    assert [i[3] for i in sink.items] == ["loud"]


def test_stdlib_logging_is_routed(tmp_path):
    import logging
    sink = LogSink(tmp_path)
    events.set_sink(sink)
    events.install_stdlib_bridge()
    try:
        logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
        try:
            {}["k"]
        except KeyError:
            logging.getLogger("some.lib").exception("boom")
    finally:
        sink.close()
        logging.getLogger("").handlers = []
    recs = list(iter_records((tmp_path / "app.log").read_text().splitlines()))
    assert [(r.logger, r.level, r.fields["msg"]) for r in recs] == [
        ("uvicorn.error", "WARNING", "Invalid HTTP request received."),
        ("some.lib", "ERROR", "boom")]
    assert recs[1].traceback[-1] == "KeyError: 'k'"
