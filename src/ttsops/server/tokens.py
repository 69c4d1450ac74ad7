"""Synthesis tokens: proof that a playback report comes from whoever got the synthesis.

Every answer of ``POST /v1/audio/speech`` carries ``X-Synthesis-Token``, an HMAC-SHA256
(keyed by ``TTSOPS_WEBUI_EVENT_KEY``, or a random key per process) over the synthesis id
and request id it was answered with. The web page sends it back with its reports
(``POST /v1/webui/events``); a report that names a synthesis or request id without the
matching token is refused, so nobody can file reports about another's synthesis. (The
request id is the caller's own choice - it is echoed from ``X-Request-ID`` - so only
the synthesis id is an identity the server vouches for.)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "X-Synthesis-Token"
TOKEN_CHARS = 32  # hex characters of the MAC kept (128 bits)


class SynthesisTokens:
    def __init__(self, key: str = "") -> None:
        self._key = key.encode("utf-8") if key else secrets.token_bytes(32)
        self._mac = hmac.new(self._key, digestmod=hashlib.sha256)  # keyed once, copied

    def issue(self, synthesis_id: str | None, request_id: str | None) -> str:
        msg = f"{synthesis_id or ''}\x00{request_id or ''}".encode("utf-8", "surrogatepass")
        mac = self._mac.copy()  # the keyed state copied: no key schedule per answer
        mac.update(msg)
        return mac.hexdigest()[:TOKEN_CHARS]

    def check(self, synthesis_id: str | None, request_id: str | None,
              token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(self.issue(synthesis_id, request_id).encode(),
                                   token.encode("utf-8", "surrogatepass"))
