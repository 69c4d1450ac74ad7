"""The simulator's ground truth: what it injected and emitted, for tests and demos
(``ttsops simulate logs --truth``)."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .logformat.timestamps import TsFormatter
from .simulate_scenarios import CACHE_PATH, SAFARI_NOT_ALLOWED

if TYPE_CHECKING:
    from .simulate import Simulator

ts = TsFormatter(utc=True)  # a simulated time exactly as the sink writes it


@dataclass
class Truth:
    """What the generator injected and emitted (the ground truth file)."""

    data: dict[str, Any] = field(default_factory=dict)
    stage_values: dict[str, list[float]] = field(default_factory=dict)
    e2e: list[float] = field(default_factory=list)
    queue: list[float] = field(default_factory=list)
    started_ids: int = 0
    complete: Counter[str] = field(default_factory=Counter)
    failed_by_code: Counter[str] = field(default_factory=Counter)
    failed_by_code_text_len: Counter[tuple[str, str]] = field(default_factory=Counter)


def _pct(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "p99": values[0]}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(q[49], 3), "p95": round(q[94], 3), "p99": round(q[98], 3)}


def truth_doc(sim: Simulator) -> dict[str, Any]:
    """The ground-truth document of a finished run (``--truth``)."""
    cfg, tr, sink = sim.cfg, sim.truth, sim.sink
    doc: dict[str, Any] = {
        "start": ts(cfg.start), "end": ts(cfg.start + cfg.duration_s),
        "requests": cfg.requests, "seed": cfg.seed, "scenarios": sorted(sim.sc),
        "format": cfg.fmt, "engine": cfg.engine,
        "windows": {k: [ts(a), ts(b)] for k, (a, b) in sim.win.items()
                    if k in sim.sc or (k == "disk_creep" and "disk_full" in sim.sc)},
        "records": sink.items, "levels": dict(sink.levels), "events": dict(sink.events),
        "codes": dict(sink.codes), "syntheses": tr.started_ids,
        "complete": dict(tr.complete), "failed_by_code": dict(tr.failed_by_code),
        "failed_by_code_text_len": [[c, tl, n] for (c, tl), n in
                                    sorted(tr.failed_by_code_text_len.items())],
        "where": sim.where,
        "stages": {s: _pct(v) | {"n": len(v)} for s, v in tr.stage_values.items()},
        "e2e": _pct(tr.e2e) | {"n": len(tr.e2e)},
        "queue_wait": _pct(tr.queue) | {"n": len(tr.queue)},
        "injected": dict(sim.injected),
    }
    inj = doc["injected"]
    if "failures" in sim.sc:
        a, b = sim.win["failures"]
        inj["failing_pattern"] = {"error_code": "SCIPY_FFT_INVALID", "field": "text_len",
                                  "value": "2048", "count": sim.pattern_fail,
                                  "stage": "llm_postproc",
                                  "where": sim.where.get("SCIPY_FFT_INVALID"),
                                  "window": [ts(a), ts(b)],
                                  "window_complete": dict(sim.window_complete)}
    if "queue" in sim.sc:
        inj["slow"] = {"component": "queue_wait", "window": doc["windows"]["queue"]}
    if "slow_stage" in sim.sc:
        inj["slow_stage"] = {"component": "llm_inference",
                             "window": doc["windows"]["slow_stage"]}
    if "disk_full" in sim.sc:
        inj["precursor"] = {
            "error_code": "DISK_FULL", "burst_start": ts(
                sim.first.get("error:DISK_FULL", 0.0)) if "error:DISK_FULL" in sim.first
            else None,
            "warning_code": "CACHE_DIR_USAGE_HIGH", "event": "cache_dir_usage",
            "path": CACHE_PATH,
            "first_warning": ts(sim.first["cache_dir_usage"])
            if "cache_dir_usage" in sim.first else None,
            "disk_full_failures": sim.disk_full_failed,
            "cache_write_failed": sim.cache_write_failed,
            "max_usage": sim.max_usage}
    if "model_load" in sim.sc:
        inj["model_load"]["failed_requests"] = sim.engine_not_ready
        inj["model_load"]["where"] = sim.where.get("MODEL_LOAD_FAILED")
    if "audio" in sim.sc:
        inj["audio"] = {"voice": "nova", "metric": "spectral_centroid",
                        "ids": sorted(sim.audio_anomalies)}
    if "webui" in sim.sc:
        inj["webui"] = {"errors": len(sim.webui_errors), "ua": "Safari/17",
                        "detail": SAFARI_NOT_ALLOWED, "ids": sorted(sim.webui_errors)}
    return doc
