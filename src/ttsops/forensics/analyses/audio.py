"""``logs audio``: audio-quality anomalies from ``audio_metrics``.

* fixed threshold: ``--where "spectral_centroid<1800"`` lists the ids that match;
* robust baseline (default): per voice (or ``--by`` groups), per metric, the median and
  MAD; a value further than ``k * 1.4826 * MAD`` from the median is an anomaly. A voice
  whose normal centroid is low is then not flagged just for being that voice.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..reading.assemble import Assembler, Synthesis
from ..reading.filters import Cond, matches
from ..reading.scan import Query, Scan
from ..reading.sources import Snapshot
from ..reading.timeargs import shift
from .answer import Report, Table, safe
from .stats import BIG, MAD_TO_SIGMA, floats, mad, median

METRICS = ("spectral_centroid", "rms", "peak", "silence_ratio", "clipped_ratio")
NEEDLES = ("synthesis_start", "audio_metrics", "synthesis_complete")


class AudioStats:
    """Collector over joined syntheses (voice from synthesis_start)."""

    def __init__(self, metrics: list[str] | None = None, by: list[str] | None = None,
                 where: list[Cond] | None = None) -> None:
        self.metrics = list(metrics or METRICS)
        self.by = by if by is not None else ["voice"]
        self.where = where or []
        self.reset()

    def reset(self) -> None:
        """Nothing fed yet (the question, ``metrics``/``by``/``where``, kept): a pass
        abandoned part way starts again."""
        self.values: dict[tuple[str, ...], dict[str, array[float]]] = defaultdict(
            lambda: defaultdict(lambda: array("d")))
        self.ids: dict[tuple[str, ...], list[tuple[str, str]]] = defaultdict(list)
        self.matched: list[tuple[str, str, dict[str, str]]] = []  # threshold mode
        self.n = 0
        # answers to ``baselines`` and ``anomalies`` by (question, arguments, n)
        self._answers: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    def feed(self, s: Synthesis) -> None:
        if s.audio is None:
            return
        self.n += 1
        if self.where:
            d = s.fields()
            d.update({k: v for k, v in s.audio.fields.items()})
            if matches(self.where, d):
                self.matched.append((s.id, s.audio.ts, d))
            return
        key = tuple((s.get(f) or "(none)") for f in self.by)
        self.ids[key].append((s.id, s.audio.ts))
        vals = self.values[key]
        for m in self.metrics:
            x = s.audio.num(m)
            vals[m].append(float("nan") if x is None else x)

    def finite(self, key: tuple[str, ...], m: str) -> Any:
        """The values of ``m`` for ``key`` that are numbers (not NaN), in order."""
        vals = self.values[key][m]
        if len(vals) < BIG:
            return [x for x in vals if x == x]
        a = floats(vals)
        return a[a == a]

    def _memo(self, what: str, *args: Any) -> Any:
        """What ``what`` gave for ``args`` while nothing has been fed since (``diagnose``
        and ``report`` ask the same collector the same questions), else None."""
        return self._answers.get((what, args, self.n))

    def _keep(self, what: str, args: tuple[Any, ...], value: Any) -> Any:
        self._answers[(what, args, self.n)] = value
        return value

    def baselines(self, min_n: int) -> list[dict[str, Any]]:
        got = self._memo("baselines", min_n)
        if got is not None:
            return list(got)
        return list(self._keep("baselines", (min_n,), self._baselines(min_n)))

    def _baselines(self, min_n: int) -> list[dict[str, Any]]:
        out = []
        for key in sorted(self.values):
            for m in self.metrics:
                v = self.finite(key, m)
                if len(v) < min_n:
                    continue
                med = median(v)
                out.append({"group": key, "metric": m, "n": len(v), "median": med,
                            "mad": mad(v, med)})
        return out

    def group_sizes(self) -> dict[tuple[str, ...], int]:
        """Syntheses with audio_metrics per group (robust mode)."""
        return {key: len(v) for key, v in sorted(self.ids.items())}

    def thin_groups(self, min_n: int) -> dict[tuple[str, ...], int]:
        """Groups with no metric of at least ``min_n`` values: no baseline, so nothing
        about them can be called anomalous (or normal)."""
        out = {}
        for key, n in self.group_sizes().items():
            if not any(len(self.finite(key, m)) >= min_n for m in self.metrics):
                out[key] = n
        return out

    def baseline_note(self, min_n: int, by: list[str]) -> str | None:
        """Why some (or all) groups have no baseline, in words; None when all have one."""
        thin = self.thin_groups(min_n)
        if not thin:
            return None
        shown = ", ".join(f"{'/'.join(k)} n={n}" for k, n in
                          sorted(thin.items(), key=lambda kv: (-kv[1], kv[0]))[:8])
        more = f" and {len(thin) - 8} more" if len(thin) > 8 else ""
        what = ",".join(by) or "group"
        return (f"{len(thin)} of {len(self.ids)} {what} groups have too few samples for a "
                f"baseline (min_n={min_n}): {shown}{more}")

    def anomalies(self, k: float, min_n: int) -> list[dict[str, Any]]:
        got = self._memo("anomalies", k, min_n)
        if got is not None:
            return list(got)
        return list(self._keep("anomalies", (k, min_n), self._anomalies(k, min_n)))

    def _anomalies(self, k: float, min_n: int) -> list[dict[str, Any]]:
        out = []
        for b in self.baselines(min_n):
            key, m = b["group"], b["metric"]
            scale = MAD_TO_SIGMA * float(b["mad"])
            if scale <= 0:
                continue
            med = float(b["median"])
            vals = self.values[key][m]
            if len(vals) < BIG:
                for (sid, ts), x in zip(self.ids[key], vals, strict=True):
                    if x == x and abs(x - med) > k * scale:
                        out.append({"id": sid, "ts": ts, "group": key, "metric": m,
                                    "value": x, "median": med, "z": (x - med) / scale})
                continue
            # many: the far values picked by numpy (the same comparisons), then their ids
            import numpy as np

            from .diagnose_synth_frames import Pairs

            a = floats(vals)
            at = np.flatnonzero((a == a) & (np.abs(a - med) > k * scale)).tolist()
            pairs = self.ids[key]
            if len(pairs) != len(vals):
                raise ValueError("ids and values of a group differ in length")
            got = pairs.at(at) if isinstance(pairs, Pairs) else [pairs[i] for i in at]
            for (sid, ts), i in zip(got, at, strict=True):
                x = float(vals[i])
                out.append({"id": sid, "ts": ts, "group": key, "metric": m, "value": x,
                            "median": med, "z": (x - med) / scale})
        out.sort(key=lambda a: (a["ts"], a["id"]))
        return out


def collect(snap: Snapshot, since: str | None, until: str | None, col: AudioStats,
            use_index: bool = True) -> None:
    start = shift(since, -900.0) if since else None
    scan = Scan(snap, Query(start, until, needles=NEEDLES, use_index=use_index,
                            tracebacks=False))
    asm = Assembler()
    for rec in scan.records():
        s = asm.feed(rec)
        if s is not None and (since is None or s.ts >= since):
            col.feed(s)


def run(snap: Snapshot, since: str | None, until: str | None, *, where: list[Cond],
        metrics: list[str] | None, by: list[str], k: float = 5.0, min_n: int = 20,
        ids_out: str | None = None, use_index: bool = True) -> Report:
    col = AudioStats(metrics, by, where)
    collect(snap, since, until, col, use_index)
    rep = Report("audio", problems=snap.problems)
    rep.summary = {"window": f"{since or 'start'} .. {until or 'end'}",
                   "syntheses with audio_metrics": col.n}
    ids: list[str]
    if where:
        rep.summary["mode"] = "fixed threshold: " + " and ".join(map(str, where))
        rep.summary["matching"] = len(col.matched)
        t = Table("matches", "syntheses matching the threshold",
                  ["id", "time", "voice", *[m for m in METRICS]])
        for sid, ts, d in col.matched:
            t.rows.append([sid, ts, d.get("voice", ""), *[d.get(m, "") for m in METRICS]])
        rep.tables.append(t)
        ids = [m[0] for m in col.matched]
        by_voice: dict[str, int] = defaultdict(int)
        for _sid, _ts, d in col.matched:
            by_voice[d.get("voice", "(none)")] += 1
        rep.data = {"mode": "threshold", "ids": ids, "by_voice": dict(by_voice)}
        if col.n and not col.matched:
            rep.text.append("no synthesis matches the threshold")
    else:
        rep.summary["mode"] = f"robust baseline per {','.join(by) or 'all'}: |x - median| > " \
                              f"{k:g} x 1.4826 x MAD"
        anomalies = col.anomalies(k, min_n)
        rep.summary["anomalies"] = len(anomalies)
        t = Table("anomalies", "anomalies", ["id", "time", *by, "metric", "value", "median",
                                             "robust_z"])
        for a in anomalies:
            t.rows.append([a["id"], a["ts"], *a["group"], a["metric"],
                           a["value"], round(float(a["median"]), 1),
                           round(float(a["z"]), 1)])
        rep.tables.append(t)
        base = col.baselines(min_n)
        bt = Table("baselines", "baselines", [*by, "metric", "n", "median", "mad"])
        for b in base:
            bt.rows.append([*b["group"], b["metric"], b["n"],
                            round(float(b["median"]), 4), round(float(b["mad"]), 4)])
        rep.tables.append(bt)
        ids = sorted({str(a["id"]) for a in anomalies})
        rep.data = {"mode": "robust", "k": k, "ids": ids,
                    "anomalies": [dict(a, group=list(a["group"])) for a in anomalies],
                    "baselines": [dict(b, group=list(b["group"])) for b in base]}
        thin = col.thin_groups(min_n)
        note = col.baseline_note(min_n, by)
        rep.summary["baselines"] = f"{len(col.ids) - len(thin)} of {len(col.ids)} groups"
        rep.data["no_baseline"] = [{"group": list(g), "n": n} for g, n in thin.items()]
        if col.n and not base:
            rep.text.append(safe(f"no baseline could be built: {note}; anomalies cannot be "
                                 "judged (widen the window or lower --min-n)"))
        elif not anomalies and col.n:
            rep.text.append("no anomalies: every value is within its group's baseline"
                            + (safe(f"; but {note}") if note else ""))
        elif note:
            rep.text.append(safe(note))
    if ids_out:
        Path(ids_out).write_text("".join(i + "\n" for i in sorted(set(ids))))
    if col.n == 0:
        rep.empty = "no audio_metrics records in this window"
    return rep
