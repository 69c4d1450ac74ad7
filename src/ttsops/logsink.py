"""The sink: one writer thread owns ``app.log``; everything else sends it records.

* ``emit`` (events.py) puts a tuple on an unbounded in-memory queue and returns; the
  writer thread renders, writes and flushes in batches. Requests never wait on disk.
* Other processes (engine workers) log through ``ForwardSink`` onto a multiprocessing
  queue that a drain thread moves onto the writer's queue: one writer, no torn lines.
* Rotation by size: ``app.log`` is renamed to ``app.log.0`` (instant) and a new
  ``app.log`` opened; a compressor thread turns ``app.log.0`` into block gzip with an
  embedded index (``app.log.0.gz``, written as ``.part``, fsynced, renamed), removes
  ``app.log.0`` and shifts ``app.log.N.gz`` up to make room for ``app.log.1.gz``.
  Every step is a rename or an fsynced write, and ``recover()`` at start-up finishes any
  step a crash interrupted: no truncated ``.gz``, no lost or doubled lines.
* A full or vanished disk never blocks or crashes a request: lines are held (bounded)
  and retried; when writing works again a ``log_write_recovered`` record says how long
  it failed and how many lines, if any, were dropped.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import multiprocessing as mp
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias, TypedDict, Unpack

from . import events
from .events import Item, format_fields
from .logformat.names import LIVE, LOCK, PENDING, rotated_name
from .logformat.record import Record
from .logformat.render import render
from .logformat.timestamps import TsFormatter
from .logindex import compress_file
from .logsink_render import render_text

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext
    from multiprocessing.queues import Queue

    from .config import Settings

# records from worker processes to the writer; None tells the drain thread to stop
ItemQueue: TypeAlias = "Queue[Item | None]"

HELD_LINES_MAX = 200_000
WRITE_CHUNK = 4 << 20  # bytes per write call at most
ROTATE_RETRY_S = 5.0  # a rotation that failed is tried again after this long
POLL_S = 0.05  # the writer wakes at least this often; flush() and close() wake it now


class _Again(Exception):
    """The batch went into a file that no longer exists: write it again."""


class _Flush(NamedTuple):  # on the writer's queue: ``done`` is set once all before is written
    done: threading.Event


_TsFormatter = TsFormatter  # the name it had here


def shift_rotated(log_dir: Path, keep: int) -> None:
    """Make room for ``app.log.1.gz``: shift ``1..g-1`` up by one where ``g`` is the first
    free number (dropping the oldest beyond ``keep``). Idempotent after a crash."""
    g = 1
    while (log_dir / rotated_name(g)).exists():
        g += 1
    if g > keep:
        for n in range(keep, g):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(log_dir / rotated_name(n))
        g = keep
    for n in range(g - 1, 0, -1):
        os.replace(log_dir / rotated_name(n), log_dir / rotated_name(n + 1))


def finish_rotation(log_dir: Path, keep: int, block_bytes: int) -> None:
    """Compress a pending ``app.log.0`` and put it in place as ``app.log.1.gz``."""
    pending, done = log_dir / PENDING, log_dir / (PENDING + ".gz")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(log_dir / (PENDING + ".gz.part"))
    if pending.exists():
        if not done.exists():
            compress_file(pending, done, block_bytes)
        os.unlink(pending)
    if done.exists():
        shift_rotated(log_dir, keep)
        os.replace(done, log_dir / rotated_name(1))
        _fsync_dir(log_dir)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LogSink:
    """The single writer of ``app.log`` in ``log_dir``."""

    def __init__(self, log_dir: str | os.PathLike[str], *, fmt: str = "text",
                 max_bytes: int = 64 << 20, backup_count: int = 30,
                 block_bytes: int = 1 << 20, utc: bool = True,
                 echo_stderr: bool = False) -> None:
        self.dir = Path(log_dir)
        self.fmt = fmt
        self.max_bytes = max_bytes
        self.keep = backup_count
        self.block_bytes = block_bytes
        self.echo = echo_stderr
        self.tsf = TsFormatter(utc)
        # A deque, not a Queue: append is one atomic C call with no lock and no thread
        # wake-up, so the request thread pays almost nothing; the writer polls it.
        self.q: deque[Item | _Flush | None] = deque()  # None: stop
        self._wake = threading.Event()
        self.held: deque[str] = deque()
        self.dropped = 0
        self.fail_since: float | None = None
        self.fail_error = ""
        self._torn = False
        self._rotate_after = 0.0
        self.fh: Any = None
        self.size = 0
        self.lock_fd: int | None = None
        self.compressor: threading.Thread | None = None
        self._mpq: ItemQueue | None = None
        self._closed = False
        self.dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        finish_rotation(self.dir, self.keep, self.block_bytes)
        self._open()
        self.thread = threading.Thread(target=self._run, name="ttsops-log-writer", daemon=True)
        self.thread.start()

    # --- public ------------------------------------------------------------------
    def submit(self, item: Item) -> None:
        self.q.append(item)

    def mp_queue(self, ctx: BaseContext | None = None) -> ItemQueue:
        """A multiprocessing queue whose items reach this writer (for worker processes)."""
        if self._mpq is None:
            self._mpq = (ctx or mp.get_context("spawn")).Queue()
            threading.Thread(target=self._drain_mp, args=(self._mpq,), name="ttsops-log-mp",
                             daemon=True).start()
        return self._mpq

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything submitted so far is written."""
        ev = threading.Event()
        self.q.append(_Flush(ev))
        self._wake.set()
        ev.wait(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._mpq is not None:
            with contextlib.suppress(Exception):
                self._mpq.put(None)
            time.sleep(0.05)
        self.q.append(None)
        self._wake.set()
        self.thread.join(30)
        if self.compressor is not None:
            self.compressor.join(60)
        if self.fh is not None:
            with contextlib.suppress(OSError):
                self.fh.close()
        if self.lock_fd is not None:
            os.close(self.lock_fd)

    # --- writer thread -----------------------------------------------------------
    def _take_lock(self) -> None:
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(f"another process is writing {self.dir / LIVE}; "
                               "exactly one writer per log directory") from None
        self.lock_fd = fd

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # binary and unbuffered: each write is one system call whose byte count is known,
        # so a write that stops half-way (a full disk) can be undone exactly
        self.fh = open(self.dir / LIVE, "ab", buffering=0)  # noqa: SIM115 - lives with the sink
        self.size = os.fstat(self.fh.fileno()).st_size

    def _drain_mp(self, mpq: ItemQueue) -> None:
        while True:
            try:
                item = mpq.get()
            except (EOFError, OSError):
                return
            if item is None:
                return
            self.q.append(item)

    def render_item(self, item: Item) -> str:
        t, logger, level, event, fields, tb = item
        if self.fmt == "text":
            return render_text(self.tsf(t), logger, level, event, fields, tb)
        return render(Record(self.tsf(t), logger, level, event, format_fields(fields), tb),
                      self.fmt)

    def _run(self) -> None:
        last_check = time.monotonic()
        q = self.q
        while True:
            if not q:
                self._wake.wait(POLL_S)
                self._wake.clear()
            waiters: list[threading.Event] = []
            lines: list[str] = []
            stop = False
            while q and len(lines) < 5000:
                item = q.popleft()
                if item is None:
                    stop = True
                    break
                if isinstance(item, _Flush):
                    waiters.append(item.done)
                    continue
                try:
                    lines.append(self.render_item(item))
                except Exception as e:  # a bad item must not kill the writer
                    lines.append(self.render_item((time.time(), "ttsops.logsink", "ERROR",
                                                   "log_render_failed",
                                                   {"error": repr(e)[:200]}, [])))
            self._write(lines)
            now = time.monotonic()
            if now - last_check > 1.0:
                last_check = now
                self._check_file()
            for w in waiters:
                w.set()
            if stop:
                self._final_retry()
                return

    def _final_retry(self, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while self.held and time.monotonic() < deadline:
            time.sleep(0.2)
            self._write([])
        if self.held:
            print(f"ttsops: {len(self.held)} log lines could not be written to "
                  f"{self.dir / LIVE}: {self.fail_error}", file=sys.stderr)

    def _check_file(self) -> None:
        """Reopen when app.log was removed or replaced under us (directory deleted...)."""
        had = self.fh is not None
        try:
            st = os.stat(self.dir / LIVE)
            same = had and os.fstat(self.fh.fileno()).st_ino == st.st_ino
        except OSError:
            same = False
        if not same:
            try:
                self._reopen("replaced" if had and (self.dir / LIVE).exists() else "removed",
                             announce=had)
            except OSError as e:
                self._failed(e)
            else:
                self._write([])

    def _reopen(self, reason: str, announce: bool = True) -> None:
        """Open app.log afresh (recreating the directory and its lock file) and, when an
        open file vanished under us, say so in the log itself."""
        if self.fh is not None:
            with contextlib.suppress(OSError, ValueError):
                self.fh.close()
        self.fh = None
        self._open()
        self._torn = False  # a fragment, if any, was in the file that went away
        if not os.path.exists(self.dir / LOCK):
            with contextlib.suppress(OSError, RuntimeError):
                old = self.lock_fd
                self._take_lock()  # the directory was recreated: hold its lock again
                if old is not None:
                    os.close(old)
        if announce:
            self.held.append(self.render_item((
                time.time(), "ttsops.logsink", "WARNING", "log_file_reopened",
                {"warning_code": "LOG_WRITE_FAILED", "reason": reason,
                 "path": str(self.dir / LIVE)}, [])))

    def _failed(self, e: OSError) -> None:
        if self.fail_since is None:
            self.fail_since = time.time()
            self.fail_error = f"{type(e).__name__}: {e}"
            print(f"ttsops: cannot write {self.dir / LIVE}: {e}; holding log lines",
                  file=sys.stderr)

    def _write(self, lines: list[str]) -> None:
        if self.echo:
            for line in lines:
                print(line, file=sys.stderr)
        self.held.extend(lines)
        over = len(self.held) - HELD_LINES_MAX
        if over > 0:
            for _ in range(over):
                self.held.popleft()
            self.dropped += over
        if not self.held:
            return
        if self.fh is None:
            try:
                self._open()
            except OSError as e:
                self._failed(e)
                return
        try:
            self._write_held()
        except OSError as e:
            self._failed(e)
            if self.fh is not None:
                with contextlib.suppress(OSError, ValueError):
                    self.fh.close()
            self.fh = None
            return
        if self.fail_since is not None:
            took = time.time() - self.fail_since
            rec = self.render_item((time.time(), "ttsops.logsink", "WARNING",
                                    "log_write_recovered",
                                    {"warning_code": "LOG_WRITE_FAILED",
                                     "failed_s": format(took, ".3f"),
                                     "dropped": str(self.dropped),
                                     "error": self.fail_error}, []))
            self.fail_since, self.dropped = None, 0
            self.held.append(rec)
            with contextlib.suppress(OSError):
                self._write_held()

    def _write_held(self) -> None:
        while self.held:
            # write up to the rotation point, then rotate (while rotation is deferred after
            # a failure, keep appending to app.log: a big file beats held or lost lines)
            deferred = time.monotonic() < self._rotate_after
            batch: list[str] = []
            nbytes = 0
            while self.held and nbytes < WRITE_CHUNK and (
                    deferred or self.size + nbytes < self.max_bytes):
                line = self.held[0]
                batch.append(line)
                nbytes += len(line.encode("utf-8", "surrogateescape")) + 1
                self.held.popleft()
            if batch:
                self._append(batch)
                self.size += nbytes
            if self.size >= self.max_bytes and not deferred:
                self._rotate()

    def _append(self, batch: list[str]) -> None:
        """Write whole lines or nothing: a write that fails part-way (ENOSPC after some
        bytes) is cut back to where it started, so that no line is torn and none is
        written twice when the batch is retried."""
        data = ("\n".join(batch) + "\n").encode("utf-8", "surrogateescape")
        lead = 1 if self._torn else 0
        if self._torn:  # a fragment that could not be cut back: end it on its own line
            data = b"\n" + data
        st = os.fstat(self.fh.fileno())
        if st.st_nlink == 0:  # app.log (or its directory) was removed under us
            self._reopen("removed")
            st = os.fstat(self.fh.fileno())
        fd = self.fh.fileno()
        start = st.st_size
        view = memoryview(data)
        done = 0
        try:
            while done < len(data):
                done += self.fh.write(view[done:]) or 0
            if os.fstat(fd).st_nlink == 0:  # removed while we wrote: the lines went with it
                done = 0
                self._reopen("removed")
                raise _Again
        except OSError:
            retry = batch
            if done:
                try:
                    os.ftruncate(fd, start)
                except OSError:  # cannot undo: keep the whole lines, rewrite the torn one
                    self._torn = True
                    whole, end = 0, lead
                    for line in batch:
                        end += len(line.encode("utf-8", "surrogateescape")) + 1
                        if end > done:
                            break
                        whole += 1
                    retry = batch[whole:]
            self.held.extendleft(reversed(retry))
            raise
        except _Again:
            self._append(batch)  # into the new file
            return
        self._torn = False

    def _rotate(self) -> None:
        if self.compressor is not None:
            self.compressor.join()  # one pending file at a time
        try:
            if (self.dir / PENDING).exists():  # its compression failed: finish it first,
                finish_rotation(self.dir, self.keep, self.block_bytes)  # never overwrite it
            os.replace(self.dir / LIVE, self.dir / PENDING)
        except OSError as e:
            # a read-only or full directory: keep appending to app.log, try again later
            self._rotate_after = time.monotonic() + ROTATE_RETRY_S
            self._rotate_failed(e)
            return
        self.fh.close()
        self.fh = None
        self._open()
        self.compressor = threading.Thread(
            target=self._compress, name="ttsops-log-compress", daemon=True)
        self.compressor.start()

    def _rotate_failed(self, e: OSError) -> None:
        self.submit((time.time(), "ttsops.logsink", "ERROR", "log_rotate_failed",
                     {"error_code": "LOG_WRITE_FAILED", "error": str(e)[:300]}, []))

    def _compress(self) -> None:
        try:
            finish_rotation(self.dir, self.keep, self.block_bytes)
        except OSError as e:  # retried at the next rotation or start-up; nothing lost
            with contextlib.suppress(OSError):  # a partial .part only takes space
                os.unlink(self.dir / (PENDING + ".gz.part"))
            self._rotate_failed(e)


class ForwardSink:
    """The sink of a worker process: items go to the main process's writer."""

    def __init__(self, mpq: ItemQueue) -> None:
        self.mpq = mpq

    def submit(self, item: Item) -> None:
        with contextlib.suppress(Exception):
            self.mpq.put(item)


_active: LogSink | None = None


class SinkOptions(TypedDict, total=False):  # LogSink's options (setup: from the settings)
    fmt: str
    max_bytes: int
    backup_count: int
    block_bytes: int
    utc: bool
    echo_stderr: bool


def setup(settings: Settings | None = None, *,
          log_dir: str | os.PathLike[str] | None = None,
          **overrides: Unpack[SinkOptions]) -> LogSink:
    """Start the writer for ``settings.log_dir`` (or ``log_dir``) and route all events to
    it; ``overrides`` replace the settings' sink options."""
    global _active
    from .config import get_settings

    s = settings or get_settings()
    opts: SinkOptions = {"fmt": s.log_format, "max_bytes": s.log_max_bytes,
                         "backup_count": s.log_backup_count, "block_bytes": s.log_block_bytes,
                         "utc": s.log_utc, "echo_stderr": s.log_stderr}
    opts.update(overrides)
    if _active is not None:
        _active.close()
    _active = LogSink(log_dir if log_dir is not None else s.log_dir, **opts)
    events.set_sink(_active, s.log_level)
    atexit.register(shutdown)
    return _active


def shutdown() -> None:
    global _active
    if _active is not None:
        events.set_sink(events.NullSink())
        _active.close()
        _active = None


def active() -> LogSink | None:
    return _active
