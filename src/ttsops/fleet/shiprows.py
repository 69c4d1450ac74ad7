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
from dataclasses import dataclass, field
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


@dataclass
class Rows:
    """Insert columns of the rows made so far (``columns`` in ``schema.NAMES`` order less
    the file's constant ones), and each row's end offset."""

    ts: list[str] = field(default_factory=list)
    logger: list[str] = field(default_factory=list)
    level: list[str] = field(default_factory=list)
    event: list[str] = field(default_factory=list)
    strings: list[list[str]] = field(default_factory=lambda: [[] for _ in STRING_FIELDS])
    numbers: list[list[float | None]] = field(
        default_factory=lambda: [[] for _ in NUMBER_FIELDS])
    keys: list[list[str]] = field(default_factory=list)
    vals: list[list[str]] = field(default_factory=list)
    traceback: list[list[str]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    end: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ts)


def _vector(lines: list[str]) -> Any:
    """The lines Polars takes: a frame of (i, ts, logger, level, event, keys, vals,
    the golden fields) for them, in line order."""
    import polars as pl

    df = pl.DataFrame({"line": pl.Series("line", lines, dtype=pl.Utf8)}).with_row_index("i")
    df = df.filter(pl.col("line").str.starts_with("2") | pl.col("line").str.starts_with("1"))
    df = df.select("i", h=pl.col("line").str.extract_groups(_HEAD)).unnest("h").rename(
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
        "i", "ts", "logger", "level", event=pl.col("ev").fill_null(METRIC),
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
    return out.select("i", "ts", "logger", "level", "event", "keys", "vals", *cols).sort("i")


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
        cl, ce = self._carry
        if cl:
            lines, ends = cl + lines, ce + ends
        self._carry = ([], [])
        if not lines:
            return
        vec = _vector(lines)
        vi = vec.get_column("i").to_list()
        taken = set(vi)
        parsed: dict[int, Record] = {}
        for j, line in enumerate(lines):
            if j in taken or not line or line[0] == "\t":
                continue
            rec = parse_line(line)
            if rec is not None:
                parsed[j] = rec
        starts = sorted(taken.union(parsed))
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
        self._emit(lines[:cut], ends[:cut], vec, parsed, [j for j in starts if j < cut])

    def _emit(self, lines: list[str], ends: list[int], vec: Any, parsed: dict[int, Record],
              starts: list[int]) -> None:
        """Append the rows of ``lines`` (their records: ``vec`` and ``parsed``, starting
        at the line numbers ``starts``) in the order the record loop gives them."""
        import bisect
        from operator import itemgetter

        if parsed:
            import polars as pl

            vec = pl.concat([vec, _frame(parsed, vec.schema)]).sort("i")
        n = len(starts)
        cols = {c: vec.get_column(c).to_list() for c in vec.columns if c != "i"}
        pick = itemgetter(*starts) if n > 1 else (lambda xs: (xs[starts[0]],)) if n \
            else (lambda xs: ())
        text = list(pick(lines))
        end = list(pick(ends))
        tb: list[list[str]] = [[] for _ in range(n)] if parsed else [[]] * n
        for j, rec in parsed.items():
            if rec.traceback:
                tb[bisect.bisect_left(starts, j)] = list(rec.traceback)
        # the lines that are no record's head (rare): a record's traceback lines, lines
        # that are no record (held after it), lines before the first record
        held: dict[int, list[str]] = {}
        front: list[tuple[str, int]] = []
        own: set[int] = set()  # the records whose traceback list is their own
        taken = set(starts)
        first = starts[0] if starts else len(lines)
        for j, line in enumerate(lines):
            if not line or j in taken:
                continue
            if j < first:
                front.append((line, ends[j]))
                continue
            g = bisect.bisect_right(starts, j) - 1
            if g not in own:
                own.add(g)
                tb[g] = list(tb[g])
            if line[0] == "\t":
                tb[g].append(unescape_tb(line[1:]))
                text[g] += "\n" + line
            elif FOREIGN_TB.match(line):
                tb[g].append(line)
                text[g] += "\n" + line
            else:
                held.setdefault(g, []).append(line)
            end[g] = ends[j]
        for line, e in front:  # before any record of this read: dated like the file
            self._other(line, e, self.last_ts)
        if n:
            self._records(cols, tb, text, end, held)

    def _records(self, cols: dict[str, list[Any]], tb: list[list[str]], text: list[str],
                 end: list[int], held: dict[int, list[str]]) -> None:
        out = self.rows
        n = len(text)
        bounds = sorted({*held, n - 1})
        a = 0
        for g in bounds:
            b = g + 1
            out.ts.extend(cols["ts"][a:b])
            out.logger.extend(cols["logger"][a:b])
            out.level.extend(cols["level"][a:b])
            out.event.extend(cols["event"][a:b])
            for x, k in zip(out.strings, STRING_FIELDS, strict=True):
                x.extend(cols[f"s_{k}"][a:b])
            for y, k in zip(out.numbers, NUMBER_FIELDS, strict=True):
                y.extend(cols[f"n_{k}"][a:b])
            out.keys.extend(cols["keys"][a:b])
            out.vals.extend(cols["vals"][a:b])
            out.traceback.extend(tb[a:b])
            out.text.extend(text[a:b])
            out.end.extend(end[a:b])
            if b > a:
                self.last_ts = cols["ts"][b - 1]
                self.seen = True
            for h in held.get(g, ()):
                self._other(h, end[g], self.last_ts)
            a = b

    def _other(self, line: str, end: int, ts: str) -> None:
        """A line that is no record: a row of its own, dated like the record before it."""
        out = self.rows
        out.ts.append(ts)
        out.logger.append("")
        out.level.append("")
        out.event.append("")
        for x in out.strings:
            x.append("")
        for y in out.numbers:
            y.append(None)
        out.keys.append([])
        out.vals.append([])
        out.traceback.append([])
        out.text.append(line)
        out.end.append(end)

    def take(self, upto: int) -> Rows:
        """The first ``upto`` rows, removed from ``rows``."""
        r = self.rows
        head = Rows(r.ts[:upto], r.logger[:upto], r.level[:upto], r.event[:upto],
                    [x[:upto] for x in r.strings], [y[:upto] for y in r.numbers],
                    r.keys[:upto], r.vals[:upto], r.traceback[:upto], r.text[:upto],
                    r.end[:upto])
        self.rows = Rows(r.ts[upto:], r.logger[upto:], r.level[upto:], r.event[upto:],
                         [x[upto:] for x in r.strings], [y[upto:] for y in r.numbers],
                         r.keys[upto:], r.vals[upto:], r.traceback[upto:], r.text[upto:],
                         r.end[upto:])
        return head


def _frame(parsed: dict[int, Record], schema: Any) -> Any:
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
