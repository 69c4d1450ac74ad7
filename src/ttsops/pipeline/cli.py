"""``ttsops synth``: one synthesis from the command line, with the full log trail.

    ttsops synth "今天天气真好" -o out.mp3 --voice nova
    echo "Hello there" | ttsops synth - -o - --format wav > hello.wav
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

_SUFFIX_FORMAT = {".mp3": "mp3", ".wav": "wav", ".flac": "flac", ".ogg": "opus",
                  ".opus": "opus", ".pcm": "pcm", ".raw": "pcm", ".aac": "aac"}


def _read_text(text: str) -> str:
    if text != "-":
        return text
    data = sys.stdin.buffer.read()
    return data.decode("utf-8", "surrogateescape").rstrip("\n")


def _fail(code: str, message: str, hint: str, as_json: bool, sid: str | None) -> None:
    if as_json:
        click.echo(json.dumps({"id": sid, "status": "failed", "error_code": code,
                               "message": message}, ensure_ascii=False))
    click.echo(f"error: {code}: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    if sid:
        click.echo(f"id: {sid}", err=True)
    sys.exit(1)


@click.command()
@click.argument("text")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, allow_dash=True),
              default=None, help="Output file ('-' for stdout); required unless --dry-run.")
@click.option("--voice", default="alloy", show_default=True,
              help="Voice: alloy, ash, ballad, cedar, coral, echo, fable, marin, nova, onyx, "
                   "sage, shimmer, verse.")
@click.option("--lang", default=None,
              help="Language (zh, en, ja, ar, ru...; default: detected from the text).")
@click.option("--speed", default=1.0, show_default=True, type=float, help="0.25 to 4.0.")
@click.option("--format", "fmt", default=None,
              type=click.Choice(["mp3", "opus", "aac", "flac", "wav", "pcm"]),
              help="Audio format (default: from the output suffix, else mp3).")
@click.option("--sample-rate", type=int, default=None,
              help="Output sample rate (default: the engine's own; 24000 for pcm/opus).")
@click.option("--engine", default=None, help="espeak (default) or fake; TTSOPS_ENGINE.")
@click.option("--allow-fallback", is_flag=True,
              help="Unknown voice: use the default voice with a WARNING instead of failing.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the audio cache.")
@click.option("--log-dir", type=click.Path(file_okay=False), default=None,
              help="Where app.log goes (default: TTSOPS_LOG_DIR).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--dry-run", is_flag=True,
              help="Print the normalised text, its language(s) and segments; no audio, no "
                   "log records.")
@click.option("--timestamps", is_flag=True,
              help="Also print when each word is spoken (start/end ms; JSON: 'words').")
def synth(text: str, output: str | None, voice: str, lang: str | None, speed: float,
          fmt: str | None, sample_rate: int | None, engine: str | None, allow_fallback: bool,
          no_cache: bool, log_dir: str | None, as_json: bool, dry_run: bool,
          timestamps: bool) -> None:
    """Turn TEXT into speech ('-' reads the text from stdin); prints the synthesis id and
    the time of each stage. Exits 1 with the error code on failure, 2 on bad usage."""
    from .. import logsink
    from ..config import Settings
    from ..errors import TTSError, spec

    if dry_run:
        _dry_run(_read_text(text), voice, lang, speed, fmt or "mp3", sample_rate, engine,
                 allow_fallback, as_json)
        return
    if output is None:
        raise click.UsageError("Missing option '-o' / '--output' (or use --dry-run).")

    overrides: dict[str, Any] = {}
    if log_dir:
        overrides["log_dir"] = Path(log_dir)
    if engine:
        overrides["engine"] = engine
    settings = Settings(**overrides)
    if fmt is None:
        fmt = _SUFFIX_FORMAT.get(Path(output).suffix.lower(), "mp3") if output != "-" \
            else "mp3"
    logsink.setup(settings)
    sid: str | None = None
    try:
        from .runner import Pipeline
        from .types import SynthesisRequest

        try:
            pipe = Pipeline(settings=settings, cache=not no_cache, warmup=False)
        except TTSError as e:
            _fail(e.code, e.message, e.spec.hint, as_json, None)
        # imports happen before the synthesis, not inside its llm_postproc stage;
        # scipy.signal (~1 s) only when this synthesis will resample or stretch
        native = pipe.info.extra.get("native_speed") or (0.0, 99.0)
        pipe.warmup(resampling=fmt in ("pcm", "opus") or sample_rate is not None
                    or not native[0] <= speed <= native[1])
        req = SynthesisRequest(_read_text(text), voice=voice, lang=lang, speed=speed,
                               format=fmt, sample_rate=sample_rate,
                               allow_fallback=True if allow_fallback else None,
                               timestamps=timestamps)
        try:
            result = pipe.run(req)
        except TTSError as e:
            sid = e.context.get("id")
            _fail(e.code, e.message, e.spec.hint, as_json, sid)
        sid = result.id
        try:
            if output == "-":
                sys.stdout.buffer.write(result.audio)
                sys.stdout.buffer.flush()
            else:
                Path(output).write_bytes(result.audio)
        except OSError as e:
            code = "DISK_FULL" if e.errno == 28 else "INTERNAL_ERROR"
            _fail(code, f"cannot write {output}: {e}", spec(code).hint, as_json, sid)
        _report(result, output, as_json, timestamps)
    finally:
        logsink.shutdown()


def _dry_run(text: str, voice: str, lang: str | None, speed: float, fmt: str,
             sample_rate: int | None, engine: str | None, allow_fallback: bool,
             as_json: bool) -> None:
    """The text_normalize steps alone, on the engine's description (not loaded): what
    the engine would be given. Bad input: the same error codes as a synthesis, exit 1."""
    from ..config import Settings
    from ..errors import TTSError
    from .runner import Pipeline
    from .stages import FRONT_STEPS, FrontState
    from .types import SynthesisRequest

    settings = Settings(engine=engine) if engine else Settings()
    req = SynthesisRequest(text, voice=voice, lang=lang, speed=speed, format=fmt,
                           sample_rate=sample_rate,
                           allow_fallback=True if allow_fallback else None)
    st = FrontState()
    try:
        pipe = Pipeline(settings=settings, cache=False, load=False, warmup=False)
        for step in FRONT_STEPS:
            step(req, st, pipe)
    except TTSError as e:
        _fail(e.code, e.message, e.spec.hint, as_json, None)
    segments = [{"lang": lg, "text": t} for lg, t in
                zip(st.segment_langs, st.segments, strict=True)]
    if as_json:
        click.echo(json.dumps({
            "status": "dry_run", "input": text, "text": st.text, "lang": st.lang,
            "runs": [{"lang": lg, "text": t} for lg, t in st.runs], "segments": segments,
            "voice": st.voice, "format": st.fmt, "speed": st.speed,
            "sample_rate": st.sample_rate, "engine": pipe.info.name,
            "warnings": [w[1] for w in st.warnings]}, ensure_ascii=False))
        return
    click.echo(f"text: {st.text}")
    click.echo(f"lang: {st.lang}")
    click.echo(f"voice: {st.voice}, format: {st.fmt}, speed: {st.speed:g}, "
               f"engine: {pipe.info.name}")
    for i, seg in enumerate(segments, 1):
        click.echo(f"  {i:>3} [{seg['lang']}] {seg['text']}")
    for _event, code, _fields in st.warnings:
        click.echo(f"warning: {code}")


def _report(r: Any, output: str, as_json: bool, timestamps: bool = False) -> None:
    to_err = output == "-"
    words = {"words": r.words or []} if timestamps else {}
    if as_json:
        click.echo(json.dumps({
            "id": r.id, "status": "success", "output": output, "format": r.format,
            "sample_rate": r.sample_rate, "duration_ms": r.duration_ms,
            "total_ms": round(r.total_ms, 2), "size_bytes": len(r.audio),
            "stages": {k: round(v, 3) for k, v in r.stages.items()}, "metrics": r.metrics,
            "cache_hit": r.cache_hit, "cache_saved": r.cache_saved, "voice": r.voice,
            "lang": r.lang, "warnings": r.warnings, **words}, ensure_ascii=False), err=to_err)
        return
    echo = click.echo
    echo(f"id: {r.id}", err=to_err)
    for stage, ms in r.stages.items():
        echo(f"  {stage:<15} {ms:9.2f} ms", err=to_err)
    echo(f"  {'total':<15} {r.total_ms:9.2f} ms", err=to_err)
    rtf = r.total_ms / r.duration_ms if r.duration_ms else 0.0
    echo(f"audio: {output} ({r.format}, {r.sample_rate} Hz, {r.duration_ms / 1000:.2f} s, "
         f"{len(r.audio) / 1024:.1f} KB), lang={r.lang}, voice={r.voice}, rtf={rtf:.4f}, "
         f"cache_hit={str(r.cache_hit).lower()}, cache_saved={str(r.cache_saved).lower()}",
         err=to_err)
    for w in r.warnings:
        echo(f"warning: {w}", err=to_err)
    if timestamps:
        echo(f"words: {len(r.words or [])}" + ("" if r.words else
                                                " (this engine does not report word timings)"),
             err=to_err)
        for w in r.words or []:
            echo(f"  {w['start_ms'] / 1000:8.3f} {w['end_ms'] / 1000:8.3f}  {w['word']}",
                 err=to_err)
