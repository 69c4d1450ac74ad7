"""uvicorn's h11 protocol with a limit on how long a request's headers may take.

uvicorn closes idle keep-alive connections, but a connection that sends nothing, or
sends its headers a byte at a time, stays open as long as the client likes (a few
hundred such connections exhaust the server's file descriptors). Here a timer runs from
the moment a connection opens, or the first byte of a later request arrives, until the
request's headers are complete; when it fires, the client gets 408 ``REQUEST_TIMEOUT``
(OpenAI shape), the connection is closed, and an ``http_request`` record says so
(``method=-``, ``path=-``: they never arrived). The body's own limit is in the
middleware (``TTSOPS_BODY_TIMEOUT_S``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from .. import events
from ..events import get_logger
from . import ids
from .errors_http import error_body

log = get_logger("ttsops.server.http")


def with_header_timeout(timeout_s: float, request_id_header: str = "X-Request-ID",
                        client_of: Any = None) -> type[H11Protocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``. ``client_of(peer)``: the
    address to log for a socket peer (the middleware's ``ClientAddress``)."""
    rid_header = request_id_header.encode("latin-1")

    class HeaderTimeoutProtocol(H11Protocol):
        # One timer per connection, not one per request: ``_disarm`` only notes that the
        # headers came; the timer, when it fires, looks whether headers are still due
        # and, if they are but not yet late (a later request), waits for the rest of
        # their time. (A timer made and cancelled on every request of a keep-alive
        # connection cost 3 us of each cache hit.)
        _hdr_timer: Any = None
        _hdr_t0: float = 0.0
        _hdr_due: bool = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            if not self._hdr_due:
                self._hdr_due = True
                self._hdr_t0 = time.perf_counter()
                if self._hdr_timer is None:
                    self._hdr_timer = self.loop.call_later(timeout_s, self._headers_due)

        def _disarm(self) -> None:
            self._hdr_due = False

        def _headers_due(self) -> None:
            self._hdr_timer = None
            if not self._hdr_due:
                return
            left = self._hdr_t0 + timeout_s - time.perf_counter()
            if left > 0:
                self._hdr_timer = self.loop.call_later(left, self._headers_due)
                return
            self._headers_late()

        def _in_request(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def data_received(self, data: bytes) -> None:
            if not self._in_request():
                self._arm()  # the first bytes of a request: its headers are now due
            super().data_received(data)
            if self._in_request():
                self._disarm()  # headers complete: the application has the request

        def connection_lost(self, exc: Exception | None) -> None:
            self._hdr_due = False
            if self._hdr_timer is not None:
                self._hdr_timer.cancel()
                self._hdr_timer = None
            super().connection_lost(exc)

        def _headers_late(self) -> None:
            self._hdr_due = False
            if self._in_request() or self.transport is None or self.transport.is_closing():
                return
            rid = ids.request_id()
            body = json.dumps(error_body("REQUEST_TIMEOUT", f"no complete request headers "
                                         f"within {timeout_s:g} s")).encode()
            head = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\nconnection: close\r\n%s: %s\r\n\r\n"
                    % (len(body), rid_header, rid.encode("ascii")))
            self.transport.write(head + body)
            self.transport.close()
            peer = self.client[0] if self.client else "unknown"
            client = client_of(peer) if client_of is not None else peer
            with events.context(request_id=rid):
                log.info("http_request", method="-", path="-", status=408,
                         duration_ms=round((time.perf_counter() - self._hdr_t0) * 1000, 1),
                         request_id=rid, client=client, error_code="REQUEST_TIMEOUT")

    return HeaderTimeoutProtocol
