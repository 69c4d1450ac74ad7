"""Alert rules (a small TOML file) and the engine that evaluates them over records in
time order, live (``logs tail``) or over history (``logs alerts``): the same code, the
same answers.

A rule selects records (``event``, ``level``, ``select`` conditions), keeps what it needs
of the last minutes (record times, not the clock: history and live agree) and is
evaluated at every record it selects. It fires once per episode -- when its condition
becomes true, at the record that made it true -- and the episode ends when the condition
is false at a later evaluation (``match``: after ``quiet`` without a match). See
``default_rules.toml`` for the kinds and an example of each.
"""

from __future__ import annotations

import bisect
import math
import tomllib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ...logline import Record
from ..reading.filters import matches
from .rule_model import (
    DEFAULT_RULES,
    KINDS,
    SEVERITIES,
    Rule,
    RuleError,
)
from .rule_model import View as _View
from .rule_model import conds as _conds
from .rule_model import dur as _dur
from .rule_model import fields_of as _fields
from .rule_model import int_setting as _int
from .rule_model import seconds as _seconds
from .stats import percentile


def _float(r: dict[str, Any], key: str, default: float, where: str) -> float:
    """A number setting (``0.05``, ``5`` or ``"0.05"``); anything else refused."""
    v = r.get(key, default)
    if isinstance(v, str):
        try:
            x = float(v)
        except ValueError:
            x = math.nan
    elif isinstance(v, int | float) and not isinstance(v, bool):
        x = float(v)
    else:
        x = math.nan
    if not math.isfinite(x):
        raise RuleError(f"{where}: {key} must be a number, not {v!r}")
    return x


