from __future__ import annotations

import pytest

from ttsops.config import Settings
from ttsops.engines import create_engine, describe, engine_names, load_engine
from ttsops.engines.espeak import EspeakEngine
from ttsops.engines.fake import FakeEngine
from ttsops.errors import TTSError


def test_names():
    assert engine_names()[:2] == ["espeak", "fake"]


def test_create_by_name_and_from_settings():
    assert isinstance(create_engine("espeak", Settings()), EspeakEngine)
    e = create_engine(None, Settings(engine="fake", fake_delay_ms=7))
    assert isinstance(e, FakeEngine) and e.delay_ms == 7
    assert describe(e).name == "fake"


def test_unknown_engine():
    with pytest.raises(TTSError) as ei:
        create_engine("nosuch", Settings())
    assert ei.value.code == "MODEL_LOAD_FAILED" and "espeak" in ei.value.message


def test_engine_whose_module_is_missing_gives_the_install_hint(monkeypatch):
    from ttsops.engines import registry

    monkeypatch.setitem(registry.ENGINES, "neural",
                        ("ttsops.engines.no_such_module:Neural", "pip install 'ttsops[neural]'"))
    with pytest.raises(TTSError) as ei:
        create_engine("neural", Settings())
    assert ei.value.code == "MODEL_LOAD_FAILED"
    assert "pip install 'ttsops[neural]'" in ei.value.message
    assert isinstance(ei.value.__cause__, ImportError)


def test_load_engine_logs_engine_load(captured):
    info = load_engine(FakeEngine())
    (item,) = [i for i in captured if i[3] == "engine_load"]
    assert item[2] == "INFO"
    assert item[4]["engine"] == "fake" and item[4]["version"] == info.version
    assert float(item[4]["duration_ms"]) >= 0


def test_load_engine_logs_model_load_failed_with_traceback(captured, tmp_path):
    with pytest.raises(TTSError) as ei:
        load_engine(EspeakEngine(data_path=tmp_path / "missing"))
    assert ei.value.code == "MODEL_LOAD_FAILED"
    (item,) = [i for i in captured if i[3] == "model_load_failed"]
    _t, _logger, level, _ev, fields, tb = item
    assert level == "ERROR" and fields["engine"] == "espeak"
    assert fields["error_code"] == "MODEL_LOAD_FAILED" and "missing" in fields["message"]
    assert fields["where"].startswith("ttsops.engines.espeak:load:")
    assert any("FileNotFoundError" in line for line in tb)
    assert "duration_ms" in fields
