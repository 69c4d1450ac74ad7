"""Ship one file's text from an offset: read in runs of complete lines, made into rows
(``shiprows``), inserted in batches -- each batch one insert of rows of one day (one
partition: one part, landed whole or not at all), cut only between rows of different
end offsets, so that ``max(offset)`` of a file's rows is exactly what it shipped."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

from ..forensics.reading.gcpause import gc_paused
from . import native
from .client import FleetError, call, call_error, connect
from .schema import COLUMNS, LEDGER, LOCAL, NAMES, TABLE
from .shiprows import FileRows, Rows, date_of
from .url import ChUrl

_READ = 1 << 22


@dataclass
class Job:
    """One file to ship: where its text starts, its identity, the rows it has."""

    path: str
    identity: str
    file_ts: str
    start: int  # bytes of its text shipped before
    seq: int  # rows shipped before (the next row's seq)
    shard: tuple[str, int] | None = None  # a cluster: the shard its rows go to


@dataclass
class Done:
    rows: int = 0
    offset: int = 0
    problem: str | None = None
    moved: bool = False  # the path names another file now (a rotation renamed it away)


def head_identity(head: bytes) -> str:
    """A file's identity: the hash of its first line (``head``, with its newline)."""
    return hashlib.sha1(head).hexdigest()[:20]


def runs(path: Path, start: int, progress: Callable[[int], None] | None,
         done: Done, identity: str | None = None) -> Iterator[tuple[list[str], list[int]]]:
    """The file's text from ``start`` as runs of complete lines (decoded, line ends
    removed) with the offset just after each; a last line without its newline is still
    being written and is left for next time. A damaged gzip stream ends the runs (the
    problem in ``done``). When the file open at ``path`` is not the one of ``identity``
    (rotations rename files while a ship runs: ``app.log.2.gz`` may be another file by
    now) there are no runs and ``done.moved`` is set: its rows would go under another
    file's identity. Its rows are read from the file whose first line was checked."""
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        src: Any = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        if identity is not None:
            try:
                head = src.readline(1 << 16)
            except (EOFError, OSError, zlib.error):
                head = b""
            if head_identity(head) != identity:
                done.moved = True
                return
            raw.seek(0)
            src = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        pos = start
        if start:
            if gz:
                left = start
                while left > 0:
                    n = len(src.read(min(left, _READ)))
                    if n == 0:
                        return
                    left -= n
            else:
                raw.seek(start)
        rest = b""
        seen = raw.tell()
        while True:
            try:
                chunk = src.read(_READ)
            except (EOFError, OSError, zlib.error) as e:
                done.problem = f"damaged after {pos + len(rest)} bytes of text ({e})"
                return
            if progress is not None:
                now = raw.tell()
                progress(now - seen)
                seen = now
            if not chunk:
                return
            buf = rest + chunk
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                rest = buf
                continue
            block, rest = buf[:cut], buf[cut:]
            parts = block.split(b"\n")
            parts.pop()
            ends = list(accumulate((len(p) + 1 for p in parts), initial=pos))
            del ends[0]
            pos = ends[-1]
            text = block.decode("utf-8", "replace")
            lines = text.split("\n")
            lines.pop()
            if "\r" in text:
                lines = [x.rstrip("\r") for x in lines]
            yield lines, ends


class Sink:
    """Where the rows go: each file's rows straight into the local table of the shard
    ``Job.shard`` names (a cluster: the shard the ``Distributed`` table's key picks, so
    that no server forwards them), else into ``ttsops_logs`` of the URL's server; the
    ledger on the URL's server. Connections are opened once and kept."""

    def __init__(self, url: ChUrl, client: Any | None = None) -> None:
        self.url = url
        self.clients: dict[tuple[str, int] | None, Any] = {}
        if client is not None:
            self.clients[None] = client
        db = url.database
        cols = ", ".join(f"`{c}`" for c in NAMES)
        self.insert = {None: f"INSERT INTO `{db}`.`{TABLE}` ({cols}) VALUES",
                       "local": f"INSERT INTO `{db}`.`{LOCAL}` ({cols}) VALUES"}
        self.ledger = (f"INSERT INTO `{db}`.`{LEDGER}` (host, file, path, offset, records, "
                       "shipped_at) VALUES")

    def client(self, shard: tuple[str, int] | None) -> Any:
        c = self.clients.get(shard)
        if c is None:
            c = self.clients[shard] = (connect(self.url) if shard is None
                                       else connect(self.url, shard[0], shard[1]))
        return c

    def rows(self, shard: tuple[str, int] | None, n: int, cols: list[native.Column]) -> None:
        c = self.client(shard)
        query = self.insert["local" if shard else None]
        try:
            native.insert(c, query, n, cols)
        except native.Mismatch as e:
            raise FleetError(f"ClickHouse {c.ttsops_addr}: {e}") from None
        except Exception as e:  # the driver's errors, as call() words them
            call_error(c, e)

    def record(self, row: tuple[Any, ...]) -> None:
        call(self.client(None), self.ledger, [row])

    def close(self) -> None:
        for c in self.clients.values():
            c.disconnect()
        self.clients = {}


def _cut(r: Rows, batch: int) -> int:
    """How many rows of ``r`` the next insert takes: up to ``batch``, of the first row's
    day, not between rows of one end offset."""
    import numpy as np

    n = len(r)
    lim = min(batch, n)
    f = r.frame()
    ts = f.get_column("ts")
    day = str(ts[0])[:10]
    if str(ts[lim - 1])[:10] != day or (ts.head(lim).str.slice(0, 10) != day).any():
        lim = int(np.argmax((ts.head(lim).str.slice(0, 10) != day).to_numpy()))
    end = f.get_column("end")
    k = lim
    if k < n and end[k] == end[k - 1]:
        e = end.to_numpy()
        while 0 < k < n and e[k] == e[k - 1]:
            k -= 1
        if k == 0:  # one offset over the limit (a record and the lines held after it)
            k = lim
            while k < n and e[k] == e[k - 1]:
                k += 1
    return k


