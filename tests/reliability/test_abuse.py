"""Issue 15: the attacks tried against ``ttsops serve`` at its defaults, each driven
against a real server on a real port (and the files it writes), each now held.

1. records that point at someone else's request (trace by mention; forged web page
   reports) - 2. user input making fields on traceback lines - 3. a spoofed client
   address (X-Forwarded-For) - 4. unbounded audio, abandoned syntheses running on -
   5. flooding the log through the web page's endpoint - 6. slow clients -
   7. SIGTERM breaking long requests. (8: test_index_tamper.py.)
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from forensics.forensics_helpers import entry_in_process

from .kit import (
    SPEECH,
    body,
    events_of,
    harness,
    outcome,
    read_log,
    serve,
    wait_for,
)

pytestmark = pytest.mark.slow

EVENTS = "/v1/webui/events"
FORGED = ", request_id=VICTIM, id=ts_forged, error_code=DISK_FULL"




def logs(*args: str) -> tuple[int, dict[str, Any] | None, str]:
    """``ttsops logs ARGS --json`` through the console script's function, in process."""
    r = entry_in_process("logs", *args, "--json")
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None, r.stderr


def raw_lines(log_dir: Path) -> list[str]:
    """Every physical line of app.log and the rotated files, as the shell sees them."""
    out = subprocess.run(f"zcat -f {log_dir}/app.log*", shell=True, capture_output=True)
    return out.stdout.decode("utf-8", "replace").split("\n")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --- 1. ids mean identity ---------------------------------------------------------------

def test_records_that_only_mention_an_id_are_not_its_trace(servers, tmp_path):
    """An anonymous request whose input is the victim's synthesis id, a voice named after
    it, an unknown key holding it: none of their records joins the victim's trace, with
    or without the index; an id that never existed finds nothing."""
    s = serve(servers, tmp_path / "trace", engine="fake", workers=1, log_max_bytes=8192,
              log_block_bytes=2048)
    with s.client() as c:
        r = c.post(SPEECH, json=body("The victim's own words."),
                   headers={"X-Request-ID": "victim-req-1"})
        assert r.status_code == 200
        sid = r.headers["x-synthesis-id"]
        attacks = [body(sid), body(f"{sid} ENGINE_CRASHED"), body("x", voice=f"{sid} ENGINE"),
                   body("y", voice={"id": f"{sid}\n{FORGED}"}), {**body("z"), sid: sid},
                   body(f"see id={sid}, request_id=victim-req-1"), body("ts_forged")]
        for a in attacks:
            c.post(SPEECH, json=a)
        for i in range(40):  # rotate a few times: the victim's records go into .gz files
            c.post(SPEECH, json=body(f"filler {i} " + "words " * 30))
    s.stop()
    assert any(s.log_dir.glob("app.log.*.gz"))
    mentions = [ln for ln in raw_lines(s.log_dir) if sid in ln]
    for flags in ((), ("--no-index",)):
        rc, rep, err = logs("trace", sid, "--dir", str(s.log_dir), *flags)
        assert rc == 0, err
        recs = rep["records"]
        assert recs and all(sid in (f.get("id"), f.get("job")) or
                            f.get("request_id") == "victim-req-1"
                            for f in (x["fields"] for x in recs)), flags
        assert {x["fields"].get("request_id") for x in recs} == {"victim-req-1"}
        assert len(mentions) > len(recs)  # the attackers' records mention it, in text
        rc, rep, err = logs("trace", "ts_forged", "--dir", str(s.log_dir), *flags)
        assert rc == 1 and not (rep or {}).get("records"), flags


