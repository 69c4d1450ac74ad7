"""The ``ttsops`` console script of the environment the tests run in.

Tests that start ttsops as a subprocess start what a user starts: the script that
``pip install`` put beside this interpreter, not ``python -m ttsops``. An environment
without it (the project not installed into it) fails loudly here, at collection.
"""

from __future__ import annotations

import sys
from pathlib import Path

_script = Path(sys.executable).parent / "ttsops"
if not _script.is_file():
    raise RuntimeError(f"no ttsops console script beside {sys.executable}; install the project "
                       "into this environment first: pip install -e '.[test]'")

#: the command that starts ttsops, to put before its arguments
TTSOPS: list[str] = [str(_script)]
