"""The Pipeline: runs the stages, times them, writes the records, owns the cache.

See ``types.py`` for the front/back/finish/fail/run split and who writes which record.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import events, limits
from ..cache import AudioCache, CacheEntry, cache_key
from ..errors import TTSError
from . import records
from .memo import FrontMemo
from .metrics import measure
from .stages import BACK_STAGES, FRONT_STEPS, BackState, FrontState, as_tts_error
from .streaming import END_STAGES, PIECE_STAGES, StageClock, open_render, open_stream
from .types import (
    CONTENT_TYPES,
    STAGES,
    Job,
    RenderedAudio,
    StreamChunk,
    SynthesisFailure,
    SynthesisRequest,
    SynthesisResult,
)

if TYPE_CHECKING:
    from ..config import Settings
    from ..engines.base import Engine, EngineInfo

__all__ = ["FrontMemo", "Pipeline", "new_id"]


def new_id() -> str:
    """A synthesis id: ``ts_`` + 16 hex characters (64 random bits: see ``server.ids``)."""
    return "ts_" + secrets.token_hex(8)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


class Pipeline:
    """One engine, its settings and (in the main process) the audio cache.

    ``load=True`` loads the engine now (``engine_load`` / ``model_load_failed``); with
    ``load=False`` (the server's main process) only the engine's description is used and
    the engine is loaded on first ``back()``; ``info``: the engine is loaded already and
    this is its description (a worker loads it itself, to log the load). ``cache``:
    True = from settings, False/None = none, or an ``AudioCache``. ``warmup`` (default:
    when loading) imports the audio libraries up front so that the first synthesis is
    not slower than the others.
    """

    def __init__(self, engine: Engine | None = None, settings: Settings | None = None, *,
                 cache: AudioCache | bool | None = True, load: bool = True,
                 warmup: bool | None = None, info: EngineInfo | None = None) -> None:
        from ..engines.registry import create_engine, describe, load_engine

        if settings is None:  # a worker's settings come with it (config imports pydantic)
            from ..config import get_settings

            settings = get_settings()
        self.settings = settings
        self.engine = engine if engine is not None else create_engine(None, self.settings)
        self._load_engine = load_engine
        self.loaded = False
        if info is not None:  # the caller loaded ``engine`` already (a worker process)
            self.info = info
            self.loaded = True
        elif load:
            self.info = load_engine(self.engine)
            self.loaded = True
            if warmup is None or warmup:
                self.warmup()
        else:
            info = describe(self.engine)
            if info is None:
                self.info = load_engine(self.engine)
                self.loaded = True
            else:
                self.info = info
        if cache is True:
            self.cache: AudioCache | None = AudioCache.from_settings(self.settings)
        elif cache is False or cache is None:
            self.cache = None
        else:
            self.cache = cache
        self._voices = [v.name for v in self.engine.voices()]
        self.front_memo = FrontMemo()

    # --- small queries -------------------------------------------------------------
    def voice_names(self) -> list[str]:
        return list(self._voices)

    def default_voice(self) -> str:
        return "alloy" if "alloy" in self._voices else self._voices[0]

    def ensure_loaded(self) -> None:
        if not self.loaded:
            self.info = self._load_engine(self.engine)
            self.loaded = True

    def warmup(self, resampling: bool = True) -> None:
        """Import the audio libraries (and, with ``resampling``, scipy.signal and the
        filters for 24 kHz output) now, so that the first synthesis of a process does not
        pay ~1 s of imports inside its llm_postproc stage (workers call it after load)."""
        import av  # noqa: F401  (the opus/aac encoders: ~50 ms to import)
        import lameenc  # noqa: F401
        import soundfile  # noqa: F401

        x = np.zeros(64, np.float32)
        measure(x, self.info.sample_rate)
        if resampling:
            from . import audio as audio_mod
            from .encode import OPUS_RATE, PCM_RATE

            for rate in {PCM_RATE, OPUS_RATE}:
                audio_mod.resample(x, self.info.sample_rate, rate)

    def close(self) -> None:
        self.engine.close()

    # --- front: text_normalize + cache lookup (main process) -----------------------
    def front(self, req: SynthesisRequest) -> Job | SynthesisResult:
        sid = req.id or new_id()
        started = time.time()
        t0 = time.perf_counter()
        st = FrontState()
        text_len = len(req.text) if isinstance(req.text, str) else 0
        with events.context(id=sid):
            try:
                memo_key = self._memo_key(req)
                got = self.front_memo.get(memo_key) if memo_key is not None else None
                if got is not None:
                    st, key = got
                else:
                    for step in FRONT_STEPS:
                        step(req, st, self)
                    key = self._key(st) if self.cache is not None else None
                    if memo_key is not None:
                        self.front_memo.put(memo_key, st, key)
                # word timings wanted from an engine that reports them: synthesise (the
                # cache keeps audio only); others answer from the cache as usual
                fresh = req.timestamps and hasattr(self.engine, "word_marks")
                hit = self.cache.get(key) if self.cache is not None and key and not fresh \
                    else None
            except Exception as e:
                err = self._front_failed(req, sid, st, e, t0, text_len)
                if err is e:
                    raise
                raise err from e
            return self._answer(req, sid, st, key, hit, t0, started, text_len)

    def front_hit(self, req: SynthesisRequest) -> SynthesisResult | None:
        """``front(req)`` when it is a cache hit of a request seen before (its
        text_normalize outcome remembered); None otherwise, with nothing written or
        counted, so that ``front(req)`` then does everything as usual. The server's fast
        path for cache hits; the records are the same as ``front()`` writes for a hit."""
        if self.cache is None:
            return None
        started = time.time()
        t0 = time.perf_counter()
        memo_key = self._memo_key(req)
        got = self.front_memo.peek(memo_key) if memo_key is not None else None
        if got is None:
            return None
        st, key = got
        if not key or (req.timestamps and hasattr(self.engine, "word_marks")):
            return None
        hit = self.cache.get(key, count_miss=False)
        if hit is None:
            return None
        sid = req.id or new_id()
        text_len = len(req.text)
        if events.bound().keys() <= {"request_id", "trace_id"}:
            # every record of a hit names its id first: after request_id and trace_id,
            # where binding it would put it (no context to enter and leave)
            out = self._answer(req, sid, st, key, hit, t0, started, text_len)
        else:
            with events.context(id=sid):
                out = self._answer(req, sid, st, key, hit, t0, started, text_len)
        assert isinstance(out, SynthesisResult)
        return out

    def _answer(self, req: SynthesisRequest, sid: str, st: FrontState, key: str | None,
                hit: CacheEntry | None, t0: float, started: float,
                text_len: int) -> Job | SynthesisResult:
        """The end of text_normalize: its records, then the Job (or the cached result)."""
        ms = _ms(t0)
        self._start_record(req, sid, st, text_len, cache_hit=hit is not None)
        for event, code, fields in st.warnings:
            records.warning(event, sid, code, **fields)
        records.stage_time(sid, "text_normalize", ms, ms, segments=len(st.segments))
        if hit is not None:
            return self._hit_of(req, sid, st, hit, started, ms, text_len)
        return Job(id=sid, request=dataclasses.replace(req, id=sid, format=st.fmt,
                                                       speed=st.speed, voice=st.voice),
                   text=st.text, segments=st.segments, lang=st.lang or "", voice=st.voice,
                   cache_key=key, started=started, stages={"text_normalize": ms},
                   warnings=[w[1] for w in st.warnings],
                   request_id=events.current("request_id"),
                   trace_id=events.current("trace_id"), engine=self.info.name,
                   sample_rate=st.sample_rate, text_len=text_len, options=st.options,
                   segment_langs=list(st.segment_langs))

    def _memo_key(self, req: SynthesisRequest) -> tuple[Any, ...] | None:
        """What the text_normalize steps depend on, or None when the request cannot be
        remembered (not text, options that are not plain JSON)."""
        if type(req.text) is not str:
            return None
        memo = self.front_memo
        if memo.owner is not self.info:  # the engine was (re)described: start afresh
            memo.clear()
            memo.owner = self.info
        opts = None
        if req.options:
            try:
                opts = json.dumps(req.options, sort_keys=True)
            except (TypeError, ValueError):
                return None
        s = self.settings
        key = (req.text, req.lang, req.voice, req.format, req.speed, req.sample_rate,
               req.allow_fallback, opts, s.voice_fallback, s.max_input_chars,
               s.segment_max_chars, self.cache is not None)
        try:
            hash(key)
        except TypeError:  # e.g. a voice given as a dict through the Python API
            return None
        return key

    def _key(self, st: FrontState) -> str:
        return cache_key(st.text, st.voice, st.lang or "", st.speed, st.fmt, st.sample_rate,
                         self.info.name, self.info.version, st.options)

    def _start_record(self, req: SynthesisRequest, sid: str, st: FrontState, text_len: int,
                      cache_hit: bool) -> None:
        s = self.settings
        raw = req.text if isinstance(req.text, str) else repr(req.text)
        records.start(sid, text=records.text_field(raw, s.log_text, s.log_text_preview_chars),
                      text_len=text_len, lang=st.lang, voice=st.voice or req.voice,
                      fmt=st.fmt or req.format, engine=self.info.name, cache_hit=cache_hit,
                      speed=st.speed if st.fmt else None)

    def _front_failed(self, req: SynthesisRequest, sid: str, st: FrontState,
                      exc: Exception, t0: float, text_len: int) -> TTSError:
        ms = _ms(t0)
        err = as_tts_error("text_normalize", exc)
        self._start_record(req, sid, st, text_len, cache_hit=False)
        for event, code, fields in st.warnings:
            records.warning(event, sid, code, **fields)
        records.stage_time(sid, "text_normalize", ms, ms, status="failed")
        records.failed(sid, err.code, err.message, exc, "text_normalize")
        records.complete(sid, status="failed", duration_ms=ms, queue_ms=0.0,
                         text_len=text_len, audio_size_kb=0, rtf=None, cache_hit=False,
                         cache_saved=False, model_stage="text_normalize", error_code=err.code,
                         **self._labels(st.lang, st.voice or req.voice, st.fmt or req.format))
        err.context.setdefault("id", sid)
        return err

    def _labels(self, lang: str | None, voice: str, fmt: str) -> dict[str, Any]:
        return {"lang": lang, "voice": voice, "format": fmt, "engine": self.info.name}

    def _hit_of(self, req: SynthesisRequest, sid: str, st: FrontState, entry: CacheEntry,
                started: float, normalize_ms: float, text_len: int) -> SynthesisResult:
        total = (time.time() - started) * 1000.0
        audio = RenderedAudio(audio=entry.audio, sample_rate=entry.sample_rate,
                              duration_ms=entry.duration_ms, metrics=dict(entry.metrics),
                              stages={})
        return self._succeeded(sid, audio, fmt=st.fmt, voice=st.voice, lang=st.lang or "",
                               total=total, queue_ms=0.0, text_len=text_len,
                               stages={"text_normalize": normalize_ms}, cache_hit=True,
                               cache_saved=True, warnings=[w[1] for w in st.warnings])

    def _succeeded(self, sid: str, audio: RenderedAudio, *, fmt: str, voice: str, lang: str,
                   total: float, queue_ms: float, text_len: int, stages: dict[str, float],
                   cache_hit: bool, cache_saved: bool,
                   warnings: list[str]) -> SynthesisResult:
        """A synthesis that succeeded (a cache hit, or synthesised): its last records and
        the result to answer."""
        records.audio_metrics(sid, audio.metrics)
        dur = audio.duration_ms
        records.complete(sid, status="success", duration_ms=total, queue_ms=queue_ms,
                         text_len=text_len, audio_size_kb=round(len(audio.audio) / 1024, 1),
                         rtf=max(total - queue_ms, 0.0) / dur if dur else None,
                         cache_hit=cache_hit, cache_saved=cache_saved,
                         model_stage="text_normalize" if cache_hit else STAGES[-1],
                         **self._labels(lang, voice, fmt))
        return SynthesisResult(
            id=sid, audio=audio.audio, format=fmt, content_type=CONTENT_TYPES[fmt],
            sample_rate=audio.sample_rate, duration_ms=dur, total_ms=total,
            queue_ms=queue_ms, stages=stages, metrics=dict(audio.metrics),
            cache_hit=cache_hit, cache_saved=cache_saved, voice=voice, lang=lang,
            warnings=warnings, words=audio.words)

    # --- back: llm_prompt_gen .. audio_render (worker process) ---------------------
    def back(self, job: Job) -> RenderedAudio:
        """Run the four engine/audio stages; raises ``SynthesisFailure`` (logged)."""
        with events.context(id=job.id, request_id=job.request_id, trace_id=job.trace_id):
            self.ensure_loaded()
            st = BackState(job)
            stages: dict[str, float] = {}
            for name, fn in BACK_STAGES:
                t0 = time.perf_counter()
                try:
                    fn(self, st)
                except BaseException as e:
                    ms = _ms(t0)
                    stages[name] = ms
                    self._back_failed(job, name, ms, stages, e)
                ms = _ms(t0)
                stages[name] = ms
                records.stage_time(job.id, name, ms, (time.time() - job.started) * 1000.0)
            return RenderedAudio(audio=st.data, sample_rate=st.rate,
                                 duration_ms=st.metrics.get("duration_ms", 0.0),
                                 metrics=st.metrics, stages=stages)

    def _back_failed(self, job: Job, stage: str, ms: float, stages: dict[str, float],
                     exc: BaseException) -> None:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise exc
        if isinstance(exc, limits.SynthesisCancelled):  # the main process decided it and
            raise SynthesisFailure(exc.code, exc.detail, stage=stage,  # records it
                                   stages=stages, logged=True, id=job.id) from exc
        records.stage_time(job.id, stage, ms, (time.time() - job.started) * 1000.0,
                           status="failed")
        err = as_tts_error(stage, exc)
        records.failed(job.id, err.code, err.message, exc, stage)
        raise SynthesisFailure(err.code, err.detail, param=err.param, stage=stage,
                               stages=stages, logged=True, exc_type=type(exc).__name__,
                               where=events.where(exc), id=job.id) from exc

    # --- stream: the same stages piece by piece (worker process) --------------------
    def stream(self, job: Job) -> Iterator[StreamChunk]:
        """Yield encoded chunks as pieces are ready (see types.py and streaming.py); the
        last chunk carries the complete ``RenderedAudio`` for ``finish()``."""
        with events.context(id=job.id, request_id=job.request_id, trace_id=job.trace_id):
            self.ensure_loaded()
            clock = StageClock()
            st = open_stream(self, job)
            seq = 0
            all_words: list[dict[str, Any]] = []
            try:
                with clock("audio_render"):
                    open_render(self, st)
                for k in range(len(st.pieces)):
                    st.k = k
                    for name, fn in PIECE_STAGES:
                        with clock(name):
                            fn(self, st)
                    if st.heard and st.held:
                        all_words += st.held_words
                        yield StreamChunk(b"".join(st.held), seq, words=st.held_words)
                        seq += 1
                        st.held, st.held_words = [], []
                for name, fn in END_STAGES:
                    with clock(name):
                        fn(self, st)
            except GeneratorExit:  # the consumer stopped early: it records the outcome
                raise
            except BaseException as e:
                failed = clock.current or STAGES[1]
                for s in STAGES[1:]:
                    if s in clock.ms and s != failed:
                        records.stage_time(job.id, s, clock.ms[s],
                                           (time.time() - job.started) * 1000.0)
                self._back_failed(job, failed, clock.ms.get(failed, 0.0), dict(clock.ms), e)
                raise  # _back_failed raised already; for type checkers
            now = (time.time() - job.started) * 1000.0
            stages = {s: clock.ms[s] for s in STAGES[1:] if s in clock.ms}
            for s, ms in stages.items():
                records.stage_time(job.id, s, ms, now, segments=len(job.segments),
                                   pieces=len(st.pieces))
            all_words += st.held_words
            rendered = RenderedAudio(audio=st.whole, sample_rate=st.rate,
                                     duration_ms=st.metrics["duration_ms"], metrics=st.metrics,
                                     stages=stages, words=all_words if st.marks_of else None)
            yield StreamChunk(b"".join([*st.held, st.tail]), seq, last=True,
                              rendered=rendered, words=st.held_words)

    def _streamed(self, job: Job) -> RenderedAudio:
        for chunk in self.stream(job):
            if chunk.last and chunk.rendered is not None:
                return chunk.rendered
        raise TTSError("INTERNAL_ERROR", "the stream ended without its last chunk")

    # --- finish / fail (main process) ----------------------------------------------
    def finish(self, job: Job, audio: RenderedAudio, queue_ms: float = 0.0) -> SynthesisResult:
        with events.context(id=job.id):
            saved = False
            if self.cache is not None and job.cache_key:
                saved = self.cache.put(job.cache_key, CacheEntry(
                    audio.audio, job.request.format, audio.sample_rate, audio.duration_ms,
                    audio.metrics))
            return self._succeeded(
                job.id, audio, fmt=job.request.format, voice=job.voice, lang=job.lang,
                total=(time.time() - job.started) * 1000.0, queue_ms=queue_ms,
                text_len=job.text_len, stages={**job.stages, **audio.stages},
                cache_hit=False, cache_saved=saved, warnings=list(job.warnings))

    def fail(self, job: Job, error: BaseException, queue_ms: float = 0.0,
             stage: str | None = None) -> TTSError:
        """Record a failure after ``front()`` (see types.py); returns the error to answer."""
        with events.context(id=job.id):
            if isinstance(error, SynthesisFailure):
                err: TTSError = error
                where = error.stage or stage or STAGES[1]
                if not error.logged:
                    records.failed(job.id, err.code, err.message, error, where)
            else:
                where = stage or STAGES[1]
                err = as_tts_error(where, error)
                if err.code != "CLIENT_CLOSED":  # a cancellation is no failure of ours
                    records.failed(job.id, err.code, err.message, error, where)
            total = (time.time() - job.started) * 1000.0
            # cancelled: the client went away (nobody to answer), not a failure of ours
            status = "cancelled" if err.code == "CLIENT_CLOSED" else "failed"
            records.complete(job.id, status=status, duration_ms=total, queue_ms=queue_ms,
                             text_len=job.text_len, audio_size_kb=0, rtf=None,
                             cache_hit=False, cache_saved=False, model_stage=where,
                             error_code=err.code,
                             **self._labels(job.lang, job.voice, job.request.format))
            err.context.setdefault("id", job.id)
            return err

    # --- everything in one process -------------------------------------------------
    def run(self, req: SynthesisRequest) -> SynthesisResult:
        """front + back + finish in this process; raises ``TTSError`` (all recorded)."""
        front = self.front(req)
        if isinstance(front, SynthesisResult):
            return front
        try:
            # word timings come from the streamed path (piece by piece, as a server streams)
            audio = self._streamed(front) if req.timestamps else self.back(front)
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                self.fail(front, e)
                raise
            raise self.fail(front, e) from e
        return self.finish(front, audio)
