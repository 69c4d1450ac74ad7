"""What the simulated service logs besides requests: the cache health reporter's
records (the disk filling up in ``disk_full``) and the engine's model loads
(``model_load``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import events
from .simulate_faults import fault
from .simulate_scenarios import CACHE_PATH, CACHE_TOTAL_MB, WARN_PERCENT
from .simulate_truth import ts

if TYPE_CHECKING:
    from .simulate import Simulator


def disk_usage(sim: Simulator, t: float) -> float:
    """Cache-disk usage (%) at ``t``: a daily wave, the creep and the full disk."""
    base = 62.0 + 4.0 * math.sin((t - sim.cfg.start) / 86400.0 * 2 * math.pi)
    if "disk_full" not in sim.sc:
        return base
    (c0, c1), (f0, f1) = sim.win["disk_creep"], sim.win["disk_full"]
    if c0 <= t < c1:
        return base + (100.0 - base) * ((t - c0) / (c1 - c0)) ** 1.5
    if f0 <= t < f1:
        return 100.0
    if t >= f1:
        return base - 8.0
    return base


def cache_report(sim: Simulator, t: float) -> Callable[[], None]:
    """The cache health reporter's records at ``t`` (``cache_dir_usage`` when high)."""

    def emit() -> None:
        usage = round(min(disk_usage(sim, t), 100.0), 1)
        used = round(CACHE_TOTAL_MB * usage / 100.0)
        sim.max_usage = max(sim.max_usage, usage)
        high = usage > WARN_PERCENT
        sim.log_c.log("WARNING" if high else "INFO", "cache_health", path=CACHE_PATH,
                      used=f"{used}MB", total=f"{CACHE_TOTAL_MB}MB", usage=f"{usage}%")
        if high:
            sim.mark("cache_dir_usage", t)
            sim.log_c.warning("cache_dir_usage", warning_code="CACHE_DIR_USAGE_HIGH",
                              path=CACHE_PATH, used_percent=usage,
                              threshold=WARN_PERCENT,
                              action="evict" if usage >= 95.0 else "warn")
    return emit


def schedule_model_load(sim: Simulator) -> None:
    """``model_load``: the load fails (traceback) and a later reload succeeds."""
    cfg = sim.cfg
    a, b = sim.win["model_load"]
    sim.engine_ready_at = b

    def failed() -> None:
        exc = fault("ttsops.engines.indextts2:load", cfg.model)
        sim.where["MODEL_LOAD_FAILED"] = events.where(exc)
        sim.log_w.error("model_load_failed", exc=exc, engine=cfg.engine, model=cfg.model,
                        duration_ms=183412.0, error_code="MODEL_LOAD_FAILED",
                        message=str(exc))

    def ready() -> None:
        sim.log_w.info("engine_load", engine=cfg.engine, model=cfg.model,
                       duration_ms=52310.0, status="ready")
    sim.at(a, failed)
    sim.at(b, ready)
    sim.injected["model_load"] = {"ts": ts(a), "recovered": ts(b),
                                  "engine": cfg.engine, "model": cfg.model,
                                  "error_code": "MODEL_LOAD_FAILED"}
