"""Per-client token buckets: ``rate`` requests per minute, bursts up to ``rate``."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """``check(client)`` returns 0 when the request may proceed, otherwise the seconds to
    wait (for ``Retry-After``). Memory is bounded: the least recently seen clients are
    forgotten beyond ``max_clients`` (a forgotten client starts with a full bucket)."""

    def __init__(self, per_minute: int, max_clients: int = 100_000,
                 clock: Callable[[], float] | None = None) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0  # tokens per second
        self.max_clients = max_clients
        self.clock = clock or time.monotonic
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def check(self, client: str) -> float:
        if not self.enabled:
            return 0.0
        now = self.clock()
        tokens, last = self.buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.refill)
        if tokens >= 1.0:
            self.buckets[client] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self.buckets[client] = (tokens, now)
            wait = max(1.0, math.ceil((1.0 - tokens) / self.refill))
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait
