"""The real pipeline, end to end: real speech from eSpeak NG, the records of every
synthesis, and every error code it can produce (the fake engine only where the failure
cannot be provoked from the real one: NaN output, an engine that raises)."""

from __future__ import annotations

import dataclasses
import pickle
import re

import numpy as np
import pytest

from ttsops.errors import TTSError
from ttsops.pipeline.runner import Pipeline, new_id
from ttsops.pipeline.types import (
    STAGES,
    Job,
    RenderedAudio,
    SynthesisFailure,
    SynthesisRequest,
    SynthesisResult,
)

from .conftest import decode, events_of, make_settings, of

SPEECH_CENTROID = (300.0, 5000.0)  # Hz: where speech energy sits


# --- real speech ------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "flac"])
def test_chinese_speech_is_real(espeak, captured, fmt):
    r = espeak.run(SynthesisRequest("今天天气真好", format=fmt))
    x, sr = decode(r.audio)
    assert sr == r.sample_rate
    assert 1.0 <= x.size / sr <= 5.0
    assert abs(x.size / sr * 1000 - r.duration_ms) < 150
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    assert rms > 0.02
    assert SPEECH_CENTROID[0] < r.metrics["spectral_centroid"] < SPEECH_CENTROID[1]
    assert r.lang == "zh"
    assert re.fullmatch(r"ts_[0-9a-f]{16}", r.id)


def test_english_speech_is_real(espeak):
    r = espeak.run(SynthesisRequest("The quick brown fox jumps over the lazy dog.",
                                    format="wav"))
    x, sr = decode(r.audio)
    assert 1.5 <= x.size / sr <= 6.0
    assert float(np.sqrt(np.mean(x ** 2))) > 0.02
    assert SPEECH_CENTROID[0] < r.metrics["spectral_centroid"] < SPEECH_CENTROID[1]
    assert r.metrics["silence_ratio"] < 0.5
    assert r.lang == "en"


def test_pcm_is_24k_s16le(espeak):
    r = espeak.run(SynthesisRequest("Hello world", format="pcm"))
    assert r.sample_rate == 24000
    x = np.frombuffer(r.audio, "<i2")
    assert abs(x.size / 24000 * 1000 - r.duration_ms) < 1
    assert np.abs(x).max() > 3000


