"""The ``ttsops`` console script: the hot ``logs`` queries (window, trace, patterns,
stages) are read and run without importing click when their command line is a plain one
(``forensics.quick``); everything else goes to the click group ``ttsops.cli.main``."""

from __future__ import annotations

import sys

QUICK = ("window", "trace", "patterns", "stages")


# Polars' allocator (jemalloc) keeps the pages it frees ("muzzy") for reuse, never
# returning them: a month's ``logs diagnose`` then peaks at ~750 MB instead of ~500 MB.
# Returned at once instead, for some system CPU (the environment's own setting wins).
# One arena per usable core (Polars runs a thread per core), not jemalloc's four: fewer
# pages returned and faulted in again (the month's diagnose on 2 cores: system CPU
# 2.8 -> 1.8 s, the same peak).
MALLOC_CONF = ("_RJEM_MALLOC_CONF", "muzzy_decay_ms:0")


def malloc_conf() -> tuple[str, str]:
    """``MALLOC_CONF`` with ``narenas`` the number of cores this process may run on."""
    import os

    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return MALLOC_CONF[0], f"narenas:{max(1, n)},{MALLOC_CONF[1]}"


def main() -> int | None:
    args = sys.argv[1:]
    if args[:1] == ["logs"]:
        import os

        os.environ.setdefault(*malloc_conf())
    if len(args) >= 2 and args[0] == "logs" and args[1] in QUICK:
        from .forensics.quick import run

        code = run(args[1], args[2:])
        if code is not None:
            return code
    from .cli import main as click_main

    return click_main()
