"""The cache's health reporter: a daemon thread that logs the cache disk's state every
``settings.cache_health_interval_s`` (default 5 minutes), so that a filling disk shows up
as WARNINGs long before writes fail:

    cache_health: path=/app/cache, used=4301MB, total=4700MB, usage=91.5%, cache_mb=312.4, ...
    cache_dir_usage: path=/app/cache, used_percent=91.5, threshold=90.0, action=evict, ...

``cache_health`` is INFO, or WARNING above the threshold; ``cache_dir_usage``
(``warning_code=CACHE_DIR_USAGE_HIGH``) is written only above the threshold, with
``action=evict`` when the cache itself held more than its low watermark and was trimmed to
it, ``action=warn`` when there was nothing of the cache's own to free.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import MB, AudioCache
from .events import get_logger

if TYPE_CHECKING:
    from .config import Settings

log = get_logger("ttsops.cache")


class CacheHealthReporter:
    def __init__(self, cache: AudioCache | None, path: str | Path | None = None,
                 interval_s: float = 300.0, warn_percent: float = 90.0) -> None:
        if path is None:
            if cache is None:
                raise ValueError("a cache or a path is needed")
            path = cache.path
        self.cache = cache
        self.path = Path(path)
        self.interval = interval_s
        self.threshold = warn_percent
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings,
                      cache: AudioCache | None) -> CacheHealthReporter:
        return cls(cache, settings.cache_dir, settings.cache_health_interval_s,
                   settings.cache_disk_warn_percent)

    def report_once(self) -> dict[str, Any]:
        """Measure and log once; returns what was logged (for tests and /metrics)."""
        probe = self.path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent  # the disk the cache will be on
        total, used, _free = shutil.disk_usage(probe)
        pct = 100.0 * used / total if total else 0.0
        cache_bytes, entries = self.cache.usage() if self.cache else (0, 0)
        out: dict[str, Any] = {
            "path": str(self.path), "used": f"{used // MB}MB", "total": f"{total // MB}MB",
            "usage": f"{pct:.1f}%", "cache_mb": round(cache_bytes / MB, 2),
            "cache_entries": entries,
        }
        if self.cache is not None:
            out["budget_mb"] = round(self.cache.budget / MB, 2)
        high = pct > self.threshold
        log.log("WARNING" if high else "INFO", "cache_health", **out)
        out["used_percent"] = round(pct, 1)
        if high:
            action = "warn"
            if self.cache is not None and cache_bytes > self.cache.low * self.cache.budget:
                action = "evict"
            log.warning("cache_dir_usage", path=str(self.path), used_percent=round(pct, 1),
                        threshold=self.threshold, action=action,
                        warning_code="CACHE_DIR_USAGE_HIGH")
            if action == "evict" and self.cache is not None:
                self.cache.evict(int(self.cache.low * self.cache.budget), reason="disk")
            out["action"] = action
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.report_once()
            except Exception as e:  # the reporter must never die silently
                log.error("cache_health_failed", exc=e, path=str(self.path))
            self._stop.wait(self.interval)

    def start(self) -> CacheHealthReporter:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="ttsops-cache-health",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