def test_aac_without_an_ffmpeg_binary(espeak, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    r = espeak.run(SynthesisRequest("Hello world", format="aac"))
    assert r.content_type == "audio/aac"
    assert r.audio[:2] in (b"\xff\xf1", b"\xff\xf9")


def test_mixed_chinese_english_text(espeak):
    zh = espeak.run(SynthesisRequest("我们明天开会", format="wav"))
    mixed = espeak.run(SynthesisRequest("我们明天 meeting with the team 开会", format="wav"))
    assert mixed.lang == "zh"
    # the English words are spoken, not skipped: clearly longer than the Chinese alone
    assert mixed.duration_ms > zh.duration_ms + 500


def test_speed_changes_duration(espeak):
    base = espeak.run(SynthesisRequest("This sentence is read at three speeds.", format="wav"))
    fast = espeak.run(SynthesisRequest("This sentence is read at three speeds.", format="wav",
                                       speed=2.0))
    slow = espeak.run(SynthesisRequest("This sentence is read at three speeds.", format="wav",
                                       speed=0.25))  # below eSpeak's floor: stretched
    assert 0.35 < fast.duration_ms / base.duration_ms < 0.7
    assert 3.0 < slow.duration_ms / base.duration_ms < 5.0
    assert SPEECH_CENTROID[0] < slow.metrics["spectral_centroid"] < SPEECH_CENTROID[1]


def test_sample_rate_request_resamples(espeak):
    r = espeak.run(SynthesisRequest("Hello", format="wav", sample_rate=16000))
    _x, sr = decode(r.audio)
    assert sr == 16000 == r.sample_rate


def test_numbers_are_read_in_chinese(espeak, captured):
    job = espeak.front(SynthesisRequest("会议在2024-06-12举行", format="wav"))
    assert job.text == "会议在二零二四年六月十二日举行"
    # what eSpeak reads: digit by digit with 年/月/日, not "two thousand (千) ..."
    thousand = "tɕhˈiɛ5n"
    assert thousand in espeak.engine.phonemes("会议在2024-06-12举行", "zh")
    assert thousand not in espeak.engine.phonemes(job.text, "zh")
    r = espeak.finish(job, espeak.back(job))
    assert r.duration_ms > 2000


def test_long_text_is_synthesised_whole_in_segments(tmp_path, captured):
    p = Pipeline(settings=make_settings(tmp_path, segment_max_chars=40))
    one = p.run(SynthesisRequest("这是一个测试句子。", format="wav"))
    text = "这是一个测试句子。" * 12
    r = p.run(SynthesisRequest(text, format="wav"))
    (norm,) = of(captured, r.id, "stage_time")[:1]
    assert norm["stage"] == "text_normalize"
    assert int(norm["segments"]) >= 3
    # nothing truncated: twelve sentences last about twelve times one
    assert 9 * one.duration_ms < r.duration_ms < 14 * one.duration_ms


# --- records ----------------------------------------------------------------------------
def test_records_of_a_successful_synthesis(espeak, captured):
    r = espeak.run(SynthesisRequest("今天天气真好", voice="nova", format="mp3"))
    evs = events_of(captured, r.id)
    assert evs == ["synthesis_start", "stage_time", "stage_time", "stage_time", "stage_time",
                   "stage_time", "audio_metrics", "synthesis_complete"]
    (start,) = of(captured, r.id, "synthesis_start")
    assert start["text"] == "今天天气真好" and start["text_len"] == "6"
    assert start["lang"] == "zh" and start["voice"] == "nova" and start["format"] == "mp3"
    assert start["engine"] == "espeak" and start["cache_hit"] == "false"
    stages = of(captured, r.id, "stage_time")
    assert [s["stage"] for s in stages] == list(STAGES)
    elapsed = [float(s["elapsed_ms"]) for s in stages]
    assert elapsed == sorted(elapsed)
    for s in stages:
        assert float(s["duration_ms"]) <= float(s["elapsed_ms"]) + 0.01
    (m,) = of(captured, r.id, "audio_metrics")
    for k in ("duration_ms", "rms", "peak", "spectral_centroid", "silence_ratio",
              "clipped_ratio"):
        assert float(m[k]) == pytest.approx(r.metrics[k], rel=1e-3, abs=1e-6)
    (c,) = of(captured, r.id, "synthesis_complete")
    assert c["status"] == "success" and c["model_stage"] == "audio_render"
    assert c["cache_hit"] == "false" and c["cache_saved"] == "true"
    assert c["text_len"] == "6" and "error_code" not in c
    assert float(c["audio_size_kb"]) == pytest.approx(len(r.audio) / 1024, abs=0.06)
    assert float(c["rtf"]) == pytest.approx(r.total_ms / r.duration_ms, rel=0.05, abs=1e-3)
    assert float(c["duration_ms"]) >= float(elapsed[-1])


@pytest.mark.parametrize("mode,expect", [("preview", "preview"), ("hash", "hash"),
                                         ("none", None)])
def test_log_text_modes(tmp_path, captured, mode, expect):
    p = Pipeline(settings=make_settings(tmp_path, log_text=mode, log_text_preview_chars=5),
                 cache=False)
    r = p.run(SynthesisRequest("Hello, secret world", format="wav"))
    (start,) = of(captured, r.id, "synthesis_start")
    if expect == "preview":
        assert start["text"] == "Hello…"
    elif expect == "hash":
        assert re.fullmatch(r"sha256:[0-9a-f]{16}", start["text"])
    else:
        assert "text" not in start
    assert start["text_len"] == "19"


def test_request_id_is_carried_into_every_record(espeak, captured):
    from ttsops import events

    with events.context(request_id="req-42", trace_id="abc"):
        r = espeak.run(SynthesisRequest("Hello", format="wav"))
    recs = of(captured, r.id)
    assert len(recs) == 8
    assert all(x.get("request_id") == "req-42" and x.get("trace_id") == "abc" for x in recs)


def test_cache_hit_records_and_result(espeak, captured):
    first = espeak.run(SynthesisRequest("Hello cache", format="mp3"))
    again = espeak.run(SynthesisRequest("Hello cache", format="mp3"))
    assert again.cache_hit and not first.cache_hit
    assert again.audio == first.audio and again.metrics == first.metrics
    assert events_of(captured, again.id) == ["synthesis_start", "stage_time", "audio_metrics",
                                             "synthesis_complete"]
    (c,) = of(captured, again.id, "synthesis_complete")
    assert c["cache_hit"] == "true" and c["model_stage"] == "text_normalize"
    # a different voice, speed or format is a different entry
    for kw in ({"voice": "onyx"}, {"speed": 1.5}, {"format": "wav"}):
        r = espeak.run(SynthesisRequest("Hello cache", **{"format": "mp3", **kw}))
        assert not r.cache_hit


def test_cache_disabled(tmp_path, captured):
    p = Pipeline(settings=make_settings(tmp_path, cache_enabled=False))
    assert p.cache is None
    a = p.run(SynthesisRequest("Hello", format="wav"))
    b = p.run(SynthesisRequest("Hello", format="wav"))
    assert not a.cache_hit and not b.cache_hit and not a.cache_saved
    (c,) = of(captured, a.id, "synthesis_complete")
    assert c["cache_saved"] == "false"


# --- warnings ---------------------------------------------------------------------------
def test_text_sanitized_warning(espeak, captured):
    r = espeak.run(SynthesisRequest("Hel\u200blo\x07 wor\x00ld", format="wav"))
    (w,) = of(captured, r.id, "text_sanitized")
    assert w["_level"] == "WARNING" and w["warning_code"] == "TEXT_SANITIZED"
    assert w["removed"] == "3"
    assert r.warnings == ["TEXT_SANITIZED"]
    assert events_of(captured, r.id)[:3] == ["synthesis_start", "text_sanitized", "stage_time"]


def test_voice_fallback_warning(espeak, captured):
    r = espeak.run(SynthesisRequest("Hello", voice="galadriel", allow_fallback=True,
                                    format="wav"))
    (w,) = of(captured, r.id, "voice_fallback")
    assert w["_level"] == "WARNING" and w["warning_code"] == "VOICE_FALLBACK"
    assert w["fallback_used"] == "true" and w["requested"] == "galadriel"
    assert r.voice == "alloy"


def test_voice_fallback_from_settings(tmp_path, captured):
    p = Pipeline(settings=make_settings(tmp_path, voice_fallback=True))
    r = p.run(SynthesisRequest("Hello", voice="galadriel", format="wav"))
    assert r.warnings == ["VOICE_FALLBACK"]


# --- errors: bad input (front) ------------------------------------------------------------
def _front_error(pipe, captured, req, code, param=None):
    with pytest.raises(TTSError) as ei:
        pipe.run(req)
    err = ei.value
    assert err.code == code
    if param:
        assert err.param == param
    sid = err.context["id"]
    evs = [e for e in events_of(captured, sid) if e not in ("text_sanitized", "voice_fallback")]
    assert evs == ["synthesis_start", "stage_time", "synthesis_failed", "synthesis_complete"]
    (f,) = of(captured, sid, "synthesis_failed")
    assert f["_level"] == "ERROR" and f["error_code"] == code
    assert f["stage"] == "text_normalize" and f["exc_type"] == "TTSError"
    assert f["where"].startswith("ttsops.pipeline.")
    assert any("Traceback" in line for line in f["_tb"])
    (c,) = of(captured, sid, "synthesis_complete")
    assert c["status"] == "failed" and c["error_code"] == code
    assert c["model_stage"] == "text_normalize" and c["cache_saved"] == "false"
    assert c["text_len"] == str(len(req.text))
    return err


@pytest.mark.parametrize("text", ["", "   \n\t ", "\x00\x01\u200b", "。。。！？"])
def test_text_empty(espeak, captured, text):
    err = _front_error(espeak, captured, SynthesisRequest(text), "TEXT_EMPTY", "input")
    if "\x00" in text:  # what was removed is still reported before the failure
        (w,) = of(captured, err.context["id"], "text_sanitized")
        assert w["removed"] == "3"


def test_text_too_long(tmp_path, captured):
    p = Pipeline(settings=make_settings(tmp_path, max_input_chars=50))
    err = _front_error(p, captured, SynthesisRequest("a" * 51), "TEXT_TOO_LONG", "input")
    assert err.status == 400


def test_text_invalid(espeak, captured):
    _front_error(espeak, captured, SynthesisRequest("ab\udcffcd"), "TEXT_INVALID")


def test_voice_unknown(espeak, captured):
    err = _front_error(espeak, captured, SynthesisRequest("Hello", voice="galadriel"),
                       "VOICE_UNKNOWN", "voice")
    assert err.status == 400 and err.to_openai()["error"]["code"] == "VOICE_UNKNOWN"


def test_lang_unsupported(espeak, captured):
    _front_error(espeak, captured, SynthesisRequest("Bonjour", lang="km"), "LANG_UNSUPPORTED",
                 "lang")


@pytest.mark.parametrize("speed", [0.1, 4.5])
def test_speed_out_of_range(espeak, captured, speed):
    _front_error(espeak, captured, SynthesisRequest("Hello", speed=speed),
                 "SPEED_OUT_OF_RANGE", "speed")


def test_format_unsupported(espeak, captured):
    _front_error(espeak, captured, SynthesisRequest("Hello", format="ogg"),
                 "FORMAT_UNSUPPORTED", "response_format")


def test_sample_rate_not_possible_for_format(espeak, captured):
    _front_error(espeak, captured, SynthesisRequest("Hello", format="opus", sample_rate=22050),
                 "INVALID_REQUEST", "sample_rate")


# --- errors: engine and audio (back) ------------------------------------------------------
def _back_error(pipe, captured, req, code, stage):
    with pytest.raises(TTSError) as ei:
        pipe.run(req)
    err = ei.value
    assert isinstance(err, SynthesisFailure) and err.code == code and err.stage == stage
    sid = err.context["id"]
    evs = events_of(captured, sid)
    n_stages = STAGES.index(stage) + 1
    assert evs == (["synthesis_start"] + ["stage_time"] * n_stages +
                   ["synthesis_failed", "synthesis_complete"])
    last = of(captured, sid, "stage_time")[-1]
    assert last["stage"] == stage and last["status"] == "failed"
    (f,) = of(captured, sid, "synthesis_failed")
    assert f["error_code"] == code and f["stage"] == stage and f["_level"] == "ERROR"
    assert f["where"] and f["exc_type"] and any("Traceback" in x for x in f["_tb"])
    (c,) = of(captured, sid, "synthesis_complete")
    assert c["status"] == "failed" and c["error_code"] == code and c["model_stage"] == stage
    assert "audio_metrics" not in evs
    return err, f


@pytest.mark.parametrize("directive", ["#nan", "#inf"])
def test_nan_output_is_scipy_fft_invalid(fake, captured, directive):
    err, f = _back_error(fake, captured, SynthesisRequest(f"hello {directive}"),
                         "SCIPY_FFT_INVALID", "llm_postproc")
    assert f["where"].startswith("ttsops.pipeline.audio:guard_finite:")
    assert err.status == 500


def test_engine_exception_in_inference_is_engine_failed(fake, captured):
    _err, f = _back_error(fake, captured, SynthesisRequest("hello #raise"), "ENGINE_FAILED",
                         "llm_inference")
    assert f["exc_type"] == "RuntimeError"
    assert f["where"].startswith("ttsops.engines.fake:infer:")


def test_engine_exception_in_prepare_is_engine_failed(fake, captured):
    _back_error(fake, captured, SynthesisRequest("hello #raise_prepare"), "ENGINE_FAILED",
                "llm_prompt_gen")


def test_engine_without_audio_is_engine_failed(fake, captured):
    # the fake engine never produces 0 samples; an engine that does is a failure, not a 200
    class Mute(type(fake.engine)):
        def infer(self, prepared, lang, voice, speed):
            return np.zeros(0, np.float32)

    p = Pipeline(Mute(), fake.settings, cache=False)
    _back_error(p, captured, SynthesisRequest("hello"), "ENGINE_FAILED", "llm_inference")


def test_encoder_failure_is_audio_encode_failed(tmp_path, captured, monkeypatch):
    from ttsops.pipeline import encode

    # a codec PyAV does not have: the encoder's own exception, mapped by the stage
    monkeypatch.setitem(encode._AV, "aac", ("no_such_codec", *encode._AV["aac"][1:]))
    p = Pipeline(settings=make_settings(tmp_path))
    err, _f = _back_error(p, captured, SynthesisRequest("Hello", format="aac"),
                         "AUDIO_ENCODE_FAILED", "audio_render")
    assert "no_such_codec" in err.message


def test_clipping_engine_is_measured_and_guarded(fake, captured):
    r = fake.run(SynthesisRequest("hello there #clip", format="wav"))
    assert r.metrics["clipped_ratio"] > 0.3  # the engine's output was clipped...
    assert r.metrics["peak"] <= 10 ** (-1 / 20) + 1e-3  # ...the delivered audio is not


# --- the split across processes -----------------------------------------------------------
def test_front_back_finish_with_pickled_objects(tmp_path, captured):
    s = make_settings(tmp_path)
    main = Pipeline(settings=s, load=False)  # the server's main process: nothing loaded
    assert not main.loaded
    worker = Pipeline(settings=s, cache=False)
    job = main.front(SynthesisRequest("今天天气真好", format="mp3"))
    assert isinstance(job, Job)
    job2 = pickle.loads(pickle.dumps(job))
    rendered = pickle.loads(pickle.dumps(worker.back(job2)))
    assert isinstance(rendered, RenderedAudio)
    result = main.finish(job, rendered, queue_ms=12.5)
    assert isinstance(result, SynthesisResult) and result.queue_ms == 12.5
    (c,) = of(captured, job.id, "synthesis_complete")
    assert c["queue_ms"] == "12.5" and c["cache_saved"] == "true"
    assert set(result.stages) == set(STAGES)
    hit = main.front(SynthesisRequest("今天天气真好", format="mp3"))
    assert isinstance(hit, SynthesisResult) and hit.cache_hit and hit.audio == result.audio


def test_failure_crosses_the_process_boundary_and_fail_records_once(tmp_path, captured):
    s = make_settings(tmp_path, engine="fake")
    main = Pipeline(settings=s, load=False)
    worker = Pipeline(settings=s, cache=False)
    job = main.front(SynthesisRequest("boom #nan"))
    with pytest.raises(SynthesisFailure) as ei:
        worker.back(job)
    remote = pickle.loads(pickle.dumps(ei.value))
    assert remote.code == "SCIPY_FFT_INVALID" and remote.logged and remote.stage == "llm_postproc"
    err = main.fail(job, remote, queue_ms=3.0)
    assert err.code == "SCIPY_FFT_INVALID"
    assert events_of(captured, job.id).count("synthesis_failed") == 1
    (c,) = of(captured, job.id, "synthesis_complete")
    assert c["model_stage"] == "llm_postproc" and c["queue_ms"] == "3"


def test_fail_with_a_pool_error_records_it(tmp_path, captured):
    s = make_settings(tmp_path, engine="fake")
    main = Pipeline(settings=s, load=False)
    job = main.front(SynthesisRequest("hello"))
    try:
        raise TTSError("ENGINE_CRASHED", "worker 1234 died with SIGSEGV")
    except TTSError as e:
        err = main.fail(job, e, queue_ms=1.0, stage="llm_inference")
    assert err.code == "ENGINE_CRASHED" and err.status == 503
    (f,) = of(captured, job.id, "synthesis_failed")
    assert f["error_code"] == "ENGINE_CRASHED" and f["stage"] == "llm_inference"
    (c,) = of(captured, job.id, "synthesis_complete")
    assert c["model_stage"] == "llm_inference" and c["error_code"] == "ENGINE_CRASHED"


# --- streaming ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["mp3", "pcm", "wav", "opus", "flac"])
def test_stream_yields_segments_and_a_complete_file(tmp_path, captured, fmt):
    s = make_settings(tmp_path, segment_max_chars=30)
    p = Pipeline(settings=s)
    job = p.front(SynthesisRequest("First sentence here. Second one follows. And a third.",
                                   format=fmt))
    chunks = list(p.stream(job))
    assert chunks[-1].last and chunks[-1].rendered is not None
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    if fmt in ("mp3", "pcm", "wav", "opus"):
        assert len([c for c in chunks if c.data]) >= 3
    rendered = chunks[-1].rendered
    result = p.finish(job, rendered)
    if fmt == "pcm":
        assert b"".join(c.data for c in chunks) == result.audio
    else:
        x, sr = decode(result.audio)
        assert abs(x.size / sr * 1000 - result.duration_ms) < 120
    stages = of(captured, job.id, "stage_time")
    assert [x["stage"] for x in stages] == list(STAGES)
    assert events_of(captured, job.id)[-2:] == ["audio_metrics", "synthesis_complete"]


def test_silent_output_is_audio_silent(fake, captured):
    err, f = _back_error(fake, captured, SynthesisRequest("hello #silence"), "AUDIO_SILENT",
                         "llm_inference")
    assert err.status == 422
    assert f["where"].startswith("ttsops.pipeline.stages:inference:")


def test_stream_of_silence_fails_before_its_first_chunk(fake, captured):
    job = fake.front(SynthesisRequest("nothing here #silence", format="pcm"))
    got = []
    with pytest.raises(SynthesisFailure) as ei:
        for c in fake.stream(job):
            got.append(c)
    assert got == [] and ei.value.code == "AUDIO_SILENT"
    fake.fail(job, ei.value)
    (c,) = of(captured, job.id, "synthesis_complete")
    assert c["error_code"] == "AUDIO_SILENT" and c["model_stage"] == "llm_inference"


def test_stream_sends_a_silent_segment_once_sound_follows(fake, captured):
    """Silent segments are held, not dropped: the stream's bytes are the whole audio."""
    s = fake.settings.model_copy(update={"segment_max_chars": 20})
    p = Pipeline(settings=s)
    text = "#silence quiet. then the second part speaks"
    job = p.front(SynthesisRequest(text, format="pcm"))
    assert len(job.segments) >= 2
    chunks = list(p.stream(job))
    assert chunks[-1].last and chunks[-1].rendered is not None
    data = b"".join(c.data for c in chunks)
    assert data == chunks[-1].rendered.audio
    x = np.frombuffer(data, np.int16)
    assert not x[:1000].any() and x.any()  # it starts with the silence, and then speaks


def test_stream_failure_midway(fake, captured):
    s = fake.settings
    p = Pipeline(settings=s.model_copy(update={"segment_max_chars": 20}))
    job = p.front(SynthesisRequest("first part is fine. second part fails #nan", format="pcm"))
    got = []
    with pytest.raises(SynthesisFailure) as ei:
        for c in p.stream(job):
            got.append(c)
    assert got and got[0].data  # the first segment was already sent
    assert ei.value.code == "SCIPY_FFT_INVALID" and ei.value.logged
    p.fail(job, ei.value)
    assert events_of(captured, job.id).count("synthesis_failed") == 1
    (c,) = of(captured, job.id, "synthesis_complete")
    assert c["error_code"] == "SCIPY_FFT_INVALID" and c["model_stage"] == "llm_postproc"


def test_new_id_format():
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"ts_[0-9a-f]{16}", i) for i in ids)


