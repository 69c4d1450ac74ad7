"""Findings that rank right, on logs written by plain stdlib ``logging``: a steady
trickle of client errors is one background line, not dozens of bursts; the real outage
is the first burst with its precursor first (by lift); a gauge (cache usage) is never
extrapolated past its last reading."""

from __future__ import annotations

import random

from ttsops.forensics.analyses.precursors import Precursors, log10_poisson_tail
from ttsops.logline import Record

from .. import stdlib_logs as sl
from ..forensics_helpers import cli, cli_json

DAY = 1718150400.0  # 2024-06-12 00:00:00 UTC


def _day_with_outage(d, *, trickle_per_h: float = 4.0, seed: int = 5) -> dict:
    """24 h of syntheses; TEXT_EMPTY (client) and VOICE_UNKNOWN errors at a steady
    rate; at 14:00 twenty minutes of DISK_FULL, preceded from 13:20 by cache_health
    warnings (written only above 85%, as the tutorial does)."""
    d.mkdir(parents=True, exist_ok=True)
    clock = sl.Clock(DAY)
    h = sl.handler(d / "app.log", max_bytes=200_000, clock=clock)
    lg = sl.logger_for(h)
    rnd = random.Random(seed)
    events: list[tuple[float, str, str]] = []
    t = 0.0
    while t < 86400:  # one synthesis a minute
        events.append((DAY + t, "ok", ""))
        t += 60
    for code in ("TEXT_EMPTY", "VOICE_UNKNOWN"):
        t = rnd.expovariate(trickle_per_h / 3600)
        while t < 86400:
            events.append((DAY + t, "client", code))
            t += rnd.expovariate(trickle_per_h / 3600)
    outage = DAY + 14 * 3600
    for i in range(200):  # one every 6 s for 20 minutes
        events.append((outage + i * 6.0, "disk", "DISK_FULL"))
    for i in range(9):  # 86% .. 99% from 13:20, every 5 minutes
        events.append((outage - 2400 + i * 300, "gauge", f"{86 + i * 1.6:.1f}"))
    events.sort()
    n = 0
    try:
        for t, kind, what in events:
            clock.t = t
            n += 1
            sid = f"ts_{n:08x}"
            if kind == "ok":
                sl.synthesis(lg, clock, sid)
            elif kind == "client":
                lg.error(f"synthesis_failed: id={sid}, error_code={what}, where=validate")
                lg.info(f"synthesis_complete: id={sid}, status=failed, duration_ms=3, "
                        f"error_code={what}")
            elif kind == "disk":
                lg.error(f"synthesis_failed: id={sid}, error_code=DISK_FULL, "
                         "where=cache_write, path=/app/cache")
            else:
                lg.warning(f"cache_health: path=/app/cache, used=4300MB, total=4700MB, "
                           f"usage={what}%")
    finally:
        h.close()
    return {"outage": "2024-06-12 14:00:00,000", "first_warning": "2024-06-12 13:20:00,000"}


def test_a_steady_trickle_is_background_and_the_outage_ranks_first(tmp_path):
    d = tmp_path / "logs"
    truth = _day_with_outage(d)
    rep = cli_json("precursors", "--dir", str(d))
    bursts = rep["bursts"]
    # was 40+ "bursts", most of them the trickle, listed by time
    assert [b["code"] for b in bursts] == ["DISK_FULL"], [b["code"] for b in bursts]
    b = bursts[0]
    assert b["start"] == truth["outage"] and b["count"] == 200
    first = b["precursors"][0]
    assert first["key"] == "cache_health" and first["first"] == truth["first_warning"]
    bg = {g["code"]: g for g in rep["background"]}
    assert set(bg) == {"TEXT_EMPTY", "VOICE_UNKNOWN"}
    for g in bg.values():
        assert 2.0 < g["per_h"] < 7.0
    _code, out, _err = cli("precursors", "--dir", str(d))
    assert "by lift" in out and "steady background" in out
    # diagnose: the outage is a critical finding naming its precursor
    diag = cli_json("diagnose", "--dir", str(d))
    pre = [f for f in diag["findings"] if f["kind"] == "precursor"]
    assert len(pre) == 1 and pre[0]["severity"] in ("critical", "high")
    assert "DISK_FULL" in pre[0]["title"] and "cache_health" in pre[0]["title"]


def _rec(t: float, level: str, event: str, **f: str) -> Record:
    from ttsops.forensics.reading.timeargs import epoch_to_ts

    return Record(epoch_to_ts(DAY + t), "app", level, event, f)