def test_web_page_reports_cannot_name_another_synthesis(servers, tmp_path):
    s = serve(servers, tmp_path / "webui", engine="fake", workers=1,
              webui_events_per_minute=1000)
    with s.client() as c:
        v = c.post(SPEECH, json=body("The victim listens."))
        sid, rid = v.headers["x-synthesis-id"], v.headers["x-request-id"]
        a = c.post(SPEECH, json=body("The attacker listens."))
        own = {"id": a.headers["x-synthesis-id"], "request_id": a.headers["x-request-id"],
               "token": a.headers["x-synthesis-token"]}
        forged = [{"kind": "error", "id": sid, "request_id": rid},
                  {"kind": "error", "id": sid, "request_id": rid, "token": own["token"]},
                  {"kind": "error", "id": sid, "request_id": own["request_id"],
                   "token": own["token"]},
                  {"kind": "error", "id": sid, "token": "0" * 32},
                  {"kind": "error", "request_id": rid}]
        for f in forged * 40:
            assert outcome(c.post(EVENTS, json={**f, "detail": "x" * 500})) == \
                "403 WEBUI_EVENT_UNVERIFIED", f
        ok = c.post(EVENTS, json={"kind": "error", "detail": "own", **own})
        assert ok.status_code == 204
        anon = c.post(EVENTS, json={"kind": "error", "detail": "no synthesis named"})
        assert anon.status_code == 204
    recs = s.wait_records(lambda rs: len(events_of(rs, "webui_event")) == 2)
    webui = events_of(recs, "webui_event")
    assert {(r.get("id"), r.get("verified")) for r in webui} == {(own["id"], "true"),
                                                                  (None, "false")}
    assert not [r for r in recs if sid in (r.get("id"), r.get("synthesis_request_id"))
                and r.event != "synthesis_start" and r.event != "synthesis_complete"
                and r.event not in ("stage_time", "audio_metrics", "http_request")]
    s.stop()
    _rc, rep, _ = logs("diagnose", "--dir", str(s.log_dir))
    found = [f for f in rep["findings"] if f["kind"] == "webui"]
    assert all("reported 1 playback" in json.dumps(f) for f in found), found


def test_the_event_endpoint_has_its_own_rate_limit_by_default(servers, tmp_path):
    """Attack 5: 2,000 reports of 500 characters added 6.8 MB; now the 61st report of a
    minute is refused (429) at the default limit, and speech is not affected."""
    s = serve(servers, tmp_path / "flood", engine="fake", workers=1)
    with s.client() as c:
        t0 = time.monotonic()
        got = [outcome(c.post(EVENTS, json={"kind": "stall", "detail": "x" * 500}))
               for _ in range(100)]
        took = time.monotonic() - t0
        assert c.post(SPEECH, json=body("Still served.")).status_code == 200
    # a bucket of 60 refilled at 1 a second: the first 60 pass, then only what refilled
    # while the 100 were sent (none on an idle machine; a few when it is loaded)
    accepted = got.count("204")
    assert got[:60] == ["204"] * 60, got
    assert 60 <= accepted <= 60 + int(took) + 1, (accepted, took)
    assert set(got) == {"204", "429 RATE_LIMITED"}
    s.stop()
    size = sum(p.stat().st_size for p in s.log_dir.glob("app.log*"))
    assert len(events_of(read_log(s.log_dir), "webui_event")) == accepted
    assert size < 200_000


# --- 2. traceback lines keep the grammar ------------------------------------------------

KEY_EQ = re.compile(r"(?:^|[^A-Za-z0-9_])(request_id|id|error_code)=(VICTIM|ts_forged|DISK_FULL)")


def test_user_input_makes_no_field_on_a_traceback_line(servers, tmp_path):
    s = serve(servers, tmp_path / "tb", engine="fake", workers=1)
    hostile = f"alloy\n{FORGED}\n\tFile \"x\", line 1{FORGED}"
    with s.client() as c:
        for b in (body("a", voice={"id": hostile}), body("b", voice=hostile),
                  body("c", model=hostile), body("d", options={hostile: 1}),
                  {**body("e"), hostile: hostile}, body("#raise " + hostile)):
            r = c.post(SPEECH, json=b)
            assert r.status_code in (200, 400, 500), r.text
    recs = s.wait_records(lambda rs: len([r for r in events_of(rs, "http_request")
                                          if r.get("path") == SPEECH]) == 6)
    assert any(r.traceback for r in recs)  # the paths that raise were taken
    lines = raw_lines(s.log_dir)
    for ln in lines:
        if ln.startswith("\t"):  # a traceback line: no field boundary from the input
            assert not KEY_EQ.search(ln), ln
            assert not any(p.startswith(("id=", "request_id=", "error_code="))
                           for p in ln.split(", ")[1:]), ln
    grep = subprocess.run(f"zcat -f {s.log_dir}/app.log* | grep -c 'request_id=VICTIM'",
                          shell=True, capture_output=True, text=True)
    assert grep.stdout.strip() == "0"
    assert not [r for r in recs if r.get("request_id") == "VICTIM" or
                r.get("id") == "ts_forged" or r.get("error_code") == "DISK_FULL"]
    # the reader gets the message back as it was raised
    assert any(FORGED in t for r in recs for t in r.traceback)


# --- 3. the client is the socket peer ---------------------------------------------------

