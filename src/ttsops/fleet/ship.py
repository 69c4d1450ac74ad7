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

import gzip
import os
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..logformat import parse
from .client import FleetError, call, connect
from .schema import TABLE, ensure, settle, shards
from .shipfile import Done, Inserter, Job, Sink, head_identity, ship_file
from .url import ChUrl

BATCH = 100_000
# less text than this is shipped by one process (a pool costs more than it saves)
PARALLEL_BYTES = 8 << 20


@dataclass
class FileResult:
    path: str
    identity: str
    rows: int = 0
    already: int = 0  # bytes of its text shipped before this run
    offset: int = 0  # bytes of its text shipped after it
    status: str = "shipped"  # shipped | up to date | empty | damaged | unreadable | moved
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
    return head_identity(head), head_ts


def _plan(paths: list[Path], done: dict[str, tuple[int, int]], out: ShipResult
          ) -> list[tuple[FileResult, Job]]:
    """Each file's identity and where its shipping starts; the files that cannot be
    shipped (unreadable, empty, a copy of another) go into ``out`` as they are."""
    seen: set[str] = set()
    jobs: list[tuple[FileResult, Job]] = []
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
        jobs.append((fr, Job(str(path), ident, file_ts, start, seq)))
    return jobs


def ship(url: ChUrl, args: list[str], host: str | None = None,
         progress: Callable[[int], None] | None = None,
         batch: int = BATCH, workers: int | None = None) -> ShipResult:
    """Ship the log files of ``args`` (directories or files) to ``url``; the files are
    read and inserted by ``workers`` processes (default: one per core, at most 4, one
    for a small amount of text)."""
    paths = log_files(args)
    host = host or socket.gethostname()
    client = connect(url)
    ensure(client, url)
    db = url.database
    _settle(client, url)
    done = {f: (int(o), int(n)) for f, o, n in call(
        client, f"SELECT file, max(offset), count() FROM `{db}`.`{TABLE}` WHERE host = "
                "%(h)s GROUP BY file", {"h": host})}
    out = ShipResult()
    t0 = time.perf_counter()
    jobs = _plan(paths, done, out)
    if url.cluster:
        _place(client, url, host, [j for _fr, j in jobs])
    todo = [(fr, j) for fr, j in jobs if _size(j.path) > 0]
    big = sum(_size(j.path) for _fr, j in todo)
    n = workers if workers is not None else min(os.cpu_count() or 1, 4, len(todo))
    if n > 1 and len(todo) > 1 and (workers is not None or big >= PARALLEL_BYTES):
        client.disconnect()
        from .shippool import run_pool

        results = run_pool(url, host, [j for _fr, j in todo], batch, n, progress)
        for (fr, _j), d in zip(todo, results, strict=True):
            _finish(fr, d)
    else:
        sink = Sink(url, client)
        try:
            put = Inserter(sink, host, batch)
            dones = [ship_file(put, j, progress) for _fr, j in todo]
            put.flush()
            for (fr, _j), d in zip(todo, dones, strict=True):
                _finish(fr, d)
        finally:
            sink.close()
    for fr, _j in jobs:
        if fr.status == "shipped" and fr.rows == 0:
            fr.status = "up to date"
        out.rows += fr.rows
    if out.rows:  # (the driver's client connects again when it was closed)
        try:
            settle(client, url, out.rows)
        finally:
            client.disconnect()
    out.seconds = time.perf_counter() - t0
    return out


def _settle(client: Any, url: ChUrl, wait_s: float = 60.0) -> None:
    """Wait while an insert into the logs is still running on a server: the last insert
    of a ship that was killed after sending its rows is committed by the server after
    the kill, and what this ship resumes from must count it (else those rows are sent
    twice)."""
    from .client import connect

    servers = [(None, None)] + (list(shards(client, url)) if url.cluster else [])
    like = f"INSERT INTO `{url.database}`.`{TABLE}%"
    deadline = time.monotonic() + wait_s
    for host, port in servers:
        c = client if host is None else connect(url, host, port)
        try:
            while time.monotonic() < deadline and call(
                    c, "SELECT count() FROM system.processes WHERE query LIKE %(q)s",
                    {"q": like})[0][0]:
                time.sleep(0.2)
        finally:
            if c is not client:
                c.disconnect()


def _place(client: Any, url: ChUrl, host: str, jobs: list[Job]) -> None:
    """Each file's shard: the one the ``Distributed`` table's key (``cityHash64(host,
    file)``, shards of weight 1) picks -- asked of the server, which hashes as it does."""
    where = shards(client, url)
    if not jobs:
        return
    got = dict(call(client, "SELECT f, modulo(cityHash64(%(h)s, f), %(n)s) FROM (SELECT "
                            "arrayJoin(%(fs)s) AS f)",
                    {"h": host, "n": len(where), "fs": [j.identity for j in jobs]}))
    for j in jobs:
        j.shard = where[int(got[j.identity])]


def _finish(fr: FileResult, d: Done) -> None:
    fr.rows, fr.offset = d.rows, d.offset
    if d.moved:
        fr.status = "moved"
        fr.detail = "renamed while this ship ran (a rotation): shipped by the next run"
    elif d.problem:
        fr.status, fr.detail = "damaged", d.problem


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def total_bytes(args: list[str]) -> int:
    try:
        return sum(os.path.getsize(p) for p in log_files(args))
    except (OSError, FleetError):
        return 0
