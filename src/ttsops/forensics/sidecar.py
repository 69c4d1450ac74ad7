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
read: that read takes about 1.5x longer, later ones about half), ``off``.

Exactness: a sidecar is used only where the line path would read the whole file and
parse every line of it (no literal pre-filter, no id filter, the query window holding
every line's time), so the records are the ones the line path gives, in the same order;
a window is applied to them as the line path applies it. Agreement tests hold every
whole-data command to the line path's answer.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..logformat import ReadStats, Record
from ..logformat.timestamps import norm_ts
from .fastparse import iter_records
from .reader import ReadCounters

if TYPE_CHECKING:
    from .scan import Scan
    from .sources import LogFile

VERSION = "2"
SUBDIR = Path(".ttsops") / "sidecar"
MAX_AGE_S = 30 * 86400  # cache entries not written for this long are removed
_COLUMNS = ("ts", "logger", "level", "event", "fields", "tb", "dialect")
RECORD_COLUMNS = list(_COLUMNS)  # what a record is made of (``records_of``)
# the fields the whole-data analyses read, each also a column of its own (``k_<name>``,
# null where the record has none; the value as in ``fields``): read vectorised without
# decoding every record's JSON (version 2)
HOT = ("id", "stage", "duration_ms", "queue_ms", "elapsed_ms", "status", "error_code",
       "warning_code", "usage", "request_id", "kind", "verified", "cache_hit")


def mode() -> str:
    m = os.environ.get("TTSOPS_LOGS_SIDECAR", "read").strip().lower()
    return m if m in ("auto", "read", "off") else "read"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ttsops" / "sidecar"


def eligible(f: LogFile) -> bool:
    """Files that never change once written: rotated ones (gzip, or the uncompressed
    ``app.log.1`` of logrotate); an explicitly named gzip file. Never the live file or
    standard input."""
    if f.fd < 0:
        return False
    return (f.role == "rotated") or (f.role == "file" and f.gz)


def identity(f: LogFile) -> str | None:
    """The hash naming this version of the file, or None when it cannot be taken."""
    try:
        st = os.fstat(f.fd)
        n = 4096
        head = os.pread(f.fd, n, 0)
        tail = os.pread(f.fd, n, max(0, st.st_size - n))
    except OSError:
        return None
    if st.st_size != f.size:  # changed since the snapshot was taken
        return None
    h = hashlib.sha256()
    h.update(f"{VERSION}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|".encode())
    h.update(head)
    h.update(b"|")
    h.update(tail)
    return h.hexdigest()[:40]


def _places(f: LogFile) -> list[Path]:
    return [f.path.parent / SUBDIR, cache_dir()]


@dataclass
class Loaded:
    records: list[Record]
    stats: ReadStats
    lo: str  # smallest and largest time prefix of the file's text lines ("" if none)
    hi: str


@dataclass
class Built:
    """What one read of a whole file gave, to be written as its sidecar."""

    records: list[Record] = field(default_factory=list)
    stats: list[ReadStats] = field(default_factory=list)  # per unit, in order
    lo: str = ""  # the range of the time prefix of its text lines (``window_lines``)
    hi: str = ""
    # each record's text as written (its head line and every line up to the next line
    # that starts like a record), for literal pre-filters; kept only when the records
    # are exactly what the pre-filter sees as records (``exact``): no JSON line, every
    # line that starts like a record is one (checked by the count), no line before the
    # first record, nothing undecodable
    raw: list[str] = field(default_factory=list)
    exact: bool = True

    def add_lines(self, lines: list[str]) -> None:
        ps = [ln[:23] for ln in lines if ln[:1].isdigit()]
        if ps:
            a, b = min(ps), max(ps)
            self.lo = a if not self.lo or a < self.lo else self.lo
            self.hi = max(b, self.hi)
        if not self.exact:
            return
        group: list[str] | None = None
        raw = self.raw
        for ln in lines:
            c = ln[:1]
            if c == "{" or "\ufffd" in ln:
                self.exact = False
                return
            if c.isdigit():
                if group is not None:
                    raw.append("\n".join(group))
                group = [ln]
            elif group is None:  # lines before a batch's first record (a traceback cut
                continue         # by the read's chunks): the parser skips them, no record
            else:
                group.append(ln)
        if group is not None:
            raw.append("\n".join(group))


def load(f: LogFile, key: str, needles: tuple[str, ...] | None = None,
         heads_only: bool = False) -> Loaded | None:
    """The file's sidecar, checked; None when there is none or it fails a check. With
    ``needles``: only the records whose text holds one (as ``scan.grep_bytes`` selects
    them; None when the sidecar cannot tell), without tracebacks if ``heads_only``."""
    for d in _places(f):
        p = d / f"{key}.parquet"
        if not p.is_file():
            continue
        got = _read(p, key, needles, heads_only)
        if got is not None:
            return got
    return None


def _exists(f: LogFile, key: str) -> bool:
    return any((d / f"{key}.parquet").is_file() for d in _places(f))


def _read(p: Path, key: str, needles: tuple[str, ...] | None = None,
          heads_only: bool = False) -> Loaded | None:
    try:
        import polars as pl

        meta = pl.read_parquet_metadata(p)
        if meta.get("ttsops_sidecar") != VERSION or meta.get("key") != key:
            return None
        info = json.loads(meta["info"])
        if needles is not None:
            if not info.get("needles_exact") or any("\n" in x for x in needles):
                return None
            lf = pl.scan_parquet(p)
            df = (lf.filter(pl.col("raw").str.contains_any(list(needles)))
                  .select([*_COLUMNS, "raw"]).collect())
            total = lf.select(pl.len()).collect().item()
            if total != int(info["rows"]):
                return None
            recs = _records(df)
            if heads_only:
                for r in recs:
                    r.traceback = []
                stats = ReadStats(len(recs), len(recs), 0, 0, [])
            else:
                cont = sum(len(r.traceback) for r in recs)
                lines = sum(x.count("\n") + 1 for x in df.get_column("raw").to_list()) \
                    if "raw" in df.columns else len(recs) + cont
                stats = ReadStats(lines, len(recs), cont, lines - len(recs) - cont, [])
            return Loaded(recs, stats, str(info["lo"]), str(info["hi"]))
        df = pl.read_parquet(p, columns=list(_COLUMNS))
        if df.height != int(info["rows"]):
            return None
        recs = _records(df)
        st = info["stats"]
        stats = ReadStats(int(st["lines"]), int(st["records"]), int(st["continuation"]),
                          int(st["skipped"]), [str(x) for x in st["examples"]][:5])
        if stats.records != len(recs):
            return None
        return Loaded(recs, stats, str(info["lo"]), str(info["hi"]))
    except Exception:
        return None


def _frame(p: Path, key: str, columns: list[str], since: str | None,
           until: str | None) -> tuple[Any, ReadStats, str, str] | None:
    """The sidecar at ``p`` as a frame of ``columns`` (records in [since, until)), with
    the file's read counts and time range; None when it fails a check."""
    try:
        import polars as pl

        meta = pl.read_parquet_metadata(p)
        if meta.get("ttsops_sidecar") != VERSION or meta.get("key") != key:
            return None
        info = json.loads(meta["info"])
        st = info["stats"]
        stats = ReadStats(int(st["lines"]), int(st["records"]), int(st["continuation"]),
                          int(st["skipped"]), [str(x) for x in st["examples"]][:5])
        if stats.records != int(info["rows"]):
            return None
        lf = pl.scan_parquet(p)
        if "tb" in columns and lf.collect_schema()["tb"] != pl.Utf8:
            return None  # (the first sidecars kept a list of lines)
        if since is not None:
            lf = lf.filter(pl.col("ts") >= since)
        if until is not None:
            lf = lf.filter(pl.col("ts") < until)
        df = lf.select(columns).collect()
        if since is None and until is None and df.height != stats.records:
            return None
        return df, stats, str(info["lo"]), str(info["hi"])
    except Exception:
        return None


def frame_of(recs: list[Record], columns: list[str]) -> Any:
    """Records as the frame a sidecar gives (``_frame``): the same columns and values."""
    import polars as pl

    make: dict[str, Callable[[], Any]] = {
        "ts": lambda: pl.Series([r.ts for r in recs], dtype=pl.Utf8),
        "logger": lambda: pl.Series([r.logger for r in recs], dtype=pl.Utf8),
        "level": lambda: pl.Series([r.level for r in recs], dtype=pl.Utf8),
        "event": lambda: pl.Series([r.event for r in recs], dtype=pl.Utf8),
        "fields": lambda: pl.Series([json.dumps(r.fields) for r in recs], dtype=pl.Utf8),
        "tb": lambda: pl.Series(["\n".join(r.traceback) if r.traceback else None
                                 for r in recs], dtype=pl.Utf8),
        "dialect": lambda: pl.Series([r.dialect for r in recs], dtype=pl.Int32),
        # (records read by the line path were selected by its pre-filter already)
        "raw": lambda: pl.Series([None] * len(recs), dtype=pl.Utf8),
    }
    for k in HOT:
        make[f"k_{k}"] = lambda k=k: pl.Series([r.fields.get(k) for r in recs], dtype=pl.Utf8)
    return pl.DataFrame({c: make[c]() for c in columns})


def covered(scan: Scan, small: int = 4 << 20) -> bool:
    """Would ``frames`` take (nearly) everything from sidecars: each file that can have
    one has a valid one, and the others (the live file) hold under ``small`` bytes?"""
    if not applies(scan):
        return False
    rest = 0
    for f in scan.snap.files:
        key = identity(f) if eligible(f) else None
        if key is None or not _exists(f, key):
            rest += f.size
    return rest < small


def needles_exact(scan: Scan) -> bool:
    """Does every sidecar of the scan's files hold each record's text (``raw``), so that
    a frame filtered on it holds the records the literal pre-filter selects?"""
    try:
        import polars as pl

        for f in scan.snap.files:
            key = identity(f) if eligible(f) else None
            if key is None:
                continue
            for d in _places(f):
                p = d / f"{key}.parquet"
                if p.is_file():
                    meta = pl.read_parquet_metadata(p)
                    if meta.get("ttsops_sidecar") == VERSION and meta.get("key") == key \
                            and not json.loads(meta["info"]).get("needles_exact"):
                        return False
        return True
    except Exception:
        return False


def frames(scan: Scan, columns: list[str]) -> Iterator[tuple[LogFile, Any]]:
    """Every record of the scan's window, a frame per file (``columns`` of the sidecar
    schema: ts, logger, level, event, fields as JSON, tb, dialect), stream by stream, in
    order: from the file's sidecar where it has a valid one that the window does not
    cut, else read by the line path (``stream_hits``' rule) and made a frame. The reads
    are counted in ``scan.stats`` as ``hits`` counts them."""
    from . import scan as scan_mod

    for stream in scan.streams():
        bar = None
        if scan.progress is None and scan_mod.progress_factory is not None:  # as stream_hits
            bar = scan_mod.progress_factory(
                sum(f.size for f in scan.snap.stream_files(stream)), "reading logs")
            scan.progress = bar
        try:
            yield from _stream_frames(scan, stream, columns)
        finally:
            if bar is not None:
                scan.progress = None
                if hasattr(bar, "close"):
                    bar.close()


def _stream_frames(scan: Scan, stream: int, columns: list[str],
                   ) -> Iterator[tuple[LogFile, Any]]:
    from .scan import common_prefix

    q = scan.query
    since, until = q.since, q.until
    use = applies(scan)
    build = mode() == "auto" and since is None and until is None
    files = scan.snap.stream_files(stream)
    pending: list[LogFile] = []
    keys: dict[str, str] = {}

    def flush() -> Iterator[tuple[LogFile, Any]]:
        cur: LogFile | None = None
        recs: list[Record] = []
        for rec, f in _read_files(scan, pending, keys if build else {}, scan.progress,
                                  common_prefix(since, until)):
            if f is not cur:
                if cur is not None:
                    yield cur, frame_of(recs, columns)
                cur, recs = f, []
            recs.append(rec)
        if cur is not None:
            yield cur, frame_of(recs, columns)

    for f in files:
        key = identity(f) if use and eligible(f) else None
        got = None
        if key is not None:
            for d in _places(f):
                p = d / f"{key}.parquet"
                if p.is_file():
                    got = _frame(p, key, columns, since, until)
                    if got is not None:
                        break
        if got is not None and ((since is not None and got[2] < since)
                                or (until is not None and got[3] >= until)):
            got = None  # the window cuts the file: the line path decides line by line
        if got is None:
            if key:
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


def records_of(df: Any) -> list[Record]:
    """The records of a frame that has the sidecar's record columns (``_COLUMNS``)."""
    return _records(df)


def _records(df: Any) -> list[Record]:
    import polars as pl

    cols = [df.get_column(c).to_list() for c in _COLUMNS]
    was = gc.isenabled()
    gc.disable()  # millions of small dicts: the cycle collector finds nothing in them
    try:
        # the fields of every record in one JSON document: one call, not one a record
        cols[4] = json.loads("[" + ",".join(cols[4]) + "]")
        if df.schema["tb"] == pl.Utf8:  # (the first sidecars kept a list of lines)
            cols[5] = [[] if t is None else t.split("\n") for t in cols[5]]
        return [Record(ts, lg, lv, ev, fs, tb, di)
                for ts, lg, lv, ev, fs, tb, di in zip(*cols, strict=True)]
    finally:
        if was:
            gc.enable()


def write(f: LogFile, key: str, built: Built, places: list[Path] | None = None) -> Path | None:
    """Write the sidecar atomically into the first place that takes it; None if none."""
    try:
        import polars as pl

        recs = built.records
        total = ReadStats()
        for s in built.stats:
            total.lines += s.lines
            total.records += s.records
            total.continuation += s.continuation
            total.skipped += s.skipped
            total.skipped_examples.extend(s.skipped_examples)
        if total.records != len(recs):
            return None
        lo, hi = built.lo, built.hi
        df = pl.DataFrame({
            "ts": pl.Series([r.ts for r in recs], dtype=pl.Utf8),
            "logger": pl.Series([r.logger for r in recs], dtype=pl.Utf8),
            "level": pl.Series([r.level for r in recs], dtype=pl.Utf8),
            "event": pl.Series([r.event for r in recs], dtype=pl.Utf8),
            "fields": pl.Series([json.dumps(r.fields) for r in recs], dtype=pl.Utf8),
            # a traceback's lines joined by newlines (which no line holds); null: none
            "tb": pl.Series(["\n".join(r.traceback) if r.traceback else None for r in recs],
                            dtype=pl.Utf8),
            "dialect": pl.Series([r.dialect for r in recs], dtype=pl.Int32),
            **{f"k_{k}": pl.Series([r.fields.get(k) for r in recs], dtype=pl.Utf8)
               for k in HOT},
        })
        raw = _record_texts(built.raw, recs) if built.exact else None
        exact = raw is not None
        df = df.with_columns(raw=pl.Series(raw if raw is not None else [None] * len(recs),
                                           dtype=pl.Utf8))
        info = {"rows": len(recs), "file": f.name, "lo": lo, "hi": hi, "needles_exact": exact,
                "stats": {"lines": total.lines, "records": total.records,
                          "continuation": total.continuation, "skipped": total.skipped,
                          "examples": total.skipped_examples[:5]}}
        meta = {"ttsops_sidecar": VERSION, "key": key, "info": json.dumps(info)}
    except Exception:
        return None
    for d in places if places is not None else _places(f)[1:]:
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=d)
            try:
                with contextlib.suppress(OSError):  # readable by whoever reads the log
                    os.fchmod(fd, os.fstat(f.fd).st_mode & 0o644 | 0o600)
                with os.fdopen(fd, "wb") as fh:
                    df.write_parquet(fh, compression="zstd", metadata=meta)
                os.replace(tmp, d / f"{key}.parquet")
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _prune(d)
            return d / f"{key}.parquet"
        except Exception:
            continue
    return None


