"""Issue 15, "every line keeps the grammar": hostile strings (newlines, forged
``, request_id=VICTIM, id=ts_forged`` boundaries, control characters, quotes,
backslashes, tabs, unicode line separators) driven through every path that writes a
line, and every resulting line checked: a record line parses (strictly) to exactly the
fields that were written, a traceback line follows with a tab and holds no ``key=``
boundary, and nothing the client sent becomes a field of its own.

Part one drives the writer's own paths in-process (field values, exception messages,
chained exceptions and notes, the standard ``logging`` bridge) through the real sink's
renderer; part two drives a real server (request fields, voice strings and objects,
unknown JSON keys, engine options, headers, URL paths, web page reports) and reads the
files it wrote.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttsops import events
from ttsops.logline import Record, iter_records, parse, parse_fields, render

from .kit import SPEECH, Server, body, start_server

MARK = "ZQX9MARK"  # what a forged field would carry; never the whole value of a field
FRAGMENTS = ["\n", "\r\n", "\t", "\\", '"', "'", ", ", "=", "\x00", "\x1b[31m", "\u2028",
             "\u202e", "\ufeff", "é", "中文", "😀", "\ud800", f", request_id={MARK}",
             f", id={MARK}", f"\nid={MARK}", f"\n\t, error_code={MARK}", f"{MARK}=",
             f"\n2024-06-12 14:22:38,415 - app - ERROR - synthesis_failed: id={MARK}",
             "\\n", "\\u002c", "%", "{}", "[bold]"]
hostile = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)),
                   min_size=1, max_size=8).map("".join)
KEY_EQ = re.compile(r"[A-Za-z0-9_]=")


def check_lines(text: str) -> list[Record]:
    """Every physical line is a record that parses strictly, or a tab-led traceback line
    with no ``key=``; returns the records."""
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("\t"):
            assert not KEY_EQ.search(line), line
            continue
        rec = parse(line)
        assert rec is not None, line
        head = line.split(f"{rec.event}:", 1)
        if len(head) == 2 and head[1]:
            assert parse_fields(head[1][1:]) is not None, line  # the writer's own form
    recs = list(iter_records(text.split("\n")))
    for r in recs:
        for k, v in r.fields.items():
            assert v != MARK and k != MARK.lower(), (k, v)
    return recs


# --- part one: the writer's paths, in-process ------------------------------------------

class Capture:
    def __init__(self) -> None:
        self.items: list[events.Item] = []

    def submit(self, item: events.Item) -> None:
        self.items.append(item)


def _rendered(items: list[events.Item]) -> list[tuple[Record, str]]:
    out = []
    for _t, logger, level, event, fields, tb in items:
        rec = Record("2024-06-12 14:22:38,415", logger, level, event,
                     events.format_fields(fields), tb)
        out.append((rec, render(rec)))
    return out


@given(h=hostile, h2=hostile)
@settings(max_examples=300, deadline=None)
def test_every_writer_path_renders_lines_that_parse_back_exactly(h, h2):
    cap = Capture()
    prev = events.set_sink(cap, "DEBUG")
    log = events.get_logger("ttsops.test")
    try:
        with events.context(request_id="req_ok", id="ts_ok"):
            log.info("synthesis_start", text=h, voice=h2, detail=f"{h}{h2}")
            try:
                raise ValueError(h)
            except ValueError as e:
                log.error("synthesis_failed", exc=e, message=h2, error_code="ENGINE_FAILED")
            try:
                try:
                    raise KeyError(h2)
                except KeyError as inner:
                    err = RuntimeError(f"voice {h!r} / {h}")
                    err.add_note(h2)
                    raise err from inner
            except RuntimeError as e:
                log.error("synthesis_failed", exc=e, error_code="ENGINE_FAILED")
            bridge = events.StdlibBridge()
            rec = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "%s",
                                    (h,), None)
            try:
                raise OSError(h2)
            except OSError:
                import sys

                rec.exc_info = sys.exc_info()
            bridge.emit(rec)
    finally:
        events.set_sink(prev)
    assert len(cap.items) == 4
    for rec, text in _rendered(cap.items):
        (back,) = check_lines(text)
        assert back.fields == rec.fields  # exactly the fields written
        assert back.traceback == rec.traceback
        assert back.get("request_id") == "req_ok" and back.get("id") == "ts_ok"


# --- part two: a real server --------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("hostile"), engine="fake", workers=1,
                     webui_events_per_minute=0, rate_limit_per_minute=0)
    yield s
    s.stop()


class GrowingLog:
    """The server's app.log as it grows: each read checks and parses only the lines
    completed since the last read (every example used to parse the whole file again,
    twice). One server writes it and it never rotates here (64 MB by default), so the
    lines read once stay as they were."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.records: list[Record] = []

    def read(self) -> list[Record]:
        """Every record so far; each line new since the last read through check_lines."""
        with open(self.path, "rb") as fh:
            assert fh.seek(0, 2) >= self.offset, "app.log was rotated or truncated"
            fh.seek(self.offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # whole lines only; a line being written waits
        self.offset += end
        self.records += check_lines(data[:end].decode("utf-8", "surrogateescape"))
        return self.records


@pytest.fixture(scope="module")
def server_log(server: Server) -> GrowingLog:
    return GrowingLog(server.log_dir / "app.log")


def _header_safe(h: str) -> str | None:
    """``h`` if HTTP can carry it as a header value (visible ASCII, inner spaces/tabs)."""
    if not h or h != h.strip(" \t") or not all(c == "\t" or " " <= c <= "~" for c in h):
        return None
    return h


@pytest.mark.slow
@given(h=hostile)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_hostile_input_through_every_server_path_keeps_every_line_whole(server, server_log, h):
    sent: list[str] = []  # request ids the server answered with
    with server.client(timeout=30) as c:
        def post(payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
            # json.dumps escapes what UTF-8 cannot carry (lone surrogates) as \uXXXX
            r = c.post(SPEECH, content=json.dumps(payload).encode(),
                       headers={"Content-Type": "application/json", **(headers or {})})
            assert r.status_code < 500 or r.json()["error"]["code"], r.text
            sent.append(r.headers["x-request-id"])
            return r

        ok = post(body("A fine sentence."))
        post(body(h))  # input
        post(body("v", voice=h))  # voice name
        post(body("v", voice={"id": h}))  # voice object
        post(body("m", model=h))  # model
        post(body("l", lang=h))  # language
        post({**body("k"), h: h})  # an unknown JSON key
        post(body("o", options={h: h}))  # engine options (this engine takes none)
        post(body("f", response_format=h))
        post(body("#raise " + h))  # an engine failure with the input in its record
        hv = _header_safe(h)
        if hv is not None:
            post(body("hdr"), headers={"X-Request-ID": hv, "traceparent": hv,
                                       "X-Forwarded-For": hv, "User-Agent": hv})
        r = c.get("/v1/models/" + urllib.parse.quote(h.encode("utf-8", "surrogatepass"),
                                                     safe=""))
        sent.append(r.headers["x-request-id"])
        r = c.post("/v1/webui/events", content=json.dumps({
            "kind": "error", "id": ok.headers["x-synthesis-id"],
            "request_id": ok.headers["x-request-id"],
            "token": ok.headers["x-synthesis-token"], "detail": h[:500]}).encode(),
            headers={"Content-Type": "application/json"})
        assert r.status_code in (204, 400), r.text
        sent.append(r.headers["x-request-id"])
    deadline = time.monotonic() + 15  # the writer thread is asynchronous
    while True:
        recs = server_log.read()
        if sent[-1] in {x.get("request_id") for x in recs if x.event == "http_request"}:
            break
        assert time.monotonic() < deadline, f"{sent[-1]} never logged: {recs[-5:]}"
        time.sleep(0.05)
    for r in recs:  # ids are only ever the server's own or a sanitised caller's id
        assert r.get("id") in (None, "") or re.fullmatch(r"ts_[0-9a-f]+", r.fields["id"]), r
        rid = r.get("request_id")
        assert rid is None or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}", rid), r
        assert r.get("client") in (None, "127.0.0.1"), r
