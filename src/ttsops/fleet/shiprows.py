"""The rows of a run of one file's lines, as insert columns, many lines at a time.

The record loop of ``ship`` (``_records``: one ``fastparse.parse_line`` and one row
tuple a line) costs tens of microseconds a line in Python. Here the lines go to Polars
in runs of thousands, which takes the canonical line -- the text head ttsops (and the
stdlib's ``%(asctime)s - %(name)s - %(levelname)s - %(message)s``) writes, with
``key=value`` fields of printable ASCII and no quotes -- and splits it in Rust; every
other line is parsed by ``fastparse.parse_line`` as before. A line is taken by Polars
only where the parser's own branch for it is certain (the same head, the same field
split, the same ``to_number``), so every row is the row of the record loop: the same
records, grouped as every reader groups them (tab-led and foreign traceback lines
belong to the record before them), the lines that are no record as rows of their own
after it, the same texts and end offsets. A property test holds the two to each other.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from typing import Any

from ..logformat import FOREIGN_TB, Record, to_number, unescape_tb
from ..logformat.dialects import METRIC
from ..logformat.fastparse import parse_line
from ..logformat.heads import LEVEL_ALT
from ..logformat.record import NAME
from ..logformat.timestamps import norm_ts
from .schema import NUMBER_FIELDS, STRING_FIELDS
from .sqlwhere import DAY

_HEAD = (r"^([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}) - ([!-~]+) - "
         rf"({LEVEL_ALT}) - (.*)$")
_EVENT = rf"^({NAME}): "
# ``event: k=v, k=v`` where every part is one key=value: a value of printable ASCII
# without '"', ',', '=' or '\' (fastparse's strict body, or its lenient one, values
# stripped), or quoted without an escape, a comma, '=' or a control character (its text
# as written, what the strict and the lenient parser both read): fields by splitting
# at ", " and the first "="
_V = r'[ !#-+\--<>-\[\]-~]*'
_Q = r'"[^"\\,=\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]*"'
_BODY = rf"^{NAME}=(?:{_Q}|{_V})(?:, {NAME}=(?:{_Q}|{_V}))*$"
# a message of key=value pairs only (``total_duration_ms=366``): a metric record, when
# its text names no id (``parse.attribute`` would add one)
_BARE = r'[!#-+\--<>-\[\]-~]+'
_METRIC = rf"^{NAME}={_BARE}(?:, {NAME}={_BARE})*$"
_LEADING = r"^ *([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
_GOLDEN = (*STRING_FIELDS, *NUMBER_FIELDS)
_EPOCH = dt.date(1970, 1, 1)
_DAY = re.compile(DAY)


# the columns of a file's rows, in this order: the record's head, golden fields (``s_``:
# strings, '' when absent; ``n_``: numbers), all fields, traceback, text, end offset
SCHEMA: dict[str, Any] = {
    "ts": "str", "logger": "str", "level": "str", "event": "str",
    **{f"s_{k}": "str" for k in STRING_FIELDS}, **{f"n_{k}": "f64" for k in NUMBER_FIELDS},
    "keys": "list", "vals": "list", "traceback": "list", "text": "str", "end": "u64"}


def _dtypes() -> dict[str, Any]:
    import polars as pl

    kind = {"str": pl.String, "f64": pl.Float64, "list": pl.List(pl.String),
            "u64": pl.UInt64}
    return {c: kind[k] for c, k in SCHEMA.items()}


class Rows:
    """The rows made so far: Polars frames of ``SCHEMA``'s columns, in row order (one
    frame after ``frame()``). The list views (``ts``, ``strings``, ...) are for tests."""

    def __init__(self, parts: list[Any] | None = None) -> None:
        self.parts: list[Any] = [p for p in parts or [] if p.height]
        self.n = sum(p.height for p in self.parts)

    def __len__(self) -> int:
        return self.n

    def add(self, part: Any) -> None:
        if part.height:
            self.parts.append(part)
            self.n += part.height

    def frame(self) -> Any:
        import polars as pl

        if not self.parts:
            return pl.DataFrame(schema=_dtypes())
        if len(self.parts) > 1:
            self.parts = [pl.concat(self.parts, rechunk=True)]
        return self.parts[0]

    def ts_at(self, i: int) -> str:
        """The time of row ``i`` (-1: the last)."""
        part = self.parts[0 if i >= 0 else -1]
        if i >= 0:
            for part in self.parts:
                if i < part.height:
                    break
                i -= part.height
        return str(part.get_column("ts")[i])

    def take(self, upto: int) -> Rows:
        """The first ``upto`` rows, removed from these."""
        f = self.frame()
        head = Rows([f.slice(0, upto)])
        rest = f.slice(upto)
        self.parts, self.n = ([rest] if rest.height else []), rest.height
        return head

    def _col(self, c: str) -> list[Any]:
        return self.frame().get_column(c).to_list()

    @property
    def ts(self) -> list[str]:
        return self._col("ts")

    @property
    def logger(self) -> list[str]:
        return self._col("logger")

    @property
    def level(self) -> list[str]:
        return self._col("level")

    @property
    def event(self) -> list[str]:
        return self._col("event")

    @property
    def strings(self) -> list[list[str]]:
        return [self._col(f"s_{k}") for k in STRING_FIELDS]

    @property
    def numbers(self) -> list[list[float | None]]:
        return [self._col(f"n_{k}") for k in NUMBER_FIELDS]

    @property
    def keys(self) -> list[list[str]]:
        return self._col("keys")

    @property
    def vals(self) -> list[list[str]]:
        return self._col("vals")

    @property
    def traceback(self) -> list[list[str]]:
        return self._col("traceback")

    @property
    def text(self) -> list[str]:
        return self._col("text")

    @property
    def end(self) -> list[int]:
        return self._col("end")


def _vector(lines: list[str], ends: list[int]) -> Any:
    """The lines Polars takes: a frame of (i, ``SCHEMA``'s columns but the traceback;
    ``text``: the line, ``end``: its end offset) for them, in line order."""
    import polars as pl

    df = pl.DataFrame({"line": pl.Series("line", lines, dtype=pl.Utf8),
                       "end": pl.Series("end", ends, dtype=pl.UInt64)}).with_row_index("i")
    df = df.filter(pl.col("line").str.starts_with("2") | pl.col("line").str.starts_with("1"))
    df = df.select("i", "line", "end", h=pl.col("line").str.extract_groups(_HEAD)).unnest(
        "h").rename(
        {"1": "ts", "2": "logger", "3": "level", "4": "msg"})
    df = df.filter(pl.col("ts").is_not_null()).with_columns(
        ev=pl.col("msg").str.extract(_EVENT, 1))
    body = pl.when(pl.col("ev").is_not_null()).then(
        pl.col("msg").str.slice(pl.col("ev").str.len_bytes() + 2)).otherwise(pl.col("msg"))
    df = df.with_columns(body=body)
    ok_event = pl.col("ev").is_not_null() & pl.col("body").str.contains(_BODY)
    ok_metric = (pl.col("ev").is_null() & pl.col("msg").str.contains(_METRIC)
                 & ~pl.col("msg").str.contains("ts_", literal=True)
                 & ~pl.col("msg").str.contains("id=", literal=True))
    df = df.filter(ok_event | ok_metric).select(
        "i", "ts", "logger", "level", "line", "end", event=pl.col("ev").fill_null(METRIC),
        part=pl.col("body").str.split(", "))
    e = df.select("i", "part").explode("part").with_columns(
        pl.col("part").str.split_exact("=", 1).struct.rename_fields(["k", "v"])
    ).unnest("part")
    v = pl.col("v")
    e = e.with_columns(v=pl.when(v.str.starts_with('"')).then(
        v.str.slice(1, v.str.len_chars() - 2)).otherwise(v.str.strip_chars(" ")))
    kv = e.group_by("i", maintain_order=True).agg(keys="k", vals="v")
    kv = kv.filter(pl.col("keys").list.n_unique() == pl.col("keys").list.len())
    g = e.filter(pl.col("k").is_in(list(_GOLDEN)))
    wide = (g.pivot(on="k", index="i", values="v", aggregate_function="first")
            if g.height else g.select("i"))
    cols = []
    for k in STRING_FIELDS:
        c = pl.col(k) if k in wide.columns else pl.lit(None, pl.Utf8)
        cols.append(c.fill_null("").alias(f"s_{k}"))
    for k in NUMBER_FIELDS:
        c = pl.col(k) if k in wide.columns else pl.lit(None, pl.Utf8)
        cols.append(c.str.extract(_LEADING, 1).cast(pl.Float64, strict=False).alias(f"n_{k}"))
    out = df.drop("part").join(kv, on="i", how="inner").join(wide, on="i", how="left")
    return out.select("i", "ts", "logger", "level", "event", *cols, "keys", "vals",
                      text="line", end="end").sort("i")


class FileRows:
    """The rows of one file's text, run by run: ``add(lines, ends, final)`` makes the
    rows of the complete records among them (the last record may go on in the next run:
    it is kept until then) and appends them to ``rows``."""

    def __init__(self, file_ts: str) -> None:
        self.rows = Rows()
        self.seen = False  # a record met in this read of the file
        self.last_ts = file_ts  # the time of the lines that are no record before one
        self._carry: tuple[list[str], list[int]] = ([], [])

    def add(self, lines: list[str], ends: list[int], final: bool) -> None:
        import numpy as np

        cl, ce = self._carry
        if cl:
            lines, ends = cl + lines, ce + ends
        self._carry = ([], [])
        if not lines:
            return
        vec = _vector(lines, ends)
        vi = vec.get_column("i").to_numpy()
        # the lines Polars left (the rest of a record's lines, lines that are no record,
        # the records it does not take): parsed one by one
        left = np.ones(len(lines), np.bool_)
        left[vi] = False
        rest = np.flatnonzero(left).tolist()
        parsed: dict[int, Record] = {}
        for j in rest:
            line = lines[j]
            if not line or line[0] == "\t":
                continue
            rec = parse_line(line)
            if rec is not None:
                parsed[j] = rec
        starts = sorted(vi.tolist() + list(parsed)) if parsed else vi.tolist()
        cut = len(lines)
        if not final and (starts or self.seen):
            cut = starts[-1] if starts else 0  # the last record may go on
        if cut < len(lines):
            self._carry = (lines[cut:], ends[cut:])
        if cut == 0:
            return
        if len(vi) and vi[-1] >= cut:
            vec = vec.filter(vec.get_column("i") < cut)
        if cut < len(lines):
            parsed = {j: r for j, r in parsed.items() if j < cut}
            rest = [j for j in rest if j < cut]
        self._emit(lines, ends, vec, parsed, [j for j in starts if j < cut],
                   [j for j in rest if j not in parsed])

    def _emit(self, lines: list[str], ends: list[int], vec: Any, parsed: dict[int, Record],
              starts: list[int], others: list[int]) -> None:
        """Append the rows of ``lines`` (their records: ``vec`` and ``parsed``, starting
        at the line numbers ``starts``; ``others``: the lines that start no record) in
        the order the record loop gives them."""
        import bisect

        import polars as pl

        if parsed:
            vec = pl.concat([vec, _frame(parsed, lines, ends, vec.schema)]).sort("i")
        n = len(starts)
        tb: dict[int, list[str]] = {}
        for j, rec in parsed.items():
            if rec.traceback:
                tb[bisect.bisect_left(starts, j)] = list(rec.traceback)
        # the lines that are no record's head (rare): a record's traceback lines, lines
        # that are no record (held after it), lines before the first record
        held: dict[int, list[str]] = {}
        front: list[tuple[str, int]] = []
        text: dict[int, str] = {}
        end: dict[int, int] = {}
        first = starts[0] if starts else len(lines)
        for j in others:
            line = lines[j]
            if not line:
                continue
            if j < first:
                front.append((line, ends[j]))
                continue
            g = bisect.bisect_right(starts, j) - 1
            if line[0] == "\t":
                tb.setdefault(g, []).append(unescape_tb(line[1:]))
                text[g] = text.get(g, lines[starts[g]]) + "\n" + line
            elif FOREIGN_TB.match(line):
                tb.setdefault(g, []).append(line)
                text[g] = text.get(g, lines[starts[g]]) + "\n" + line
            else:
                held.setdefault(g, []).append(line)
            end[g] = ends[j]
        for line, e in front:  # before any record of this read: dated like the file
            self.rows.add(self._others([(line, e, self.last_ts)]))
        if n:
            self._records(vec.drop("i"), tb, text, end, held)

    def _records(self, vec: Any, tb: dict[int, list[str]], text: dict[int, str],
                 end: dict[int, int], held: dict[int, list[str]]) -> None:
        import polars as pl

        n = vec.height
        if text:
            at = list(text)
            vec = vec.with_columns(
                vec.get_column("text").scatter(at, [text[g] for g in at]),
                vec.get_column("end").scatter(at, [end[g] for g in at]))
            end = {g: e for g, e in end.items() if g not in text}
        if end:
            at = list(end)
            vec = vec.with_columns(vec.get_column("end").scatter(at, [end[g] for g in at]))
        if tb:  # (a list of lists costs Polars a Series each: built from the lines)
            rows = pl.Series("g", [g for g, t in tb.items() for _x in t], dtype=pl.UInt32)
            some = pl.DataFrame([rows, pl.Series("traceback", [x for t in tb.values() for x in t],
                                               dtype=pl.String)]).group_by("g").agg("traceback")
            col = pl.DataFrame({"g": pl.arange(0, n, dtype=pl.UInt32, eager=True)}).join(
                some, on="g", how="left", maintain_order="left").get_column("traceback")
            col = col.fill_null(pl.lit([], dtype=pl.List(pl.String)))
        else:
            col = pl.Series("traceback", [[]], dtype=pl.List(pl.String)).new_from_index(0, n)
        vec = vec.with_columns(col).select(list(SCHEMA))
        self.seen = True
        if not held:
            self.rows.add(vec)
            self.last_ts = str(vec.get_column("ts")[n - 1])
            return
        ts = vec.get_column("ts")
        ends = vec.get_column("end")
        a = 0
        for g in sorted(held):
            self.rows.add(vec.slice(a, g + 1 - a))
            when = str(ts[g])
            self.rows.add(self._others([(h, ends[g], when) for h in held[g]]))
            a = g + 1
        self.rows.add(vec.slice(a))
        self.last_ts = str(ts[n - 1])

    def _others(self, lines: list[tuple[str, int, str]]) -> Any:
        """Lines that are no record: rows of their own, each dated like the record
        before it ((line, end offset, time))."""
        import polars as pl

        k = len(lines)
        blank = [""] * k
        data: dict[str, list[Any]] = {
            "ts": [t for _x, _e, t in lines], "logger": blank, "level": blank,
            "event": blank, **{f"s_{f}": blank for f in STRING_FIELDS},
            **{f"n_{f}": [None] * k for f in NUMBER_FIELDS},
            "keys": [[]] * k, "vals": [[]] * k, "traceback": [[]] * k,
            "text": [x for x, _e, _t in lines], "end": [e for _x, e, _t in lines]}
        return pl.DataFrame(data, schema=_dtypes())

    def take(self, upto: int) -> Rows:
        return self.rows.take(upto)


def _frame(parsed: dict[int, Record], lines: list[str], ends: list[int], schema: Any) -> Any:
    """The records parsed one by one, as the frame ``_vector`` makes (``schema``)."""
    import polars as pl

    recs = list(parsed.values())
    fs = [r.fields for r in recs]
    data: dict[str, list[Any]] = {
        "i": list(parsed),
        "ts": [r.ts if r.ts[10:11] == " " else norm_ts(r.ts) for r in recs],
        "logger": [r.logger for r in recs],
        "level": [r.level for r in recs],
        "event": [r.event for r in recs],
        "keys": [list(f) for f in fs],
        "vals": [list(f.values()) for f in fs],
        **{f"s_{k}": [f.get(k, "") for f in fs] for k in STRING_FIELDS},
        **{f"n_{k}": [to_number(f.get(k)) for f in fs] for k in NUMBER_FIELDS},
        "text": [lines[j] for j in parsed],
        "end": [ends[j] for j in parsed],
    }
    return pl.DataFrame([pl.Series(k, data[k], dtype=schema[k]) for k in schema.names()])


def date_of(ts: str, cache: dict[str, dt.date]) -> dt.date:
    """The partition day of a row's time: the day it starts with (``YYYY-MM-DD``: then
    days sort as the times' text does, and a window's days bound its rows), else
    1970-01-01."""
    d = ts[:10]
    got = cache.get(d)
    if got is None:
        got = _EPOCH
        if _DAY.match(d):
            with contextlib.suppress(ValueError):
                got = dt.date.fromisoformat(d)
        cache[d] = got
    return got
