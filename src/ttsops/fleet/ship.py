"""``ttsops logs ship``: each log file's records into ClickHouse, once.

A file is known by its identity, not its name (``app.log`` becomes ``app.log.1.gz``
when it rotates): a hash of its first line. Every row carries the byte offset (in the
file's text) just after its record, and the rows of one file go to one shard in batches
that are each one insert of one partition (a day) -- so what a file has shipped is
``max(offset)`` of its rows, exact after an interrupted run: a re-run ships nothing
twice, a file that grew ships only its new records, an interrupted ship resumes. The
ledger table records each batch (host, identity, path, offset, records) for people.

Lines are grouped into records exactly as every reader does (``logformat``: tab-led and
foreign traceback lines belong to the record before them); a line that is no record is
shipped as a row with ``level = ''`` so that the readers of ``--source`` see it too.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import os
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..logformat import FOREIGN_TB, parse, to_number, unescape_tb
from .client import FleetError, call, connect
from .schema import LEDGER, NAMES, NUMBER_FIELDS, STRING_FIELDS, TABLE, ensure
from .url import ChUrl

BATCH = 20_000
_NO_STRINGS = ("",) * len(STRING_FIELDS)
_NO_NUMBERS = (None,) * len(NUMBER_FIELDS)
_READ = 1 << 22
_EPOCH = dt.date(1970, 1, 1)


@dataclass
class FileResult:
    path: str
    identity: str
    rows: int = 0
    already: int = 0  # bytes of its text shipped before this run
    offset: int = 0  # bytes of its text shipped after it
    status: str = "shipped"  # shipped | up to date | empty | damaged | unreadable
    detail: str = ""


@dataclass
class ShipResult:
    files: list[FileResult] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def log_files(args: list[str]) -> list[Path]:
    """The log files of DIRs (``app.log``, rotated and dateext names, oldest first) and
    the files named directly; ``FleetError`` for what does not exist."""
    from ..forensics.reading.sources import dir_names

    out: list[Path] = []
    for a in args:
        p = Path(a)
        if p.is_dir():
            out.extend(p / n for n, _role in dir_names(str(p)))
        elif p.is_file():
            out.append(p)
        else:
            raise FleetError(f"{a}: no such directory or file")
    return out


def _is_gz(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def identity(path: Path) -> tuple[str, str] | None:
    """The file's identity (the hash of its first line; None: no complete line yet) and
    its first record's time (the order of the files: the readers order by it too)."""
    from ..logformat.timestamps import norm_ts

    opener: Callable[..., Any] = gzip.open if _is_gz(path) else open
    head_ts = ""
    with opener(path, "rb") as f:
        head = f.readline(1 << 16)
        if not head.endswith(b"\n") and len(head) < 1 << 16:
            return None
        line = head
        for _ in range(10_000):
            rec = parse(line.decode("utf-8", "replace"))
            if rec is not None:
                head_ts = rec.ts if rec.ts[10:11] == " " else norm_ts(rec.ts)
                break
            line = f.readline(1 << 20)
            if not line.endswith(b"\n"):
                break
    return hashlib.sha1(head).hexdigest()[:20], head_ts


class _Text:
    """A file's text from ``start``: complete lines with their end offsets."""

    def __init__(self, path: Path, start: int, progress: Callable[[int], None] | None):
        self.path = path
        self.start = start
        self.progress = progress
        self.problem: str | None = None

    def lines(self) -> Iterator[tuple[bytes, int]]:
        raw = open(self.path, "rb")  # noqa: SIM115 -- closed below (a generator)
        try:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            src: Any = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
            pos = 0
            if self.start:
                if gz:
                    left = self.start
                    while left > 0:
                        n = len(src.read(min(left, _READ)))
                        if n == 0:
                            return
                        left -= n
                else:
                    raw.seek(self.start)
                pos = self.start
            rest = b""
            seen = raw.tell()
            while True:
                try:
                    chunk = src.read(_READ)
                except (EOFError, OSError, zlib.error) as e:
                    self.problem = f"damaged after {pos + len(rest)} bytes of text ({e})"
                    break
                if self.progress is not None:
                    now = raw.tell()
                    self.progress(now - seen)
                    seen = now
                if not chunk:
                    break
                buf = rest + chunk
                parts = buf.split(b"\n")
                rest = parts.pop()
                for ln in parts:
                    pos += len(ln) + 1
                    yield ln, pos
            # a last line without its newline is still being written: left for next time
        finally:
            raw.close()


def _date(ts: str, cache: dict[str, dt.date]) -> dt.date:
    d = ts[:10]
    got = cache.get(d)
    if got is None:
        try:
            got = dt.date.fromisoformat(d)
        except ValueError:
            got = _EPOCH
        cache[d] = got
    return got