def test_forwarded_headers_are_ignored_unless_the_peer_is_a_trusted_proxy(servers, tmp_path):
    s = serve(servers, tmp_path / "xff", engine="fake", workers=1, rate_limit_per_minute=5)
    with s.client() as c:
        got = [outcome(c.get("/v1/models", headers={"X-Forwarded-For": f"10.0.0.{i}"}))
               for i in range(10)]
        assert got == ["200"] * 5 + ["429 RATE_LIMITED"] * 5
        c.get("/healthz", headers={"X-Forwarded-For": "1.2.3.4, id=ts_forged"})
    recs = s.wait_records(lambda rs: len(events_of(rs, "http_request", client="127.0.0.1"))
                          >= 11)
    assert {r.get("client") for r in events_of(recs, "http_request")} == {"127.0.0.1"}
    assert not [ln for ln in raw_lines(s.log_dir) if "ts_forged" in ln or "10.0.0." in ln]
    # behind a trusted proxy (here: loopback itself), its header names the client
    t = serve(servers, tmp_path / "proxy", engine="fake", workers=1, rate_limit_per_minute=5,
              trusted_proxies="127.0.0.1/32")
    with t.client() as c:
        for xff in ("1.2.3.4", "9.9.9.9, 1.2.3.4", "1.2.3.4, id=ts_forged", "nonsense",
                    "2001:db8::1"):
            c.get("/healthz", headers={"X-Forwarded-For": xff})
    recs = t.wait_records(lambda rs: [r.get("client") for r in events_of(rs, "http_request")]
                          [-1:] == ["2001:db8::1"])
    assert [r.get("client") for r in events_of(recs, "http_request")[-5:]] == \
        ["1.2.3.4", "1.2.3.4", "127.0.0.1", "127.0.0.1", "2001:db8::1"]


# --- 4. bounded work per request --------------------------------------------------------

def test_audio_longer_than_the_limit_is_refused_before_synthesis(servers, tmp_path):
    s = serve(servers, tmp_path / "long", engine="espeak", workers=1, max_audio_s=30)
    with s.client() as c:
        r = c.post(SPEECH, json=body("99%" * 1365, lang="zh"))  # 26.8 minutes at defaults
        assert outcome(r) == "400 AUDIO_TOO_LONG" and "TTSOPS_MAX_AUDIO_S" in r.text
        early = r.headers["x-synthesis-id"]
        # an estimate that passes, audio that does not: stopped during synthesis
        prose = "The quick brown fox jumps over the lazy dog again and again. " * 20
        r = c.post(SPEECH, json=body(prose + " " + prose, lang="en"))
        assert outcome(r) == "400 AUDIO_TOO_LONG"
        late = r.headers["x-synthesis-id"]
        assert c.post(SPEECH, json=body("Short is fine.")).status_code == 200
    recs = s.wait_records(lambda rs: len(events_of(rs, "synthesis_complete")) == 3)
    first = [r for r in recs if r.get("id") == early]
    assert {r.get("stage") for r in events_of(first, "stage_time")} == {"text_normalize"}
    (done,) = events_of(recs, "synthesis_complete", id=late)
    assert done.get("error_code") == "AUDIO_TOO_LONG" and done.get("status") == "failed"


def test_a_client_that_hangs_up_cancels_its_synthesis(servers, tmp_path):
    """Whole answers and streams, running and queued: the hang-up stops the work (no
    synthesis runs to its end for nobody) and is recorded once, as cancelled."""
    s = serve(servers, tmp_path / "hangup", engine="fake", workers=1, fake_delay_ms=300)
    long_text = " ".join(f"Sentence number {i} " + "is long enough " * 18 + "."
                         for i in range(12))  # 12 segments x 0.3 s
    payload = json.dumps(body(long_text)).encode()
    port = int(s.url.rsplit(":", 1)[1])

    def hang_up_after(seconds: float, data: bytes) -> str:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
        time.sleep(seconds)
        sock.close()
        return ""

    t0 = time.monotonic()
    hang_up_after(0.8, payload)  # running on the worker
    with s.client(timeout=10) as c, \
            c.stream("POST", SPEECH, json=body(long_text, stream_format="audio")) as r:
        assert r.status_code == 200  # a stream abandoned after its first chunk
        next(r.iter_raw())
    wait_for(lambda: len(events_of(read_log(s.log_dir), "synthesis_complete")) >= 2,
             what="both outcomes")
    elapsed = time.monotonic() - t0
    recs = read_log(s.log_dir)
    done = events_of(recs, "synthesis_complete")
    assert [(r.get("status"), r.get("error_code")) for r in done] == \
        [("cancelled", "CLIENT_CLOSED")] * 2
    assert elapsed < 12 * 0.3 * 2  # neither ran its 12 segments to the end
    http = [r for r in events_of(recs, "http_request") if r.get("path") == SPEECH]
    assert [(r.get("status"), r.get("error_code")) for r in http] == \
        [("499", "CLIENT_CLOSED"), ("499", None)]
    assert not events_of(recs, "synthesis_failed")  # no ERROR for a hang-up
    # queued: never reaches a worker
    with s.client(timeout=30) as c:
        import threading

        busy = threading.Thread(target=lambda: c.post(SPEECH, json=body(long_text + " b")))
        busy.start()
        # the busy one holds the only worker (its synthesis started) before the next comes
        wait_for(lambda: len(events_of(read_log(s.log_dir), "synthesis_start")) >= 3,
                 what="the busy synthesis to start", every=0.02)
        hang_up_after(0.5, json.dumps(body("queued " + long_text)).encode())
        busy.join()
    recs = wait_for(lambda: (rs := read_log(s.log_dir)) and
                    len(events_of(rs, "synthesis_complete")) == 4 and rs, what="queued")
    queued = [r for r in events_of(recs, "synthesis_complete") if r.get("status") ==
              "cancelled"][-1]
    assert not [r for r in events_of(recs, "stage_time", id=queued.get("id"))
                if r.get("stage") == "llm_inference"]
    assert s.client().post(SPEECH, json=body("The worker is fine.")).status_code == 200


