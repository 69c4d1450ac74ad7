"""Fault sites for the simulator: real exceptions raised from code that carries the
module names and file paths of a deployed ttsops, so that ``where``, ``exc_type`` and the
traceback of simulated failures look exactly like the service's own (the same event API
formats them). The source is registered with ``linecache`` so tracebacks show it.
"""

from __future__ import annotations

import linecache
from typing import Any

from .errors import TTSError

ROOT = "/app/src/ttsops"

# module name -> (path below ROOT, first line number, source)
_SOURCES: dict[str, tuple[str, int, str]] = {
    "ttsops.pipeline.core": ("pipeline/core.py", 140, '''
def run_stage(stage, fn, *args):
    try:
        fn(*args)
    except Exception as exc:
        return exc
    return None
'''),
    "ttsops.pipeline.text": ("pipeline/text.py", 61, '''
def clean(text):
    cleaned = "".join(ch for ch in text if ch.isprintable()).strip()
    if not cleaned:
        raise TTSError("TEXT_EMPTY", "nothing left after removing control characters",
                       param="input")
    return cleaned
'''),
    "ttsops.pipeline.voices": ("pipeline/voices.py", 33, '''
def resolve(voice, known):
    if voice not in known:
        raise TTSError("VOICE_UNKNOWN", f"voice {voice!r} is not one of {sorted(known)}",
                       param="voice")
    return voice
'''),
    "ttsops.pipeline.postprocess": ("pipeline/postprocess.py", 81, '''
def guard_finite(n_samples, n_bad):
    if n_bad:
        raise TTSError("SCIPY_FFT_INVALID",
                       f"{n_bad} of {n_samples} samples are NaN/Inf after llm_inference")


def postprocess(n_samples, n_bad):
    guard_finite(n_samples, n_bad)
    return n_samples
'''),
    "ttsops.pipeline.encode": ("pipeline/encode.py", 118, '''
def write_temp(path, nbytes):
    raise OSError(28, "No space left on device", path)


def encode(path, nbytes, fmt):
    try:
        write_temp(path, nbytes)
    except OSError as e:
        raise TTSError("DISK_FULL", f"cannot write {fmt} audio to {path}: {e.strerror}") from e
'''),
    "ttsops.cache": ("cache.py", 204, '''
def _write_atomic(path, nbytes):
    raise OSError(28, "No space left on device", path)


def put(path, nbytes):
    _write_atomic(path, nbytes)
'''),
    "ttsops.workers": ("workers.py", 96, '''
def submit(job, ready):
    if not ready:
        raise TTSError("ENGINE_NOT_READY", "no worker has a loaded engine")
    return job
'''),
    "ttsops.engines.indextts2": ("engines/indextts2.py", 57, '''
def _read_checkpoint(path):
    raise RuntimeError("PytorchStreamReader failed reading zip archive: "
                       "failed finding central directory")


def load(model_dir):
    try:
        _read_checkpoint(model_dir + "/gpt.pth")
    except RuntimeError as e:
        raise TTSError("MODEL_LOAD_FAILED", f"{model_dir}/gpt.pth: {e}") from e
'''),
}

_modules: dict[str, dict[str, Any]] = {}


def _module(name: str) -> dict[str, Any]:
    mod = _modules.get(name)
    if mod is None:
        rel, first, src = _SOURCES[name]
        path = f"{ROOT}/{rel}"
        text = "\n" * (first - 1) + src.lstrip("\n")
        lines = text.splitlines(keepends=True)
        linecache.cache[path] = (len(text), None, lines, path)
        mod = {"__name__": name, "__file__": path, "TTSError": TTSError}
        exec(compile(text, path, "exec"), mod)
        _modules[name] = mod
    return mod


def fault(site: str, *args: Any) -> BaseException:
    """Run fault site ``module:function`` with ``args``; return the exception it raised
    (with its traceback), as the pipeline's stage runner would catch it."""
    module, func = site.split(":")
    fn = _module(module)[func]
    exc = _module("ttsops.pipeline.core")["run_stage"]("sim", fn, *args)
    if exc is None:  # pragma: no cover - every site raises
        raise AssertionError(f"fault site {site} did not raise")
    return exc
