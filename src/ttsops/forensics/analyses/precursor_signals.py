"""The signals of ``logs precursors``: the families of codes and events, which codes the
caller causes, when a candidate has enough evidence to be named a burst's cause, and how
improbable a count is under a background rate (see ``precursors`` for the method).
"""

from __future__ import annotations

import math
from typing import Any

from ...errors import REGISTRY

FAMILIES: dict[str, set[str]] = {
    "storage": {"DISK_FULL", "CACHE_WRITE_FAILED", "CACHE_DIR_USAGE_HIGH", "CACHE_CORRUPT",
                "LOG_WRITE_FAILED", "cache_health", "cache_dir_usage", "cache_write_failed",
                "cache_evict", "log_write_recovered", "log_rotate_failed"},
    "engine": {"MODEL_LOAD_FAILED", "MODEL_LOAD_TIMEOUT", "ENGINE_NOT_READY", "ENGINE_CRASHED",
               "ENGINE_FAILED", "model_load_failed", "engine_load", "worker_restarted",
               "worker_died"},
    "capacity": {"QUEUE_FULL", "SYNTHESIS_TIMEOUT", "RATE_LIMITED", "queue_full"},
    "audio": {"SCIPY_FFT_INVALID", "AUDIO_ENCODE_FAILED"},
    "input": {"TEXT_EMPTY", "TEXT_TOO_LONG", "TEXT_INVALID", "TEXT_SANITIZED", "VOICE_UNKNOWN",
              "VOICE_FALLBACK", "MODEL_UNKNOWN", "FORMAT_UNSUPPORTED", "SPEED_OUT_OF_RANGE",
              "INVALID_REQUEST", "BODY_TOO_LARGE"},
    "client": {"WEBUI_PLAYBACK_FAILED", "UNAUTHORIZED", "NOT_FOUND", "webui_event"},
}
FAMILY_OF = {name: fam for fam, names in FAMILIES.items() for name in names}
RESOURCE_KEYS = ("path", "engine", "model", "voice", "device")
MIN_SUPPORT = 3  # records of a candidate before it is a precursor (unless CLOSE_S below)
CLOSE_S = 900.0  # one error of the same family this soon before the burst is enough


def client_caused(code: str | None) -> bool:
    """A code the caller causes (bad input, auth, its own rate): registry status < 500,
    capacity codes excepted (a full queue is the server's)."""
    spec = REGISTRY.get((code or "").strip("()"))
    if spec is None:
        return FAMILY_OF.get(code or "") in ("input",)
    return spec.status < 500 and FAMILY_OF.get(spec.code) != "capacity"


def close_error(c: dict[str, Any]) -> bool:
    """Is the candidate an error of the burst's family just (``CLOSE_S``) before it?"""
    return (str(c["level"]) != "WARNING" and bool(c["same_family"])
            and float(c["lead_s"]) <= CLOSE_S)


def client_signal(c: dict[str, Any]) -> bool:
    """A candidate the caller causes (bad input, auth, the page): never a cause."""
    return client_caused(str(c.get("key"))) or c.get("family") in ("input", "client")


def supported(c: dict[str, Any]) -> bool:
    """Enough evidence to name a candidate as the cause of its burst (see the module)."""
    if client_signal(c):
        return False
    return int(c["count"]) >= MIN_SUPPORT or close_error(c)


def family(code: str | None, event: str) -> str | None:
    return FAMILY_OF.get(code or "") or FAMILY_OF.get(event)


def related_resource(a: dict[str, set[str]], b: dict[str, set[str]]) -> bool:
    for k in RESOURCE_KEYS:
        for x in a.get(k, ()):
            for y in b.get(k, ()):
                if x == y or (k == "path" and (x.startswith(y.rstrip("/") + "/")
                                               or y.startswith(x.rstrip("/") + "/"))):
                    return True
    return False


def weak(code: str | None) -> bool:
    """A code that ranks below server faults: caused by the client (``client_caused``)
    or logged at WARNING level by the registry."""
    spec = REGISTRY.get((code or "").strip("()"))
    return client_caused(code) or (spec is not None and spec.level == "WARNING")


def log10_poisson_tail(k: int, lam: float) -> float:
    """log10 P(X >= k) for X ~ Poisson(lam) (0.0 when k <= lam: nothing unusual)."""
    if k <= 0 or k <= lam:
        return 0.0
    if lam <= 0.0:
        return -math.inf
    log_t = -lam + k * math.log(lam) - math.lgamma(k + 1)
    total = term = 1.0
    i = k
    while term > 1e-12 * total:
        i += 1
        term *= lam / i
        total += term
    return min(0.0, (log_t + math.log(total)) / math.log(10))


ALPHA_LOG10 = -4.0  # a burst: this improbable under the code's own background rate
MIN_RATIO = 3.0  # ... and at least this many times its background rate
