"""One pure-ASGI layer in front of every request.

* request identity: the ``REQUEST_ID_HEADER`` value (sanitised; generated when absent or
  unusable) is bound to every record of the request and echoed in the response; a W3C
  ``traceparent`` gives ``trace_id``;
* the client: the socket peer, or from ``X-Forwarded-For`` only when that peer is one of
  ``TTSOPS_TRUSTED_PROXIES`` (``clientaddr``); logged and rate-limited as the same address;
* gates, in order: body size (``Content-Length`` and, for chunked bodies, while reading),
  per-client rate limit (the web page's event endpoint has its own), bearer-token auth
  (``/v1/`` paths);
* the body must arrive within ``TTSOPS_BODY_TIMEOUT_S`` of the headers: a client that
  trickles it gets 408 ``REQUEST_TIMEOUT`` and the connection is closed;
* exactly one ``http_request`` record per request (method, path, status, duration_ms, id,
  request_id, client, error_code) and the HTTP metrics;
* an exception nobody handled becomes a 500 ``INTERNAL_ERROR`` in the OpenAI shape, with an
  ``http_error`` record carrying the traceback.

Pure ASGI (no ``BaseHTTPMiddleware``): no extra task or body copy per request.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from collections.abc import Generator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import events
from ..errors import TTSError
from ..events import get_logger
from . import ids
from .clientaddr import ClientAddress
from .errors_http import StreamAborted, error_response
from .metrics import route_label
from .ratelimit import RateLimiter

log = get_logger("ttsops.server.http")

# no "=": the log grammar quotes a value holding one, and the id must stay bare in every
# line (``sed 's/.*request_id=\([^,]*\).*/\1/'`` takes it as written)
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}")
_TRACEPARENT_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CLIENT_CLOSED = 499  # status recorded when the client went away before the response ended
WEBUI_EVENTS_PATH = "/v1/webui/events"
SPEECH_PATH = "/v1/audio/speech"
TOKEN_HEADER = b"x-synthesis-token"


def sanitize_request_id(raw: bytes | str | None) -> str | None:
    """The caller's request id if it is a plain token (letters, digits, ``._:@/+-``, at
    most 128 characters); None otherwise, so that a fresh id is generated instead.
    Nothing the caller sends can put spaces, quotes or control characters into a log
    line through this field."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
    raw = raw.strip(" \t")  # HTTP's optional whitespace only: str.strip() would also
    # drop \x1c-\x1f and so accept "0\x1f" as "0" (found by the fuzz property)
    return raw if _REQUEST_ID_RE.fullmatch(raw) else None


def new_request_id() -> str:
    return ids.request_id()


def parse_traceparent(raw: bytes | str | None) -> str | None:
    """The trace id of a valid W3C ``traceparent`` header, else None."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    m = _TRACEPARENT_RE.match(raw.strip().lower())
    if m is None:
        return None
    version, trace_id, parent_id, _flags = m.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    if version == "00" and len(raw.strip()) != 55:
        return None
    return trace_id


def parse_keys(api_keys: str) -> list[bytes]:
    return [k.strip().encode() for k in api_keys.split(",") if k.strip()]


def bearer_ok(header: bytes | None, keys: list[bytes]) -> bool:
    """Constant-time comparison against every configured key (no early exit)."""
    if header is None:
        return False
    scheme, _, token = header.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    token = token.strip()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(token, key)
    return ok


async def _within(receive: Receive, seconds: float) -> Message:
    """``await receive()``, or TimeoutError after ``seconds``: a timer that cancels this
    task, as ``asyncio.timeout`` does at a quarter of its cost (3 against 12 us here; it
    runs on every request with a body), and no task of its own as ``wait_for`` makes on
    Python 3.11 (two more loop turns). A message that is already there (a small body
    arrives with its headers: ``receive`` returns without waiting) needs no timer: the
    receive is started here, and the timer armed only when it has to wait."""
    coro = receive().__await__()
    try:
        first = coro.send(None)
    except StopIteration as done:
        message: Message = done.value
        return message
    task = asyncio.current_task()
    assert task is not None
    fired = False

    def fire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(seconds, fire)
    try:
        return await _Resumed(coro, first)
    except asyncio.CancelledError:
        if fired and task.uncancel() == 0:  # ours, and nobody else's: the time is up
            raise TimeoutError from None
        raise
    finally:
        timer.cancel()


class _Resumed:
    """Awaits the rest of an awaitable's iterator that has already been started and has yielded
    ``first`` (what ``await`` would have done with it from the start): what it yields
    goes to the task, what the task sends or throws (a cancellation) goes back in."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Generator[Any, Any, Message], first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[Any, Any, Message]:
        coro, pending = self.coro, self.first
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in (a cancellation): passed on to coro
                try:
                    pending = coro.throw(exc)
                except StopIteration as done:
                    message: Message = done.value
                    return message
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as done:
                    message = done.value
                    return message


