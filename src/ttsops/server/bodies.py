"""Sending a whole audio answer without holding a second copy of it.

``ChunkedBody`` is a ``Response`` whose bytes go out in ``CHUNK`` pieces (with
``Content-Length``, so clients see an ordinary response): the server waits for the
client to take each piece (uvicorn's flow control), so a slow reader never makes the
transport buffer more than ``WHOLE`` bytes of the body, and the piece in flight is all
that is copied. A body of at most ``WHOLE`` bytes (most answers: 5 s of wav is 230 kB)
goes out in one message: each piece costs a pass through every layer, h11 and the
transport, and a cache hit is mostly that.
``client_gone(receive)`` resolves when the client hangs up while its answer is being
prepared (the body has been read; the next ASGI message is the disconnect).
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

CHUNK = 64 * 1024
WHOLE = 256 * 1024


class ChunkedBody(Response):
    @classmethod
    def audio(cls, body: bytes, media_type: str,
              headers: list[tuple[bytes, bytes]]) -> ChunkedBody:
        """A 200 answer with ``headers`` (lower-case names, as sent) and then the
        ``content-length`` and ``content-type`` that ``Response`` adds after them: the
        same headers as ``ChunkedBody(body, media_type=..., headers={...})`` without
        encoding a dict of them on every answer (an audio type has no charset)."""
        r = cls.__new__(cls)
        r.status_code = 200
        r.background = None
        r.body = body
        r.media_type = media_type
        r.raw_headers = [*headers, (b"content-length", str(len(body)).encode("ascii")),
                         (b"content-type", media_type.encode("latin-1"))]
        return r

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        if len(self.body) <= WHOLE:
            await send({"type": "http.response.body", "body": self.body})
            return
        body = memoryview(self.body)
        for i in range(0, len(body), CHUNK):
            await send({"type": "http.response.body", "body": bytes(body[i:i + CHUNK]),
                        "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def client_gone(receive: Receive) -> None:
    """Returns once the client has disconnected (call after the body was read)."""
    while (await receive())["type"] != "http.disconnect":
        pass
