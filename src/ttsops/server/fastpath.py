"""Cache hits at the speed of the framework: a pure-ASGI layer, inside the service layer
(request id, gates, the ``http_request`` record and the HTTP metrics stay as they are),
that answers ``POST /v1/audio/speech`` when it is a cache hit of a request seen before,
without FastAPI's routing, dependency solving and exception layers.

It reads the body, validates it with the route's own model (``SpeechRequest``, strict),
builds the synthesis exactly as the route does and
asks ``SynthesisService.hit``: the cached result with the same records and metrics as
the route writes for a hit, or None with nothing written. Anything else - not JSON, not
valid, streamed, not a hit, a body without Content-Length - goes on to the route with the
body it has read, unchanged; the route then does everything, errors included, as before.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import TTSError
from .routes_openai import (
    SpeechRequest,
    create_speech,
    router,
    speech_response,
    synthesis_request,
)

PATH = "/v1/audio/speech"
MAX_FAST_BODY = 64 * 1024
SPEECH_ROUTE = next(r for r in router.routes if getattr(r, "endpoint", None) is create_speech)


class CacheHitFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        length = ctype = None
        for k, v in scope["headers"]:
            if k == b"content-length":
                length = v
            elif k == b"content-type":
                ctype = v
        if (length is None or ctype is None or not length.isdigit()
                or int(length) > MAX_FAST_BODY
                or ctype.split(b";")[0].strip().lower() != b"application/json"):
            await self.app(scope, receive, send)
            return
        read: list[Message] = []
        chunks: list[bytes] = []
        failed: TTSError | None = None  # the body gate's verdict (408, 413): the route's to tell
        try:
            while True:
                msg = await receive()
                read.append(msg)
                if msg["type"] != "http.request":
                    break
                chunks.append(msg.get("body", b""))
                if not msg.get("more_body", False):
                    break
        except TTSError as e:
            failed = e
        if failed is None and read[-1]["type"] == "http.request" and await self._hit(
                scope, b"".join(chunks), receive, send):
            return

        async def replay() -> Message:
            if read:
                return read.pop(0)
            if failed is not None:  # raised where the route reads, answered as before
                raise failed
            return await receive()

        await self.app(scope, replay, send)

    async def _hit(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> bool:
        try:  # pydantic's own JSON parser and the route's model (strict, as FastAPI)
            speech = SpeechRequest.model_validate_json(body)
        except (ValueError, ValidationError):  # the route says what is wrong
            return False
        if speech.stream_format is not None:
            return False
        app = scope["app"]
        service = getattr(app.state, "service", None)
        if service is None:
            return False
        try:
            req = synthesis_request(speech, app.state.settings.engine)
        except TTSError:
            return False
        state: dict[str, Any] = scope["ttsops"]
        result = service.hit(req, state["request_id"])
        if result is None:
            return False
        state["id"] = result.id
        scope["route"] = SPEECH_ROUTE  # the route label, as if routed
        await speech_response(result)(scope, receive, send)
        return True
