"""``logs cache``: hit rate over time, disk usage trend (with a projection), cache
warnings, ``CACHE_WRITE_FAILED`` and ``DISK_FULL`` counts."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from ...logline import Record
from ..reading.scan import Query, Scan
from ..reading.sources import Snapshot
from ..reading.timeargs import epoch_to_ts, human_duration, ts_to_epoch
from .answer import Report, Table

NEEDLES = ("synthesis_complete", "cache_health", "cache_dir_usage", "CACHE_WRITE_FAILED",
           "DISK_FULL", "cache_evict", "CACHE_CORRUPT")


@dataclass
class Bucket:
    requests: int = 0
    hits: int = 0
    not_saved: int = 0
    usage_max: float | None = None
    usage_last: float | None = None
    dir_warnings: int = 0
    write_failed: int = 0
    disk_full: int = 0


@dataclass
class CacheStats:
    """Collector."""

    interval_s: float = 3600.0
    buckets: dict[float, Bucket] = field(default_factory=lambda: defaultdict(Bucket))
    usage: list[tuple[float, float]] = field(default_factory=list)  # (epoch, %)
    warnings: Counter[str] = field(default_factory=Counter)
    first_warning: dict[str, str] = field(default_factory=dict)
    max_dir_usage: float | None = None
    path: str | None = None
    utc: bool = True
    first_t: float | None = None  # record times seen (for a span from the data itself)
    last_t: float | None = None

    def rebucket(self, interval_s: float) -> None:
        """Merge the buckets into coarser ones (``interval_s`` a multiple of the current
        interval; both aligned to the epoch): sums add, maxima max, the last usage is the
        latest one."""
        if interval_s == self.interval_s:
            return
        merged: dict[float, Bucket] = defaultdict(Bucket)
        for k in sorted(self.buckets):
            b = self.buckets[k]
            m = merged[k - k % interval_s]
            m.requests += b.requests
            m.hits += b.hits
            m.not_saved += b.not_saved
            m.dir_warnings += b.dir_warnings
            m.write_failed += b.write_failed
            m.disk_full += b.disk_full
            if b.usage_max is not None:
                m.usage_max = b.usage_max if m.usage_max is None else max(m.usage_max,
                                                                         b.usage_max)
            if b.usage_last is not None:
                m.usage_last = b.usage_last
        self.buckets = merged
        self.interval_s = interval_s

    def feed(self, rec: Record) -> None:
        ev = rec.event
        f = rec.fields
        if ev not in ("synthesis_complete", "cache_health", "cache_dir_usage") and \
                rec.level not in ("WARNING", "ERROR"):
            return
        t = ts_to_epoch(rec.ts, self.utc)
        if self.first_t is None or t < self.first_t:
            self.first_t = t
        if self.last_t is None or t > self.last_t:
            self.last_t = t
        b = self.buckets[t - t % self.interval_s]
        if ev == "synthesis_complete":
            b.requests += 1
            if f.get("cache_hit") == "true":
                b.hits += 1
            elif f.get("status") == "success" and f.get("cache_saved") == "false":
                b.not_saved += 1
        elif ev == "cache_health":
            u = rec.num("usage")
            if u is not None:
                b.usage_max = u if b.usage_max is None else max(b.usage_max, u)
                b.usage_last = u
                self.usage.append((t, u))
                self.path = f.get("path", self.path)
        code = f.get("warning_code") or f.get("error_code")
        if ev == "cache_dir_usage":
            b.dir_warnings += 1
            u = rec.num("used_percent")
            if u is not None:
                self.max_dir_usage = u if self.max_dir_usage is None else max(
                    self.max_dir_usage, u)
        if rec.level in ("WARNING", "ERROR") and (ev.startswith("cache") or code in (
                "CACHE_WRITE_FAILED", "DISK_FULL", "CACHE_CORRUPT", "CACHE_DIR_USAGE_HIGH")):
            key = code or ev
            self.warnings[key] += 1
            self.first_warning.setdefault(key, rec.ts)
        if code == "CACHE_WRITE_FAILED":
            b.write_failed += 1
        elif code == "DISK_FULL" and rec.level == "ERROR":
            b.disk_full += 1

    def interval(self) -> float | None:
        """The usual time between two usage readings (median), None under 3 readings."""
        if len(self.usage) < 3:
            return None
        gaps = sorted(b[0] - a[0] for a, b in zip(self.usage, self.usage[1:], strict=False))
        return gaps[len(gaps) // 2]

    def gauge(self, end_t: float | None = None) -> dict[str, Any] | None:
        """The last usage reading and how old it is at ``end_t`` (default: the last record
        seen): ``stale`` when no reading came for longer than three usual intervals (at
        least ``STALE_S``). A gauge is never extrapolated past its last reading: where
        cache_health is written only above a threshold (the tutorial: 85%), silence
        means usage went below it, not that it kept growing."""
        if not self.usage:
            return None
        t, u = self.usage[-1]
        end = self.last_t if end_t is None else end_t
        age = max(0.0, (end or t) - t)
        step = self.interval()
        limit = max(STALE_S, 3 * step) if step else STALE_S
        return {"usage": u, "t": t, "ts": epoch_to_ts(t, self.utc), "age_s": age,
                "interval_s": step, "stale": age > limit}

    def trend(self, last_n: int = 12,
              end_t: float | None = None) -> tuple[float | None, float | None]:
        """(slope in %/hour over the last reports, seconds until 100% at that slope).
        Only the last unbroken run of readings counts (a gap of more than three usual
        intervals ends it), and nothing is projected from a stale reading."""
        g = self.gauge(end_t)
        if g is None or g["stale"]:
            return None, None
        pts = self.usage[-last_n:]
        step = self.interval() or STALE_S
        for i in range(len(pts) - 1, 0, -1):
            if pts[i][0] - pts[i - 1][0] > max(STALE_S, 3 * step):
                pts = pts[i:]
                break
        if len(pts) < 3:
            return None, None
        t0 = pts[0][0]
        xs = [(t - t0) / 3600.0 for t, _ in pts]
        ys = [u for _, u in pts]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx == 0:
            return None, None
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
        eta = (100.0 - ys[-1]) / slope * 3600.0 if slope > 0.01 and ys[-1] < 100 else None
        return slope, eta


STALE_S = 900.0  # a gauge reading older than this (or three usual intervals) is stale


def gauge_text(g: dict[str, Any]) -> str:
    """'91.5% at 2024-06-12 10:05:11 (14h02m before the last record)'."""
    return (f"{g['usage']}% at {str(g['ts'])[:19]} ({human_duration(float(g['age_s']))} "
            "before the last record)")


BASE_S = 300.0  # the finest automatic interval; every automatic one is a multiple of it


def auto_interval(lo: float | None, hi: float | None) -> float:
    """48 buckets or fewer over [lo, hi] (epoch seconds), a multiple of ``BASE_S``."""
    if lo is None or hi is None:
        return 3600.0
    span = hi - lo
    for step in (300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400):
        if span / step <= 48:
            return float(step)
    return 86400.0


def span_of(since: str | None, until: str | None, first_t: float | None,
            last_t: float | None, utc: bool) -> tuple[float | None, float | None]:
    """The time span a query covers: its window where given, else the records it saw
    (never a guess from file metadata, so indexed and unindexed files agree)."""
    lo = ts_to_epoch(since, utc) if since else first_t
    hi = ts_to_epoch(until, utc) if until else last_t
    return lo, hi


def run(snap: Snapshot, since: str | None, until: str | None, *,
        interval_s: float | None = None, use_index: bool = True, utc: bool = True) -> Report:
    col = CacheStats(interval_s=interval_s or BASE_S, utc=utc)
    scan = Scan(snap, Query(since, until, needles=NEEDLES, use_index=use_index,
                            tracebacks=False))
    for rec in scan.records():
        col.feed(rec)
    interval = interval_s or auto_interval(*span_of(since, until, col.first_t, col.last_t,
                                                    utc))
    col.rebucket(interval)
    rep = Report("cache", problems=snap.problems)
    req = sum(b.requests for b in col.buckets.values())
    hits = sum(b.hits for b in col.buckets.values())
    slope, eta = col.trend()
    g = col.gauge()
    last = g["usage"] if g else None
    rep.summary = {
        "window": f"{since or 'start'} .. {until or 'end'}",
        "syntheses": req,
        "hit rate": f"{100.0 * hits / req:.1f}%" if req else "-",
        "cache disk usage (last)": gauge_text(g) if g else "- (no cache_health)",
        "trend (last hour of reports)": (
            f"- (the last reading is {human_duration(float(g['age_s']))} old: not "
            "extrapolated; no newer cache_health where it is written only above a "
            "threshold means usage fell below it)") if g and g["stale"] else
        "-" if slope is None else f"{slope:+.2f} %/h"
        + (f", full in ~{human_duration(eta)}" if eta else ""),
        "CACHE_WRITE_FAILED": col.warnings.get("CACHE_WRITE_FAILED", 0),
        "DISK_FULL errors": sum(b.disk_full for b in col.buckets.values()),
        "cache_dir_usage warnings": sum(b.dir_warnings for b in col.buckets.values()),
    }
    t = Table("timeline", f"cache per {human_duration(interval)}",
              ["from", "syntheses", "hits", "hit_rate_%", "not_saved", "disk_usage_max_%",
               "dir_usage_warnings", "write_failed", "disk_full"])
    for start in sorted(col.buckets):
        b = col.buckets[start]
        t.rows.append([epoch_to_ts(start, utc)[:16], b.requests, b.hits,
                       round(100.0 * b.hits / b.requests, 1) if b.requests else None,
                       b.not_saved, b.usage_max, b.dir_warnings, b.write_failed, b.disk_full])
    rep.tables.append(t)
    if col.warnings:
        w = Table("warnings", "cache warnings and errors", ["code", "count", "first_seen"])
        w.rows = [[k, n, col.first_warning[k]] for k, n in col.warnings.most_common()]
        rep.tables.append(w)
    rep.data = {"hit_rate": hits / req if req else None, "syntheses": req,
                "usage_last": last, "usage_slope_pct_per_h": slope, "full_in_s": eta,
                "usage_last_ts": g["ts"] if g else None,
                "usage_age_s": g["age_s"] if g else None,
                "usage_stale": g["stale"] if g else None,
                "max_dir_usage": col.max_dir_usage, "warnings": dict(col.warnings),
                "first_warning": col.first_warning}
    if req == 0 and not col.usage and not col.warnings:
        rep.empty = "no cache records (synthesis_complete, cache_health, cache warnings) " \
                    "in this window"
    return rep
