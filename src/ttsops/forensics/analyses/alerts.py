"""``logs alerts``: the alert rules over history -- every episode of every rule in a
window, with the record that fired it and when it ended. The engine is the one
``logs tail`` runs live (``rules.Engine``), fed the same records in the same order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from ..reading.scan import Query, Scan
from ..reading.sources import Snapshot
from .answer import Report, Table
from .rules import Alert, Clock, Engine, Rule


def _start(snap: Snapshot, since: str | None, until: str | None, rules: list[Rule],
           use_index: bool, progress: Callable[[int], None] | None = None,
           ) -> tuple[Engine, Scan]:
    """A fresh engine and the scan it is fed from (its literal pre-filter)."""
    eng = Engine(rules)
    scan = Scan(snap, Query(since, until, needles=eng.needles(), use_index=use_index,
                            tracebacks=False),
                progress=progress)
    scan.sidecar_needles = True  # type: ignore[attr-defined]  # (sidecar.applies)
    return eng, scan


def evaluate(snap: Snapshot, since: str | None, until: str | None, rules: list[Rule], *,
             use_index: bool = True, progress: Callable[[int], None] | None = None,
             ) -> tuple[list[Alert], Scan]:
    def start() -> tuple[Engine, Scan]:
        return _start(snap, since, until, rules, use_index, progress)

    eng, scan = start()
    if _on_frames(scan):
        from .alerts_frames import Unfit

        try:
            try:
                return _feed_frames(eng, scan), scan
            except Unfit:  # (times going back ...): every selected record to the engine
                eng, scan = start()
                return _feed_frames(eng, scan, vector=False), scan
        except _Unsure:  # a time the clock cannot read: the record path, from the start
            eng, scan = start()
    for rec in scan.records():
        eng.feed(rec)
    return eng.finish(), scan


class Shared:
    """``evaluate`` over the frames of another pass that reads every record of the
    window, file by file, in order (``report``: diagnose's pass over the sidecars), so
    the records are read once: that pass reads ``columns`` too and hands each file's
    frame to ``feed``; ``finish`` gives the episodes, or None where they must be
    evaluated on their own (``evaluate``: the frames' path does not apply, no frame was
    fed, or the array passes refused the records). A frame the line path made (a file
    without a sidecar: its ``raw`` texts are null) is read again for the rules alone,
    with their literal pre-filter, as ``evaluate`` reads it."""

    def __init__(self, snap: Snapshot, since: str | None, until: str | None,
                 rules: list[Rule], *, use_index: bool = True) -> None:
        self.since, self.until, self.rules, self.use_index = since, until, rules, use_index
        eng, scan = _start(snap, since, until, rules, use_index)
        self.ff: FrameFeed | None = FrameFeed(eng, scan.query.needles) \
            if _on_frames(scan) else None
        self.columns: list[str] = self.ff.columns if self.ff is not None else []
        self.fed = 0

    def feed(self, f: Any, df: Any, kept: bool = False, secs: Any = None) -> None:
        """A file's frame (``columns``); ``kept``: the literal pre-filter applied to it
        already (``keep_expr``'s rows, without ``raw``), ``secs`` its records' times
        (``seconds``) where known."""
        from ..reading import sidecar
        from ..reading.sources import Snapshot as Snap
        from .alerts_frames import Unfit

        ff = self.ff
        if ff is None:
            return
        self.fed += 1
        try:
            if kept:
                ff.feed(df.select(c for c in ff.columns if c != "raw"), kept=True, secs=secs)
            elif ff.needles is not None and df.height \
                    and df.get_column("raw").null_count() == df.height:
                _eng, one = _start(Snap([f], [f.label]), self.since, self.until, self.rules,
                                   self.use_index, progress=lambda _n: None)
                for _g, d in sidecar.frames(one, ff.columns):
                    ff.feed(d)
            else:
                ff.feed(df.select(ff.columns))
        except (Unfit, _Unsure):
            self.ff = None

    def flush(self) -> None:
        """Evaluate the frames held so far (the caller's last frame is in: they need not
        be held until ``finish``)."""
        from .alerts_frames import Unfit

        if self.ff is not None:
            try:
                self.ff.flush()
            except (Unfit, _Unsure):
                self.ff = None

    def finish(self) -> list[Alert] | None:
        from .alerts_frames import Unfit

        if self.ff is None or not self.fed:
            return None
        try:
            return self.ff.finish()
        except (Unfit, _Unsure):
            return None


# --- the same evaluation over the sidecars' frames -----------------------------------------
# The engine is fed only the records some rule selects by event and level (chosen on the
# frame); for the records between them it is told only their time (``Engine.pass_``), and
# only while an episode is active: what ``Engine.feed`` does with a record no rule selects.

class _Unsure(Exception):
    """A record time the engine's clock cannot read (it would reuse the last one read,
    which depends on the records it saw)."""


class _StrictClock(Clock):
    """The engine's clock, but a time it cannot read is ``_Unsure`` (the frame path falls
    back to the record path) instead of the last time read."""

    def unreadable(self, ts: str) -> float:
        raise _Unsure(ts)


def _on_frames(scan: Scan) -> bool:
    from ..reading import sidecar

    needles = scan.query.needles
    if len(scan.streams()) != 1 or not sidecar.covered(scan):
        return False
    return needles is None or (not any("\n" in x for x in needles)
                               and sidecar.needles_exact(scan))


def _picked(rules: list[Rule], hot: tuple[str, ...]) -> Any:
    """The frame rows some rule selects (its event, level, and equality on a field kept
    as a column of its own; the engine decides the rest)."""
    import polars as pl

    from .alerts_frames import head_expr

    picks = []
    for r in rules:
        c = head_expr(r)
        for cond in r.select:  # equality on a field kept as a column of its own
            if cond.field in hot and cond.op in ("=", "!="):
                k = pl.col(f"k_{cond.field}")
                c = c & ((k == cond.value) if cond.op == "=" else
                         ((k != cond.value) | k.is_null()))
        picks.append(c.fill_null(False))
    return pl.any_horizontal(picks).alias("_picked")


def _feed_frames(eng: Engine, scan: Scan, vector: bool = True) -> list[Alert]:
    """The episodes of ``eng.rules`` over the scan's frames: the window rules as array
    passes (``alerts_frames``, where ``vector``), the others by an engine fed the
    records they select; in the order the engine would have fired them."""
    from ..reading import sidecar

    ff = FrameFeed(eng, scan.query.needles, vector)
    for _f, df in sidecar.frames(scan, ff.columns):
        ff.feed(df)
    return ff.finish()


def keep_expr(needles: tuple[str, ...]) -> Any:
    """The records of a frame (its ``raw`` texts) the literal pre-filter ``needles``
    selects: a text holding one of them, or none (a record the line path made)."""
    import polars as pl

    return pl.col("raw").is_null() | pl.col("raw").str.contains(
        "|".join(pl.escape_regex(x) for x in needles))


FEED_ROWS = 40_000  # records fed at once (a few files: fewer, larger array passes)


class FrameFeed:
    """``_feed_frames`` fed the frames by its caller, in order (``feed``; each with
    ``columns``, ``raw`` among them for the literal pre-filter ``needles``), then
    ``finish``: the episodes. Frames are held until ``FEED_ROWS`` records (after the
    pre-filter) are, and evaluated at once."""

    def __init__(self, eng: Engine, needles: tuple[str, ...] | None,
                 vector: bool = True) -> None:
        import numpy as np

        from ..reading import sidecar
        from . import alerts_frames as af

        self.at = {r.name: k for k, r in enumerate(eng.rules)}
        self.windows = [af.WindowRule(r, sidecar.HOT, f"_{k}_")
                        for k, r in enumerate(r for r in eng.rules if vector and af.handles(r))]
        self.sub = Engine([r for r in eng.rules if not (vector and af.handles(r))])
        self.sub.clock = _StrictClock()
        self.needles = needles
        self.picked = _picked(self.sub.rules, sidecar.HOT) if self.sub.rules else None
        hot = sorted({c.field for r in self.sub.rules for c in r.select
                      if c.field in sidecar.HOT and c.op in ("=", "!=")})
        self.columns = list(dict.fromkeys([
            "ts", "logger", "level", "event", "fields", "dialect",
            *(["raw"] if needles is not None else []), *(f"k_{k}" for k in hot),
            *af.columns([w.rule for w in self.windows], sidecar.HOT)]))
        self.tagged: list[tuple[int, int, Alert]] = []
        self.base, self.last = 0, -np.inf
        self.held: list[Any] = []
        self.rows = 0

    def feed(self, df: Any, kept: bool = False, secs: Any = None) -> None:
        """A frame (its records in order, after those fed before); ``kept``: only the
        records the literal pre-filter selects already (``keep_expr``), without ``raw``;
        ``secs``: their times (``seconds``), where known."""
        import polars as pl

        if self.needles is not None and not kept:  # the records the pre-filter selects
            df = df.lazy().filter(keep_expr(self.needles)).drop("raw").collect()
        if df.height == 0:
            return
        if secs is not None:
            df = df.with_columns(pl.lit(True).alias("_ok"), pl.Series("_t", secs))
        self.held.append(df)
        self.rows += df.height
        if self.rows >= FEED_ROWS:
            self.flush()

    def flush(self) -> None:
        """The held frames evaluated at once: the records' times, every window rule's
        columns and the engine's pick made by one Polars call."""
        import polars as pl

        if not self.held:
            return
        held, self.held, self.rows = self.held, [], 0
        secs = [*_seconds_exprs()]
        if any("_t" in d.columns for d in held):  # (the times known: of the others made)
            held = [d if "_t" in d.columns else d.with_columns(secs) for d in held]
            secs = []
        lf = (held[0] if len(held) == 1 else pl.concat(held, how="vertical_relaxed")).lazy()
        made = [*secs, *(e for w in self.windows for e in w.plan.exprs)]
        if self.picked is not None:
            made.append(self.picked)
        got = lf.with_columns(made).collect()
        if got.height:
            self._evaluate(got.drop(["_ok", "_t", *(e.meta.output_name() for e in made)],
                                    strict=False), got)

    def _evaluate(self, df: Any, got: Any) -> None:
        import numpy as np

        from . import alerts_frames as af

        tt = _seconds_of(got)
        if self.windows:
            if tt[0] < self.last or bool((np.diff(tt) < 0).any()):
                raise af.Unfit("a record time earlier than the one before")
            self.last = tt[-1]
        base, at = self.base, self.at
        if self.picked is not None:
            for i, a in _feed_engine(self.sub, df, tt, got.get_column("_picked")):
                self.tagged.append((base + i, at[a.rule], a))
        for w in self.windows:
            self.tagged.extend((base + i, at[a.rule], a) for i, a in w.feed(df, tt, got))
        self.base += df.height

    def finish(self) -> list[Alert]:
        self.flush()
        self.tagged.sort(key=lambda x: (x[0], x[1]))
        return [a for _, _, a in self.tagged]


