"""Progress bars on stderr for queries that read a lot.

Shown when a scan will read more than ``TTSOPS_LOGS_PROGRESS_BYTES`` compressed bytes
(a few hundred MB of log text) and stderr is a terminal, or always with ``--progress`` (never with
``--no-progress``). Output on stdout is never touched, so ``--json`` stays clean.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    pass


class Bar:
    """One rich progress bar over bytes; ``bar(n)`` advances, ``close()`` ends it."""

    def __init__(self, total: int, label: str, *, force_terminal: bool | None = None) -> None:
        import threading

        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.lock = threading.Lock()
        self.console = Console(file=sys.stderr, force_terminal=force_terminal)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 DownloadColumn(), TransferSpeedColumn(),
                                 TimeRemainingColumn(), console=self.console,
                                 transient=False, refresh_per_second=8)
        self.task = self.progress.add_task(label, total=max(total, 1))
        self.progress.start()

    def __call__(self, n: int) -> None:
        if n > 0:
            with self.lock:
                self.progress.advance(self.task, n)

    def close(self) -> None:
        self.progress.stop()


Factory = Callable[[int, str], Bar | None]


def factory(mode: str | None) -> Factory | None:
    """A bar factory for ``--progress`` (``"always"``), ``--no-progress`` (``"never"``)
    or the default (``None``: when stderr is a terminal and the read is large)."""
    if mode == "never":
        return None

    def make(total: int, label: str) -> Bar | None:
        if mode == "always":
            return Bar(total, label)
        from ...knobs import value

        if total >= value("logs_progress_bytes") and sys.stderr.isatty():
            return Bar(total, label)
        return None
    return make