def test_memory_after_a_burst_returns_near_its_baseline(servers, tmp_path):
    """Ten answers of the longest input at once (real eSpeak NG audio, ~11 MB of wav
    each), then the main process's RSS goes back near where it was (it stayed 218 MB
    after the issue's burst)."""
    s = serve(servers, tmp_path / "rss", engine="espeak", workers=2, cache_enabled=False)
    text = ("This sentence is spoken again and again, to make long audio. " * 70)[:4080]
    with s.client(timeout=120) as c:
        for i in range(3):
            assert c.post(SPEECH, json=body(f"warm {i}. " + text[:400])).status_code == 200
    time.sleep(1.0)
    base = rss_kb(s.proc.pid)
    import concurrent.futures as cf

    def one(i: int) -> int:
        with s.client(timeout=180) as c:
            r = c.post(SPEECH, json=body(f"Burst {i}. " + text))
            assert r.status_code == 200, r.text
            return len(r.content)

    with cf.ThreadPoolExecutor(10) as ex:
        sizes = list(ex.map(one, range(10)))
    assert min(sizes) > 8_000_000
    peak_note = rss_kb(s.proc.pid)
    # back near the baseline within 2 s (read every 0.1 s, not once after a fixed 2 s)
    deadline = time.monotonic() + 2.0
    while (after := rss_kb(s.proc.pid)) - base >= 25_000 and time.monotonic() < deadline:
        time.sleep(0.1)
    print("RSS_KB", base, peak_note, after)
    assert after - base < 25_000, (base, peak_note, after)  # KB


# --- 6. slow clients ----------------------------------------------------------------------