def test_engines_without_options_refuse_them(captured):
    from ttsops.engines.fake import FakeEngine
    from ttsops.errors import TTSError
    from ttsops.pipeline.runner import Pipeline
    from ttsops.pipeline.types import SynthesisRequest

    pipe = Pipeline(FakeEngine(), cache=False)
    with pytest.raises(TTSError) as ei:
        pipe.run(SynthesisRequest("hello", voice="alloy", format="wav",
                                  options={"emotion": "sad"}))
    assert ei.value.code == "INVALID_REQUEST" and ei.value.param == "options"
    assert pipe.run(SynthesisRequest("hello", voice="alloy", format="wav")).audio


# --- the front memo (text_normalize remembered by request) --------------------------------
def _count_calls(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counted(*a, **k):
        calls.append(a)
        return real(*a, **k)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_request_seen_before_is_not_normalised_again(espeak, captured, monkeypatch):
    from ttsops.pipeline import text as text_mod

    cleans = _count_calls(monkeypatch, text_mod, "clean")
    numbers = _count_calls(monkeypatch, text_mod, "read_numbers_zh")
    req = dict(text="会议在2024-06-12 3:30开始，共15人\u200b。", format="wav")
    first = espeak.front(SynthesisRequest(**req))
    second = espeak.front(SynthesisRequest(**req))
    assert len(cleans) == 1 and len(numbers) == 1
    assert second.text == first.text and "二零二四年" in second.text
    assert second.segments == first.segments and second.cache_key == first.cache_key
    assert second.id != first.id
    # every synthesis still writes its own records, the warning included
    for job in (first, second):
        assert events_of(captured, job.id) == ["synthesis_start", "text_sanitized",
                                               "stage_time"]
        (w,) = of(captured, job.id, "text_sanitized")
        assert w["removed"] == "1"
    # the remembered state is not shared with the jobs
    first.segments.append("tampered")
    assert espeak.front(SynthesisRequest(**req)).segments == second.segments


@pytest.mark.parametrize("change", [{"voice": "onyx"}, {"lang": "zh"}, {"speed": 1.5},
                                    {"format": "mp3"}, {"sample_rate": 16000},
                                    {"voice": "nobody", "allow_fallback": True}])
def test_the_memo_tells_requests_apart(espeak, captured, change):
    base = dict(text="Hello 42 world", format="wav", voice="onyx")
    a = espeak.front(SynthesisRequest(**base))
    b = espeak.front(SynthesisRequest(**{**base, **change}))
    fresh = Pipeline(engine=espeak.engine, settings=espeak.settings, load=False)
    c = fresh.front(SynthesisRequest(**{**base, **change}))  # without the memo
    assert b.cache_key != a.cache_key or change == {"voice": "onyx"}
    assert (b.text, b.segments, b.lang, b.voice, b.request.format, b.request.speed,
            b.sample_rate, b.warnings, b.cache_key) == (
        c.text, c.segments, c.lang, c.voice, c.request.format, c.request.speed,
        c.sample_rate, c.warnings, c.cache_key)


def test_bad_requests_are_checked_and_logged_every_time(espeak, captured):
    for _ in range(2):
        _front_error(espeak, captured, SynthesisRequest("Hello", voice="galadriel"),
                     "VOICE_UNKNOWN", "voice")
    assert not espeak.front_memo.items


def test_the_memo_follows_settings_and_the_engine(tmp_path, captured):
    p = Pipeline(settings=make_settings(tmp_path, engine="espeak"), load=False)
    req = dict(text="Hello", voice="galadriel", format="wav")
    with pytest.raises(TTSError):
        p.front(SynthesisRequest(**req))
    p.settings.voice_fallback = True  # a setting the outcome depends on
    job = p.front(SynthesisRequest(**req))
    assert job.voice == "alloy" and job.warnings == ["VOICE_FALLBACK"]
    assert len(p.front_memo.items) == 1
    p.info = dataclasses.replace(p.info, version="other")  # e.g. the engine was reloaded
    again = p.front(SynthesisRequest(**req))
    assert len(p.front_memo.items) == 1 and again.cache_key != job.cache_key


def test_the_memo_is_bounded(tmp_path):
    from ttsops.pipeline.runner import FrontMemo

    p = Pipeline(settings=make_settings(tmp_path, engine="espeak"), load=False)
    p.front_memo = FrontMemo(max_entries=5, max_chars=100_000)
    for i in range(12):
        p.front(SynthesisRequest(f"Sentence number {i}", format="wav"))
    assert [k[0] for k in p.front_memo.items] == [f"Sentence number {i}"
                                                  for i in range(7, 12)]
    p.front_memo = FrontMemo(max_entries=100, max_chars=800)  # at most 100 chars an entry
    p.front(SynthesisRequest("x" * 51, format="wav"))  # 102 characters held: too big
    assert not p.front_memo.items
    for i in range(12):
        p.front(SynthesisRequest(f"{i:02d} " + "y" * 44, format="wav"))  # 94 characters
    assert len(p.front_memo.items) == 8 and p.front_memo.chars == 8 * 94
    assert next(iter(p.front_memo.items))[0].startswith("04 ")


@pytest.mark.parametrize("text,lang", [("\u0095¤\u200b", "zh"), ("¤¤\u200b", "zh")])
def test_text_that_normalises_to_nothing_is_text_empty(text, lang):
    """Found by the fuzz test: symbols that Chinese reading drops left no segment, and the
    engine was asked for nothing -- 500 ENGINE_FAILED, in the whole and the streamed path."""
    p = Pipeline(cache=False, load=False, warmup=False)
    with pytest.raises(TTSError) as ei:
        p.front(SynthesisRequest(text, voice="alloy", lang=lang))
    assert ei.value.code == "TEXT_EMPTY" and ei.value.status == 400