def load(path: str | Path | None = None) -> list[Rule]:
    """Rules from ``path`` (TOML with ``[[rule]]`` tables), or the shipped defaults."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_RULES).read_text("utf-8")
        src = f"(built-in {DEFAULT_RULES})"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as e:
            raise RuleError(f"cannot read rules file {path}: {e.strerror or e}") from None
        src = str(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"{src}: not valid TOML: {e}") from None
    raw = doc.get("rule")
    if not isinstance(raw, list) or not raw:
        raise RuleError(f"{src}: no [[rule]] tables")
    rules: list[Rule] = []
    known = {"name", "kind", "severity", "message", "event", "level", "select", "where",
             "count", "within", "over", "above", "min_count", "field", "q", "quiet",
             "resolve_after"}
    for i, r in enumerate(raw, 1):
        if not isinstance(r, dict):
            raise RuleError(f"{src}: rule {i} is not a table ([[rule]])")
        name = str(r.get("name") or f"rule{i}")
        at = f"{src}: rule {name!r}"
        extra = set(r) - known
        if extra:
            raise RuleError(f"{at}: unknown key(s) {', '.join(sorted(extra))}")
        kind = r.get("kind")
        if kind not in KINDS:
            raise RuleError(f"{at}: kind must be one of {', '.join(KINDS)}")
        sev = r.get("severity", "warning")
        if sev not in SEVERITIES:
            raise RuleError(f"{at}: severity must be one of {', '.join(SEVERITIES)}")
        for key in ("event", "level"):
            if key in r and not isinstance(r[key], str):
                raise RuleError(f"{at}: {key} must be a string, not {r[key]!r}")
        rule = Rule(name, kind, sev, str(r.get("message", "")), r.get("event"),
                    r.get("level"), _conds(r.get("select"), f"{at}: select"),
                    _conds(r.get("where"), f"{at}: where"))
        if kind in ("count", "consecutive"):
            rule.count = _int(r, "count", 3, at)
            rule.within_s = _seconds(r.get("within", "10m"), f"{at}: within")
            if rule.count < 1:
                raise RuleError(f"{at}: count must be >= 1")
        if kind in ("rate", "percentile"):
            if "above" not in r:
                raise RuleError(f"{at}: {kind} needs 'above'")
            rule.above = _float(r, "above", 0.0, at)
            rule.over_s = _seconds(r.get("over", "5m"), f"{at}: over")
            rule.min_count = _int(r, "min_count", 1, at)
        if kind == "rate" and not rule.where:
            raise RuleError(f"{at}: rate needs 'where' (the records counted as bad)")
        if kind == "percentile":
            rule.field = str(r.get("field") or "")
            rule.q = _float(r, "q", 95.0, at)
            if not rule.field or not 0 <= rule.q <= 100:
                raise RuleError(f"{at}: percentile needs 'field' and 0 <= q <= 100")
        if "resolve_after" in r:
            rule.resolve_s = _seconds(r["resolve_after"], f"{at}: resolve_after")
        if kind == "match":
            rule.quiet_s = _seconds(r.get("quiet", "10m"), f"{at}: quiet")
            if not rule.where and not rule.event and not rule.select:
                raise RuleError(f"{at}: match needs 'where', 'event' or 'select'")
        rules.append(rule)
    names = [r.name for r in rules]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise RuleError(f"{src}: rule names must be unique ({', '.join(sorted(dup))})")
    return rules


@dataclass
class Alert:
    """One episode of one rule: when it fired (the record that made the condition true)
    and, once known, when it ended."""

    rule: str
    severity: str
    ts: str
    value: float | None
    message: str
    detail: str
    event: str
    id: str | None
    request_id: str | None
    line: str
    resolved: str | None = None
    records: int = 1  # selected records that matched during the episode

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Clock:
    """Record time text -> epoch seconds, cached per second (records come in order)."""

    def __init__(self) -> None:
        self.sec = ""
        self.base = 0.0

    def __call__(self, ts: str) -> float:
        s = ts[:19]
        if s != self.sec:
            from ..reading.timeargs import ts_to_epoch

            try:
                self.base = ts_to_epoch(s + ",000")
            except ValueError:
                return self.unreadable(ts)
            self.sec = s
        try:
            return self.base + int(ts[20:23]) / 1000.0
        except ValueError:
            return self.unreadable(ts)

    def unreadable(self, ts: str) -> float:
        """A time this clock cannot read: the last one it read (records come in order)."""
        return self.base


class _Stamp:
    """What ``Engine._tick`` reads of a record: its time."""

    __slots__ = ("ts",)

    def __init__(self, ts: str) -> None:
        self.ts = ts


class _State:
    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.active: Alert | None = None
        self.win: deque[tuple[float, Any]] = deque()
        self.bad = 0
        self.sorted: list[float] = []
        self.last_match = -1e18
        self.last_match_ts: str | None = None
        self.hit = False
        self.false_since: float | None = None
        self.false_ts: str | None = None


class Engine:
    """``alerts = engine.feed(record)`` for every record in time order; ``finish()``
    returns every episode (fired, and resolved when it ended)."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = list(rules)
        self.states = [_State(r) for r in self.rules]
        self.clock = Clock()
        self.episodes: list[Alert] = []
        self.last_ts = ""

    def wants(self, lines: list[str]) -> bool:
        """Would the scan's pre-filter (``needles``) hand this record (its lines) over?
        Live and over history the engine must see the same records."""
        needles = self.needles_cache
        if needles is None or not lines or lines[0].startswith("{"):
            return True
        return any(n in ln for ln in lines for n in needles)

    @property
    def needles_cache(self) -> tuple[str, ...] | None:
        if not hasattr(self, "_needles"):
            self._needles = self.needles()
        return self._needles

    def needles(self) -> tuple[str, ...] | None:
        """Literals for the scan's pre-filter (None: every record is needed)."""
        out: list[str] = []
        for r in self.rules:
            lit = r.literals()
            if lit is None:
                return None
            out.extend(lit)
        return tuple(dict.fromkeys(out))

    def feed(self, rec: Record, at: float | None = None) -> list[Alert]:
        """``at``: the record's time in seconds if known (else read by ``clock``)."""
        fired: list[Alert] = []
        t: float | None = at
        self.last_ts = rec.ts
        ev, lv = rec.event, rec.level
        fields: Any = None  # the fields with the pseudo fields (``_View``), once a record
        for st in self.states:
            rule = st.rule
            # ``rule.selects(rec)``, the cheap tests inline and the fields made once
            lvl = rule.level
            if (rule.event is not None and ev != rule.event) or (
                    lvl is not None and lv != lvl and not (lvl == "ERROR" and lv == "CRITICAL")):
                sel = False
            elif rule.select:
                if fields is None:
                    fields = _View(rec)
                sel = matches(rule.select, fields)
            else:
                sel = True
            if not sel:
                if st.active is not None:  # time passes: an episode can end, not start
                    if t is None:
                        t = self.clock(rec.ts)
                    self._tick(st, rec, t)
                continue
            if t is None:
                t = self.clock(rec.ts)
            if rule.where and fields is None:
                fields = _View(rec)
            cond, value, detail, hit = self._eval(st, rec, t, fields)
            if cond:
                st.false_since = None
            if cond and st.active is None:
                a = new_alert(rule, rec, value, detail())
                st.active = a
                self.episodes.append(a)
                fired.append(a)
            elif cond and hit and st.active is not None:
                st.active.records += 1
            elif not cond and st.active is not None:
                if rule.kind == "match":
                    st.active.resolved = st.last_match_ts
                    st.active = None
                    continue
                if st.false_since is None:  # recovered: over once it stays so
                    st.false_since, st.false_ts = t, rec.ts
                if t - st.false_since >= rule.hold_s:
                    st.active.resolved = st.false_ts
                    st.active = None
                    st.false_since = None
        return fired

    def pass_(self, ts: str, at: float | None = None) -> bool:
        """``feed`` of a record that no rule selects (only its time ``ts`` matters: the
        active episodes' windows move on); whether an episode is still active after it."""
        self.last_ts = ts
        t: float | None = at
        active = False
        for st in self.states:
            if st.active is not None:
                if t is None:
                    t = self.clock(ts)
                self._tick(st, _Stamp(ts), t)  # type: ignore[arg-type]  # (reads .ts)
                active = active or st.active is not None
        return active

    def quiet_until(self) -> float:
        """A time before which ``pass_`` changes nothing (no window drops a value, no
        episode ends): the active episodes' next possible change, less a millisecond."""
        nxt = math.inf
        for st in self.states:
            if st.active is None:
                continue
            rule = st.rule
            if rule.kind == "match":
                nxt = min(nxt, st.last_match + rule.quiet_s)
            elif rule.kind == "consecutive":
                continue
            else:
                horizon = rule.within_s if rule.kind == "count" else rule.over_s
                if horizon < 0:  # (an empty window's condition differs: tick each time)
                    return -math.inf
                if st.win:
                    nxt = min(nxt, st.win[0][0] + horizon)
                if st.false_since is not None:
                    nxt = min(nxt, st.false_since + rule.hold_s)
        return nxt - 1e-3

    def _tick(self, st: _State, rec: Record, t: float) -> None:
        """A record the rule does not look at: its window moves on to ``t``; the episode
        ends if the condition no longer holds (for as long as the rule requires)."""
        rule = st.rule
        win = st.win
        if rule.kind == "match":
            if t - st.last_match > rule.quiet_s:
                assert st.active is not None
                st.active.resolved = st.last_match_ts
                st.active = None
            return
        if rule.kind == "consecutive":
            return  # counted in records, not time
        horizon = rule.within_s if rule.kind == "count" else rule.over_s
        while win and t - win[0][0] > horizon:
            _, old = win.popleft()
            if rule.kind == "rate":
                st.bad -= old
            elif rule.kind == "percentile":
                del st.sorted[bisect.bisect_left(st.sorted, old)]
        if rule.kind == "count":
            cond = len(win) >= rule.count
        elif rule.kind == "rate":
            cond = len(win) >= rule.min_count and st.bad / len(win) > rule.above if win \
                else False
        else:
            n = len(st.sorted)
            cond = n >= max(rule.min_count, 1) and percentile(st.sorted, rule.q) > rule.above
        if cond:
            st.false_since = None
            return
        if st.false_since is None:
            st.false_since, st.false_ts = t, rec.ts
        if t - st.false_since >= rule.hold_s:
            assert st.active is not None
            st.active.resolved = st.false_ts
            st.active = None
            st.false_since = None

    def _eval(self, st: _State, rec: Record, t: float, fields: Any = None,
              ) -> tuple[bool, float | None, Callable[[], str], bool]:
        cond, value, detail = self._cond(st, rec, t, fields)
        return cond, value, detail, st.hit

    def _cond(self, st: _State, rec: Record, t: float, fields: Any = None,
              ) -> tuple[bool, float | None, Callable[[], str]]:
        """(condition, value, detail): the detail text is made only when an alert fires
        (a function of the values at this record)."""
        rule = st.rule
        hit = st.hit = matches(rule.where, fields if fields is not None else _fields(rec)) \
            if rule.where else True
        if rule.kind == "match":
            if not hit:
                # the episode is over once nothing matched for `quiet`
                return (st.active is not None and t - st.last_match <= rule.quiet_s,
                        None, str)
            new = t - st.last_match > rule.quiet_s
            st.last_match = t
            if new and st.active is not None:  # a new episode after a quiet spell
                st.active.resolved = st.last_match_ts
                st.active = None
            st.last_match_ts = rec.ts
            return True, None, rule.describe
        win = st.win
        if rule.kind == "count":
            if hit:
                win.append((t, None))
            while win and t - win[0][0] > rule.within_s:
                win.popleft()
            n = len(win)
            return n >= rule.count, float(n), \
                lambda: f"{n} matching records within {_dur(rule.within_s)}"
        if rule.kind == "consecutive":
            if not hit:
                win.clear()
                return False, None, str
            win.append((t, _value(rec, rule)))
            while len(win) > rule.count:
                win.popleft()
            ok = len(win) == rule.count and t - win[0][0] <= rule.within_s
            vals = [v for _, v in win]
            return ok, vals[-1] if vals else None, \
                lambda: f"{len(vals)} consecutive: " + ", ".join(_show(v) for v in vals)
        if rule.kind == "rate":
            win.append((t, hit))
            st.bad += hit
            while win and t - win[0][0] > rule.over_s:
                _, h = win.popleft()
                st.bad -= h
            n = len(win)
            bad = st.bad
            rate = bad / n if n else 0.0
            return (n >= rule.min_count and rate > rule.above), rate, \
                lambda: f"{bad} of {n} ({100 * rate:.1f}%) over {_dur(rule.over_s)}"
        # percentile
        x = rec.num(rule.field)
        if x is not None and hit:
            win.append((t, x))
            bisect.insort(st.sorted, x)
        while win and t - win[0][0] > rule.over_s:
            _, old = win.popleft()
            del st.sorted[bisect.bisect_left(st.sorted, old)]
        n = len(st.sorted)
        if n < max(rule.min_count, 1):
            return False, None, str
        p = percentile(st.sorted, rule.q)
        return p > rule.above, p, lambda: f"p{rule.q:g} {p:.1f} of {n} values over " \
            f"{_dur(rule.over_s)}"

    def finish(self) -> list[Alert]:
        return list(self.episodes)


def new_alert(rule: Rule, rec: Record, value: float | None, detail: str) -> Alert:
    """The episode ``rule`` starts at ``rec`` (its value and detail there)."""
    f = rec.fields
    return Alert(rule.name, rule.severity, rec.ts, value, rule.message or rule.describe(),
                 detail, rec.event, f.get("id"), f.get("request_id"), _line(rec))


def _value(rec: Record, rule: Rule) -> float | None:
    for c in rule.where:
        x = rec.num(c.field)
        if x is not None:
            return x
    return None


def _show(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def _line(rec: Record) -> str:
    from ...logline import render

    return render(Record(rec.ts, rec.logger, rec.level, rec.event, rec.fields))[:400]