class _Rows:
    """The rows of one batch; ``cols()`` for the columnar insert."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.n = 0
        self.date: dt.date | None = None

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        self.n += 1

    def cols(self) -> list[list[Any]]:
        return [list(c) for c in zip(*self.rows, strict=True)]


def _records(text: _Text) -> Iterator[tuple[Any, list[str], int]]:
    """(Record or None for a line that is no record, its text lines, end offset);
    grouped as ``logformat.iter_records`` groups them, lines parsed by the readers' fast
    path (``fastparse.parse_line``: the same records as ``logformat.parse``).

    A line that is no record does not end the open record (its traceback lines may
    still follow, as the readers see it): it is given out after that record, with the
    record's end offset, so the offsets never go down and the texts, read again in
    their order, give the same records."""
    from ..logformat.fastparse import parse_line as parse

    cur = None
    cur_lines: list[str] = []
    cur_end = 0
    held: list[str] = []  # lines that are no record, met while a record is open
    for b, end in text.lines():
        line = b.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith("\t"):
            if cur is not None:
                cur.traceback.append(unescape_tb(line[1:]))
                cur_lines.append(line)
                cur_end = end
            else:
                yield None, [line], end
            continue
        rec = parse(line)
        if rec is None:
            if cur is not None and line and FOREIGN_TB.match(line):
                cur.traceback.append(line)
                cur_lines.append(line)
                cur_end = end
            elif line:
                if cur is not None:
                    held.append(line)
                    cur_end = end
                else:
                    yield None, [line], end
            continue
        if cur is not None:
            yield cur, cur_lines, cur_end
            for h in held:
                yield None, [h], cur_end
            held = []
        cur, cur_lines, cur_end = rec, [line], end
    if cur is not None:
        yield cur, cur_lines, cur_end
        for h in held:
            yield None, [h], cur_end


class _Batch:
    """The rows of one insert: one day (one partition: one part on each shard it
    reaches, so each file's rows in it land whole or not at all), any files."""

    def __init__(self) -> None:
        self.rows = _Rows()
        self.ends: dict[int, tuple[FileResult, int, int]] = {}  # id(fr) -> (fr, end, n)
        self.last: tuple[int, int] = (0, -1)  # (file, end offset) of the last row

    def add(self, row: tuple[Any, ...], fr: FileResult, end: int) -> None:
        self.last = (id(fr), end)
        self.rows.date = row[0]
        self.rows.add(row)
        got = self.ends.get(id(fr))
        self.ends[id(fr)] = (fr, end, (got[2] if got else 0) + 1)

    def flush(self, client: Any, insert: str, ledger: str, host: str) -> None:
        if not self.rows.n:
            return
        call(client, insert, self.rows.cols(), columnar=True, types_check=False)
        now = dt.datetime.now().replace(microsecond=0)
        call(client, ledger, [(host, fr.identity, fr.path, end, n, now)
                              for fr, end, n in self.ends.values()])
        for fr, end, n in self.ends.values():
            fr.rows += n
            fr.offset = end
        self.rows = _Rows()
        self.ends = {}


def ship(url: ChUrl, args: list[str], host: str | None = None,
         progress: Callable[[int], None] | None = None,
         batch: int = BATCH) -> ShipResult:
    """Ship the log files of ``args`` (directories or files) to ``url``."""
    from ..logformat.timestamps import norm_ts

    paths = log_files(args)
    host = host or socket.gethostname()
    client = connect(url)
    ensure(client, url)
    db = url.database
    done = {f: (int(o), int(n)) for f, o, n in call(
        client, f"SELECT file, max(offset), count() FROM `{db}`.`{TABLE}` WHERE host = "
                "%(h)s GROUP BY file", {"h": host})}
    insert = f"INSERT INTO `{db}`.`{TABLE}` ({', '.join(f'`{c}`' for c in NAMES)}) VALUES"
    ledger = f"INSERT INTO `{db}`.`{LEDGER}` (host, file, path, offset, records, " \
             "shipped_at) VALUES"
    out = ShipResult()
    t0 = time.perf_counter()
    dates: dict[str, dt.date] = {}
    seen: set[str] = set()
    b = _Batch()
    texts: list[tuple[FileResult, _Text]] = []
    for path in paths:
        try:
            got = identity(path)
        except (OSError, EOFError, zlib.error) as e:
            out.files.append(FileResult(str(path), "", status="unreadable", detail=str(e)))
            continue
        if got is None:
            out.files.append(FileResult(str(path), "", status="empty"))
            continue
        ident, file_ts = got
        if ident in seen:  # a byte-identical start: the same file twice (a copy)
            out.files.append(FileResult(str(path), ident, status="duplicate"))
            continue
        seen.add(ident)
        start, seq = done.get(ident, (0, 0))
        fr = FileResult(str(path), ident, already=start, offset=start)
        out.files.append(fr)
        text = _Text(path, start, progress)
        texts.append((fr, text))
        last_ts = file_ts
        spath = str(path)
        for rec, lines, end in _records(text):
            if rec is not None:
                ts = rec.ts if rec.ts[10:11] == " " else norm_ts(rec.ts)
                last_ts = ts
                f = rec.fields
                row = (_date(ts, dates), ts, host, ident, spath, file_ts, seq, end,
                       rec.logger, rec.level, rec.event,
                       *[f.get(k, "") for k in STRING_FIELDS],
                       *[to_number(f.get(k)) for k in NUMBER_FIELDS],
                       list(f), list(f.values()), rec.traceback,
                       lines[0] if len(lines) == 1 else "\n".join(lines))
            else:  # a line that is no record: dated like the record before it
                row = (_date(last_ts, dates), last_ts, host, ident, spath, file_ts, seq,
                       end, "", "", "", *_NO_STRINGS, *_NO_NUMBERS, [], [], [], lines[0])
            # a batch ends between rows of different offsets only (rows that share one
            # -- a record and the lines held after it -- are shipped together)
            if b.rows.n and (b.rows.n >= batch or row[0] != b.rows.date) \
                    and (id(fr), end) != b.last:
                b.flush(client, insert, ledger, host)
            b.add(row, fr, end)
            seq += 1
    b.flush(client, insert, ledger, host)
    for fr, text in texts:
        if text.problem:
            fr.status, fr.detail = "damaged", text.problem
        elif fr.rows == 0:
            fr.status = "up to date"
        out.rows += fr.rows
    out.seconds = time.perf_counter() - t0
    client.disconnect()
    return out


def total_bytes(args: list[str]) -> int:
    try:
        return sum(os.path.getsize(p) for p in log_files(args))
    except (OSError, FleetError):
        return 0
