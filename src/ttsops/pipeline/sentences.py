"""Streaming pieces: a segment cut at sentence ends (and long sentences at clause marks),
each with the pause that follows it.

A stream sends each piece as soon as it is synthesised and encoded, so the first piece
decides when the first audio goes out: it is the first sentence (or, for a long first
sentence, its first clauses). Engines such as eSpeak NG put a pause between the sentences
of one call but none after the last, so the pipeline adds the pause a piece ends with
(``pause_ms``: a sentence, a clause, or none for a cut inside a clause).

``"".join(p.text for p in pieces(t))`` equals ``t`` up to whitespace at the cuts; no text
is ever dropped. Pure functions of the text: the same text gives the same pieces.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

SENTENCE_PAUSE_MS = 300.0  # what eSpeak NG leaves between two sentences at speed 1
CLAUSE_PAUSE_MS = 150.0  # ... and at a comma
CLAUSE_SPLIT_CHARS = 120  # a sentence longer than this is cut at clause marks
MIN_PIECE_CHARS = 12  # a shorter piece without a sentence end goes with the next one

_SENT_MARKS = "。！？!?；;…\n"
_CLAUSE_MARKS = "，,、：:"
_CLOSERS = "\"'”’)）]」』》"
# a sentence ends after a mark of _SENT_MARKS (closing quotes/brackets included), or after
# "." followed by a space (not inside "3.5" or "e.g.x")
_SENT_END = re.compile(rf"(?<=[{re.escape(_SENT_MARKS)}])(?![{re.escape(_CLOSERS)}])"
                       rf"|(?<=\.)(?=\s)|(?<=[.][{re.escape(_CLOSERS)}])(?=\s)")
_CLAUSE_END = re.compile(rf"(?<=[{re.escape(_CLAUSE_MARKS)}])(?=\s|[^\d\s])")
# "Dr. Smith", "e.g. this", "J. R. R. Tolkien": a period that does not end a sentence
_ABBREV = re.compile(r"(?:\b(?:mr|mrs|ms|dr|prof|sr|jr|st|vs|etc|e\.g|i\.e|no|fig|approx|"
                     r"inc|ltd|co|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)|"
                     r"\b[A-Za-z])\.$", re.IGNORECASE)


@dataclass(frozen=True)
class Piece:
    text: str
    pause_ms: float  # pause after this piece at speed 1 (0: cut inside a clause)


def pause_after(text: str) -> float:
    """The pause that follows ``text`` in speech, from its last mark."""
    t = text.rstrip().rstrip(_CLOSERS)
    if not t:
        return 0.0
    last = t[-1]
    if last in _SENT_MARKS or (last == "." and not _ABBREV.search(t)):
        return SENTENCE_PAUSE_MS
    if last in _CLAUSE_MARKS or last == ".":
        return CLAUSE_PAUSE_MS
    return 0.0


def _speakable(text: str) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def _sentences(text: str) -> list[str]:
    """Cut at sentence ends; a cut after an abbreviation is undone."""
    out: list[str] = []
    for part in _SENT_END.split(text):
        if not part:
            continue
        if out and (_ABBREV.search(out[-1].rstrip()) or not _speakable(part)):
            out[-1] += part  # "Dr." + " Smith ...", or a lone "…" / quote
        else:
            out.append(part)
    return out


def _clauses(sentence: str, max_chars: int) -> list[str]:
    """A long sentence cut at clause marks, then at spaces, packed up to max_chars."""
    for splitter in (_CLAUSE_END, re.compile(r"(?<=\s)(?=\S)")):
        parts = [p for p in splitter.split(sentence) if p]
        if len(parts) > 1:
            break
    else:
        return [sentence]
    out: list[str] = []
    for p in parts:
        if out and len(out[-1]) + len(p) <= max_chars:
            out[-1] += p
        else:
            out.append(p)
    return out


def pieces(text: str, clause_split_chars: int = CLAUSE_SPLIT_CHARS) -> list[Piece]:
    """The pieces of ``text`` to synthesise one after the other (see the module doc)."""
    raw: list[str] = []
    for s in _sentences(text):
        raw.extend(_clauses(s, clause_split_chars) if len(s) > clause_split_chars else [s])
    merged: list[str] = []
    for r in raw:
        if merged and (not _speakable(r) or not _speakable(merged[-1])
                       or (len(merged[-1].strip()) < MIN_PIECE_CHARS
                           and pause_after(merged[-1]) < SENTENCE_PAUSE_MS)):
            merged[-1] += r
        else:
            merged.append(r)
    out = [Piece(m.strip(), pause_after(m)) for m in merged]
    return [p for p in out if p.text] or [Piece(text.strip(), pause_after(text))]
