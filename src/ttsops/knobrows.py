"""The rows of the settings table that ``ttsops logs`` reads: declared once, here.

``config.Settings`` builds its fields for them from ``KNOBS``; ``knobs`` reads them without
pydantic (the click-free query path). No imports: both import this module, and it imports
neither (so the table and its light reader do not import each other).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any


PREFIX = "TTSOPS_"
_TRUE = ("1", "true", "yes", "on", "t", "y")
_FALSE = ("0", "false", "no", "off", "f", "n")


class Knob:
    """One row of the settings table: ``kind`` is int, float, bool or choice."""

    __slots__ = ("choices", "default", "description", "ge", "gt", "kind", "le", "name")

    def __init__(self, name: str, kind: str, default: Any, description: str, *,
                 ge: float | None = None, gt: float | None = None, le: float | None = None,
                 choices: tuple[str, ...] = ()) -> None:
        self.name, self.kind, self.default, self.description = name, kind, default, description
        self.ge, self.gt, self.le, self.choices = ge, gt, le, choices

    @property
    def env(self) -> str:
        return PREFIX + self.name.upper()

    def parse(self, raw: str) -> Any:
        """The value of a plain spelling, or None when the table must decide."""
        if self.kind == "choice":
            v = raw.strip().lower()
            return v if v in self.choices else None
        if self.kind == "bool":
            v = raw.lower()
            return True if v in _TRUE else False if v in _FALSE else None
        if self.kind == "int":
            if not raw.isascii() or not raw.isdigit():
                return None
            n: float = int(raw)
        else:  # float: plain decimals only ("90", "87.5")
            whole, _, frac = raw.partition(".")
            if not (whole + frac).isascii() or not whole.isdigit() \
                    or not (frac == "" or frac.isdigit()):
                return None
            n = float(raw)
        if (self.ge is not None and n < self.ge) or (self.gt is not None and n <= self.gt) \
                or (self.le is not None and n > self.le):
            return None
        return n


# the logs commands' rows of the table, in its order (config.Settings declares the rest)
KNOBS: dict[str, Knob] = {k.name: k for k in (
    Knob("log_utc", "bool", True, "Timestamps in UTC (false: local time)."),
    Knob("logs_workers", "int", 0, "ttsops logs: threads that read and decompress log "
         "blocks (0: one per CPU, at most 8, for a scan of 32 MiB of gzip or more, one "
         "below, and a selective scan of 1-32 MiB read by one child process while a CPU "
         "is free); processes that write a first read's sidecars (at most 4; 1: none).",
         ge=0),
    Knob("logs_vector", "choice", "auto", "ttsops logs: Polars for aggregations that read "
         "whole logs (stages); auto: when the read is large.",
         choices=("auto", "always", "never")),
    Knob("logs_sidecar", "choice", "read", "ttsops logs: read the parsed records of a "
         "rotated file from its Parquet sidecar (written beside it by `logs index`) instead "
         "of the file; auto: also write one to the cache on the first whole read (that read "
         "is slower); off: never. Except off, `logs diagnose` and `logs report` also keep "
         "beside each sidecar (or in the cache) companions of what that file gives them "
         "(diagnose's about a fifth of the sidecar's size, report's about a sixth), written "
         "on their first run.", choices=("auto", "read", "off")),
    Knob("logs_progress_bytes", "int", 48 << 20, "ttsops logs: show a progress bar (on a "
         "terminal) when a query reads more compressed bytes than this.", ge=0),
    Knob("cache_disk_warn_percent", "float", 90.0, "cache_dir_usage WARNING above this "
         "disk usage (%).", gt=0, le=100),
)}
