"""Sidecar files on disk, for ``sidecar``: their identity (a file version's hash), where
they live, reading one (checked; optionally only the records a literal pre-filter keeps)
and writing one atomically, and records to and from frames. See ``sidecar`` for the why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ...indexformat import GRAMMAR
from ...logformat import ReadStats, Record
from .gcpause import gc_paused

if TYPE_CHECKING:
    from .logfiles import LogFile

VERSION = "4"
SUBDIR = Path(".ttsops") / "sidecar"
MAX_AGE_S = 30 * 86400  # cache entries not written for this long are removed
COLUMNS = ("ts", "logger", "level", "event", "fields", "tb", "dialect")
RECORD_COLUMNS = list(COLUMNS)  # what a record is made of (``records_of``)
# the fields the whole-data analyses read, each also a column of its own (``k_<name>``,
# null where the record has none; the value as in ``fields``): read vectorised without
# decoding every record's JSON (version 2)
HOT = ("id", "stage", "duration_ms", "queue_ms", "elapsed_ms", "status", "error_code",
       "warning_code", "usage", "request_id", "kind", "verified", "cache_hit",
       "where",  # (version 3)
       # the inputs and audio metrics a synthesis is joined with (diagnose, report;
       # version 4)
       "text_len", "voice", "lang", "format", "engine", "model_stage",
       "spectral_centroid", "rms", "peak", "silence_ratio", "clipped_ratio")
# a flag per record, beside the HOT columns: does a field value have a unit suffix
# (``units.has_unit``; ``logs check`` counts them without reading ``fields``; version 3)
UNITS = "units"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ttsops" / "sidecar"


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
    # the parser's grammar too: records another parser made are not this one's reading
    h.update(f"{VERSION}|g{GRAMMAR}|{st.st_dev}|{st.st_ino}|{st.st_size}|"
             f"{st.st_mtime_ns}|".encode())
    h.update(head)
    h.update(b"|")
    h.update(tail)
    return h.hexdigest()[:40]


def places_of(f: LogFile) -> list[Path]:
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
    frame: Any = field(default=None, repr=False)  # the frame written (``write``)

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
    for d in places_of(f):
        p = d / f"{key}.parquet"
        if not p.is_file():
            continue
        got = _read(p, key, needles, heads_only)
        if got is not None:
            return got
    return None


def exists(f: LogFile, key: str) -> bool:
    return any((d / f"{key}.parquet").is_file() for d in places_of(f))


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
                  .select([*COLUMNS, "raw"]).collect())
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
        df = pl.read_parquet(p, columns=list(COLUMNS))
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


def scan_checked(p: Path, key: str, columns: list[str],
                 ) -> tuple[Any, ReadStats, dict[str, Any]] | None:
    """The sidecar at ``p`` as a lazy frame, with the file's read counts and the
    sidecar's info, when its metadata pass the checks (this version, this file's key,
    its row count its records', a text ``tb`` when ``columns`` want it); None otherwise.
    (That its frame holds those rows is checked by the caller, on what it collects.)
    Raises what Polars raises for a file that is no Parquet."""
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
    return lf, stats, info


def find_checked(f: LogFile, key: str, columns: list[str],
                 ) -> tuple[Path, tuple[Any, ReadStats, dict[str, Any]]] | None:
    """The first of the file's sidecars (``places_of``, key ``key``) whose metadata pass
    ``scan_checked``: its path and what that gives; None when none does (a file that is
    no Parquet fails)."""
    for d in places_of(f):
        p = d / f"{key}.parquet"
        if not p.is_file():
            continue
        try:
            got = scan_checked(p, key, columns)
        except Exception:
            continue
        if got is not None:
            return p, got
    return None


def read_frame(p: Path, key: str, columns: list[str], since: str | None,
               until: str | None, where: Any = None,
               ) -> tuple[Any, ReadStats, str, str] | None:
    """The sidecar at ``p`` as a frame of ``columns`` (records in [since, until), and
    only those ``where`` holds for when given), with the file's read counts and time
    range; None when it fails a check."""
    try:
        import polars as pl

        got = scan_checked(p, key, columns)
        if got is None:
            return None
        lf, stats, info = got
        if since is not None:
            lf = lf.filter(pl.col("ts") >= since)
        if until is not None:
            lf = lf.filter(pl.col("ts") < until)
        if where is not None:
            whole = lf.select(pl.len()).collect().item()
            if since is None and until is None and whole != stats.records:
                return None
            return lf.filter(where).select(columns).collect(), stats, str(info["lo"]), \
                str(info["hi"])
        df = lf.select(columns).collect()
        if since is None and until is None and df.height != stats.records:
            return None
        return df, stats, str(info["lo"]), str(info["hi"])
    except Exception:
        return None


def frame_of(recs: list[Record], columns: list[str]) -> Any:
    """Records as the frame a sidecar gives (``read_frame``): the same columns and values."""
    import polars as pl

    return pl.DataFrame(_columns(recs, columns))


# a frame that wants at most this many HOT columns and not ``fields`` takes them from
# the records one by one (a pass each); more are decoded from the fields' JSON at once
FEW_HOT = 4


def _columns(recs: list[Record], columns: list[str]) -> dict[str, Any]:
    """The sidecar columns ``columns`` of ``recs`` (in that order), as Series.

    The ``k_<field>`` columns are decoded by Polars from the ``fields`` column (each
    record's fields as JSON, made here once), in one pass over it: the values are the
    same strings (every field value is a string; ``test_sidecar``), and a pass over the
    records per field, 25 of them, cost the first read of a file more than its parse
    (cache misses: each pass walks every record's dict again)."""
    import polars as pl

    n = len(recs)
    hot = [k for k in HOT if f"k_{k}" in columns]
    js: Any = None
    if "fields" in columns or len(hot) > FEW_HOT:
        js = pl.Series("fields", [json.dumps(r.fields) for r in recs], dtype=pl.Utf8)
    out: dict[str, Any] = {}
    if hot:
        out.update(_hot_columns(js, recs, hot))
    make: dict[str, Callable[[], Any]] = {
        "ts": lambda: pl.Series([r.ts for r in recs], dtype=pl.Utf8),
        "logger": lambda: pl.Series([r.logger for r in recs], dtype=pl.Utf8),
        "level": lambda: pl.Series([r.level for r in recs], dtype=pl.Utf8),
        "event": lambda: pl.Series([r.event for r in recs], dtype=pl.Utf8),
        "fields": lambda: js,
        # a traceback's lines joined by newlines (which no line holds); null: none
        "tb": lambda: pl.Series(["\n".join(r.traceback) if r.traceback else None
                                 for r in recs], dtype=pl.Utf8),
        "dialect": lambda: pl.Series([r.dialect for r in recs], dtype=pl.Int32),
        # (records read by the line path were selected by its pre-filter already)
        "raw": lambda: pl.Series([None] * n, dtype=pl.Utf8),
        UNITS: lambda: _units_of(recs),
    }
    return {c: out[c] if c in out else make[c]().alias(c) for c in columns}


def _hot_columns(js: Any, recs: list[Record], hot: list[str]) -> dict[str, Any]:
    """The ``k_<field>`` columns of ``hot``: decoded from ``js`` (the fields' JSON) when
    given, else taken from the records. A JSON text with an escaped UTF-16 surrogate (a
    JSON line's ``"\\udc80"``: Polars cannot decode it as Python does) takes the records'
    way, so the values are always exactly the records'."""
    import polars as pl

    if js is not None and not (len(js) and js.str.contains("\\ud", literal=True).any()):
        d = js.str.json_decode(pl.Struct({k: pl.Utf8 for k in hot})).struct.unnest()
        return {f"k_{k}": d.get_column(k).alias(f"k_{k}") for k in hot}
    fl = [r.fields for r in recs]
    return {f"k_{k}": pl.Series(f"k_{k}", [x.get(k) for x in fl], dtype=pl.Utf8)
            for k in hot}


def _units_of(recs: list[Record]) -> Any:
    import polars as pl

    from ...logformat.units import has_unit

    return pl.Series([has_unit(r.fields) for r in recs], dtype=pl.Boolean)


def records_of(df: Any) -> list[Record]:
    """The records of a frame that has the sidecar's record columns (``COLUMNS``)."""
    return _records(df)


def _records(df: Any) -> list[Record]:
    import polars as pl

    cols = [df.get_column(c).to_list() for c in COLUMNS]
    with gc_paused():  # millions of small dicts
        # the fields of every record in one JSON document: one call, not one a record
        cols[4] = json.loads("[" + ",".join(cols[4]) + "]")
        if df.schema["tb"] == pl.Utf8:  # (the first sidecars kept a list of lines)
            cols[5] = [[] if t is None else t.split("\n") for t in cols[5]]
        return [Record(ts, lg, lv, ev, fs, tb, di)
                for ts, lg, lv, ev, fs, tb, di in zip(*cols, strict=True)]


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
        df = pl.DataFrame(_columns(recs, [*COLUMNS, *(f"k_{k}" for k in HOT), UNITS]))
        raw = _record_texts(built.raw, recs) if built.exact else None
        exact = raw is not None
        df = df.with_columns(raw=pl.Series(raw if raw is not None else [None] * len(recs),
                                           dtype=pl.Utf8))
        info = {"rows": len(recs), "file": f.name, "lo": lo, "hi": hi, "needles_exact": exact,
                "stats": {"lines": total.lines, "records": total.records,
                          "continuation": total.continuation, "skipped": total.skipped,
                          "examples": total.skipped_examples[:5]}}
        meta = {"ttsops_sidecar": VERSION, "key": key, "info": json.dumps(info)}
        built.frame = df
    except Exception:
        return None
    return put(places if places is not None else places_of(f)[1:], f"{key}.parquet", key,
               lambda: os.fstat(f.fd).st_mode,  # readable by whoever reads the log
               lambda fh: df.write_parquet(fh, compression="zstd", metadata=meta),
               prune=True)


def put(places: list[Path], name: str, key: str, mode: Callable[[], int],
        write: Callable[[BinaryIO], Any], prune: bool = False) -> Path | None:
    """Write ``name`` atomically (``write`` into a temporary file renamed over it) into
    the first of ``places`` that takes it, readable as far as ``mode()`` is (the log's,
    the sidecar's); None if none did. ``prune``: then remove what that directory has
    not had written for ``MAX_AGE_S``."""
    for d in places:
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=d)
            try:
                with contextlib.suppress(OSError):
                    os.fchmod(fd, mode() & 0o644 | 0o600)
                with os.fdopen(fd, "wb") as fh:
                    write(fh)
                os.replace(tmp, d / name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            if prune:
                _prune(d)
            return d / name
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
    from ...logformat.fastparse import parse_line

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
