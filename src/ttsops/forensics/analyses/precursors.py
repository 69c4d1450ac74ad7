"""``logs precursors``: for each burst of errors, the warnings that came before it.

"ERROR is the symptom, WARNING is the cause". A *burst* is a run of errors of one code
(no gap longer than ``--gap``, at least ``--min-errors``) far above that code's own
background rate: improbable under a Poisson count at the background rate (p < 1e-4) and
at least 3x it. The background is the code's median hourly rate (over 3 hours or more
of data) or its rate outside the run; a steady trickle (a client sending empty text four
times an hour) is therefore one ``background`` line, not dozens of bursts.

Bursts are listed server faults first (codes the client causes -- registry status
4xx -- and codes the registry logs at WARNING rank below), then by how improbable they
are. For each burst, the WARNING (and ERROR) records in the look-back before its first
error are grouped by code (or event) and listed by *lift*: the signal's records in
the look-back against the number its rate over the data predicts there (the burst
itself left out; both plus one record, so a single record is not proof). A signal
spread evenly has lift ~1; one that comes only before the burst, up to span/look-back.
Signals the client causes (bad input, auth, the web page) come after the others.
Among equal lifts: related first (same code family -- storage, engine, capacity, audio,
input, client -- and same resource: path, engine, model, voice), then the more frequent,
then the earlier (the earliest related signal is the cause).

A burst counts for a window when it overlaps it: one that began before ``--since`` is
reported with its real start (``before_window``), and its look-back is before that start.

A candidate is *supported* (worth naming as the cause) when it has at least
``MIN_SUPPORT`` records, or is one error of the same family shortly (``CLOSE_S``) before
the burst (a model that failed to load, then every request fails). A single warning, or a
lone error hours earlier, is not. Codes the client causes (registry status < 500, not a
capacity code: empty text, unknown voice...) are weak: they never make a finding alone.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ...logformat.dialects import level_needles
from ...logline import Record
from ..reading.scan import Query, Scan
from ..reading.sources import Snapshot
from ..reading.timeargs import human_duration, shift, ts_to_epoch
from .answer import Report, Table, safe
from .precursor_signals import (
    ALPHA_LOG10,
    MIN_RATIO,
    RESOURCE_KEYS,
    client_caused,
    client_signal,
    close_error,
    family,
    log10_poisson_tail,
    related_resource,
    supported,
    weak,
)

NEEDLES = level_needles("ERROR", "CRITICAL", "WARNING")  # aliases (WARN, FATAL) included
MAX_EXTEND = 8  # look-backs to go further back for a burst that began before the scan


@dataclass
class Burst:
    code: str
    event: str
    start: str
    end: str
    count: int = 0
    resources: dict[str, set[str]] = field(default_factory=dict)
    example_id: str | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    in_window: int = 0  # errors at or after the collector's ``since``
    before_window: bool = False  # began before ``since``
    background_per_h: float = 0.0  # the code's own rate outside its bursts
    log10_p: float = 0.0  # how improbable the burst is under that rate

    @property
    def client(self) -> bool:
        return client_caused(self.code)

    @property
    def weak(self) -> bool:
        return weak(self.code)

    @property
    def significance(self) -> float:
        """-log10 p, capped (a code with no background at all: 300)."""
        return 300.0 if self.log10_p == -math.inf else min(300.0, -self.log10_p)


@dataclass
class Background:
    """A code whose errors come at a steady rate (no burst above it): one line."""

    code: str
    count: int
    per_h: float
    first: str
    last: str

    @property
    def weak(self) -> bool:
        return weak(self.code)


# an event kept for the analysis at the end: (epoch, ts, key, level, event, code,
# resources, id)
_Ev = tuple[float, str, str, str, str, "str | None", "dict[str, str]", "str | None"]


class Precursors:
    """Collector: one pass keeps the WARNING/ERROR records (times, keys, resources);
    ``finish`` finds the bursts of each code against its own background rate and ranks
    the warnings before each by lift."""

    def __init__(self, lookback_s: float = 6 * 3600, min_errors: int = 3,
                 gap_s: float = 600.0, utc: bool = True, since: str | None = None) -> None:
        self.since = since  # bursts ending before it are dropped by ``overlapping``
        self.lookback_s = lookback_s
        self.min_errors = min_errors
        self.gap_s = gap_s
        self.utc = utc
        self.events: list[_Ev] = []
        self.bursts: list[Burst] = []
        self.background: list[Background] = []
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.finished = False

    def feed(self, rec: Record) -> None:
        if rec.level not in ("WARNING", "ERROR", "CRITICAL"):
            return
        t = ts_to_epoch(rec.ts, self.utc)
        if self.t_first is None:
            self.t_first = t
        self.t_last = t
        f = rec.fields
        res = {k: f[k] for k in RESOURCE_KEYS if k in f}
        sid = f.get("id") or f.get("request_id")
        if rec.level == "WARNING":
            code = f.get("warning_code") or f.get("error_code")
            key = code or rec.event or "(no code)"
            self.events.append((t, rec.ts, key, "WARNING", rec.event, code, res, sid))
            return
        # an error can be the cause of a burst of another code (a model that failed to
        # load, then every request fails): errors are candidates too
        code = f.get("error_code")
        key = code or f"({rec.event or 'no code'})"
        self.events.append((t, rec.ts, key, "ERROR", rec.event, code, res, sid))

    # --- the analysis -----------------------------------------------------------------
    def _span(self) -> tuple[float, float]:
        t0 = self.t_first or 0.0
        t1 = self.t_last or t0
        return t0, max(1.0, t1 - t0)

    def _median_rate(self, times: list[float], t0: float, span: float) -> float | None:
        """Median errors per second over the hours of the span (None under 3 hours)."""
        hours = int(span // 3600)
        if hours < 3:
            return None
        counts = [0] * hours
        for t in times:
            h = int((t - t0) // 3600)
            if 0 <= h < hours:
                counts[h] += 1
        counts.sort()
        return counts[hours // 2] / 3600.0

    def _detect(self, key: str, idxs: list[int], t0: float, span: float) -> list[Burst]:
        ev = self.events
        times = [ev[i][0] for i in idxs]
        n = len(times)
        med = self._median_rate(times, t0, span)
        # chain errors closer than half the background's mean interval (a steady stream
        # is not one endless cluster), never further apart than --gap
        gap = self.gap_s if not med else min(self.gap_s, 0.5 / med)
        clusters: list[tuple[int, int]] = []
        a = 0
        for j in range(1, n + 1):
            if j == n or times[j] - times[j - 1] > gap:
                clusters.append((a, j))
                a = j
        out: list[Burst] = []
        in_bursts = 0
        for a, b in clusters:
            k = b - a
            if k < self.min_errors:
                continue
            dur = times[b - 1] - times[a]
            w = max(dur, self.gap_s)
            loo = (n - k) / max(span - dur, self.gap_s)
            bg = loo if med is None else min(loo, med)
            lp = log10_poisson_tail(k, bg * w)
            if lp > ALPHA_LOG10 or (bg > 0 and k / w < MIN_RATIO * bg):
                continue
            first = ev[idxs[a]]
            burst = Burst(key, first[4], first[1], ev[idxs[b - 1]][1], k,
                          background_per_h=bg * 3600.0, log10_p=lp)
            for i in idxs[a:b]:
                e = ev[i]
                if self.since is None or e[1] >= self.since:
                    burst.in_window += 1
                for rk, rv in e[6].items():
                    burst.resources.setdefault(rk, set()).add(rv)
                if burst.example_id is None and e[7]:
                    burst.example_id = e[7]
            in_bursts += k
            out.append(burst)
        rest = n - in_bursts
        if rest >= self.min_errors and (not out or rest > in_bursts // 10):
            outside = [ev[i] for i in idxs]
            self.background.append(Background(key, rest, rest / span * 3600.0,
                                              outside[0][1], outside[-1][1]))
        return out

    def _rank(self, burst: Burst, times: list[float], totals: Counter[str], t0: float,
              span: float) -> list[dict[str, Any]]:
        """The warnings and errors of the look-back before the burst, by lift: the
        signal's records in this look-back against the number its rate over the data
        (the burst itself left out) predicts there, each plus one record -- so one
        record is not proof, and a look-back that covers nearly all the data makes every
        lift ~1 (then relatedness decides)."""
        fam = family(burst.code.strip("()") if burst.code.startswith("(") else burst.code,
                     burst.event)
        t_burst = ts_to_epoch(burst.start, self.utc)
        lo = bisect.bisect_left(times, t_burst - self.lookback_s)
        hi = bisect.bisect_left(times, t_burst)
        groups: dict[str, list[_Ev]] = {}
        for e in self.events[lo:hi]:
            if e[2] != burst.code:
                groups.setdefault(e[2], []).append(e)
        covered = min(self.lookback_s, t_burst - t0) or 1.0
        # during the burst a cause often goes on: those records are neither "before" nor
        # "elsewhere"
        t_end = ts_to_epoch(burst.end, self.utc)
        during = Counter(e[2] for e in self.events[hi:bisect.bisect_right(times, t_end)])
        outside_s = max(span - (t_end - t_burst), covered)
        out = []
        for key, ws in groups.items():
            w0 = ws[0]
            wfam = family(w0[5], w0[4])
            res: dict[str, set[str]] = {}
            for w in ws:
                for k, v in w[6].items():
                    res.setdefault(k, set()).add(v)
            expected = (totals[key] - during[key]) * covered / outside_s
            lift = (len(ws) + 1.0) / (expected + 1.0)
            c: dict[str, Any] = {
                "key": key, "level": w0[3], "event": w0[4], "count": len(ws),
                "total": totals[key], "first": w0[1], "last": ws[-1][1],
                "lead_s": t_burst - w0[0], "family": wfam,
                "same_family": fam is not None and wfam == fam,
                "same_resource": related_resource(burst.resources, res),
                "lift": round(lift, 2), "elevated": lift >= 2.0}
            c["score"] = 2 * c["same_family"] + int(c["same_resource"]) + \
                2 * c["elevated"] + int(close_error(c))
            c["supported"] = supported(c)
            out.append(c)
        # best first: how much the signal raises the odds of the burst (what clients
        # cause -- bad input, auth -- after the rest); among equals the related, the
        # frequent, the earliest
        out.sort(key=lambda c: (client_signal(c),
                                -round(float(c["lift"]), 1),
                                -int(c["score"]),
                                -int(c["count"]),
                                -float(c["lead_s"]), str(c["key"])))
        return out

    def finish(self) -> list[Burst]:
        if self.finished:
            return self.bursts
        self.finished = True
        self.events.sort(key=lambda e: e[0])
        t0, span = self._span()
        by_code: dict[str, list[int]] = {}
        totals: Counter[str] = Counter()
        for i, e in enumerate(self.events):
            totals[e[2]] += 1
            if e[3] != "WARNING":
                by_code.setdefault(e[2], []).append(i)
        times = [e[0] for e in self.events]
        for key, idxs in by_code.items():
            for b in self._detect(key, idxs, t0, span):
                b.candidates = self._rank(b, times, totals, t0, span)
                b.before_window = self.since is not None and b.start < self.since
                self.bursts.append(b)
        # server faults first, then the most improbable under their own background
        self.bursts.sort(key=lambda b: (b.weak, -b.significance, -b.count, b.start))
        self.background.sort(key=lambda g: (g.weak, -g.count))
        return self.bursts

    def overlapping(self) -> list[Burst]:
        """The bursts (after ``finish``) that overlap ``[since, ...)``."""
        return [b for b in self.bursts if self.since is None or b.end >= self.since]


def best(b: Burst) -> dict[str, Any] | None:
    """The candidate worth naming as the burst's cause: the first (by lift) that is
    supported and related (score >= 3), or None."""
    for c in b.candidates:
        if c["supported"] and int(c["score"]) >= 3:
            return c
    return None


def collect(snap: Snapshot, since: str | None, until: str | None, col: Precursors,
            use_index: bool = True, start: str | None = None) -> None:
    """Feed ``col`` from ``start`` (default: ``since`` minus the look-back) to ``until``."""
    if start is None:
        start = shift(since, -col.lookback_s) if since else None
    scan = Scan(snap, Query(start, until, needles=NEEDLES, use_index=use_index,
                            tracebacks=False))
    for rec in scan.records():
        col.feed(rec)


def truncated(bursts: list[Burst], start: str | None, lookback_s: float,
              gap_s: float) -> str | None:
    """The earliest start of a burst whose look-back the scan from ``start`` does not
    cover, or that may have begun before ``start`` (its first error is within ``gap_s``
    of it); None when there is none."""
    if start is None:
        return None
    edge = shift(start, max(lookback_s, gap_s))
    early = [b.start for b in bursts if b.start < edge]
    return min(early) if early else None


def overlapping_bursts(snap: Snapshot, since: str | None, until: str | None, *,
                       lookback_s: float, min_errors: int = 3, gap_s: float = 600.0,
                       use_index: bool = True, utc: bool = True,
                       col: Precursors | None = None) -> list[Burst]:
    """``final_collector(...).overlapping()``."""
    return final_collector(snap, since, until, lookback_s=lookback_s, min_errors=min_errors,
                           gap_s=gap_s, use_index=use_index, utc=utc, col=col).overlapping()


def final_collector(snap: Snapshot, since: str | None, until: str | None, *,
                    lookback_s: float, min_errors: int = 3, gap_s: float = 600.0,
                    use_index: bool = True, utc: bool = True,
                    col: Precursors | None = None) -> Precursors:
    """The finished collector whose ``overlapping()`` are the bursts overlapping
    ``[since, until)``, each with its real start and the candidates of the look-back
    before it: for a burst that began before ``since`` the
    scan is started again earlier, until it covers the burst's start and its look-back
    (at most ``MAX_EXTEND`` times).
    ``col``: a collector already fed from ``since - lookback`` (finished or not)."""
    if col is None:
        col = Precursors(lookback_s, min_errors, gap_s, utc, since)
        collect(snap, since, until, col, use_index)
    col.finish()
    start = shift(since, -lookback_s) if since else None
    for _ in range(MAX_EXTEND):
        early = truncated(col.overlapping(), start, lookback_s, gap_s)
        if early is None or start is None:
            break
        # back far enough for an earlier error of the burst (within gap_s) and for the
        # look-back before it: unchanged, the burst is then not truncated any more
        start = shift(early, -(lookback_s + gap_s))
        col = Precursors(lookback_s, min_errors, gap_s, utc, since)
        collect(snap, since, until, col, use_index, start=start)
        col.finish()
    return col


def run(snap: Snapshot, since: str | None, until: str | None, *, lookback_s: float,
        min_errors: int = 3, gap_s: float = 600.0, top: int = 5,
        use_index: bool = True) -> Report:
    col = final_collector(snap, since, until, lookback_s=lookback_s, min_errors=min_errors,
                          gap_s=gap_s, use_index=use_index)
    bursts = col.overlapping()
    background = col.background
    rep = Report("precursors", problems=snap.problems)
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}",
                   "look-back": human_duration(lookback_s), "bursts": len(bursts),
                   "steady background codes": len(background)}
    bt = Table("precursors", "bursts of errors above their code's own background (server "
               "faults first, then the most improbable); before each, the warnings by lift "
               "(how much more often they occur in its look-back than elsewhere)",
               ["#", "error_code", "errors", "burst_start", "background_per_h", "rank",
                "signal", "count", "first_seen", "lead", "family", "resource", "lift"])
    for i, b in enumerate(bursts, 1):
        cands = b.candidates[:top] if top else b.candidates
        bstart = f"{b.start} (before window)" if b.before_window else b.start
        code = f"{b.code} (client)" if b.client else b.code
        bg = round(b.background_per_h, 1)
        if not cands:
            bt.rows.append([i, code, b.count, bstart, bg, "", "(nothing before it)", "",
                            "", "", "", "", ""])
        for r, c in enumerate(cands, 1):
            sig = f"{c['key']} ({str(c['level']).lower()})"
            bt.rows.append([i, code, b.count, bstart, bg, r, sig, c["count"], c["first"],
                            human_duration(float(c["lead_s"])),
                            "same" if c["same_family"] else c["family"] or "-",
                            "same" if c["same_resource"] else "-", c["lift"]])
    rep.tables.append(bt)
    if background:
        gt = Table("background", "steady background: errors at their usual rate, no burst",
                   ["error_code", "errors", "per_hour", "first_seen", "last_seen"])
        for g in background:
            gt.rows.append([f"{g.code} (client)" if client_caused(g.code) else g.code,
                            g.count, round(g.per_h, 2), g.first, g.last])
        rep.tables.append(gt)
    for i, b in enumerate(bursts, 1):
        if b.before_window:
            rep.text.append(f"burst {i}: {safe(b.code)} began at {b.start}, before the window"
                            f" ({b.in_window} of its {b.count} errors are in the window)")
        first = best(b)
        if first is not None:
            rep.text.append(
                f"burst {i}: {b.count} x {safe(b.code)} from {b.start}; first sign: "
                f"{safe(str(first['key']))} ({first['count']} {str(first['level']).lower()} "
                f"record{'' if first['count'] == 1 else 's'}, "
                f"the first {human_duration(float(first['lead_s']))} earlier, "
                f"{first['lift']}x lift)")
    rep.data = {"bursts": [{"code": b.code, "event": b.event, "start": b.start, "end": b.end,
                            "count": b.count, "in_window": b.in_window,
                            "before_window": b.before_window, "example": b.example_id,
                            "client": b.client, "weak": b.weak,
                            "background_per_h": round(b.background_per_h, 3),
                            "log10_p": max(-300.0, b.log10_p),
                            "resources": {k: sorted(v) for k, v in b.resources.items()},
                            "precursors": b.candidates} for b in bursts],
                "background": [{"code": g.code, "count": g.count, "per_h": round(g.per_h, 3),
                                "first": g.first, "last": g.last} for g in background]}
    if not bursts:
        rep.text.append(f"no bursts of >= {min_errors} errors of one code above its "
                        "background in this window")
    return rep
