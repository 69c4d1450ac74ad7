"""The four engine/audio stages piece by piece, for ``Pipeline.stream``: the same
per-segment work as ``BACK_STAGES`` (``prepare_one``, ``infer_one``, ``post_one``, the
``produced_error`` test of llm_inference), on one sentence piece at a time so that audio
goes out as soon as a piece is ready. ``PIECE_STAGES`` run for each piece and
``END_STAGES`` once after the last; each takes (context, state), like ``BACK_STAGES``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .audio import guard_finite, is_silent, to_int16
from .encode import StreamEncoder
from .metrics import clipped_ratio, measure
from .sentences import Piece, pieces
from .stages import (
    StageContext,
    engine_speed,
    infer_one,
    post_one,
    prepare_one,
    produced_error,
    segment_lang,
    silence,
)
from .types import Job
from .words import word_times


def plan(job: Job) -> list[tuple[Piece, int, int]]:
    """The pieces of every segment with each one's character offset in the job's text and
    the index of its segment (whose language it is spoken in)."""
    out: list[tuple[Piece, int, int]] = []
    cursor = 0
    for i, seg in enumerate(job.segments):
        for piece in pieces(seg):
            at = job.text.find(piece.text, cursor)
            if at >= 0:
                cursor = at + len(piece.text)
            out.append((piece, max(at, 0), i))
    return out


class StageClock:
    """Accumulates each stage's time over pieces; remembers the stage in progress."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self.current: str | None = None

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        self.current = stage
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - t0) * 1000.0


@dataclass
class StreamState:
    job: Job
    rate: int  # output sample rate
    pieces: list[tuple[Piece, int, int]]
    residual: float = 1.0  # the part of the speed the engine does not do itself
    marks_of: Callable[[], Any] | None = None  # the engine's word marks, if it has them
    encoder: StreamEncoder | None = None
    # the piece in hand
    k: int = 0
    prepared: Any = None
    raw: np.ndarray | None = None
    marks: Any = None
    pcm: np.ndarray | None = None
    # so far
    parts: list[np.ndarray] = field(default_factory=list)
    clipped_n: int = 0
    total_n: int = 0
    out_n: int = 0
    heard: bool = False
    held: list[bytes] = field(default_factory=list)  # silence, sent once sound follows
    held_words: list[dict[str, Any]] = field(default_factory=list)
    # after the last piece
    metrics: dict[str, float] = field(default_factory=dict)
    tail: bytes = b""
    whole: bytes = b""

    @property
    def piece(self) -> tuple[Piece, int, int]:
        return self.pieces[self.k]

    @property
    def lang(self) -> str:
        return segment_lang(self.job, self.piece[2])


def open_stream(p: StageContext, job: Job) -> StreamState:
    rate = job.sample_rate or p.info.sample_rate
    _, residual = engine_speed(p, job.request.speed)
    return StreamState(job, rate, plan(job), residual,
                       getattr(p.engine, "word_marks", None))


def open_render(p: StageContext, st: StreamState) -> None:
    st.encoder = StreamEncoder(st.job.request.format, st.rate)


# --- one piece ------------------------------------------------------------------------
def piece_prompt_gen(p: StageContext, st: StreamState) -> None:
    st.prepared = prepare_one(p, st.job, st.piece[0].text, st.lang)


def piece_inference(p: StageContext, st: StreamState) -> None:
    st.raw = infer_one(p, st.job, st.prepared, st.lang)
    st.heard = st.heard or not is_silent(st.raw)
    st.marks = st.marks_of() if st.marks_of is not None else None


def piece_postproc(p: StageContext, st: StreamState) -> None:
    assert st.raw is not None
    piece, char0, _ = st.piece
    raw = guard_finite(st.raw)
    st.clipped_n += round(clipped_ratio(raw) * raw.size)
    st.total_n += raw.size
    x = post_one(p, st.job, raw, guarded=True)
    if st.marks:
        offset = st.out_n * 1000.0 / st.rate
        st.held_words += [w.as_dict(offset, char0) for w in word_times(
            piece.text, st.marks, x, st.rate, 1.0 / st.residual)]
    pause = (p.settings.audio_tail_silence_ms if st.k == len(st.pieces) - 1
             else piece.pause_ms / st.job.request.speed)
    x = np.concatenate([x, silence(pause, st.rate)])
    st.out_n += x.size
    st.parts.append(x)
    st.pcm = to_int16(x)


def piece_render(p: StageContext, st: StreamState) -> None:
    assert st.encoder is not None and st.pcm is not None
    data = st.encoder.write(st.pcm)
    if data:
        st.held.append(data)


# --- after the last piece -------------------------------------------------------------
def end_inference(p: StageContext, st: StreamState) -> None:
    err = produced_error(st.total_n, st.heard)
    if err is not None:
        raise err


def end_postproc(p: StageContext, st: StreamState) -> None:
    allx = np.concatenate(st.parts) if len(st.parts) > 1 else st.parts[0]
    st.metrics = measure(allx, st.rate, st.clipped_n / st.total_n)


def end_render(p: StageContext, st: StreamState) -> None:
    assert st.encoder is not None
    st.tail, st.whole = st.encoder.close()


StreamStage = Callable[[StageContext, StreamState], None]
PIECE_STAGES: list[tuple[str, StreamStage]] = [
    ("llm_prompt_gen", piece_prompt_gen),
    ("llm_inference", piece_inference),
    ("llm_postproc", piece_postproc),
    ("audio_render", piece_render),
]
END_STAGES: list[tuple[str, StreamStage]] = [
    ("llm_inference", end_inference),
    ("llm_postproc", end_postproc),
    ("audio_render", end_render),
]