class Inserter:
    """Inserts rows in batches: the rows of one day, of one file or of several files
    bound for the same shard (many small files: one insert, not one each), each batch
    one insert (one part: landed whole or not at all) and one ledger row per file in it.
    A file's ``Done`` counts its rows once they are inserted."""

    def __init__(self, sink: Sink, host: str, batch: int) -> None:
        self.sink = sink
        self.host = host
        self.batch = batch
        self.seq: dict[str, int] = {}  # file identity -> the next row's seq
        self.dates: dict[str, dt.date] = {}
        # shard -> (day, rows, [(job, done, rows, end, first seq)])
        self.pending: dict[Any, tuple[dt.date, int, list[Any],
                                      list[tuple[Job, Done, int, int, int]]]] = {}

    def add(self, j: Job, r: Rows, done: Done) -> None:
        n = len(r)
        if not n:
            return
        day = date_of(r.ts_at(0), self.dates)
        got = self.pending.get(j.shard)
        if got is not None and (got[0] != day or got[1] + n > self.batch):
            self.flush(j.shard)
            got = None
        seq = self.seq.get(j.identity, j.seq)
        self.seq[j.identity] = seq + n
        f = r.frame()
        last = int(f.get_column("end")[n - 1])
        if got is None:
            got = (day, 0, [], [])
        self.pending[j.shard] = (day, got[1] + n, [*got[2], f], [*got[3], (j, done, n, last, seq)])
        if got[1] + n >= self.batch:
            self.flush(j.shard)

    def flush(self, shard: Any = ...) -> None:
        """Insert the pending rows (of ``shard``; by default of every shard)."""
        for sh in (list(self.pending) if shard is ... else [shard]):
            got = self.pending.pop(sh, None)
            if got is None:
                continue
            day, n, frames, parts = got
            self.sink.rows(sh, n, encode(day, self.host, frames, parts))
            now = dt.datetime.now().replace(microsecond=0)
            per: dict[str, tuple[Job, Done, int, int]] = {}
            for j, done, k, end, _seq in parts:
                had = per.get(j.identity)
                per[j.identity] = (j, done, k + (had[2] if had else 0), end)
            for j, done, k, end in per.values():
                self.sink.record((self.host, j.identity, j.path, end, k, now))
                done.rows += k
                done.offset = end


def encode(day: dt.date, host: str, frames: list[Any],
           parts: list[tuple[Job, Done, int, int, int]]) -> list[native.Column]:
    """The insert's columns (``schema.COLUMNS``), encoded: ``frames`` of rows, each of
    the file of the same item of ``parts`` (its job, its rows, its first seq)."""
    import numpy as np
    import polars as pl

    f = frames[0] if len(frames) == 1 else pl.concat(frames, rechunk=True)
    n = f.height
    per_file = {
        "host": b"".join(native.same_string(host, k) for _j, _d, k, _e, _s in parts),
        "file": b"".join(native.same_string(j.identity, k) for j, _d, k, _e, _s in parts),
        "path": b"".join(native.same_string(j.path, k) for j, _d, k, _e, _s in parts),
        "file_ts": b"".join(native.same_string(j.file_ts, k) for j, _d, k, _e, _s in parts),
        "seq": native.uint64s(np.concatenate(
            [np.arange(s, s + k, dtype=np.uint64) for _j, _d, k, _e, s in parts])),
    }
    out: list[native.Column] = []
    for name, typ in COLUMNS:
        if name == "date":
            data = native.dates(day, n)
        elif name in per_file:
            data = per_file[name]
        elif name == "offset":
            data = native.uint64s(f.get_column("end").to_numpy())
        else:
            col = f.get_column(name if name in _OWN else
                               f"s_{name}" if typ == "String" else f"n_{name}")
            data = (native.strings(col) if typ == "String"
                    else native.string_arrays(col) if typ == "Array(String)"
                    else native.nullable_floats(col))
        out.append((name, typ, data))
    return out


_OWN = ("ts", "logger", "level", "event", "keys", "vals", "traceback", "text")


def ship_file(put: Inserter, job: Job, progress: Callable[[int], None] | None = None
              ) -> Done:
    """Ship ``job``'s file from its offset through ``put``; what was shipped (and a
    problem, if any) -- its rows counted as ``put`` inserts them: the last ones at its
    next ``flush``."""
    with gc_paused():  # millions of small lists
        return _ship_file(put, job, progress)


def _ship_file(put: Inserter, job: Job, progress: Callable[[int], None] | None) -> Done:
    done = Done(offset=job.start)
    batch = put.batch
    fr = FileRows(job.file_ts)
    it = runs(Path(job.path), job.start, progress, done, job.identity)
    while True:
        got = next(it, None)
        final = got is None
        if got is not None:
            fr.add(got[0], got[1], False)
        else:
            fr.add([], [], True)
        while len(fr.rows) and (final or len(fr.rows) >= batch
                                or fr.rows.ts_at(0)[:10] != fr.rows.ts_at(-1)[:10]):
            k = _cut(fr.rows, batch)
            if not final and k == len(fr.rows):
                break  # the rows after them may still join the last offset's rows
            put.add(job, fr.take(k), done)
        if final:
            return done
