"""``gc_paused``: the cycle collector off while millions of small containers are made
that hold no cycles (a file's records, its rows); it would walk them again and again and
find nothing. Restored as it was (off stays off)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
