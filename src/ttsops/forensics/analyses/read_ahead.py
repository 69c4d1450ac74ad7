"""The sidecars' frames of a scan read one or two files ahead, in a thread of their own,
with a first pass over each frame done there too (``logs check``: the dialect counts and
the checks of single records):
Polars leaves the interpreter free while it decodes and computes, so reading the next
files overlaps the work on this one (two cores: about the time of the longer of the two,
not their sum). Frames come in the order ``sidecar.frames`` gives them; an error in the
thread is raised where the frames are taken; leaving early stops the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..reading import sidecar
from ..reading.scan import Scan
from ..reading.sources import LogFile

_END = object()
T = TypeVar("T")


def frames(scan: Scan, columns: list[str], first: Callable[[LogFile, Any], T],
           ahead: int = 1, lazy: tuple[str, ...] = ()) -> Iterator[tuple[LogFile, Any, T]]:
    """``sidecar.frames(scan, columns, lazy)``, each file and frame given to ``first`` (in the
    reading thread, in order) and handed out with what it returned."""
    q: queue.Queue[Any] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for f, df in sidecar.frames(scan, columns, lazy=lazy):
                if not put((f, df, first(f, df))):
                    return
            put(_END)
        except BaseException as e:  # raised again in the taking thread
            put(e)

    t = threading.Thread(target=work, name="ttsops-read-ahead", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()
