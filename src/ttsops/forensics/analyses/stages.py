"""``logs stages``: where the time goes. Per stage p50/p95/p99 and share of end-to-end
time, queue wait included, optionally per voice/lang/engine; the slowest ids."""

from __future__ import annotations

import heapq
import math
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from ...logformat import STAGES
from ..reading.assemble import Assembler, Synthesis
from ..reading.filters import Cond, matches
from ..reading.scan import Query, Scan
from ..reading.sources import Snapshot
from ..reading.timeargs import shift
from .answer import Report, Table
from .stats import percentile

COMPONENTS = ("text_normalize", "queue_wait", *STAGES[1:])
NEEDLES = ("synthesis_start", "stage_time", "synthesis_complete")
JOIN_MARGIN_S = 900.0


class StageTimes:
    """Collector over joined syntheses: values per (group, component) and the slowest."""

    def __init__(self, by: list[str] | None = None, where: list[Cond] | None = None,
                 slowest: int = 5) -> None:
        self.by = by or []
        self.where = where or []
        self.values: dict[tuple[str, ...], dict[str, array[float]]] = defaultdict(
            lambda: defaultdict(lambda: array("d")))
        self.slow: list[tuple[float, str, str]] = []  # min-heap of (e2e, id, slowest comp)
        self.nslow = max(0, slowest)  # 0: none (a negative one would break the heap)
        self.n = 0
        self.stage_modes: Counter[str] = Counter()  # syntheses read as cumulative / per-stage

    def add_stage_modes(self, cumulative: int, per_stage: int) -> None:
        self.stage_modes["cumulative"] += cumulative
        self.stage_modes["per-stage"] += per_stage

    # the vectorised path (``vector.StageJoin``) hands over values in bulk
    def add_count(self, key: tuple[str, ...], n: int) -> None:
        self.n += n
        _ = self.values[key]  # a group with syntheses exists even without values

    def add_values(self, key: tuple[str, ...], comp: str, values: Any) -> None:
        self.values[key][comp].frombytes(values.astype("float64").tobytes())

    def offer_slow(self, e2e: float, sid: str, worst: str) -> None:
        if not self.nslow:
            return
        item = (e2e, sid, worst)
        if len(self.slow) < self.nslow:
            heapq.heappush(self.slow, item)
        elif item > self.slow[0]:
            heapq.heapreplace(self.slow, item)

    def feed(self, s: Synthesis) -> None:
        if self.where and not matches(self.where, s.fields()):
            return
        key = tuple((s.get(f) or "(none)") for f in self.by)
        vals = self.values[key]
        self.n += 1
        if s.stage_mode:
            self.stage_modes[s.stage_mode] += 1
        for stage, ms in s.stages.items():
            vals[stage].append(ms)
        q = s.queue
        if q is not None:
            vals["queue_wait"].append(q)
        e2e = s.e2e
        if e2e is not None:
            vals["end_to_end"].append(e2e)
            if self.nslow:
                comps = dict(s.stages)
                if q:
                    comps["queue_wait"] = q
                worst = max(comps, key=lambda c: comps[c]) if comps else "-"
                item = (e2e, s.id, worst)
                if len(self.slow) < self.nslow:
                    heapq.heappush(self.slow, item)
                elif item > self.slow[0]:
                    heapq.heapreplace(self.slow, item)

    def rows(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for key in sorted(self.values):
            vals = self.values[key]
            e2e_sum = math.fsum(vals.get("end_to_end", ())) or 0.0  # exact: any order
            # stages of other names (another pipeline's) after the known ones
            other = sorted(c for c in vals if c not in COMPONENTS and c != "end_to_end")
            for comp in (*COMPONENTS, *other, "end_to_end"):
                v = vals.get(comp)
                if not v:
                    continue
                sv = _sorted(v)
                total = math.fsum(sv)
                row: dict[str, Any] = dict(zip(self.by, key, strict=True))
                row.update(component=comp, n=len(sv), p50=percentile(sv, 50),
                           p95=percentile(sv, 95), p99=percentile(sv, 99),
                           mean=total / len(sv),
                           share_pct=(100.0 * total / e2e_sum) if e2e_sum else None)
                out.append(row)
        return out


def _sorted(values: array[float]) -> list[float]:
    """The values in order, as ``sorted`` gives them (numpy's stable sort for the long
    columns of a month of logs: several times faster than sorting Python floats)."""
    if len(values) < 100_000:
        return sorted(values)
    import numpy as np

    out: list[float] = np.sort(np.frombuffer(values, dtype=np.float64), kind="stable").tolist()
    return out


def collect(snap: Snapshot, since: str | None, until: str | None, col: StageTimes,
            use_index: bool = True, progress: Callable[[int], None] | None = None) -> Scan:
    start = shift(since, -JOIN_MARGIN_S) if since else None
    if not col.where:
        from ..reading import sidecar, vector, vector_frames

        whole = Scan(snap, Query(start, until, use_index=use_index, tracebacks=False),
                     progress=progress)
        if vector.available() and sidecar.covered(whole):
            # parsed once into sidecars: one vectorised pass over their columns
            return vector_frames.collect_stages_frames(whole, since, col.by, col,
                                                       slowest=col.nslow)
        probe = Scan(snap, Query(start, until, needles=NEEDLES, use_index=use_index,
                            tracebacks=False))
        if vector.wanted(probe.planned_bytes()):
            return vector.collect_stages(snap, start, since, until, col.by, col,
                                         slowest=col.nslow, use_index=use_index,
                                         progress=progress)
    scan = Scan(snap, Query(start, until, needles=NEEDLES, use_index=use_index,
                            tracebacks=False),
                progress=progress)
    asm = Assembler()
    for rec in scan.records():
        s = asm.feed(rec)
        if s is not None and (since is None or s.ts >= since):
            col.feed(s)
    return scan


def run(snap: Snapshot, since: str | None, until: str | None, *, by: list[str],
        where: list[Cond], slowest: int = 5, use_index: bool = True) -> Report:
    col = StageTimes(by, where, slowest)
    collect(snap, since, until, col, use_index)
    return report(col.rows(), sorted(col.slow, reverse=True), col.n,
                  col.stage_modes["cumulative"], col.stage_modes["per-stage"], since, until,
                  by=by, problems=snap.problems)


def report(rows: list[dict[str, Any]], slow: list[tuple[float, str, str]], n: int,
           cum: int, per: int, since: str | None, until: str | None, *,
           by: list[str] | tuple[str, ...] = (), problems: list[Any] | None = None) -> Report:
    """The ``stages`` report of per-component rows, the slowest syntheses (end to end,
    id, largest component; slowest first), ``n`` syntheses of which ``cum`` were read as
    cumulative and ``per`` as per-stage (``run``'s, and ``--source``'s from SQL)."""
    rep = Report("stages", problems=problems)
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}", "syntheses": n}
    if cum:  # say it: the values were converted (the tutorial's cumulative stage_time)
        rep.summary["stage_time"] = (f"cumulative (time since the request started) in {cum} "
                                     f"of {cum + per} syntheses: read as the difference "
                                     "from the stage before")
    t = Table("stages", "stage latency (ms); share = sum of the component / sum of end to end",
              [*by, "component", "n", "p50", "p95", "p99", "mean", "share_%"])
    for r in rows:
        t.rows.append([*(r[f] for f in by), r["component"], r["n"], round(r["p50"], 1),
                       round(r["p95"], 1), round(r["p99"], 1), round(r["mean"], 1),
                       None if r["share_pct"] is None else round(r["share_pct"], 1)])
    rep.tables.append(t)
    if slow:
        st = Table("slowest", "slowest syntheses", ["id", "end_to_end_ms", "largest component"])
        st.rows = [[i, e, c] for e, i, c in slow]
        rep.tables.append(st)
    rep.data = {"rows": rows, "slowest": [{"id": i, "e2e_ms": e, "component": c}
                                          for e, i, c in slow],
                "stage_time": {"cumulative": cum, "per_stage": per}}
    if n == 0:
        rep.empty = f"no completed syntheses between {since or 'the start'} and " \
                    f"{until or 'the end'}"
    return rep