def _synthesis_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The answer's ``X-Synthesis-ID`` (names are lower case in ASGI; any case is read)."""
    for k, v in headers:
        if k == b"x-synthesis-id":
            return v.decode("latin-1")
    for k, v in headers:
        if k.lower() == b"x-synthesis-id":
            return v.decode("latin-1")
    return None


class ServiceMiddleware:
    def __init__(self, app: ASGIApp, *, request_id_header: str = "X-Request-ID",
                 api_keys: str = "", max_body_bytes: int = 64 * 1024,
                 rate_limit_per_minute: int = 0, metrics: Any = None,
                 trusted_proxies: str = "", webui_events_per_minute: int = 0,
                 body_timeout_s: float = 0.0, tokens: Any = None) -> None:
        self.app = app
        self.rid_in = request_id_header.lower().encode("latin-1")
        self.rid_out = request_id_header.encode("latin-1")
        self.keys = parse_keys(api_keys)
        self.max_body = max_body_bytes
        self.limiter = RateLimiter(rate_limit_per_minute)
        self.event_limiter = RateLimiter(webui_events_per_minute)
        self.clients = ClientAddress(trusted_proxies)
        self.body_timeout = body_timeout_s
        self.tokens = tokens  # SynthesisTokens: X-Synthesis-Token on speech answers
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        rid_raw = trace_raw = auth = length = None
        forwarded: list[bytes] = []
        for k, v in scope["headers"]:
            if k == self.rid_in:
                rid_raw = v
            elif k == b"traceparent":
                trace_raw = v
            elif k == b"authorization":
                auth = v
            elif k == b"content-length":
                length = v
            elif k == b"x-forwarded-for":
                forwarded.append(v)
        rid = sanitize_request_id(rid_raw) or new_request_id()
        trace_id = parse_traceparent(trace_raw) if trace_raw is not None else None
        state: dict[str, Any] = {"request_id": rid, "trace_id": trace_id, "id": None,
                                 "error_code": None, "status": 0, "extra": {}, "t0": t0}
        scope["ttsops"] = state
        peer = scope.get("client")
        client_host = self.clients.resolve(peer[0] if peer else "unknown", forwarded)
        state["client"] = client_host
        method = scope["method"]
        path = scope["path"]
        rid_header = (self.rid_out, rid.encode("ascii"))
        head = method == "HEAD"  # answered as GET without the body (uptime checkers use it)
        app_scope = {**scope, "method": "GET"} if head else scope

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), rid_header]
                if state.get("close"):  # the rest of a trickled body is not waited for
                    message["headers"].append((b"connection", b"close"))
                if self.tokens is not None and path == SPEECH_PATH:
                    sid = _synthesis_id(message["headers"])
                    message["headers"].append((TOKEN_HEADER, self.tokens.issue(
                        sid, rid).encode("ascii")))
            elif head and message["type"] == "http.response.body" and message.get("body"):
                message = {**message, "body": b""}
            await send(message)

        with events.context(request_id=rid, trace_id=trace_id):
            try:
                gate = self._gate(method, path, length, auth, client_host)
                if gate is not None:
                    state["error_code"] = gate[0]
                    hdrs = {"WWW-Authenticate": "Bearer"} if gate[0] == "UNAUTHORIZED" else None
                    await error_response(gate[0], gate[1], headers=hdrs, retry_after=gate[2])(
                        scope, receive, send_wrapped)
                else:
                    inner = receive
                    if method in _BODY_METHODS:
                        inner = self._limited(receive, state, t0)
                    await self.app(app_scope, inner, send_wrapped)
            except StreamAborted as exc:
                # already logged (synthesis_failed); returning without completing the
                # response makes the server cut the connection: no clean end of stream
                state["error_code"] = exc.code
                state["extra"]["stream_aborted"] = True
            except Exception as exc:
                state["error_code"] = "INTERNAL_ERROR"
                log.error("http_error", exc=exc, error_code="INTERNAL_ERROR", path=path[:200])
                if state["status"] == 0:
                    await error_response("INTERNAL_ERROR")(scope, receive, send_wrapped)
            finally:
                status = state["status"] or CLIENT_CLOSED
                if state.get("client_gone"):
                    status = CLIENT_CLOSED
                    if "body_bytes" in state["extra"]:  # gone while sending: not its fault
                        state["error_code"] = None
                duration_ms = (time.perf_counter() - t0) * 1000.0
                log.info("http_request", method=method, path=path[:200], status=status,
                         duration_ms=round(duration_ms, 1), id=state["id"], request_id=rid,
                         client=client_host, error_code=state["error_code"],
                         **state["extra"])
                if self.metrics is not None:
                    self.metrics.observe_http(method, route_label(app_scope), status,
                                              state["error_code"], duration_ms / 1000.0)

    def _gate(self, method: str, path: str, length: bytes | None, auth: bytes | None,
              client: str) -> tuple[str, str | None, float | None] | None:
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return ("INVALID_REQUEST", "invalid Content-Length", None)
            if n > self.max_body:
                return ("BODY_TOO_LARGE", f"{n} bytes > limit {self.max_body}", None)
        if path.startswith("/v1/") and method != "OPTIONS":  # a CORS preflight has no token
            limiter = self.event_limiter if path == WEBUI_EVENTS_PATH else self.limiter
            wait = limiter.check(client)
            if wait:
                return ("RATE_LIMITED", None, wait)
            if self.keys and not bearer_ok(auth, self.keys):
                return ("UNAUTHORIZED", None, None)
        return None

    def _limited(self, receive: Receive, state: dict[str, Any], t0: float) -> Receive:
        """The body, counted against the limit and the time limit; a client that hangs up
        before it has sent the whole body is recorded as gone (499), not as a malformed
        request; one still sending it ``body_timeout`` after its headers gets 408."""
        seen = 0
        limit = self.max_body
        complete = False
        deadline = t0 + self.body_timeout if self.body_timeout > 0 else None

        async def inner() -> Message:
            nonlocal seen, complete
            if deadline is not None and not complete:
                left = deadline - time.perf_counter()
                try:
                    if left <= 0:
                        raise TimeoutError
                    message = await _within(receive, left)
                except TimeoutError:
                    state["close"] = True
                    state["extra"]["body_bytes"] = seen
                    raise TTSError("REQUEST_TIMEOUT", f"the body did not arrive within "
                                   f"{self.body_timeout:g} s ({seen} bytes came)") from None
            else:
                message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TTSError("BODY_TOO_LARGE", f"more than {limit} bytes")
                complete = complete or not message.get("more_body", False)
            elif message["type"] == "http.disconnect" and not complete:
                state["client_gone"] = True
                state["extra"]["body_bytes"] = seen
            return message

        return inner
