"""``--where`` conditions, ``--bucket`` edges and ``--by`` group keys over field dicts.

Conditions: ``field OP value`` with OP one of ``= != < <= > >= ~ !~`` (``~`` is a regular
expression search). Several conditions are ANDed: repeat ``--where`` or separate with
commas (``status=failed,lang=zh``). Numeric comparisons use the leading number of the
value (``text_len=86 chars`` -> 86). Pseudo-fields: ``ts``, ``level``, ``event``,
``logger``, ``hour`` (``2024-06-12 14``), ``minute``, ``day``.
"""

from __future__ import annotations

import bisect
import operator
import re
from collections.abc import Callable, Iterable, Mapping

from ...logformat.record import to_number
from ...plain import Frozen

_COND_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!=|<=|>=|!~|=|<|>|~)\s*(.*?)\s*\Z")
_NUM_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class FilterError(ValueError):
    pass


class Cond(Frozen):
    FIELDS = ("field", "op", "value")
    __slots__ = FIELDS
    field: str
    op: str
    value: str

    def __init__(self, field: str, op: str, value: str) -> None:
        self._set("field", field)
        self._set("op", op)
        self._set("value", value)
        if self.op in _NUM_OPS and to_number(self.value) is None:
            raise FilterError(f"{self.field}{self.op}{self.value}: {self.op} needs a number")
        if self.op in ("~", "!~"):
            try:
                re.compile(self.value)
            except re.error as e:
                raise FilterError(f"bad regular expression {self.value!r}: {e}") from None

    def __call__(self, fields: Mapping[str, str]) -> bool:
        v = fields.get(self.field)
        op = self.op
        if op == "=":
            return v == self.value
        if op == "!=":
            return v != self.value
        if v is None:
            return False
        if op == "~":
            return re.search(self.value, v) is not None
        if op == "!~":
            return re.search(self.value, v) is None
        x = to_number(v)
        return x is not None and _NUM_OPS[op](x, float(self.value))

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.value}"


def parse_where(exprs: Iterable[str]) -> list[Cond]:
    out: list[Cond] = []
    for expr in exprs:
        for part in re.split(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:!=|<=|>=|!~|=|<|>|~))",
                             expr):
            if not part.strip():
                continue
            m = _COND_RE.match(part)
            if not m:
                raise FilterError(f"cannot read condition {part!r}: use field=value, "
                                  "field!=value, field<number, field>=number, field~regex")
            out.append(Cond(*m.groups()))
    return out


def matches(conds: list[Cond], fields: Mapping[str, str]) -> bool:
    return all(c(fields) for c in conds)


def literal_values(conds: list[Cond]) -> tuple[str, ...]:
    """Text a matching text-format line must contain (for the literal pre-filter): the
    values of equality conditions that are written bare (so appear verbatim)."""
    from ...logformat.escape import quote

    return tuple(c.value for c in conds
                 if c.op == "=" and c.field not in PSEUDO and c.value and quote(c.value) == c.value)


PSEUDO = ("ts", "level", "event", "logger", "hour", "minute", "day")


class Buckets(Frozen):
    FIELDS = ("field", "edges")
    __slots__ = FIELDS
    field: str
    edges: tuple[float, ...]

    def __init__(self, field: str, edges: tuple[float, ...]) -> None:
        self._set("field", field)
        self._set("edges", edges)

    def label(self, value: str | None) -> str:
        x = to_number(value)
        if x is None:
            return "(none)"
        i = bisect.bisect_right(self.edges, x)
        if i == 0:
            return f"<{_n(self.edges[0])}"
        if i == len(self.edges):
            return f">={_n(self.edges[-1])}"
        return f"[{_n(self.edges[i - 1])},{_n(self.edges[i])})"

    def order(self, label: str) -> float:
        if label == "(none)":
            return float("inf")
        if label.startswith("<"):
            return float("-inf")
        if label.startswith(">="):
            return float(label[2:])
        return float(label[1:].split(",")[0])


def _n(x: float) -> str:
    return str(int(x)) if x == int(x) else str(x)


def parse_buckets(specs: Iterable[str]) -> dict[str, Buckets]:
    out: dict[str, Buckets] = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        try:
            edges = tuple(sorted(float(x) for x in rest.split(",") if x.strip()))
        except ValueError:
            edges = ()
        if not sep or not name.strip() or not edges:
            raise FilterError(f"cannot read bucket {spec!r}: use field=e1,e2,... "
                              "(e.g. text_len=0,1,64,512,2000,4096)")
        out[name.strip()] = Buckets(name.strip(), edges)
    return out


def parse_by(text: str | None) -> list[str]:
    return [f.strip() for f in (text or "").split(",") if f.strip()]


def group_key(fields: Mapping[str, str], by: list[str], buckets: Mapping[str, Buckets],
              ) -> tuple[str, ...]:
    out = []
    for f in by:
        v = fields.get(f)
        b = buckets.get(f)
        out.append(b.label(v) if b is not None else "(none)" if v is None else v)
    return tuple(out)


def with_pseudo(rec_ts: str, level: str, event: str, logger: str,
                fields: Mapping[str, str]) -> dict[str, str]:
    d = dict(fields)
    d.setdefault("ts", rec_ts)
    d.setdefault("level", level)
    d.setdefault("event", event)
    d.setdefault("logger", logger)
    d.setdefault("day", rec_ts[:10])
    d.setdefault("hour", rec_ts[:13])
    d.setdefault("minute", rec_ts[:16])
    return d