def test_candidates_are_listed_by_lift_and_client_bursts_rank_below_server_faults():
    col = Precursors(lookback_s=3600)
    rnd = random.Random(2)
    recs = []
    # a warning at its usual rate all day, and one that comes only before the burst
    for i in range(48):
        recs.append(_rec(i * 1800 + rnd.random(), "WARNING", "text_sanitized",
                         warning_code="TEXT_SANITIZED"))
    for i in range(6):
        recs.append(_rec(36000 + i * 300, "WARNING", "queue_depth", warning_code="QUEUE_FULL"))
        recs.append(_rec(36000 + i * 300 + 1, "WARNING", "gpu_temp", temp="91"))
    for i in range(40):
        recs.append(_rec(38000 + i * 5, "ERROR", "synthesis_failed",
                         error_code="SYNTHESIS_TIMEOUT"))
    for i in range(40):  # a client burst, bigger, earlier
        recs.append(_rec(20000 + i * 3, "ERROR", "synthesis_failed", error_code="TEXT_EMPTY"))
    for r in sorted(recs, key=lambda r: r.ts):
        col.feed(r)
    bursts = col.finish()
    assert [b.code for b in bursts] == ["SYNTHESIS_TIMEOUT", "TEXT_EMPTY"]
    lifts = [float(c["lift"]) for c in bursts[0].candidates]
    assert lifts == sorted(lifts, reverse=True)
    keys = [c["key"] for c in bursts[0].candidates]
    assert keys.index("QUEUE_FULL") < keys.index("TEXT_SANITIZED")
    assert keys.index("gpu_temp") < keys.index("TEXT_SANITIZED")


def test_poisson_tail():
    assert log10_poisson_tail(3, 5.0) == 0.0
    assert log10_poisson_tail(1, 0.0) == float("-inf")
    # P(X >= 3 | 0.5) = 1 - e^-0.5 (1 + 0.5 + 0.125)
    import math

    want = math.log10(1 - math.exp(-0.5) * 1.625)
    assert abs(log10_poisson_tail(3, 0.5) - want) < 1e-6
    assert log10_poisson_tail(200, 1.0) < -300


def _gauge_day(d, *, last_reading_h: float) -> None:
    """cache_health (only above 85%, as the tutorial writes it) climbing to 99.8% within
    ten minutes at 01:50; then syntheses until ``last_reading_h`` hours later."""
    d.mkdir(parents=True, exist_ok=True)
    clock = sl.Clock(DAY)
    h = sl.handler(d / "app.log", max_bytes=0, clock=clock)
    lg = sl.logger_for(h)
    try:
        for i, u in enumerate((86.0, 90.0, 95.0, 99.8)):
            clock.t = DAY + 6600 + i * 200
            lg.warning(f"cache_health: path=/app/cache, used=4690MB, total=4700MB, "
                       f"usage={u}%")
        t = DAY + 6600 + 800
        n = 0
        while t < DAY + 6600 + last_reading_h * 3600:
            clock.t = t
            n += 1
            sl.synthesis(lg, clock, f"ts_{n:08x}")
            t += 120
    finally:
        h.close()


def test_a_stale_gauge_is_not_extrapolated_and_its_age_is_said(tmp_path):
    d = tmp_path / "logs"
    _gauge_day(d, last_reading_h=14)
    diag = cli_json("diagnose", "--dir", str(d))
    cache = [f for f in diag["findings"] if f["kind"] == "cache_disk"]
    assert len(cache) == 1
    f = cache[0]
    # was "[high] cache disk at 99.8%, full in ~..."
    assert f["severity"] == "info" and "full in" not in f["title"]
    assert "99.8%" in f["title"] and "13h" in f["title"]
    assert f["data"]["stale"] and f["data"]["eta_s"] is None
    rep = cli_json("cache", "--dir", str(d))
    assert rep["usage_stale"] and rep["full_in_s"] is None and rep["usage_age_s"] > 13 * 3600
    assert "not extrapolated" in rep["summary"]["trend (last hour of reports)"]


def test_a_fresh_gauge_still_warns(tmp_path):
    d = tmp_path / "logs"
    _gauge_day(d, last_reading_h=0.2)
    diag = cli_json("diagnose", "--dir", str(d))
    (f,) = [f for f in diag["findings"] if f["kind"] == "cache_disk"]
    assert f["severity"] == "high" and "99.8%" in f["title"] and not f["data"]["stale"]
