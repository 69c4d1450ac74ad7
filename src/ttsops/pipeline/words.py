"""Word timings: when each word of a piece is spoken, from the engine's word marks.

An engine that knows where its words start (eSpeak NG reports a WORD event with the
character offset and the audio position while it renders, and an END event at each
clause end) hands ``marks``: (kind, character offset, ms) with kind "w" (a word starts)
or "e" (a clause ends). A word runs from its mark to the next mark; its text is that
span of the piece without surrounding spaces and punctuation (so Mandarin, where eSpeak
marks "你" for 你好, gets the whole word); it ends where its audio last has sound before
the next mark (the pause after a comma is not part of the word).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

VOICED = 0.01  # peak of a 5 ms frame above this (about -40 dBFS) is sound
FRAME_MS = 5.0


@dataclass(frozen=True)
class Word:
    word: str
    start_ms: float
    end_ms: float
    char: int  # offset of the word in its piece's text

    def as_dict(self, offset_ms: float = 0.0, char_offset: int = 0) -> dict[str, object]:
        return {"word": self.word, "start_ms": round(self.start_ms + offset_ms, 1),
                "end_ms": round(self.end_ms + offset_ms, 1), "char": self.char + char_offset}


def _trim(span: str) -> tuple[int, str]:
    """(offset of the first kept character, the span without outer spaces/punctuation)."""
    keep = [i for i, ch in enumerate(span) if unicodedata.category(ch)[0] in "LNS"]
    if not keep:
        return 0, ""
    return keep[0], span[keep[0]:keep[-1] + 1]


def _last_sound_ms(audio: np.ndarray, sr: int, start_ms: float, end_ms: float) -> float:
    """The end of the last 5 ms frame with sound in [start_ms, end_ms), else start_ms."""
    n = max(1, int(sr * FRAME_MS / 1000))
    a = int(start_ms * sr / 1000) // n * n
    b = min(int(end_ms * sr / 1000), audio.size)
    if b <= a:
        return start_ms
    seg = np.abs(audio[a:b])
    m = seg.size // n
    if m == 0:
        return end_ms
    frames = seg[: m * n].reshape(m, n).max(axis=1)
    loud = np.flatnonzero(frames >= VOICED)
    if loud.size == 0:
        return start_ms
    return min((a + (int(loud[-1]) + 1) * n) * 1000 / sr, end_ms)


def word_times(text: str, marks: list[tuple[str, int, float]], audio: np.ndarray, sr: int,
               scale: float = 1.0) -> list[Word]:
    """Words of ``text`` with start/end in ms of ``audio`` (float, at ``sr``). ``scale``
    multiplies the engine's times (a time-stretch after the engine, 1/residual)."""
    if not marks:
        return []
    marks = sorted(marks, key=lambda m: (m[1], m[2]))
    total_ms = audio.size * 1000.0 / sr if sr else 0.0
    out: list[Word] = []
    for i, (kind, pos, ms) in enumerate(marks):
        if kind != "w" or pos >= len(text):
            continue
        nxt_pos = marks[i + 1][1] if i + 1 < len(marks) else len(text)
        nxt_ms = marks[i + 1][2] * scale if i + 1 < len(marks) else total_ms
        lead, word = _trim(text[pos:max(nxt_pos, pos + 1)])
        if not word:
            continue
        start = min(ms * scale, total_ms)
        end = _last_sound_ms(audio, sr, start, max(nxt_ms, start))
        out.append(Word(word, start, max(end, start), pos + lead))
    return out
