"""The records of one synthesis joined into one ``Synthesis`` when it completes.

``synthesis_start`` (voice, lang, format, engine, text), ``stage_time`` (one per stage),
``audio_metrics``, ``synthesis_failed`` and warnings carrying the id are held until the
``synthesis_complete`` of that id arrives; then the joined synthesis is handed out and
forgotten. Memory is bounded by the syntheses in flight (``max_pending``; the oldest
are dropped first and counted).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from ..logline import Record
from .filters import with_pseudo

EVENTS = ("synthesis_start", "stage_time", "audio_metrics", "synthesis_failed",
          "synthesis_complete")


@dataclass(slots=True)
class Synthesis:
    id: str
    start: Record | None = None
    stages: dict[str, float] = field(default_factory=dict)
    elapsed: dict[str, float] = field(default_factory=dict)
    audio: Record | None = None
    failed: Record | None = None
    complete: Record | None = None
    warnings: list[Record] = field(default_factory=list)

    @property
    def ts(self) -> str:
        rec = self.complete or self.start
        return rec.ts if rec else ""

    @property
    def status(self) -> str | None:
        return self.complete.fields.get("status") if self.complete else None

    @property
    def e2e(self) -> float | None:
        return self.complete.num("duration_ms") if self.complete else None

    @property
    def queue(self) -> float | None:
        return self.complete.num("queue_ms") if self.complete else None

    def get(self, key: str) -> str | None:
        """A field from the complete record, else from the start record."""
        for rec in (self.complete, self.start):
            if rec is not None and key in rec.fields:
                return rec.fields[key]
        return None

    def fields(self) -> dict[str, str]:
        """Start fields overlaid with the complete record's, plus pseudo-fields."""
        d: dict[str, str] = {}
        if self.start is not None:
            d.update(self.start.fields)
        if self.audio is not None:
            for k, v in self.audio.fields.items():
                if k != "duration_ms":
                    d.setdefault(k, v)
        rec = self.complete or self.start
        if self.complete is not None:
            d.update(self.complete.fields)
        if self.failed is not None:
            d.setdefault("where", self.failed.fields.get("where", ""))
        if rec is None:
            return d
        return with_pseudo(rec.ts, rec.level, rec.event, rec.logger, d)


class Assembler:
    def __init__(self, max_pending: int = 200_000) -> None:
        self.pending: OrderedDict[str, Synthesis] = OrderedDict()
        self.max_pending = max_pending
        self.dropped = 0

    def _entry(self, sid: str) -> Synthesis:
        s = self.pending.get(sid)
        if s is None:
            s = self.pending[sid] = Synthesis(sid)
            if len(self.pending) > self.max_pending:
                self.pending.popitem(last=False)
                self.dropped += 1
        return s

    def feed(self, rec: Record) -> Synthesis | None:
        """Feed one record; returns the joined synthesis when ``rec`` completes it."""
        sid = rec.fields.get("id")
        if not sid:
            return None
        ev = rec.event
        if ev == "synthesis_complete":
            s = self.pending.pop(sid, None) or Synthesis(sid)
            s.complete = rec
            return s
        if ev == "synthesis_start":
            self._entry(sid).start = rec
        elif ev == "stage_time":
            stage = rec.fields.get("stage")
            ms = rec.num("duration_ms")
            if stage and ms is not None:
                s = self._entry(sid)
                s.stages[stage] = ms
                el = rec.num("elapsed_ms")
                if el is not None:
                    s.elapsed[stage] = el
        elif ev == "audio_metrics":
            self._entry(sid).audio = rec
        elif ev == "synthesis_failed":
            self._entry(sid).failed = rec
        elif rec.level == "WARNING" and sid in self.pending:
            self.pending[sid].warnings.append(rec)
        return None
