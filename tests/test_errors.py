from __future__ import annotations

import pytest

from ttsops.errors import REGISTRY, TTSError, spec

SEED_CODES = {"TEXT_EMPTY", "SCIPY_FFT_INVALID", "MODEL_LOAD_FAILED", "MODEL_LOAD_TIMEOUT",
              "CACHE_WRITE_FAILED"}


def test_seed_codes_exist_and_every_entry_is_complete():
    assert set(REGISTRY) >= SEED_CODES
    for code, s in REGISTRY.items():
        assert s.code == code and code.isupper()
        assert s.level in ("ERROR", "WARNING")
        assert 400 <= s.status <= 599, code  # a failure never answers 2xx
        assert s.message and "\n" not in s.message and s.hint


def test_exception_root_carries_code_status_and_openai_shape():
    e = TTSError("VOICE_UNKNOWN", "no voice 'bob'", param="voice")
    assert isinstance(e, Exception) and e.status == 400 and e.code == "VOICE_UNKNOWN"
    body = e.to_openai()
    assert body == {"error": {"message": "Unknown voice: no voice 'bob'",
                              "type": "invalid_request_error", "param": "voice",
                              "code": "VOICE_UNKNOWN"}}
    assert TTSError("QUEUE_FULL").to_openai()["error"]["type"] == "rate_limit_error"


def test_unknown_code_is_a_programming_error():
    with pytest.raises(ValueError):
        TTSError("NOPE")
    assert spec("NOPE").code == "INTERNAL_ERROR"
