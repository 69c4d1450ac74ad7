"""Engines by name, built from settings; loading with its ``engine_load`` /
``model_load_failed`` records.

    engine = create_engine("espeak", settings)     # cheap: nothing loaded yet
    info = describe(engine)                        # name, version, rate, languages
    info = load_engine(engine)                     # timed and logged; MODEL_LOAD_FAILED

Optional engines (piper, indextts2) are imported only when asked for; when their module
or its dependencies are missing, ``create_engine`` raises MODEL_LOAD_FAILED with the
install hint.
"""

from __future__ import annotations

import importlib
import time
from typing import TYPE_CHECKING, Any

from ..errors import TTSError
from ..events import get_logger
from .base import Engine, EngineInfo

if TYPE_CHECKING:
    from ..config import Settings

log = get_logger("ttsops.engines")

# name -> (module:class, install hint)
ENGINES: dict[str, tuple[str, str]] = {
    "espeak": ("ttsops.engines.espeak:EspeakEngine", "pip install espeakng-loader"),
    "fake": ("ttsops.engines.fake:FakeEngine", ""),
    "piper": ("ttsops.engines.piper:PiperEngine",
              "pip install 'ttsops[piper]' and set TTSOPS_PIPER_VOICE_DIR"),
    "indextts2": ("ttsops.engines.indextts2:IndexTTS2Engine",
                  "pip install 'ttsops[indextts]' and your index-tts checkout (pip install -e "
                  "<checkout>), then set TTSOPS_INDEXTTS_MODEL_DIR and TTSOPS_INDEXTTS_VOICES"),
}


def engine_names() -> list[str]:
    return list(ENGINES)


def _kwargs(name: str, settings: Settings) -> dict[str, Any]:
    if name == "espeak":
        return {"data_path": settings.espeak_data_path}
    if name == "fake":
        return {"delay_ms": settings.fake_delay_ms, "load_ms": settings.fake_load_ms,
                "load_fail": settings.fake_load_fail}
    return {}


def create_engine(name: str | None = None, settings: Settings | None = None) -> Engine:
    """A new, not yet loaded engine. ``name`` defaults to ``settings.engine``."""
    if settings is None:
        from ..config import get_settings

        settings = get_settings()
    name = (name or settings.engine).strip().lower()
    if name not in ENGINES:
        raise TTSError("MODEL_LOAD_FAILED", f"unknown engine {name!r}; known: "
                       f"{', '.join(ENGINES)}", engine=name)
    target, hint = ENGINES[name]
    module_name, cls_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise TTSError("MODEL_LOAD_FAILED", f"engine {name!r} is not available ({e}); "
                       f"{hint}", engine=name) from e
    cls: type[Engine] = getattr(module, cls_name)
    factory = getattr(cls, "from_settings", None)
    if factory is not None:
        return factory(settings)
    return cls(**_kwargs(name, settings))


def describe(engine: Engine) -> EngineInfo | None:
    """The engine's info without loading it (``engine.describe()`` when it has one)."""
    fn = getattr(engine, "describe", None)
    return fn() if fn is not None else None


def load_engine(engine: Engine) -> EngineInfo:
    """``engine.load()``, timed, with ``engine_load`` (INFO) or ``model_load_failed``
    (ERROR, traceback) written; failures are raised as MODEL_LOAD_FAILED."""
    t0 = time.perf_counter()
    try:
        info = engine.load()
    except BaseException as e:
        ms = round((time.perf_counter() - t0) * 1000.0, 1)
        err = e if isinstance(e, TTSError) else TTSError(
            "MODEL_LOAD_FAILED", f"{type(e).__name__}: {e}"[:300], engine=engine.name)
        pre = describe(engine)
        log.error("model_load_failed", exc=e, engine=engine.name,
                  model=pre.model if pre else "", duration_ms=ms, error_code=err.code,
                  message=err.message)
        if err is e:
            raise
        raise err from e
    ms = round((time.perf_counter() - t0) * 1000.0, 1)
    log.info("engine_load", engine=info.name, model=info.model, version=info.version,
             sample_rate=info.sample_rate, device=info.device, duration_ms=ms)
    return info
