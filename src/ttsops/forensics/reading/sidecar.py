"""Sidecars: the parsed records of a rotated log file, kept once in a columnar file.

A rotated file never changes, yet every whole-data command (``diagnose``, ``report``,
``check`` ...) decompresses and parses all of it again. The first read of a rotated file
that parses it whole writes what it read -- the records (time, logger, level, event,
fields, traceback, dialect bits) and the read's counts (lines, records, continuation
lines, skipped lines and their first examples) -- to a Parquet file (zstd); later reads
take the records from there instead of decompressing and parsing.

Identity: a sidecar belongs to one file version, named by a hash of the file's device,
inode, size and mtime (nanoseconds) and its first and last 4 KiB (for gzip: the header
and the trailer's CRC-32 and length). A renamed file (rotation) keeps its sidecar; a
replaced, truncated, appended or rewritten one gets none. The hash is stored inside the
sidecar too and checked with the format version and the row count; a sidecar that fails
any check, or cannot be read at all, is ignored and the file is parsed as before.

Where: looked up beside the logs (``<log dir>/.ttsops/sidecar/``, written by ``ttsops
logs index``) and in the user's cache (``$XDG_CACHE_HOME/ttsops/sidecar``, default
``~/.cache/ttsops/sidecar``, written on first read). Writes are atomic (a temporary
file renamed over the name) and never required: a read-only directory, a full disk or
anything else only means the next read parses again. ``TTSOPS_LOGS_SIDECAR``: ``read``
(the default: use, never write on a read -- the first read of new files, the on-call
engineer's, is never slowed by writing them), ``auto`` (use, and write on the first whole
read: worker processes write the missing ones first, ``firstread``; later reads take
about half the time), ``off``.

Exactness: a sidecar is used only where the line path would read the whole file and
parse every line of it (no literal pre-filter, no id filter, the query window holding
every line's time), so the records are the ones the line path gives, in the same order;
a window is applied to them as the line path applies it. Agreement tests hold every
whole-data command to the line path's answer.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...logformat import Record
from ...logformat.fastparse import iter_records
from ...logformat.timestamps import norm_ts
from ._sidecar_store import (  # noqa: F401 -- the store's public names, importable from here
    HOT,
    MAX_AGE_S,
    RECORD_COLUMNS,
    SUBDIR,
    UNITS,
    VERSION,
    Built,
    Loaded,
    cache_dir,
    exists,
    find_checked,
    frame_of,
    identity,
    load,
    places_of,
    read_frame,
    records_of,
    scan_checked,
    write,
)
from .gcpause import gc_paused
from .reader import ReadCounters

if TYPE_CHECKING:
    from ...logformat import ReadStats
    from .scan import Scan
    from .sources import LogFile

    # (file, its sidecar's path, key) -> (what stands for its frame, read counts, lo, hi)
    Instead = Callable[[LogFile, Path, str], tuple[Any, ReadStats, str, str] | None]


def mode() -> str:
    from ...knobs import value

    return str(value("logs_sidecar"))


def eligible(f: LogFile) -> bool:
    """Files that never change once written: rotated ones (gzip, or the uncompressed
    ``app.log.1`` of logrotate); an explicitly named gzip file. Never the live file or
    standard input."""
    if f.fd < 0:
        return False
    return (f.role == "rotated") or (f.role == "file" and f.gz)


def covered(scan: Scan, small: int = 4 << 20) -> bool:
    """Would ``frames`` take (nearly) everything from sidecars: each file that can have
    one has a valid one, and the others (the live file) hold under ``small`` bytes? On
    a first whole read (``auto``) the missing ones are written first, on every core
    (``prebuild``). Not where no file has one: small logs without any are read record
    by record (a frame made of each file's records first cost 2-4x the CPU)."""
    if not applies(scan):
        return False
    prebuild(scan)  # a first whole read (``auto``): the missing sidecars, on every core
    rest = some = 0
    for f in scan.snap.files:
        key = identity(f) if eligible(f) else None
        if key is not None and exists(f, key):
            some += 1
        else:
            rest += f.size
    return some > 0 and rest < small


def needles_exact(scan: Scan) -> bool:
    """Does every sidecar of the scan's files hold each record's text (``raw``), so that
    a frame filtered on it holds the records the literal pre-filter selects?"""
    try:
        import polars as pl

        for f in scan.snap.files:
            key = identity(f) if eligible(f) else None
            if key is None:
                continue
            for d in places_of(f):
                p = d / f"{key}.parquet"
                if p.is_file():
                    meta = pl.read_parquet_metadata(p)
                    if meta.get("ttsops_sidecar") == VERSION and meta.get("key") == key \
                            and not json.loads(meta["info"]).get("needles_exact"):
                        return False
        return True
    except Exception:
        return False


def frames(scan: Scan, columns: list[str], where: Any = None, lazy: tuple[str, ...] = (),
           instead: Instead | None = None) -> Iterator[tuple[LogFile, Any]]:
    """Every record of the scan's window, a frame per file (``columns`` of the sidecar
    schema: ts, logger, level, event, fields as JSON, tb, dialect), stream by stream, in
    order: from the file's sidecar where it has a valid one that the window does not
    cut, else read by the line path (``stream_hits``' rule) and made a frame. The reads
    are counted in ``scan.stats`` as ``hits`` counts them. ``where``: a Polars
    expression over ``columns`` that keeps only the records it holds for. The ``lazy``
    columns are left out of the frames read from sidecars (``frame_rows`` reads them
    where wanted). ``instead(f, p, key)``: for a file with a sidecar at ``p``, what to
    yield in place of its frame with the file's read counts (e.g. a table made from the
    sidecar before, ``companion``), or None to read the frame."""
    for stream in scan.streams():
        bar = None
        if scan.progress is None:  # as stream_hits
            bar = scan.new_bar(sum(f.size for f in scan.snap.stream_files(stream)))
            scan.progress = bar
        try:
            yield from _stream_frames(scan, stream, columns, where, lazy, instead)
        finally:
            if bar is not None:
                scan.progress = None
                if hasattr(bar, "close"):
                    bar.close()


def _stream_frames(scan: Scan, stream: int, columns: list[str], where: Any = None,
                   lazy: tuple[str, ...] = (), instead: Instead | None = None,
                   ) -> Iterator[tuple[LogFile, Any]]:
    from .match import common_prefix

    q = scan.query
    since, until = q.since, q.until
    use = applies(scan)
    build = mode() == "auto" and since is None and until is None
    files = scan.snap.stream_files(stream)
    pending: list[LogFile] = []
    keys: dict[str, str] = {}
    if build and use:
        prebuild(scan, files)

    def flush() -> Iterator[tuple[LogFile, Any]]:
        cur: LogFile | None = None
        recs: list[Record] = []
        # the frames a sidecar was written from (``build``: every record of the file),
        # whose columns are those ``frame_of`` would make again
        made: dict[str, Any] = {}
        for rec, f in _read_files(scan, pending, keys if build else {}, scan.progress,
                                  common_prefix(since, until),
                                  lambda g, df: made.__setitem__(str(g.path), df)):
            if f is not cur:
                if cur is not None:
                    yield cur, kept(frame(cur, recs, made))
                cur, recs = f, []
            recs.append(rec)
        if cur is not None:
            yield cur, kept(frame(cur, recs, made))

    def frame(f: LogFile, recs: list[Record], made: dict[str, Any]) -> Any:
        df = made.pop(str(f.path), None)
        if df is None or df.height != len(recs):
            return frame_of(recs, columns)
        import polars as pl

        # (records read by the line path were selected by its pre-filter already)
        return df.select(pl.lit(None, pl.Utf8).alias(c) if c == "raw" else c
                         for c in columns)

    def kept(df: Any) -> Any:
        return df if where is None else df.filter(where)

    for f in files:
        key = identity(f) if use and eligible(f) else None
        got = None
        if key is not None:
            for d in places_of(f):
                p = d / f"{key}.parquet"
                if p.is_file():
                    got = instead(f, p, key) if instead is not None else None
                    if got is None:
                        got = read_frame(p, key, [c for c in columns if c not in lazy],
                                         since, until, where)
                    if got is not None:
                        break
        if got is not None and ((since is not None and got[2] < since)
                                or (until is not None and got[3] >= until)):
            got = None  # the window cuts the file: the line path decides line by line
        if got is None:
            if key and q.needles is None:  # (a pre-filtered read is no whole file's)
                keys[str(f.path)] = key
            pending.append(f)
            continue
        if pending:
            yield from flush()
            pending = []
        if q.use_index:
            f.get_index()  # a damaged index is still said, as the line path says it
        scan.add_read(f, got[1], ReadCounters(files=1))
        if scan.progress is not None:
            scan.progress(f.size)
        yield f, got[0]
    if pending:
        yield from flush()


class Gone(Exception):
    """A sidecar read a moment ago cannot be read again (``frame_rows``)."""


def frame_rows(scan: Scan, f: LogFile, df: Any, rows: list[int], columns: list[str]) -> Any:
    """Rows ``rows`` (positions in ``df``, ``f``'s frame from ``frames``; in order) with
    ``columns``: those the frame lacks (``lazy``) read from the file's sidecar, for the
    same window; ``Gone`` when it cannot be read."""
    import polars as pl

    rows = sorted(rows)
    sub = df[rows] if rows else df.clear()
    miss = [c for c in columns if c not in df.columns]
    if not miss:
        return sub.select(columns)
    key = identity(f) if eligible(f) else None
    for d in places_of(f) if key is not None else []:
        p = d / f"{key}.parquet"
        try:
            meta = pl.read_parquet_metadata(p)
        except Exception:
            continue
        if meta.get("ttsops_sidecar") != VERSION or meta.get("key") != key:
            continue
        q = scan.query
        lf = pl.scan_parquet(p)
        if q.since is not None:
            lf = lf.filter(pl.col("ts") >= q.since)
        if q.until is not None:
            lf = lf.filter(pl.col("ts") < q.until)
        more = (lf.with_row_index("_row").filter(pl.col("_row").is_in(rows))
                .select(miss).collect())
        if more.height != len(rows):
            break
        return sub.hstack(more).select(columns)
    raise Gone(str(f.path))


# --- the scan's side --------------------------------------------------------------------

def applies(scan: Scan) -> bool:
    """Can this scan take records from sidecars (it reads files whole, parsing every
    line)?"""
    q = scan.query
    if mode() == "off" or q.ids is not None or scan.exclude:
        return False
    # a literal pre-filter: for the scans that ask (``scan.sidecar_needles``: the alert
    # rules), served when the sidecar holds each record's text
    return q.needles is None or (getattr(scan, "sidecar_needles", False)
                                 and not q.require and q.count_event is None)


def stream_hits(scan: Scan, stream: int) -> Iterator[tuple[Record, LogFile]]:
    """``Scan._stream_hits`` with sidecars: the records of each file that has a valid
    one come from it; the other files are read as before (several at once), and each
    that was read whole gets its sidecar written (``auto``)."""
    files = scan.snap.stream_files(stream)
    progress = scan.progress
    bar = None
    if progress is None:  # as Scan.batches
        bar = scan.new_bar(sum(f.size for f in files))
        progress = bar
    try:
        yield from _stream_hits(scan, files, progress)
    finally:
        if bar is not None and hasattr(bar, "close"):
            bar.close()


def _stream_hits(scan: Scan, files: list[LogFile], progress: Callable[[int], None] | None,
                 ) -> Iterator[tuple[Record, LogFile]]:
    from .match import common_prefix

    q = scan.query
    since, until = q.since, q.until
    build = mode() == "auto" and since is None and until is None
    needles = q.needles
    pending: list[LogFile] = []
    keys: dict[str, str] = {}
    if build:
        prebuild(scan, files)
    for f in files:
        key = identity(f) if eligible(f) else None
        got = load(f, key, needles, not q.tracebacks) if key else None
        # a pre-filtered read cannot write a sidecar: read this file whole once
        if got is None and key and needles is not None and build and \
                not exists(f, key) and \
                build_for(f, places_of(f)[1:], scan.of_file(f)) is not None:
            got = load(f, key, needles, not q.tracebacks)
        if got is not None and ((since is not None and got.lo < since)
                                or (until is not None and got.hi >= until)):
            got = None  # the window cuts the file: the line path decides line by line
        if got is None:
            if key and needles is None:
                keys[str(f.path)] = key
            pending.append(f)
            continue
        if pending:
            yield from _read_files(scan, pending, keys if build else {}, progress,
                                   common_prefix(since, until))
            pending = []
        if q.use_index:
            f.get_index()  # a damaged index is still said, as the line path says it
        scan.add_read(f, got.stats, ReadCounters(files=1))
        if progress is not None:
            progress(f.size)
        for rec in got.records:
            if (since is not None and rec.ts < since) or (until is not None and rec.ts >= until):
                continue
            yield rec, f
    if pending:
        yield from _read_files(scan, pending, keys if build else {}, progress,
                               common_prefix(since, until))


def _read_files(scan: Scan, files: list[LogFile], keys: dict[str, str],
                progress: Callable[[int], None] | None, prefix: bytes,
                made: Callable[[LogFile, Any], None] | None = None,
                ) -> Iterator[tuple[Record, LogFile]]:
    """The line path over ``files`` (``Scan._batches``), keeping the records of each
    file with a key to write its sidecar once the file is read without damage; the
    frame each sidecar was written from is handed to ``made`` (before the next file's
    first record)."""
    since, until = scan.query.since, scan.query.until
    units = scan.units(files)
    cur: LogFile | None = None
    built: Built | None = None

    def done() -> None:
        if cur is not None and built is not None:
            path = str(cur.path)
            if not any(p.path == path for p in scan.snap.problems) and \
                    not (cur.index_problem is not None):
                write(cur, keys[path], built)
                if made is not None and built.frame is not None:
                    made(cur, built.frame)

    def built_for(f: LogFile) -> Built | None:
        nonlocal cur, built
        if f is not cur:
            done()
            cur = f
            built = Built() if str(f.path) in keys else None
        return built

    for rec, f in _parsed(scan, units, progress, prefix, built_for):
        if (since is not None and rec.ts < since) or (until is not None and rec.ts >= until):
            continue
        yield rec, f
    done()


def _parsed(scan: Scan, units: Any, progress: Callable[[int], None] | None, prefix: bytes,
            built_for: Callable[[LogFile], Built | None],
            ) -> Iterator[tuple[Record, LogFile]]:
    """Every record of ``units`` (the line path: ``Scan._batches``, then the record
    parser, times normalised) with its file, each also kept in ``built_for(file)``
    (the lines, read counts and records a sidecar is written from) when that is not
    None. The one record loop of a whole read (``_read_files``, ``build_for``)."""
    seen: set[int] = set()
    last: LogFile | None = None
    for f, lines, rs in scan._batches(units, progress, prefix):
        built = built_for(f)
        if f is not last:
            last = f
            seen = set()
        if built is not None:
            built.add_lines(lines)
            if id(rs) not in seen:
                seen.add(id(rs))
                built.stats.append(rs)
        for rec in iter_records(lines, rs):
            if rec.ts[10:11] != " ":
                rec.ts = norm_ts(rec.ts)
            if built is not None:
                built.records.append(rec)
            yield rec, f


def build_for(f: LogFile, places: list[Path], whole: Scan) -> Path | None:
    """Read ``f`` whole and write its sidecar into the first of ``places`` that takes
    it (``ttsops logs index``); None when the file is damaged or nothing took it.
    ``whole``: a scan of ``f`` alone without a query (``Scan.of_file(f)``)."""
    key = identity(f) if eligible(f) else None
    if key is None:
        return None
    snap, scan = whole.snap, whole
    built = Built()
    with gc_paused():  # the file's records, kept to be written (~10% of a file's build)
        for _rec, _g in _parsed(scan, scan.units([f]), None, b"", lambda _f: built):
            pass
    if snap.problems or f.index_problem is not None:
        return None
    return write(f, key, built, places)


def prebuild(scan: Scan, files: list[LogFile] | None = None) -> int:
    """On a first whole read (``auto``, no window): the missing sidecars of ``files``
    (default: the scan's) written first by worker processes (``firstread``); how many."""
    from .firstread import run

    q = scan.query
    if mode() != "auto" or q.since is not None or q.until is not None or not applies(scan):
        return 0
    todo = [(f, key) for f in (scan.snap.files if files is None else files)
            if (key := identity(f) if eligible(f) else None) is not None
            and not exists(f, key)]
    from functools import partial

    return run(todo, partial(build_file, of_file=scan.of_file), scan.new_bar)


def build_file(where: str, role: str, label: str, gz: bool, key: str, cache: str, *,
               of_file: Callable[[LogFile], Scan]) -> bool:
    """In a worker process (``firstread``): parse the file at ``where`` whole and write
    its sidecar into ``cache``, if it is still the version named ``key``
    (``of_file``: ``Scan.of_file``, as ``build_path`` takes it)."""
    try:
        with _opened(where, role, label, gz) as f:
            if f is None or identity(f) != key:  # replaced or renamed away since
                return False
            return build_for(f, [Path(cache)], of_file(f)) is not None
    except Exception:
        return False


@contextlib.contextmanager
def _opened(where: str | Path, role: str, label: str, gz: bool | None
            ) -> Iterator[LogFile | None]:
    """The file at ``where`` open as a ``LogFile`` of its own descriptor (``gz`` None:
    looked at), closed after; None when it cannot be opened."""
    from ._naming import is_gz
    from .logfiles import LogFile

    try:
        fd = os.open(where, os.O_RDONLY)
    except OSError:
        yield None
        return
    try:
        st = os.fstat(fd)
        yield LogFile(where, role, 0, label, is_gz(fd, str(where)) if gz is None else gz,
                      fd, st.st_size, (st.st_dev, st.st_ino))
    finally:
        os.close(fd)


def build_path(path: Path, of_file: Callable[[LogFile], Scan]) -> Path | None:
    """``ttsops logs index``: write the sidecar of the rotated file at ``path`` beside
    it (``<dir>/.ttsops/sidecar/``), or in the cache when its directory is read-only;
    None when there is one already, or none could be made (``TTSOPS_LOGS_SIDECAR=off``,
    a damaged file, nowhere to write)."""
    if mode() == "off":
        return None
    with _opened(path, "rotated", path.parent.name, None) as f:
        if f is None:
            return None
        key = identity(f)
        if key is None or exists(f, key):
            return None
        return build_for(f, places_of(f), of_file(f))