def _feed_engine(eng: Engine, df: Any, tt: Any, picked: Any) -> list[tuple[int, Alert]]:
    """A frame to the engine: the records some rule selects (``picked``: a boolean
    series, one a row), and for the others their time (``_pass``); the episodes fired,
    each with its row."""
    import numpy as np
    import polars as pl

    from ..reading import sidecar

    ts = df.get_column("ts")
    sub = df.filter(picked)
    recs = sidecar.records_of(sub.with_columns(tb=pl.lit(None, pl.Utf8)))
    out: list[tuple[int, Alert]] = []
    prev = 0
    for i, rec in zip(np.flatnonzero(picked.to_numpy()).tolist(), recs, strict=True):
        if prev < i:
            _pass(eng, ts, tt, prev, i)
        out.extend((i, a) for a in eng.feed(rec, float(tt[i])))
        prev = i + 1
    _pass(eng, ts, tt, prev, len(ts))
    return out


def _pass(eng: Engine, ts: Any, tt: Any, lo: int, hi: int) -> None:
    """The records ``lo:hi`` (times ``tt``, a numpy array; texts ``ts``) that no rule
    selects: each moves the active episodes on (``Engine.pass_``), skipped while nothing
    can change."""
    if not any(st.active is not None for st in eng.states):
        return
    nxt = eng.quiet_until()
    k = lo
    while k < hi:
        if not tt[k] >= nxt:  # the next record at or after ``nxt``
            later = tt[k:hi] >= nxt
            j = int(later.argmax())
            if not later[j]:
                return
            k += j
        if not eng.pass_(ts[k], float(tt[k])):
            return
        nxt = eng.quiet_until()
        k += 1


