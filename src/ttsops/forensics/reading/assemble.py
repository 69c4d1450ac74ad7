"""The records of one synthesis joined into one ``Synthesis`` when it completes.

``synthesis_start`` (voice, lang, format, engine, text), ``stage_time`` (one per stage),
``audio_metrics``, ``synthesis_failed`` and warnings carrying the id are held until the
``synthesis_complete`` of that id arrives; then the joined synthesis is handed out and
forgotten. Memory is bounded by the syntheses in flight (``max_pending``; the oldest
are dropped first and counted).

``stage_time`` values are per-stage durations once joined: a synthesis whose values are
times since the request started (the tutorial's cumulative ``stage_time``;
``logformat.dialects.is_cumulative``, or ``--stage-time``) has them converted, the
original values kept in ``elapsed`` (where each stage ended).
"""

from __future__ import annotations

from collections import Counter, OrderedDict

from ...logformat import Record
from ...logformat.dialects import is_cumulative, per_stage, stage_time_mode
from ...plain import Plain
from .filters import with_pseudo

EVENTS = ("synthesis_start", "stage_time", "audio_metrics", "synthesis_failed",
          "synthesis_complete")


class Synthesis(Plain):
    FIELDS = ("id", "start", "stages", "elapsed", "audio", "failed", "complete", "warnings",
              "stage_mode")
    __slots__ = FIELDS

    def __init__(self, id: str, start: Record | None = None,
                 stages: dict[str, float] | None = None,
                 elapsed: dict[str, float] | None = None, audio: Record | None = None,
                 failed: Record | None = None, complete: Record | None = None,
                 warnings: list[Record] | None = None, stage_mode: str | None = None) -> None:
        self.id = id
        self.start = start
        self.stages: dict[str, float] = {} if stages is None else stages
        self.elapsed: dict[str, float] = {} if elapsed is None else elapsed
        self.audio = audio
        self.failed = failed
        self.complete = complete
        self.warnings: list[Record] = [] if warnings is None else warnings
        self.stage_mode = stage_mode  # "cumulative" / "per-stage" (two stages or more)

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


def read_stages(s: Synthesis, mode: str | None = None) -> None:
    """Decide how ``s``'s stage times were written and make them per-stage durations
    (``stage_mode`` says what was decided; None for ttsops' own records, which carry
    ``elapsed_ms``, unless ``--stage-time`` forced a reading)."""
    if not s.stages:
        return
    vals = list(s.stages.values())
    mode = mode or stage_time_mode()
    if len(vals) < 2:  # one stage reads the same either way: nothing decided
        return
    if is_cumulative(vals, s.e2e, bool(s.elapsed), mode):
        s.elapsed = dict(s.stages)
        s.stages = dict(zip(s.stages, per_stage(vals), strict=True))
        s.stage_mode = "cumulative"
    elif not (s.elapsed and mode == "auto"):
        s.stage_mode = "per-stage"


class Assembler:
    def __init__(self, max_pending: int = 200_000, stage_time: str | None = None) -> None:
        self.pending: OrderedDict[str, Synthesis] = OrderedDict()
        self.max_pending = max_pending
        self.dropped = 0
        self.stage_time = stage_time  # None: the process's --stage-time (auto by default)
        self.stage_modes: Counter[str] = Counter()  # how the handed-out ones were read

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
            read_stages(s, self.stage_time)
            if s.stage_mode:
                self.stage_modes[s.stage_mode] += 1
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