def _record_texts(raw: list[str], recs: list[Record]) -> list[str] | None:
    """Each record's text (``Built.raw``), one per record, or None when they cannot be
    paired. A lone line that starts like a record but is none (a malformed line, skipped
    by the parser: it holds no record) is dropped; then each text must start with its
    record's time."""
    if len(raw) == len(recs):
        return raw
    if len(raw) < len(recs):
        return None
    from .fastparse import parse_line

    kept = [g for g in raw if "\n" in g or parse_line(g) is not None]
    if len(kept) != len(recs) or any(g[:19].replace("T", " ") != r.ts[:19]
                                     for g, r in zip(kept, recs, strict=True)):
        return None
    return kept


def _prune(d: Path) -> None:
    """Remove sidecars (and stray temporary files) not written for ``MAX_AGE_S``."""
    old = time.time() - MAX_AGE_S
    with contextlib.suppress(OSError):
        for p in d.iterdir():
            with contextlib.suppress(OSError):
                if p.stat().st_mtime < old:
                    p.unlink()


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
    from . import scan as scan_mod

    files = scan.snap.stream_files(stream)
    progress = scan.progress
    bar = None
    if progress is None and scan_mod.progress_factory is not None:  # as Scan.batches
        bar = scan_mod.progress_factory(sum(f.size for f in files), "reading logs")
        progress = bar
    try:
        yield from _stream_hits(scan, files, progress)
    finally:
        if bar is not None and hasattr(bar, "close"):
            bar.close()