def seconds(df: Any) -> Any | None:
    """Each record's time in seconds as the engine's clock reads it (a numpy array), or
    None where a time is not in the normal form (the clock may read it otherwise)."""
    try:
        return _seconds(df)
    except _Unsure:
        return None


def _seconds(df: Any) -> Any:
    """Each record's time in seconds as the engine's clock reads it (``Clock``: the
    second through ``ts_to_epoch``, plus the milliseconds); ``_Unsure`` when a time is
    not the normal form, which the clock may read otherwise."""
    return _seconds_of(df.select(_seconds_exprs()))


def _seconds_exprs() -> list[Any]:
    """``_seconds``' columns: ``_ok`` (the normal form) and ``_t`` (the seconds)."""
    import polars as pl

    ts = pl.col("ts")
    return [
        ts.str.contains(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}").alias("_ok"),
        (ts.str.slice(0, 19).str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us",
                                             strict=False)
         .dt.epoch("s").cast(pl.Float64)
         + ts.str.slice(20, 3).cast(pl.Int64, strict=False).cast(pl.Float64) / 1000.0)
        .alias("_t")]


def _seconds_of(got: Any) -> Any:
    """The seconds of a frame with ``_seconds_exprs``' columns (``_Unsure``: see there)."""
    if got.height and not (got.get_column("_ok").all()
                           and got.get_column("_t").null_count() == 0):
        raise _Unsure("a time not in the normal form")
    return got.get_column("_t").to_numpy()


