"""The file names of a log directory, as the writer makes them (``logsink``)."""

from __future__ import annotations

import re

LIVE = "app.log"  # written now
PENDING = "app.log.0"  # rotated, not yet compressed (``app.log.0.gz`` while compressing)
LOCK = ".app.log.lock"  # held by the one writer of the directory
ROTATED_RE = re.compile(r"app\.log\.([0-9]+)\.gz\Z")  # app.log.1.gz newest ... oldest


def rotated_name(n: int) -> str:
    return f"{LIVE}.{n}.gz"
