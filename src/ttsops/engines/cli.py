"""``ttsops engines``: which engines this installation has, which are configured, why one
is not available, and (``--check``) whether each really loads and speaks.

    ttsops engines                 # table: engine, status, voices, model, reason
    ttsops engines --check         # load each available engine, synthesise a sentence
    ttsops engines --check -e piper --json
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..config import Settings
    from .base import Engine

# modules an engine needs importable (beyond ttsops' own dependencies); found without
# importing them. IndexTTS-2's own dependencies (torch, transformers, ...) are checked by
# importing it, which only --check does.
REQUIRES: dict[str, tuple[str, ...]] = {
    "espeak": ("espeakng_loader",),
    "fake": (),
    "piper": ("onnxruntime",),
    "indextts2": ("indextts",),
}
TEST_SENTENCES = {
    "en": "This is a test of the text to speech engine.",
    "zh": "这是一段语音合成测试。",
}


@dataclass
class EngineStatus:
    engine: str
    default: bool
    installed: bool
    configured: bool
    reason: str = ""  # why it is not available (or a note when it is)
    model: str = ""
    voices: int = 0
    languages: list[str] = field(default_factory=list)
    sample_rate: int = 0
    concurrent_safe: bool = True

    @property
    def available(self) -> bool:
        return self.installed and self.configured


@dataclass
class CheckResult:
    engine: str
    ok: bool
    load_ms: float = 0.0
    synth_ms: float = 0.0
    audio_s: float = 0.0
    rtf: float = 0.0
    rms_dbfs: float = 0.0
    voice: str = ""
    lang: str = ""
    id: str = ""
    error_code: str = ""
    message: str = ""


def _missing(modules: tuple[str, ...]) -> list[str]:
    out = []
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                out.append(m)
        except (ImportError, ValueError):
            out.append(m)
    return out


def _config_problem(name: str, engine: Engine, settings: Settings) -> str:
    """Why a created (not loaded) engine cannot load, found without loading it."""
    if name == "espeak":
        from ._espeaklib import default_data_path

        data = Path(settings.espeak_data_path or default_data_path())
        return "" if (data / "phontab").is_file() else f"no eSpeak NG data in {data}"
    problem = getattr(engine, "problem", None)
    return problem() if problem is not None else ""


def engine_status(name: str, settings: Settings) -> EngineStatus:
    from ..errors import TTSError
    from .registry import ENGINES, create_engine, describe

    st = EngineStatus(name, default=name == settings.engine, installed=False,
                      configured=False)
    missing = _missing(REQUIRES.get(name, ()))
    if missing:
        st.reason = f"not installed (no module {', '.join(missing)}): {ENGINES[name][1]}"
        return st
    try:
        engine = create_engine(name, settings)
    except TTSError as e:
        st.reason = f"not installed: {e.detail or e.message}"
        return st
    st.installed = True
    st.reason = _config_problem(name, engine, settings)
    st.configured = not st.reason
    try:
        info = describe(engine)
        if info is not None:
            st.model, st.languages = info.model, list(info.languages)
            st.sample_rate, st.concurrent_safe = info.sample_rate, info.concurrent_safe
        st.voices = len(engine.voices()) if st.configured else 0
    except Exception as e:  # a broken configuration shows up here, not as a crash
        st.configured = False
        st.reason = st.reason or f"{type(e).__name__}: {e}"
    if name == "fake" and st.available:
        st.reason = "deterministic sine for tests; not speech"
    return st


def check_engine(name: str, settings: Settings, text: str | None = None) -> CheckResult:
    """Load ``name`` (timed, logged) and synthesise one sentence through the pipeline."""
    from ..errors import TTSError
    from ..pipeline.runner import Pipeline
    from ..pipeline.types import SynthesisRequest
    from .registry import create_engine

    res = CheckResult(name, ok=False)
    t0 = time.perf_counter()
    try:
        engine = create_engine(name, settings)
        pipe = Pipeline(engine, settings, cache=False, load=True, warmup=False)
    except Exception as e:
        res.load_ms = round((time.perf_counter() - t0) * 1000.0, 1)
        err = e if isinstance(e, TTSError) else TTSError("MODEL_LOAD_FAILED", str(e)[:300])
        res.error_code, res.message = err.code, err.message
        return res
    res.load_ms = round((time.perf_counter() - t0) * 1000.0, 1)
    langs = pipe.info.languages
    lang = "en" if "en" in langs else langs[0]
    res.lang, res.voice = lang, pipe.default_voice()
    sentence = text or TEST_SENTENCES.get(lang, TEST_SENTENCES["en"])
    t1 = time.perf_counter()
    try:
        r = pipe.run(SynthesisRequest(sentence, voice=res.voice, lang=None if text else lang,
                                      format="wav"))
    except Exception as e:
        err = e if isinstance(e, TTSError) else TTSError("INTERNAL_ERROR", str(e)[:300])
        res.synth_ms = round((time.perf_counter() - t1) * 1000.0, 1)
        res.error_code, res.message = err.code, err.message
        res.id = str(err.context.get("id", ""))
        return res
    finally:
        pipe.close()
    res.synth_ms = round((time.perf_counter() - t1) * 1000.0, 1)
    res.id = r.id
    res.audio_s = round(r.duration_ms / 1000.0, 3)
    res.rtf = round(res.synth_ms / r.duration_ms, 4) if r.duration_ms else 0.0
    rms = float(r.metrics.get("rms", 0.0))
    res.rms_dbfs = round(20 * math.log10(rms), 1) if rms > 0 else -math.inf
    if r.duration_ms <= 0 or rms <= 1e-4:
        res.error_code = "ENGINE_FAILED"
        res.message = "the engine produced silence"
        return res
    res.ok = True
    return res


@click.command()
@click.option("--check", is_flag=True,
              help="Load every available engine and synthesise a test sentence "
                   "(time and errors); exit 1 if any fails.")
@click.option("-e", "--engine", "names", multiple=True,
              help="Only this engine (repeatable). With --check, a named engine that is "
                   "not available counts as a failure.")
@click.option("--text", default=None, help="The sentence --check synthesises.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def engines(check: bool, names: tuple[str, ...], text: str | None, as_json: bool) -> None:
    """List the engines: installed, configured, and why one is not available."""
    from ..config import Settings
    from .registry import engine_names

    settings = Settings()
    known = engine_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(f"unknown engine {', '.join(unknown)}; known: "
                                 f"{', '.join(known)}", param_hint="--engine")
    statuses = [engine_status(n, settings) for n in (names or known)]
    if not check:
        _print_status(statuses, as_json)
        return
    from .. import logsink

    logsink.setup(settings)
    results: list[CheckResult] = []
    try:
        for st in statuses:
            if not st.available:
                if names:  # asked for by name: not being available is a failure
                    results.append(CheckResult(st.engine, ok=False,
                                               error_code="MODEL_LOAD_FAILED",
                                               message=st.reason))
                continue
            if st.engine == "fake" and not names:
                continue
            results.append(check_engine(st.engine, settings, text))
    finally:
        logsink.shutdown()
    _print_checks(statuses, results, as_json, settings)
    if not results or not all(r.ok for r in results):
        sys.exit(1)


def _print_status(statuses: list[EngineStatus], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([{**asdict(s), "available": s.available} for s in statuses],
                              ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("engine", "status", "voices", "languages", "rate", "model / reason")
    for s in statuses:
        status = "available" if s.available else "not installed" if not s.installed \
            else "not configured"
        name = s.engine + (" (default)" if s.default else "")
        detail = s.model if s.available else s.reason
        if s.available and s.reason:
            detail = f"{s.model} — {s.reason}"
        if s.available and not s.concurrent_safe:
            detail += " — one worker per GPU"
        table.add_row(name, status, str(s.voices) if s.available else "",
                      ",".join(s.languages) if s.available else "",
                      str(s.sample_rate) if s.available else "", escape(detail))
    Console(width=max(100, Console().width)).print(table)


def _print_checks(statuses: list[EngineStatus], results: list[CheckResult], as_json: bool,
                  settings: Settings) -> None:
    if as_json:
        click.echo(json.dumps({"engines": [{**asdict(s), "available": s.available}
                                           for s in statuses],
                               "checks": [asdict(r) for r in results],
                               "ok": bool(results) and all(r.ok for r in results)},
                              ensure_ascii=False, indent=2))
        return
    skipped = [s for s in statuses if not s.available and s.engine not in
               {r.engine for r in results}]
    for r in results:
        if r.ok:
            click.echo(f"ok    {r.engine:<10} load {r.load_ms:8.1f} ms  synth "
                       f"{r.synth_ms:8.1f} ms  audio {r.audio_s:5.2f} s  rtf {r.rtf:.3f}  "
                       f"rms {r.rms_dbfs:.1f} dBFS  voice={r.voice} lang={r.lang} id={r.id}")
        else:
            click.echo(f"FAIL  {r.engine:<10} load {r.load_ms:8.1f} ms  {r.error_code}: "
                       f"{r.message}" + (f"  id={r.id}" if r.id else ""))
    for s in skipped:
        click.echo(f"skip  {s.engine:<10} {s.reason}")
    click.echo(f"log: {Path(settings.log_dir) / 'app.log'}")