def run(snap: Snapshot, since: str | None, until: str | None, rules: list[Rule], *,
        use_index: bool = True, source: str = "") -> Report:
    episodes, _scan = evaluate(snap, since, until, rules, use_index=use_index)
    rep = Report("alerts", problems=snap.problems)
    by_rule = Counter(a.rule for a in episodes)
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}",
                   "rules": f"{len(rules)} ({source or 'built-in defaults'})",
                   "episodes": len(episodes),
                   "rules that fired": ", ".join(f"{r} ({n})" for r, n in by_rule.items())
                   or "-"}
    t = Table("alerts", "alert episodes, in order",
              ["fired", "rule", "severity", "value", "detail", "example", "ended"])
    for a in episodes:
        t.rows.append([a.ts, a.rule, a.severity,
                       None if a.value is None else round(a.value, 4), a.detail,
                       a.id or a.request_id or "", a.resolved or "(ongoing at the end)"])
    rep.tables.append(t)
    rr = Table("rules", "rules", ["rule", "kind", "severity", "condition", "meaning",
                                  "episodes"])
    for r in rules:
        rr.rows.append([r.name, r.kind, r.severity, r.describe(), r.message,
                        by_rule.get(r.name, 0)])
    rep.tables.append(rr)
    rep.data = {"episodes": [a.to_json() for a in episodes]}
    return rep
