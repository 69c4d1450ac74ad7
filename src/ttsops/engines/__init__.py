"""TTS engines: the small interface (``base``), the embedded eSpeak NG engine, a
deterministic fake for tests, and the registry that builds one by name from settings."""

from .base import Engine, EngineInfo, VoiceInfo
from .registry import create_engine, describe, engine_names, load_engine

__all__ = ["Engine", "EngineInfo", "VoiceInfo", "create_engine", "describe", "engine_names",
           "load_engine"]
