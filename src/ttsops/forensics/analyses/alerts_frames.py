"""The window rules (``count``, ``rate``, ``percentile``) evaluated over the sidecars'
frames as array passes, with exactly the episodes ``rules.Engine`` gives.

The engine evaluates a rule at every record it is fed that the rule selects, and, while an
episode is active, at every other record it is fed (time passes: the window moves on).
When the records' times never go back, the rule's condition at a fed record depends only
on the selected records at or before it within the rule's window (the engine's window is
then exactly those), not on the episode: so it is computed for every fed record at once
(window bounds by binary search over the times, counts by prefix sums, the percentile by
counting the values above the threshold, and exactly, as ``stats.percentile`` does, where
the counts cannot tell). Python then walks only the condition's changes: an episode fires
at the first selected record where the condition holds, and ends where it has been false
(at every fed record) for the rule's hold time -- the engine's hysteresis, the same
records and times.

Records are fed a frame (a file) at a time; each rule keeps the tail of its window and its
episode state across frames. ``Unfit`` is raised where the arrays would not give the
engine's answer (times that go back, values the engine's sorted list would treat apart):
the caller then feeds the engine record by record.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .rules import Alert, Rule, new_alert
from .stats import percentile

WINDOW_KINDS = ("count", "rate", "percentile")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PSEUDO_SLICE = {"day": 10, "hour": 13, "minute": 16}



def head_expr(rule: Rule) -> Any:
    """A rule's event and level as a Polars condition on a frame (``ERROR`` also takes
    ``CRITICAL``, as the engine does)."""
    import polars as pl

    c = pl.lit(True)
    if rule.event is not None:
        c = c & (pl.col("event") == rule.event)
    if rule.level is not None:
        lv = pl.col("level") == rule.level
        if rule.level == "ERROR":
            lv = lv | (pl.col("level") == "CRITICAL")
        c = c & lv
    return c

class Unfit(Exception):
    """The records are such that the arrays could differ from the engine (the times go
    back, a value the engine's sorted window treats apart): evaluate record by record."""


def handles(rule: Rule) -> bool:
    """Can this rule be evaluated here (a window rule, a window that is not negative,
    fields that can be read from the frame)?"""
    if rule.kind not in WINDOW_KINDS:
        return False
    horizon = rule.within_s if rule.kind == "count" else rule.over_s
    names = [c.field for c in (*rule.select, *rule.where)]
    if rule.kind == "percentile":
        names.append(rule.field)
    return horizon >= 0 and rule.hold_s >= 0 and all(_NAME.match(n) for n in names)


def columns(rules: list[Rule], hot: tuple[str, ...]) -> list[str]:
    """The sidecar's own columns (``k_<field>``) these rules read."""
    names = {c.field for r in rules for c in (*r.select, *r.where)}
    names |= {r.field for r in rules if r.kind == "percentile"}
    return [f"k_{n}" for n in sorted(names) if n in hot]


def _field(name: str, hot: tuple[str, ...], pseudo: bool) -> Any:
    """The expression for a record's field (``View.get``: its own field first, then, with
    ``pseudo``, the pseudo fields of ``filters.with_pseudo``)."""
    import polars as pl

    own = pl.col(f"k_{name}") if name in hot else \
        pl.col("fields").str.json_path_match(f"$.{name}")
    if not pseudo:
        return own
    if name in ("ts", "level", "event", "logger"):
        return pl.coalesce(own, pl.col(name))
    if name in _PSEUDO_SLICE:
        return pl.coalesce(own, pl.col("ts").str.slice(0, _PSEUDO_SLICE[name]))
    return own


class _Plan:
    """What a rule reads of a frame, as expressions evaluated in one pass: its selection
    and its condition (``=`` and ``!=`` in Polars; the other operators by the condition
    itself, once per distinct value), and the percentile's field."""

    def __init__(self, rule: Rule, hot: tuple[str, ...], prefix: str = "_") -> None:
        import polars as pl

        self.rule = rule
        self.prefix = prefix  # of the columns it makes (several plans in one ``select``)
        cheap = head_expr(rule)
        self.exprs: list[Any] = []
        self.py: list[tuple[str, Any]] = []  # (column, condition) decided in Python
        sel = self._native(rule.select, cheap.fill_null(False), hot, "s")
        self.exprs.append(sel.alias(prefix + "sel"))
        hit = self._native(rule.where, pl.lit(True), hot, "w")
        self.exprs.append(hit.alias(prefix + "hit"))
        if rule.kind == "percentile":
            self.exprs.append(_field(rule.field, hot, False).alias(prefix + "x"))

    def _native(self, conds: list[Any], base: Any, hot: tuple[str, ...], tag: str) -> Any:
        out = base
        for k, c in enumerate(conds):
            v = _field(c.field, hot, True)
            if c.op == "=":
                out = out & (v == c.value).fill_null(False)
            elif c.op == "!=":
                out = out & (v != c.value).fill_null(True)
            else:
                name = f"{self.prefix}{tag}{k}"
                self.exprs.append(v.alias(name))
                self.py.append((name, c))
        return out

    def masks(self, df: Any, got: Any = None) -> tuple[Any, Any, Any]:
        """(selected, matches ``where``, the field's number or NaN) for each row.
        ``got``: a frame that holds ``exprs`` of ``df`` already (made with others')."""
        rule, p = self.rule, self.prefix
        if got is None:
            got = df.select(self.exprs)
        sel = got.get_column(p + "sel").to_numpy()
        hit = got.get_column(p + "hit").to_numpy()
        for name, c in self.py:
            ok = _decided(got.get_column(name), c)
            if name.startswith(p + "s"):
                sel = sel & ok
            else:
                hit = hit & ok
        hit = hit & sel
        x = _numbers(got.get_column(p + "x"), hit) if rule.kind == "percentile" else None
        return sel, hit, x


def _decided(col: Any, cond: Any) -> Any:
    """``cond`` over a column of values (None: the field is absent): the condition called
    once per distinct value."""
    import polars as pl

    keys = [v for v in col.unique().to_list() if v is not None]
    vals = [bool(cond({cond.field: v})) for v in keys]
    return col.replace_strict(keys, vals, default=False, return_dtype=pl.Boolean) \
        .fill_null(False).to_numpy()


def _numbers(col: Any, within: Any) -> Any:
    """``rec.num(name)`` where ``within`` (NaN where None, or outside): read as diagnose
    reads them (``synth_frames.numbers``: what Polars casts to a finite float cast at
    once, any other text as ``Record.num`` reads it)."""
    from ..reading.synth_frames import numbers

    out = np.full(len(within), np.nan)
    idx = np.flatnonzero(within)
    if not len(idx):
        return out
    vals = numbers(col.gather(idx)).fill_null(np.nan).to_numpy()
    out[idx] = vals
    got = vals[~np.isnan(vals)]
    if not np.isfinite(got).all() or bool(((got == 0) & np.signbit(got)).any()):
        raise Unfit("a value the engine's sorted window treats apart")
    return out


def first_at_least(tt: Any, lo: int, hi: int, base: float, span: float) -> int:
    """The first k in [lo, hi) with ``tt[k] - base >= span`` (``tt`` never decreasing;
    the difference as the engine computes it), else ``hi``."""
    if lo >= hi:
        return hi
    view = tt[lo:hi]
    k = int(np.searchsorted(view, base + span, "left"))
    while k > 0 and view[k - 1] - base >= span:
        k -= 1
    while k < len(view) and not view[k] - base >= span:
        k += 1
    return lo + k


def window_starts(times: Any, at: Any, span: float) -> Any:
    """For each time in ``at``: the first index j of ``times`` (never decreasing) with
    ``t - times[j] <= span``, the engine's test (its window keeps those)."""
    n = len(times)
    if n == 0:
        return np.zeros(len(at), dtype=np.int64)
    lo = np.searchsorted(times, at - span, "left")  # (``at - span`` is rounded: mend)
    for _ in range(64):  # equal times are kept or dropped together: step a group at a time
        before = times[np.maximum(lo - 1, 0)]
        back = (lo > 0) & (at - before <= span)
        here = times[np.minimum(lo, n - 1)]
        fwd = (lo < n) & ~(at - here <= span)
        if not (back.any() or fwd.any()):
            return lo
        lo = np.where(back, np.searchsorted(times, before, "left"),
                      np.where(fwd, np.searchsorted(times, here, "right"), lo))
    raise Unfit("window bounds did not settle")


class WindowRule:
    """One window rule over the frames, fed a frame at a time (``feed``)."""

    def __init__(self, rule: Rule, hot: tuple[str, ...] = (), prefix: str = "_") -> None:
        self.rule = rule
        self.plan = _Plan(rule, hot, prefix)
        self.horizon = rule.within_s if rule.kind == "count" else rule.over_s
        self.tail_t = np.empty(0)  # the window's elements of earlier frames (their times)
        self.tail_v = np.empty(0)  # ... and values (rate: bad 0/1; percentile: the value)
        self.active: Alert | None = None
        self.false_t: float | None = None  # the engine's false_since, false_ts
        self.false_ts: str | None = None

    def feed(self, df: Any, tt: Any, got: Any = None) -> list[tuple[int, Alert]]:
        """The frame's records (fed ones, in order) and their times: the episodes that
        fired in it, each with its row. ``got``: the plan's columns made already."""
        rule = self.rule
        sel, hit, x = self.plan.masks(df, got)
        if rule.kind == "count":
            elem, vals = hit, np.zeros(0)
        elif rule.kind == "rate":
            elem, vals = sel, hit[sel].astype(np.float64)
        else:
            elem = hit & ~np.isnan(x)
            vals = x[elem]
        pos = np.flatnonzero(elem)
        if not len(pos) and not len(self.tail_t) and self.active is None and \
                (rule.kind != "count" or rule.count >= 1):
            # an empty window everywhere: the condition holds nowhere (count: none of at
            # least one; rate: no records; percentile: fewer than one value), nothing fires
            return []
        all_t = np.concatenate([self.tail_t, tt[pos]])
        all_v = np.concatenate([self.tail_v, vals]) if rule.kind != "count" else all_t
        ntail = len(self.tail_t)
        hi = ntail + np.cumsum(elem, dtype=np.int64)  # (the elements up to each row)
        fired: list[tuple[int, Alert]] = []
        quiet = self.active is None
        if quiet:  # no episode yet: one begins only at a selected row where the condition
            # holds (the condition of a row depends on that row alone: computed for those)
            s = np.flatnonzero(sel)
            quiet = not self._cond(window_starts(all_t, tt[s], self.horizon), hi[s],
                                   all_v).any()
        if not quiet:  # an episode in this frame: every row's condition, walked
            lo = window_starts(all_t, tt, self.horizon)
            cond = self._cond(lo, hi, all_v)
            fired = self._walk(df, tt, sel, sel & hit & cond, cond, lo, hi, all_v)
        if len(tt):  # keep what the next frame's windows can still hold
            keep = window_starts(all_t, tt[-1:], self.horizon)[0]
            self.tail_t, self.tail_v = all_t[keep:], all_v[keep:]
        return fired

    def _cond(self, lo: Any, hi: Any, v: Any) -> Any:
        rule = self.rule
        n = hi - lo
        if rule.kind == "count":
            return n >= rule.count
        if rule.kind == "rate":
            cs = np.concatenate([[0.0], np.cumsum(v)])
            bad = cs[hi] - cs[lo]
            with np.errstate(invalid="ignore", divide="ignore"):
                rate = bad / n
            return (n > 0) & (n >= rule.min_count) & (rate > rule.above)
        return self._pcond(lo, hi, v)

    def _pcond(self, lo: Any, hi: Any, v: Any) -> Any:
        """``percentile(window, q) > above``: told by counts where they can tell, else
        computed as the engine computes it."""
        rule = self.rule
        n = hi - lo
        enough = n >= max(rule.min_count, 1)
        gt = np.concatenate([[0], np.cumsum(v > rule.above)])
        ge = np.concatenate([[0], np.cumsum(v >= rule.above)])
        c_gt, c_ge = gt[hi] - gt[lo], ge[hi] - ge[lo]
        pos = (np.maximum(n, 1) - 1).astype(np.float64) * rule.q / 100.0
        r_lo = np.floor(pos)
        r_hi = np.minimum(r_lo + 1, n - 1)
        frac = pos - r_lo
        sure_true = r_lo >= n - c_gt  # the lower of the two ranks is above
        sure_false = (r_hi < n - c_ge) & ((frac < 0.99) | (r_hi == r_lo))
        cond = enough & sure_true
        unsure = np.flatnonzero(enough & ~sure_true & ~sure_false)
        if len(unsure):
            pairs = np.unique(np.stack([lo[unsure], hi[unsure]], axis=1), axis=0)
            val = {(int(a), int(b)): self._p(v, int(a), int(b)) > rule.above
                   for a, b in pairs}
            cond[unsure] = [val[(int(a), int(b))] for a, b in
                            zip(lo[unsure], hi[unsure], strict=True)]
        return cond

    def _p(self, v: Any, a: int, b: int) -> float:
        return percentile(np.sort(v[a:b]).tolist(), self.rule.q)

    def _fire(self, df: Any, i: int, lo: int, hi: int, v: Any) -> Alert:
        import polars as pl

        from ..reading import sidecar
        from .rule_model import dur

        rule = self.rule
        rec = sidecar.records_of(df.slice(i, 1).with_columns(tb=pl.lit(None, pl.Utf8)))[0]
        n = hi - lo
        if rule.kind == "count":
            return new_alert(rule, rec, float(n),
                             f"{n} matching records within {dur(rule.within_s)}")
        if rule.kind == "rate":
            bad = int(v[lo:hi].sum())
            rate = bad / n
            return new_alert(rule, rec, rate, f"{bad} of {n} ({100 * rate:.1f}%) over "
                                              f"{dur(rule.over_s)}")
        p = self._p(v, lo, hi)
        return new_alert(rule, rec, p, f"p{rule.q:g} {p:.1f} of {n} values over "
                                       f"{dur(rule.over_s)}")

    def _walk(self, df: Any, tt: Any, sel: Any, counted: Any, cond: Any, lo: Any, hi: Any,
              v: Any) -> list[tuple[int, Alert]]:
        """The engine's episode logic over the frame, visiting only the changes."""
        fires = np.flatnonzero(sel & cond)
        falses = np.flatnonzero(~cond)
        trues = np.flatnonzero(cond)
        csum = np.concatenate([[0], np.cumsum(counted)])
        ts = df.get_column("ts")
        hold = self.rule.hold_s
        out: list[tuple[int, Alert]] = []
        p, end = 0, len(tt)
        while p < end:
            if self.active is None:
                k = int(np.searchsorted(fires, p))
                if k == len(fires):
                    break
                i = int(fires[k])
                self.active = self._fire(df, i, int(lo[i]), int(hi[i]), v)
                out.append((i, self.active))
                p = i + 1
                continue
            if self.false_t is None:  # active and true: the next false evaluation
                k = int(np.searchsorted(falses, p))
                a = int(falses[k]) if k < len(falses) else end
                self.active.records += int(csum[a] - csum[p])
                if a == end:
                    break
                self.false_t, self.false_ts = float(tt[a]), str(ts[a])
                p = a
            k = int(np.searchsorted(trues, p))
            b = int(trues[k]) if k < len(trues) else end
            e = first_at_least(tt, p, b, self.false_t, hold)
            if e < b:  # false for the hold time: over
                self.active.resolved = self.false_ts
                self.active, self.false_t, self.false_ts = None, None, None
                p = e + 1
            elif b < end:  # true again
                self.false_t, self.false_ts = None, None
                p = b
            else:
                break
        return out
