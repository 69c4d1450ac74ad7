"""``logs tail``: follow the live ``app.log`` across rotations, print records as they
come (filtered), evaluate alert rules live.

Following without losing or doubling a line while the writer rotates: the open
descriptor keeps reading the file it opened (a rename does not move its data). When
``app.log`` no longer names that file, the rest of it is read to its end (the writer
closed it before renaming), then the files written after it are found -- by inode while
it is still the plain ``app.log.0``, otherwise by its last line, which ends exactly one
of the compressed ``app.log.N.gz`` -- and read in order, up to the new ``app.log``, which
becomes the followed file. A file set is opened as one consistent snapshot
(``sources``), so even several rotations between two polls are followed.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from ...logformat.fastparse import parse_line
from ...logformat.timestamps import norm_ts
from ...logline import Record
from ..reading._naming import LIVE, NotRegular, open_file
from ..reading.logfiles import LogFile, Problem, SourceError
from ..reading.reader import ReadCounters, iter_byte_chunks
from ..reading.sources import snapshot_dir
from .answer import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from .rules import Engine

READ = 1 << 20
_RECORD_START = re.compile(rb"\n(?=[0-9{])")
MARK = 256  # bytes before the read position remembered to notice an in-place truncation


class Follower:
    """``poll()`` returns the complete lines written since the last call, in order."""

    def __init__(self, d: str | Path, *, from_start: bool = False, last: int = 10) -> None:
        self.dir = Path(d)
        if not self.dir.is_dir():
            raise SourceError(f"log directory {self.dir} does not exist")
        self.fd = -1
        self.ino: tuple[int, int] = (0, 0)
        self.pos = 0
        self.partial = b""
        self.mark = b""  # the last MARK bytes read, ending at self.pos
        self.last_line: bytes | None = None
        self.problems: list[Problem] = []
        self.rotations = 0
        self.from_start = from_start
        self.known: set[tuple[int, int]] = set()  # files there before we started
        for name in os.listdir(self.dir):
            try:
                st = os.stat(self.dir / name)
            except OSError:
                continue
            self.known.add((st.st_dev, st.st_ino))
        self._open_live(from_start, last)

    # --- opening ----------------------------------------------------------------------
    def _open_live(self, from_start: bool, last: int) -> None:
        path = self.dir / LIVE
        for _ in range(200):
            try:
                fd, _st = open_file(str(path))  # never blocks: a FIFO is refused, not opened
                break
            except FileNotFoundError:
                time.sleep(0.05)  # not created yet, or mid-rotation
            except NotRegular as e:
                raise SourceError(f"{path} is {e.kind}, not a log file: nothing to "
                                  "follow") from None
        else:
            raise SourceError(f"no {path} to follow (is the service writing here?)")
        st = os.fstat(fd)
        self.fd, self.ino = fd, (st.st_dev, st.st_ino)
        self.known.discard(self.ino)
        if from_start:
            self.pos = 0
            return
        size = st.st_size
        start = max(0, size - 256 * 1024)
        tail = os.pread(fd, size - start, start)
        cut = tail.rfind(b"\n") + 1  # a line still being written waits for its end
        # -n counts records: a record is its head line (a timestamp or a JSON object)
        # and the lines that continue it (a traceback, tab-led or the stdlib's own)
        starts = ([0] if start == 0 else []) + \
            [m.end() for m in _RECORD_START.finditer(tail[:cut]) if m.end() < cut]
        first = starts[-last] if last > 0 and len(starts) >= last else \
            (starts[0] if last > 0 and starts else cut)
        self.pos = start + first
        self.mark = tail[:first][-MARK:]
        before = tail[:first].rstrip(b"\n")
        if before:
            self.last_line = before[before.rfind(b"\n") + 1:]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # --- reading ------------------------------------------------------------------------
    def _read_fd(self) -> list[bytes]:
        out = []
        while True:
            data = os.pread(self.fd, READ, self.pos)
            if not data:
                break
            self.pos += len(data)
            out.append(data)
        if out:
            keep, n = [], 0
            for c in reversed(out):
                keep.append(c)
                n += len(c)
                if n >= MARK:
                    break
            else:
                keep.append(self.mark)
            self.mark = b"".join(reversed(keep))[-MARK:]
        return out

    # --- truncation in place (copytruncate, `: > app.log`) -------------------------------
    def _truncated(self) -> bool:
        """The followed file no longer holds what was read from it: it shrank below the
        read position, or was truncated and written past it again between two looks."""
        try:
            size = os.fstat(self.fd).st_size
        except OSError:
            return False
        if size < self.pos:
            return True
        if self.mark:
            try:
                return os.pread(self.fd, len(self.mark), self.pos - len(self.mark)) \
                    != self.mark
            except OSError:
                return False
        return False

    def _restart_truncated(self) -> list[bytes]:
        """After a truncation: the lines written between the last read and the truncation
        from the copy (copytruncate's ``app.log.1`` or similar), when one is found, then
        reading starts again at offset 0."""
        rest = self._copy_rest()
        self.problems.append(Problem(str(self.dir), f"{LIVE} was truncated; reading it "
                                     "from the start"))
        lines = self._lines([rest or b""], final=True)
        self.pos, self.mark = 0, b""
        return lines

    def _copy_rest(self) -> bytes | None:
        """What a copy of the followed file holds past the read position: the newest few
        other files of the directory whose bytes before that position are the ones read."""
        if not self.mark:
            return None
        cands = []
        for name in os.listdir(self.dir):
            if name == LIVE or not name.startswith(LIVE):
                continue
            try:
                st = os.stat(self.dir / name)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) != self.ino:
                cands.append((st.st_mtime, name))
        start = self.pos - len(self.mark)
        for _mt, name in sorted(cands, reverse=True)[:3]:
            try:
                if name.endswith(".gz"):
                    with gzip.open(self.dir / name, "rb") as g:
                        data = g.read()
                    if data[start:self.pos] == self.mark:
                        return data[self.pos:]
                    continue
                with open(self.dir / name, "rb") as f:
                    f.seek(start)
                    if f.read(len(self.mark)) == self.mark:
                        return f.read()
            except (OSError, EOFError, zlib.error):
                continue
        return None

    def _lines(self, chunks: list[bytes], final: bool = False) -> list[bytes]:
        data = self.partial + b"".join(chunks)
        if final:
            self.partial = b""
            lines = data.split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
        else:
            cut = data.rfind(b"\n") + 1
            self.partial = data[cut:]
            lines = data[:cut].split(b"\n")[:-1] if cut else []
        if lines:
            self.last_line = lines[-1]
        return lines

    def _rotated(self) -> bool:
        try:
            st = os.stat(self.dir / LIVE)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self.ino

    def poll(self) -> list[bytes]:
        lines = self._restart_truncated() if self._truncated() else []
        lines += self._lines(self._read_fd())
        if not self._rotated():
            return lines
        # the followed file is complete (the writer closed it before renaming it)
        lines += self._lines(self._read_fd(), final=True)
        try:
            snap = snapshot_dir(self.dir, 0, self.dir.name, self.problems)
        except SourceError as e:
            self.problems.append(Problem(str(self.dir), str(e)))
            return lines
        if not snap or snap[-1].role != "live":  # app.log not there yet: next poll
            for f in snap:
                os.close(f.fd)
            return lines
        successors = self._after_current(snap)
        live = snap[-1]
        for f in snap:
            if f is not live and f not in successors:
                os.close(f.fd)
        for f in successors:
            if f is live:
                break
            lines += self._whole(f)
            os.close(f.fd)
        self.close()
        self.rotations += 1
        self.fd, self.ino, self.pos, self.partial = live.fd, live.inode, 0, b""
        self.mark = b""
        return lines + self._lines(self._read_fd())

    def _after_current(self, files: list[LogFile]) -> list[LogFile]:
        """The files of the snapshot written after the followed one, oldest first."""
        for i, f in enumerate(files):
            if f.inode == self.ino:
                return files[i + 1:]
        if self.last_line is None and self.from_start:
            # nothing read yet: every file that appeared since we started is new to us
            return [f for f in files if f.inode not in self.known]
        if self.last_line is not None:
            want = self.last_line + b"\n"
            for i in range(len(files) - 1, -1, -1):
                f = files[i]
                if f.role == "live":
                    continue
                if self._ends_with(f, want):
                    return files[i + 1:]
        self.problems.append(Problem(str(self.dir), "lost track of the followed file "
                                     "across rotations (files removed?); continuing with "
                                     "app.log: records may be missing"))
        return files[-1:]

    def _ends_with(self, f: LogFile, want: bytes) -> bool:
        if not f.gz:
            size = os.fstat(f.fd).st_size
            return size >= len(want) and os.pread(f.fd, len(want), size - len(want)) == want
        idx = f.get_index()
        if idx is not None and idx.blocks:
            from ...logindex import read_block

            try:
                return read_block(f"/proc/self/fd/{f.fd}", idx.blocks[-1]).endswith(want)
            except OSError:
                pass
        tail = b""
        for chunk in iter_byte_chunks(f, [], ReadCounters(), use_index=False):
            tail = (tail + chunk)[-max(len(want), 1) * 2:]
        return tail.endswith(want)

    def _whole(self, f: LogFile) -> list[bytes]:
        data = b"".join(iter_byte_chunks(f, self.problems, ReadCounters(), use_index=False)) \
            if f.gz else self._plain(f)
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if lines:
            self.last_line = lines[-1]
        return lines

    @staticmethod
    def _plain(f: LogFile) -> bytes:
        out: list[bytes] = []
        pos = 0
        while True:
            b = os.pread(f.fd, READ, pos)
            if not b:
                return b"".join(out)
            out.append(b)
            pos += len(b)


class Grouper:
    """Lines to records: continuation lines (tab-led) join the record before them; a
    record is complete when the next one starts or the writer has been quiet."""

    def __init__(self) -> None:
        self.cur: list[str] = []

    def feed(self, lines: list[str]) -> Iterator[list[str]]:
        for ln in lines:
            # a line that does not start a record (a timestamp or a JSON object) continues
            # the one before: ttsops' tab-led traceback lines and the stdlib's own
            if self.cur and not is_head(ln):
                self.cur.append(ln)
                continue
            if self.cur:
                yield self.cur
            self.cur = [ln]

    def flush(self) -> Iterator[list[str]]:
        if self.cur:
            yield self.cur
            self.cur = []


def is_head(line: str) -> bool:
    """Can ``line`` start a record (as the scan judges it: a digit or "{" first)?"""
    c = line[:1]
    return c == "{" or c.isdigit()


def to_record(lines: list[str]) -> Record | None:
    rec = parse_line(lines[0].rstrip("\r\n"))
    if rec is None:
        return None
    if rec.ts[10:11] != " ":
        rec.ts = norm_ts(rec.ts)
    rec.traceback.extend(ln[1:] if ln.startswith("\t") else ln for ln in lines[1:])
    return rec


def run(d: str | Path, *, engine: Engine | None = None, where: list | None = None,
        event: str | None = None, level: str | None = None, from_start: bool = False,
        last: int = 10, as_json: bool = False, alerts_only: bool = False,
        duration: float | None = None, poll_s: float = 0.2, out: TextIO | None = None,
        err: TextIO | None = None) -> dict[str, int]:
    """Follow ``d`` until interrupted (SIGINT/SIGTERM) or ``duration`` seconds; returns
    counts (records, printed, alerts, rotations)."""
    import json
    import signal
    import sys

    from ...logline import render_json
    from ..reading.filters import matches, with_pseudo
    from .rules import Alert

    out = out or sys.stdout
    err = err or sys.stderr
    eng = engine
    if Path(d).is_dir() and not (Path(d) / LIVE).exists():
        err.write(f"ttsops logs tail: waiting for {Path(d) / LIVE}\n")
        err.flush()
    fol = Follower(d, from_start=from_start, last=last)
    grp = Grouper()
    stop: list[bool] = [False]
    counts = {"records": 0, "printed": 0, "alerts": 0, "rotations": 0}
    color = hasattr(out, "isatty") and out.isatty() and not as_json
    # to a terminal, control characters of log values (ESC sequences, NUL) are shown
    # escaped, not obeyed; a pipe or file gets the lines exactly as in the log
    shown = printable if color else (lambda x: x)

    def on_signal(signum: int, frame: object) -> None:
        stop[0] = True
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def show_alert(a: Alert) -> None:
        counts["alerts"] += 1
        if as_json:
            out.write(json.dumps({"alert": a.to_json()}, ensure_ascii=False) + "\n")
            return
        text = (f"ALERT [{a.severity}] {a.rule} at {a.ts}: {a.message} ({a.detail})"
                + (f" id={a.id}" if a.id else ""))
        if color:
            text = f"\033[1;31m{shown(text)}\033[0m"
        out.write(text + "\n")

    def handle(lines: list[str]) -> None:
        rec = to_record(lines)
        if rec is None:
            if not (alerts_only or where or event or level or as_json):
                out.write("\n".join(map(shown, lines)) + "\n")
            return
        counts["records"] += 1
        if eng is not None and eng.wants(lines):
            for a in eng.feed(rec):
                show_alert(a)
        if alerts_only:
            return
        if event is not None and rec.event != event:
            return
        if level is not None and rec.level != level:
            return
        if where and not matches(where, with_pseudo(rec.ts, rec.level, rec.event,
                                                    rec.logger, rec.fields)):
            return
        counts["printed"] += 1
        out.write((render_json(rec) if as_json else "\n".join(map(shown, lines)))
                  + "\n")

    # --for 0s: what is there now, then stop
    deadline = time.monotonic() + duration if duration is not None else None
    try:
        while True:
            lines = fol.poll()
            texts = [x.decode("utf-8", "replace").rstrip("\r") for x in lines]
            for rl in grp.feed(texts):
                handle(rl)
            finishing = stop[0] or (deadline is not None and time.monotonic() >= deadline)
            if not lines or finishing:
                for rl in grp.flush():
                    handle(rl)
            out.flush()
            for p in fol.problems:
                err.write(f"ttsops logs tail: warning: {p}\n")
            fol.problems.clear()
            if finishing:
                break
            if not lines:
                time.sleep(poll_s)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        fol.close()
    counts["rotations"] = fol.rotations
    return counts
