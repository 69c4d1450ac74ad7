from __future__ import annotations

import pydantic
import pytest

from ttsops.config import Settings, settings_table


def test_env_prefix_and_seed_request_id_header(monkeypatch):
    monkeypatch.setenv("TTSOPS_QUEUE_SIZE", "7")
    monkeypatch.setenv("REQUEST_ID_HEADER", "X-Correlation-ID")
    s = Settings()
    assert s.queue_size == 7 and s.request_id_header == "X-Correlation-ID"
    monkeypatch.setenv("TTSOPS_REQUEST_ID_HEADER", "X-Req")
    assert Settings().request_id_header == "X-Req"


def test_bad_values_are_refused(monkeypatch):
    monkeypatch.setenv("TTSOPS_LOG_FORMAT", "xml")
    with pytest.raises(pydantic.ValidationError):
        Settings()


def test_table_covers_every_setting_with_help():
    rows = settings_table()
    assert len(rows) == len(Settings.model_fields)
    assert all(env.startswith("TTSOPS_") and help_ for env, _, help_ in rows)
