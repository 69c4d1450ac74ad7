"""The ``ttsops`` console script: the hot ``logs`` queries (window, trace, patterns) are
read and run without importing click when their command line is a plain one
(``forensics.quick``); everything else goes to the click group ``ttsops.cli.main``."""

from __future__ import annotations

import sys

QUICK = ("window", "trace", "patterns")


def main() -> int | None:
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "logs" and args[1] in QUICK:
        from .forensics.quick import run

        code = run(args[1], args[2:])
        if code is not None:
            return code
    from .cli import main as click_main

    return click_main()