def _stream_hits(scan: Scan, files: list[LogFile], progress: Callable[[int], None] | None,
                 ) -> Iterator[tuple[Record, LogFile]]:
    from .scan import common_prefix

    q = scan.query
    since, until = q.since, q.until
    build = mode() == "auto" and since is None and until is None
    needles = q.needles
    pending: list[LogFile] = []
    keys: dict[str, str] = {}
    for f in files:
        key = identity(f) if eligible(f) else None
        got = load(f, key, needles, not q.tracebacks) if key else None
        # a pre-filtered read cannot write a sidecar: read this file whole once
        if got is None and key and needles is not None and build and \
                not _exists(f, key) and build_for(f, _places(f)[1:]) is not None:
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
                ) -> Iterator[tuple[Record, LogFile]]:
    """The line path over ``files`` (``Scan._batches``), keeping the records of each
    file with a key to write its sidecar once the file is read without damage."""
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


def build_for(f: LogFile, places: list[Path]) -> Path | None:
    """Read ``f`` whole and write its sidecar into the first of ``places`` that takes
    it (``ttsops logs index``); None when the file is damaged or nothing took it."""
    from .scan import Query, Scan
    from .sources import Snapshot

    key = identity(f) if eligible(f) else None
    if key is None:
        return None
    snap = Snapshot([f], [f.label])
    scan = Scan(snap, Query())
    built = Built()
    for _rec, _g in _parsed(scan, scan.units([f]), None, b"", lambda _f: built):
        pass
    if snap.problems or f.index_problem is not None:
        return None
    return write(f, key, built, places)


def build_path(path: Path) -> Path | None:
    """``ttsops logs index``: write the sidecar of the rotated file at ``path`` beside
    it (``<dir>/.ttsops/sidecar/``), or in the cache when its directory is read-only;
    None when there is one already, or none could be made (``TTSOPS_LOGS_SIDECAR=off``,
    a damaged file, nowhere to write)."""
    from .sources import LogFile, _is_gz

    if mode() == "off":
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        f = LogFile(path, "rotated", 0, path.parent.name, _is_gz(fd, path), fd, st.st_size,
                    (st.st_dev, st.st_ino))
        key = identity(f)
        if key is None or _exists(f, key):
            return None
        return build_for(f, _places(f))
    finally:
        os.close(fd)