def test_slow_headers_and_slow_bodies_get_408_and_are_closed(servers, tmp_path):
    s = serve(servers, tmp_path / "slow", engine="fake", workers=1, header_timeout_s=2,
              body_timeout_s=2)
    port = int(s.url.rsplit(":", 1)[1])

    def trickle(prefix: bytes, data: bytes, every: float = 0.5) -> tuple[bytes, float]:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.settimeout(10)
        t0 = time.monotonic()
        got = b""
        try:
            sock.sendall(prefix)
            for ch in data:
                sock.sendall(bytes([ch]))
                time.sleep(every)
        except OSError:
            pass  # closed by the server while we were still sending
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except OSError:
            pass
        sock.close()
        return got, time.monotonic() - t0

    got, took = trickle(b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 30)
    assert got.startswith(b"HTTP/1.1 408") and b"REQUEST_TIMEOUT" in got and took < 8
    payload = json.dumps(body("slow body")).encode()
    head = (b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nContent-Length: %d\r\n\r\n" % len(payload))
    got, took = trickle(head, payload)
    assert got.startswith(b"HTTP/1.1 408") and b"REQUEST_TIMEOUT" in got and took < 8
    assert b"connection: close" in got.lower()
    sock = socket.create_connection(("127.0.0.1", port))  # says nothing at all
    sock.settimeout(10)
    assert sock.recv(100).startswith(b"HTTP/1.1 408")
    sock.close()
    recs = s.wait_records(lambda rs: len(events_of(rs, "http_request", status="408")) == 3)
    late = events_of(recs, "http_request", status="408")
    assert {r.get("error_code") for r in late} == {"REQUEST_TIMEOUT"}
    assert {r.get("path") for r in late} == {"-", "/v1/audio/speech"}
    assert all(r.get("request_id") for r in late)


# --- 7. graceful shutdown -------------------------------------------------------------------

def test_sigterm_finishes_what_fits_cuts_the_rest_with_503_and_logs_each_once(
        servers, tmp_path):
    s = serve(servers, tmp_path / "term", engine="fake", workers=2, shutdown_grace_s=3)
    import concurrent.futures as cf

    def ask(text: str, stream: bool = False) -> tuple[int, str, bytes]:
        with s.client(timeout=60) as c:
            try:
                if stream:
                    with c.stream("POST", SPEECH, json=body(text, stream_format="audio")) \
                            as r:
                        data = b"".join(r.iter_raw())
                        return r.status_code, "stream", data
                r = c.post(SPEECH, json=body(text))
                return r.status_code, outcome(r), r.content
            except httpx.HTTPError as e:
                return -1, type(e).__name__, b""

    with cf.ThreadPoolExecutor(3) as ex:
        quick = ex.submit(ask, "#sleep=1500 finishes within the grace period.")
        slow = ex.submit(ask, "#sleep=20000 runs past the grace period.")
        # both in flight (their syntheses started) before the signal: on a loaded machine
        # a fixed sleep let SIGTERM arrive before the quick one had even connected
        deadline = time.monotonic() + 30
        while len(events_of(read_log(s.log_dir), "synthesis_start")) < 2:
            assert time.monotonic() < deadline, "the two syntheses never started"
            time.sleep(0.05)
        time.sleep(0.2)
        t0 = time.monotonic()
        s.proc.send_signal(15)
        q, sl = quick.result(), slow.result()
        took = time.monotonic() - t0
    assert q[0] == 200 and q[2][:4] == b"RIFF", (q[:2], sl[:2])
    assert sl[1] == "503 SHUTTING_DOWN"
    assert json.loads(sl[2])["error"]["type"] == "server_error"
    assert s.proc.wait(30) == 0
    assert took < 3 + 5
    # the worker still running the cut synthesis is stopped at once, not waited for (it
    # was, 10 s more), and a stop is not a crash: no worker_died ERROR (a `diagnose`
    # finding "dead workers") after every deploy that cut a synthesis
    exited = time.monotonic() - t0
    assert exited < 3 + 5, exited
    out = s.output.read_text()
    assert "leaked semaphore" not in out and "Traceback" not in out
    recs = read_log(s.log_dir)
    done = events_of(recs, "synthesis_complete")
    assert sorted((r.get("status"), r.get("error_code")) for r in done) == \
        [("failed", "SHUTTING_DOWN"), ("success", None)]
    http = [r for r in events_of(recs, "http_request") if r.get("path") == SPEECH]
    assert sorted(r.get("status") for r in http) == ["200", "503"]
    for r in done:  # each outcome exactly once
        assert len(events_of(recs, "synthesis_complete", id=r.get("id"))) == 1
    assert events_of(recs, "shutdown_begin") and events_of(recs, "shutdown_cut")
    assert not events_of(recs, "worker_died")
    cut = [r for r in done if r.get("status") == "failed"]
    assert [r.get("job") for r in events_of(recs, "worker_stopped")] == [cut[0].get("id")]


def test_new_connections_are_refused_once_sigterm_arrived(servers, tmp_path):
    s = serve(servers, tmp_path / "refuse", engine="fake", workers=1, shutdown_grace_s=5)
    with s.client(timeout=30) as c:
        import threading

        res: list[Any] = []
        th = threading.Thread(target=lambda: res.append(
            c.post(SPEECH, json=body("#sleep=2500 in flight."))))
        th.start()
        wait_for(lambda: events_of(read_log(s.log_dir), "synthesis_start"),
                 what="the synthesis in flight", every=0.02)
        s.proc.send_signal(15)

        def refused() -> bool:
            try:
                harness.get(s.url + "/healthz", timeout=2)
            except httpx.ConnectError:
                return True
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # a connection the kernel queued on the listening socket as it closed is
                # reset, never answered (seen in a CI run): not yet the settled state
                return False
            return False
        wait_for(refused, 10, "the listening socket to close", every=0.05)
        with pytest.raises(httpx.ConnectError):
            harness.get(s.url + "/healthz", timeout=2)
        th.join()
    assert res[0].status_code == 200
    assert s.proc.wait(30) == 0
