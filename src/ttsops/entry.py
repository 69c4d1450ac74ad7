"""The ``ttsops`` console script: the hot ``logs`` queries (window, trace, patterns) are
read and run without importing click when their command line is a plain one
(``forensics.quick``); everything else goes to the click group ``ttsops.cli.main``."""

from __future__ import annotations

import sys

QUICK = ("window", "trace", "patterns")


# Polars' allocator (jemalloc) keeps the pages it frees ("muzzy") for reuse, never
# returning them: a month's ``logs diagnose`` then peaks at ~750 MB instead of ~500 MB.
# Returned at once instead, for some system CPU (the environment's own setting wins).
MALLOC_CONF = ("_RJEM_MALLOC_CONF", "muzzy_decay_ms:0")


def main() -> int | None:
    args = sys.argv[1:]
    if args[:1] == ["logs"]:
        import os

        os.environ.setdefault(*MALLOC_CONF)
    if len(args) >= 2 and args[0] == "logs" and args[1] in QUICK:
        from .forensics.quick import run

        code = run(args[1], args[2:])
        if code is not None:
            return code
    from .cli import main as click_main

    return click_main()
