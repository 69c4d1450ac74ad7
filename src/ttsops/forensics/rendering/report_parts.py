"""``logs report``'s charts from what each file gives once: the ``Collect`` of one file's
records (its per-minute counts and values, ``report_data``), kept beside the file's
sidecar as a companion table (``reading.companion``, named ``report``) so that a later
run merges that instead of counting the file's records again.

The charts of several files are those of each file merged in the files' order
(``merge``): the counts add up, the values of a minute follow one another in the order
fed, the minutes, stages and codes keep the order they first appeared in -- what one
``Collect`` fed every file's frame in that order holds.

A companion is made from the file's frame (and written, when the frame is the whole
file read from a valid sidecar: as many rows as the sidecar) and merged instead of the
frame where the sidecar is valid, the companion was made by this code, in the same
``--stage-time`` mode and time zone, and the frame read is the whole file (a window that
cuts the file: its records are counted). Nothing else about the file is kept: every
other check is the companion's own (the file's key, the sidecar's row count, a CRC).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .report_data import BASE, STRICT, Collect
from .report_minutes import Minutes

if TYPE_CHECKING:
    from ..reading.scan import Scan
    from ..reading.sources import LogFile

NAME = "report"


def tag(mode: str, utc: bool) -> str:
    """What a companion was made by: this module's format, the charts' columns and
    minute, the ``--stage-time`` mode and the time zone."""
    h = hashlib.sha256(repr((Collect.FRAME_COLUMNS, BASE, STRICT)).encode()).hexdigest()[:12]
    return f"report-charts-2|{h}|{mode}|{'utc' if utc else 'local'}"


def _series(col: Collect) -> list[tuple[str, Minutes]]:
    """The chart values of ``col``, named: end to end, queue wait, each stage in order."""
    return [("e2e", col.e2e), ("queue", col.queue),
            *((f"stage:{k}", m) for k, m in col.stage.items())]


def _minutes_of(col: Collect, name: str) -> Minutes:
    """The values of ``col`` that ``_series`` names ``name`` (a stage's made if new)."""
    if name == "e2e":
        return col.e2e
    if name == "queue":
        return col.queue
    return col.stage.setdefault(name.removeprefix("stage:"), Minutes())


def tables_of(col: Collect) -> tuple[dict[str, Any], dict[str, Any]]:
    """The companion's tables and values of one file's ``Collect`` (``collect_of`` gives
    it back)."""
    import numpy as np
    import polars as pl

    counts: list[list[Any]] = []
    for name, cnt in (("ok", col.ok), ("failed", col.failed),
                      *((f"code:{c}", v) for c, v in col.codes.items())):
        kind, _, key = name.partition(":")
        counts.extend([kind, key, int(b), int(k)] for b, k in cnt.items())
    names: list[str] = []
    rm: list[int] = []
    rc: list[int] = []
    vals: list[Any] = []
    sizes: list[list[int]] = []
    for name, m in _series(col):
        mins, cnts, v = m.runs()
        names.append(name)
        sizes.append([len(mins), len(v)])
        rm.extend(int(x) for x in mins)
        rc.extend(int(x) for x in cnts)
        vals.append(np.asarray(v, dtype=np.float64))
    values = pl.DataFrame({"value": np.concatenate(vals)})
    spans = list(col.file_span.values())
    head = {"records": col.records, "levels": [[k, v] for k, v in col.levels.items()],
            "first": col.first, "last": col.last,
            "span": spans[0] if spans else None, "series": names, "sizes": sizes,
            "counts": counts, "runs": [rm, rc], "usage": [[t, u] for t, u in col.usage]}
    # (the few counts, runs and gauges in the values of the header: one table to read)
    return {"values": values}, head


def collect_of(tables: Mapping[str, Any], head: dict[str, Any], path: str,
               utc: bool) -> Collect:
    """The ``Collect`` of a file (at ``path``) from its companion's tables and values."""
    col = Collect(utc)
    merge_tables(col, tables, head, path)
    return col


def merge_tables(into: Collect, tables: Mapping[str, Any], head: dict[str, Any],
                 path: str) -> None:
    """``merge`` of the ``Collect`` of a file (at ``path``) from its companion's tables
    and values. Raises what a damaged or foreign companion gives (``companion.Damaged``,
    KeyError, ValueError ...) before it changes ``into``."""
    import numpy as np

    rows = [(str(kind), str(key), int(b), int(n)) for kind, key, b, n in head["counts"]]
    if any(kind not in ("ok", "failed", "code") for kind, _k, _b, _n in rows):
        raise ValueError("a count of another kind")
    mins = np.asarray(head["runs"][0], dtype=np.int64)
    cnts = np.asarray(head["runs"][1], dtype=np.int64)
    vals = tables["values"].get_column("value").to_numpy()
    series = list(zip(head["series"], head["sizes"], strict=True))
    if any(not (name in ("e2e", "queue") or name.startswith("stage:"))
           for name, _s in series):
        raise ValueError("a series of another kind")
    if sum(nr for _n, (nr, _v) in series) != len(mins) or \
            sum(nv for _n, (_r, nv) in series) != len(vals) or int(cnts.sum()) != len(vals):
        raise ValueError("runs and values do not add up")
    levels = [(str(k), int(v)) for k, v in head["levels"]]
    span = head["span"]
    use = [(float(t), float(u)) for t, u in head["usage"]]
    # (checked: from here on nothing raises)
    into.records += int(head["records"])
    for lv, nl in levels:
        into.levels[lv] += nl
    first, last = head["first"], head["last"]
    if first is not None and (into.first is None or first < into.first):
        into.first = first
    if last is not None and (into.last is None or last > into.last):
        into.last = last
    if span is not None:
        lo, hi = str(span[0]), str(span[1])
        sp = into.file_span.get(path)
        if sp is None:
            into.file_span[path] = [lo, hi]
        else:
            sp[0], sp[1] = min(sp[0], lo), max(sp[1], hi)
    for kind, key, b, k in rows:
        if kind == "code":
            c = into.codes.get(key)
            if c is None:
                c = into.codes[key] = Counter()
            c[b] += k
        else:
            (into.ok if kind == "ok" else into.failed)[b] += k
    r = v = 0
    for name, (nr, nv) in series:
        if nr:
            _minutes_of(into, name).add_runs(mins[r:r + nr], cnts[r:r + nr], vals[v:v + nv])
        r, v = r + nr, v + nv
    into.usage.extend(use)


def merge(into: Collect, part: Collect) -> None:
    """``part`` (the records after those of ``into``) added to ``into``."""
    into.records += part.records
    into.levels.update(part.levels)
    if part.first is not None and (into.first is None or part.first < into.first):
        into.first = part.first
    if part.last is not None and (into.last is None or part.last > into.last):
        into.last = part.last
    for p, (lo, hi) in part.file_span.items():
        sp = into.file_span.get(p)
        if sp is None:
            into.file_span[p] = [lo, hi]
        else:
            sp[0], sp[1] = min(sp[0], lo), max(sp[1], hi)
    into.ok.update(part.ok)
    into.failed.update(part.failed)
    for code, cnt in part.codes.items():
        c = into.codes.get(code)
        if c is None:
            c = into.codes[code] = Counter()
        c.update(cnt)
    for name, m in _series(part):
        mins, cnts, vals = m.runs()
        if len(mins):
            _minutes_of(into, name).add_runs(mins, cnts, vals)
    into.usage.extend(part.usage)


class Unread(Exception):
    """A file's part that neither its companion nor the frame read can give (the frame
    was read without the columns it is made from): the caller reads again with them."""


class FileTables:
    """Each file's valid sidecar in a scan (``look``), and the companions of those that
    are read as a whole (``load``, ``save``)."""

    def __init__(self, write: bool) -> None:
        self.write = write
        self.whole: dict[str, tuple[Path, str, int]] = {}  # path -> sidecar, key, rows
        self.every = False  # (every file has one)

    def look(self, scan: Scan) -> bool:
        """Find each file's sidecar (as ``sidecar.frames`` looks for it); True when
        every file has one."""
        from ..reading import sidecar

        every = True
        use = sidecar.applies(scan)
        for stream in scan.streams():
            for f in scan.snap.stream_files(stream):
                key = sidecar.identity(f) if use and sidecar.eligible(f) else None
                got = self._look(f, key) if key is not None else None
                if got is None or key is None:
                    every = False
                else:
                    self.whole[str(f.path)] = (got[0], key, got[1])
        self.every = every
        return every

    @staticmethod
    def _look(f: LogFile, key: str) -> tuple[Path, int] | None:
        from ..reading import sidecar

        got = sidecar.find_checked(f, key, [])
        return None if got is None else (got[0], got[1][1].records)

    def load(self, path: str, name: str, tag: str) -> tuple[Any, dict[str, Any]] | None:
        from ..reading import companion

        w = self.whole.get(path)
        return None if w is None else companion.load(w[0], w[1], name, tag, w[2])

    def load_all(self, name: str, tag: str) -> dict[str, tuple[Any, dict[str, Any]]]:
        """Each file's companion ``name`` made by ``tag`` that loads: path -> its tables
        and values."""
        found = {}
        for path in self.whole:
            tv = self.load(path, name, tag)
            if tv is not None:
                found[path] = tv
        return found

    def has_all(self, found: Mapping[str, Any]) -> bool:
        """Has every file a sidecar, and a companion in ``found`` (``load_all``)?"""
        return self.every and len(found) == len(self.whole)

    def is_whole(self, path: str, df: Any) -> bool:
        """Is ``df`` the whole file at ``path`` (as many rows as its sidecar)?"""
        w = self.whole.get(path)
        return w is not None and df.height == w[2]

    def save(self, path: str, name: str, tag: str, tables: dict[str, Any],
             values: dict[str, Any]) -> None:
        """Keep the companion ``name`` of the file at ``path`` (where it has a sidecar and
        writing is on; a failed write only means the next run makes it again)."""
        from ..reading import companion

        w = self.whole.get(path)
        if w is not None and self.write:
            companion.save(w[0], w[1], name, tag, w[2], tables, values)


class ChartParts:
    """The charts of each file of a scan, fed in order (``feed``): from its companion
    where it has a usable one (``look`` finds them first), else from its frame (and the
    companion written where the frame is the whole file)."""

    def __init__(self, files: FileTables, utc: bool, mode: str) -> None:
        self.files = files
        self.utc = utc
        self.tag = tag(mode, utc)
        self.found: dict[str, tuple[Any, dict[str, Any]]] = {}  # path -> tables, values

    def look(self) -> bool:
        """Load each file's companion; True when every file has one (and a sidecar)."""
        self.found = self.files.load_all(NAME, self.tag)
        return self.files.has_all(self.found)

    def feed(self, into: Collect, f: LogFile, df: Any) -> None:
        """The file's frame (the whole file, or what a window leaves of it) to ``into``."""
        path = str(f.path)
        whole = self.files.is_whole(path, df)
        tv = self.found.pop(path, None)
        if tv is not None and whole:
            try:
                merge_tables(into, tv[0], tv[1], path)
            except Exception:  # (damaged, or not as this code writes it: made again)
                pass
            else:
                return
        if any(c not in df.columns for c in Collect.FRAME_COLUMNS):
            raise Unread(path)
        part = Collect(self.utc)
        part.feed_frame(df.select(Collect.FRAME_COLUMNS), path)
        if whole:
            self.files.save(path, NAME, self.tag, *tables_of(part))
        merge(into, part)


KEEP = "alerts-keep"


class KeepParts:
    """The alert rules' literal pre-filter (``alerts.keep_expr``) of each file, and the
    times of the records it keeps (``alerts.seconds``), kept as a companion (by the
    ``needles``) so that a later run reads the frames without their lines (``raw``, the
    largest column) and does not read their times again."""

    def __init__(self, files: FileTables, needles: tuple[str, ...]) -> None:
        self.files = files
        self.needles = needles
        h = hashlib.sha256(repr(tuple(needles)).encode()).hexdigest()[:16]
        self.tag = f"alerts-keep-3|{h}"
        self.found: dict[str, tuple[Any, dict[str, Any]]] = {}

    def look(self) -> bool:
        """Load each file's companion; True when every file has one (and a sidecar)."""
        self.found = self.files.load_all(KEEP, self.tag)
        return self.files.has_all(self.found)

    def kept(self, f: LogFile, df: Any) -> tuple[Any, Any] | None:
        """The records of the file's frame the pre-filter keeps, without ``raw``, and
        their times (None: not all in the normal form); None where the frame is not the
        whole file (the caller filters it as before)."""
        import numpy as np

        from ..analyses.alerts import keep_expr, seconds

        path = str(f.path)
        if not self.files.is_whole(path, df):
            if "raw" not in df.columns:
                raise Unread(path)
            return None
        tv = self.found.pop(path, None)
        if tv is not None:
            try:
                t = tv[0]["keep"]
                keep = t.get_column("keep")
                secs = t.get_column("t").filter(keep).to_numpy() if "t" in t.columns \
                    else None
                if keep.len() != df.height or keep.null_count() or \
                        (secs is not None and bool(np.isnan(secs).any())):
                    raise ValueError("not this file's")
            except Exception:
                pass
            else:
                return df.filter(keep).drop("raw", strict=False), secs
        if "raw" not in df.columns:
            raise Unread(path)
        import polars as pl

        keep = df.select(keep_expr(self.needles).alias("keep"))
        k = keep.get_column("keep")
        out = df.filter(k).drop("raw")
        secs = seconds(out)
        if secs is not None:  # (one table: the flag, the kept records' times, NaN elsewhere)
            t = np.full(df.height, np.nan)
            t[k.to_numpy()] = secs
            keep = keep.with_columns(pl.Series("t", t))
        self.files.save(path, KEEP, self.tag, {"keep": keep}, {})
        return out, secs
