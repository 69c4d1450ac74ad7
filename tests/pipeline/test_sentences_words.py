"""Streaming pieces (sentences.py) and word timings (words.py), with the real engine where
the engine is what is measured."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsops.pipeline.sentences import (
    CLAUSE_PAUSE_MS,
    CLAUSE_SPLIT_CHARS,
    SENTENCE_PAUSE_MS,
    pause_after,
    pieces,
)
from ttsops.pipeline.types import SynthesisRequest
from ttsops.pipeline.words import word_times


def squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def test_sentences_are_pieces_with_their_pause():
    got = pieces("The first one. The second one! And a third one? 第四句。第五句，还有。")
    assert [p.text for p in got] == ["The first one.", "The second one!", "And a third one?",
                                     "第四句。", "第五句，还有。"]
    assert all(p.pause_ms == SENTENCE_PAUSE_MS for p in got)


def test_periods_that_do_not_end_a_sentence():
    text = "Dr. Smith paid 3.5 dollars, e.g. for tea. J. R. R. Tolkien wrote it."
    assert [p.text for p in pieces(text)] == ["Dr. Smith paid 3.5 dollars, e.g. for tea.",
                                              "J. R. R. Tolkien wrote it."]


def test_a_long_sentence_is_cut_at_clause_marks():
    clause = "this clause has a handful of words in it"
    text = ", ".join([clause] * 8) + "."
    got = pieces(text)
    assert len(got) > 1
    assert all(len(p.text) <= CLAUSE_SPLIT_CHARS for p in got)
    assert [p.pause_ms for p in got] == [CLAUSE_PAUSE_MS] * (len(got) - 1) + [SENTENCE_PAUSE_MS]


def test_a_long_sentence_without_marks_is_cut_at_spaces_without_a_pause():
    text = " ".join(["word"] * 60)
    got = pieces(text)
    assert len(got) > 1 and all(p.pause_ms == 0 for p in got)


def test_pause_after():
    assert pause_after("Hello.") == SENTENCE_PAUSE_MS
    assert pause_after("“真的吗？”") == SENTENCE_PAUSE_MS
    assert pause_after("Hello,") == CLAUSE_PAUSE_MS
    assert pause_after("Dr.") == CLAUSE_PAUSE_MS
    assert pause_after("Hello") == 0


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab 。，.,!?…:;\n\"”Dr3e")), max_size=400))
def test_pieces_never_lose_or_invent_text(text):
    got = pieces(text)
    assert squash("".join(p.text for p in got)) == squash(text)
    if squash(text):
        assert all(p.text and p.text == p.text.strip() for p in got)


def test_word_end_is_where_its_sound_stops():
    sr = 1000
    audio = np.zeros(1000, np.float32)
    audio[0:200] = 0.5  # "one" sounds 0..200 ms, then a pause until "two" at 500 ms
    audio[500:800] = 0.5
    words = word_times("one, two.", [("w", 0, 0.0), ("w", 5, 500.0), ("e", 9, 900.0)],
                       audio, sr)
    assert [(w.word, w.start_ms, w.end_ms, w.char) for w in words] == \
        [("one", 0.0, 200.0, 0), ("two", 500.0, 800.0, 5)]
    stretched = word_times("one, two.", [("w", 0, 0.0), ("w", 5, 250.0)], audio, sr,
                           scale=2.0)
    assert stretched[1].start_ms == 500.0


def test_espeak_word_timings_follow_the_words(espeak):
    job = espeak.front(SynthesisRequest("Alpha beta gamma. Delta epsilon.", format="wav",
                                        timestamps=True))
    result = espeak.finish(job, espeak._streamed(job))
    words = result.words
    assert [w["word"] for w in words] == ["Alpha", "beta", "gamma", "Delta", "epsilon"]
    assert all(a["end_ms"] <= b["start_ms"] for a, b in itertools.pairwise(words))
    # the sentence pause the pipeline adds between the two pieces
    assert words[3]["start_ms"] - words[2]["end_ms"] >= SENTENCE_PAUSE_MS * 0.9
    assert words[-1]["end_ms"] <= result.duration_ms - 150  # then the trailing silence


def test_synth_timestamps_json(tmp_path):
    env = {**os.environ, "TTSOPS_LOG_DIR": str(tmp_path / "logs"),
           "TTSOPS_CACHE_DIR": str(tmp_path / "cache")}
    p = subprocess.run([sys.executable, "-m", "ttsops", "synth", "你好，世界。Hello world.",
                        "-o", str(tmp_path / "x.mp3"), "--timestamps", "--json"],
                       capture_output=True, env=env, timeout=120, check=False)
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout)
    words = [w["word"] for w in out["words"]]
    # eSpeak's Mandarin words are its own (世界 may come as 世 + 界): together, the text
    assert "".join(words[:-2]) == "你好世界" and words[-2:] == ["Hello", "world"]
    assert 0 <= out["words"][0]["start_ms"] < out["words"][-1]["end_ms"] < out["duration_ms"]
