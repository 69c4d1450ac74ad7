"""Prometheus metrics of one service instance (its own registry, so several apps can live
in one process, e.g. in tests). Label values are bounded: routes are templates, error
codes come from the registry, stages from the fixed list."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from .. import __version__
from ..pipeline.types import STAGES

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
                   8.0, 13.0, 21.0, 34.0, 60.0, 120.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
                 5.0, 10.0, 30.0, 60.0)
RTF_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(scope: Mapping[str, Any]) -> str:
    """The ``route`` label of a request: its route's template; ``/static`` for the page's
    files (a mount, which names no route); ``preflight`` for a CORS preflight answered
    before routing; else ``unmatched``. Never the raw path (bounded label values)."""
    path = getattr(scope.get("route"), "path", None)
    if path:
        return str(path)
    endpoint = scope.get("endpoint")  # a plain route (/openapi.json): FastAPI's router
    if endpoint is not None:  # names its endpoint, not its route
        for r in getattr(scope.get("app"), "routes", ()):
            if getattr(r, "endpoint", None) is endpoint and getattr(r, "path", None):
                return str(r.path)
    raw = scope.get("path", "")
    if raw.startswith("/static/"):
        return "/static"
    if scope.get("method") == "OPTIONS" and any(
            k == b"access-control-request-method" for k, _ in scope.get("headers", ())):
        return "preflight"
    return "unmatched"


class _GaugeCollector:
    """Gauges read at scrape time from the pool and the cache."""

    def __init__(self) -> None:
        self.sources: list[tuple[str, str, str, Callable[[], float | None]]] = []

    def add(self, name: str, help_: str, fn: Callable[[], float | None],
            kind: str = "gauge") -> None:
        self.sources.append((kind, name, help_, fn))

    def collect(self) -> Iterable[Metric]:
        for kind, name, help_, fn in self.sources:
            try:
                value = fn()
            except Exception:
                value = None
            if value is None:
                continue
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            m = family(name, help_)
            m.add_metric([], float(value))
            yield m

    def describe(self) -> Iterable[Metric]:
        return []


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # labelled children by (metric, label values): ``labels()`` costs a lock and a
        # few tuple operations on every call; label values are bounded (see above)
        self._children: dict[tuple[Any, ...], Any] = {}
        # bound recording methods of the hottest series: per (method, route, status,
        # code) for HTTP, per format for cache hits
        self._http: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        self._hits: dict[str, tuple[Any, ...]] = {}
        r = self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.http_requests = Counter(
            "ttsops_http_requests_total", "HTTP requests by method, route, status and error code.",
            ["method", "route", "status", "code"], registry=r)
        self.http_duration = Histogram(
            "ttsops_http_request_duration_seconds", "HTTP request duration by route.",
            ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.syntheses = Counter(
            "ttsops_syntheses_total", "Syntheses by outcome, error code and cache hit.",
            ["status", "code", "cache_hit"], registry=r)
        self.synthesis_duration = Histogram(
            "ttsops_synthesis_duration_seconds", "End-to-end synthesis time, queue included.",
            ["cache_hit"], buckets=LATENCY_BUCKETS, registry=r)
        self.stage_duration = Histogram(
            "ttsops_stage_duration_seconds", "Time of each pipeline stage alone.",
            ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.queue_wait = Histogram(
            "ttsops_queue_wait_seconds", "Time a synthesis waited for a worker.",
            buckets=STAGE_BUCKETS, registry=r)
        self.cache_lookups = Counter(
            "ttsops_cache_lookups_total", "Audio cache lookups by result (hit/miss).",
            ["result"], registry=r)
        self.audio_seconds = Counter(
            "ttsops_audio_seconds_total", "Seconds of audio produced.", ["format"], registry=r)
        self.rtf = Histogram(
            "ttsops_real_time_factor", "Synthesis time divided by audio duration (uncached).",
            buckets=RTF_BUCKETS, registry=r)
        self.first_audio = Histogram(
            "ttsops_stream_first_audio_seconds", "Time to first audio byte of streamed "
            "responses.", ["stream_format"], buckets=LATENCY_BUCKETS, registry=r)
        self.worker_restarts = Counter(
            "ttsops_worker_restarts_total", "Engine worker processes restarted, by reason.",
            ["reason"], registry=r)
        self.engine_loads = Counter(
            "ttsops_engine_loads_total", "Engine loads in worker processes by outcome.",
            ["engine", "status"], registry=r)
        self.webui_events = Counter(
            "ttsops_webui_events_total", "Events reported by the web page, by kind.",
            ["kind"], registry=r)
        for stage in STAGES:  # export every stage series from the start
            self.stage_duration.labels(stage)
        for result in ("hit", "miss"):
            self.cache_lookups.labels(result)
        self.gauges = _GaugeCollector()
        r.register(self.gauges)
        self.gauges.add("ttsops_build_info", f"ttsops version {__version__} (always 1).",
                        lambda: 1.0)

    # --- recording ---------------------------------------------------------------
    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, remembered."""
        key = (metric, *values)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*values)
        return c

    def observe_http(self, method: str, route: str, status: int, code: str | None,
                     seconds: float) -> None:
        key = (method, route, status, code)
        pair = self._http.get(key)
        if pair is None:
            if method not in _METHODS:  # clients choose the method: keep the label bounded
                method = "OTHER"
            pair = (self.child(self.http_requests, method, route, str(status),
                               code or "none").inc,
                    self.child(self.http_duration, route).observe)
            if len(self._http) < 4096:  # bounded label values; guard all the same
                self._http[key] = pair
        pair[0]()
        pair[1](seconds)

    def observe_synthesis(self, result: Any) -> None:
        """A finished ``SynthesisResult``."""
        if result.cache_hit:  # the cache-hit path: its four series, looked up once
            fns = self._hits.get(result.format)
            if fns is None:
                fns = self._hits[result.format] = (
                    self.child(self.syntheses, "success", "none", "true").inc,
                    self.child(self.synthesis_duration, "true").observe,
                    self.child(self.cache_lookups, "hit").inc,
                    self.child(self.audio_seconds, result.format).inc)
            fns[0]()
            fns[1](result.total_ms / 1000.0)
            fns[2]()
            fns[3](result.duration_ms / 1000.0)
            return
        self.child(self.syntheses, "success", "none", "false").inc()
        self.child(self.synthesis_duration, "false").observe(result.total_ms / 1000.0)
        self.child(self.cache_lookups, "miss").inc()
        self.child(self.audio_seconds, result.format).inc(result.duration_ms / 1000.0)
        self.queue_wait.observe(result.queue_ms / 1000.0)
        for stage, ms in result.stages.items():
            if stage in STAGES:
                self.child(self.stage_duration, stage).observe(ms / 1000.0)
        if result.duration_ms > 0:
            self.rtf.observe(result.total_ms / result.duration_ms)

    def observe_failure(self, code: str, seconds: float | None = None,
                        queue_ms: float | None = None) -> None:
        self.child(self.syntheses, "failed", code, "false").inc()
        if seconds is not None:
            self.child(self.synthesis_duration, "false").observe(seconds)
        if queue_ms is not None:
            self.queue_wait.observe(queue_ms / 1000.0)

    def gauge(self, name: str, help_: str, fn: Callable[[], float | None]) -> None:
        self.gauges.add(name, help_, fn)

    def counter(self, name: str, help_: str, fn: Callable[[], float | None]) -> None:
        """A counter read at scrape time (``name`` without ``_total``)."""
        self.gauges.add(name, help_, fn, kind="counter")

    def render(self) -> bytes:
        return generate_latest(self.registry)
