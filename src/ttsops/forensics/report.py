"""``logs report``: one self-contained HTML file (inline CSS and SVG, no script, no
network) with the charts an on-call engineer looks at first:

* request rate and failure rate over time; error codes over time
* stage latency percentiles over time (each stage, and end to end); queue wait
* cache-disk usage with its warning threshold
* audio-metric distributions per voice (with the anomalies of the robust baseline)
* the ``diagnose`` findings, one example trace each (as a timeline), and the alert
  episodes of the rules

Every number comes from the same readers and collectors as the other commands: one scan
for the charts, ``diagnose`` for the findings, ``alerts`` for the episodes, ``trace`` for
the examples.
"""

from __future__ import annotations

import contextlib
import html
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..logline import Record
from . import svgchart as sc
from .assemble import Assembler
from .audio import AudioStats
from .output import OutputError, Report
from .rules import Rule
from .sources import LogFile, Snapshot
from .stats import percentile
from .timeargs import epoch_to_ts, human_duration, shift, ts_to_epoch

STAGE_ORDER = ("text_normalize", "llm_prompt_gen", "llm_inference", "llm_postproc",
               "audio_render")
BUCKETS = (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
TOP_CODES = 8
GAP_NOTE = (" Grey bands: no data -- the records of that span were lost to damaged input "
            "(see Input problems), not a dip in traffic.")


def pick_bucket(span_s: float, most: int = 96) -> int:
    return next((b for b in BUCKETS if span_s / b <= most), BUCKETS[-1])


BASE = 60  # seconds: the finest bucket, collected while reading; merged at the end


@dataclass
class Collect:
    """What the charts need, per minute, for whatever span the records turn out to
    cover (the span is known only after reading: a whole-file gzip tells its times only
    when read). ``view`` merges the minutes into the chart's buckets."""

    utc: bool = True
    ok: Counter[int] = field(default_factory=Counter)
    failed: Counter[int] = field(default_factory=Counter)
    codes: dict[str, Counter[int]] = field(default_factory=dict)
    stage: dict[str, dict[int, array[float]]] = field(default_factory=dict)
    e2e: dict[int, array[float]] = field(default_factory=dict)
    queue: dict[int, array[float]] = field(default_factory=dict)
    usage: list[tuple[float, float]] = field(default_factory=list)
    records: int = 0
    levels: Counter[str] = field(default_factory=Counter)
    first: str | None = None  # the earliest and latest record times seen
    last: str | None = None
    # per file (by path): its first and last record times, to bound the holes of damage
    file_span: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._sec = ""
        self._base = 0.0

    def _t(self, ts: str) -> float:
        s = ts[:19]
        if s != self._sec:
            self._base = ts_to_epoch(s + ",000", self.utc)
            self._sec = s
        try:
            return self._base + int(ts[20:23]) / 1000.0
        except ValueError:
            return self._base

    def feed(self, rec: Record, path: str | None = None) -> None:
        self.records += 1
        self.levels[rec.level] += 1
        try:
            t = self._t(rec.ts)
        except ValueError:
            return
        ts = rec.ts
        if self.first is None or ts < self.first:
            self.first = ts
        if self.last is None or ts > self.last:
            self.last = ts
        if path is not None:
            sp = self.file_span.get(path)
            if sp is None:
                self.file_span[path] = [ts, ts]
            elif ts < sp[0]:
                sp[0] = ts
            elif ts > sp[1]:
                sp[1] = ts
        b = int(t // BASE)
        ev = rec.event
        f = rec.fields
        if ev == "synthesis_complete":
            if f.get("status") == "failed":
                self.failed[b] += 1
            else:
                self.ok[b] += 1
            x = rec.num("duration_ms")
            if x is not None:
                self.e2e.setdefault(b, array("d")).append(x)
            q = rec.num("queue_ms")
            if q is not None:
                self.queue.setdefault(b, array("d")).append(q)
        elif ev == "stage_time":
            st = f.get("stage")
            x = rec.num("duration_ms")
            if st and x is not None:
                self.stage.setdefault(st, {}).setdefault(b, array("d")).append(x)
        elif ev == "cache_health":
            u = rec.num("usage")
            if u is not None:
                self.usage.append((t, u))
        if rec.level in ("ERROR", "CRITICAL"):
            code = f.get("error_code") or f"({ev or 'no code'})"
            c = self.codes.get(code)
            if c is None:
                c = self.codes[code] = Counter()
            c[b] += 1

    # the sidecar columns ``feed_frame`` reads
    FRAME_COLUMNS = ("ts", "level", "event", "k_status", "k_duration_ms", "k_queue_ms",
                     "k_stage", "k_usage", "k_error_code")

    def feed_frame(self, df: Any, path: str | None = None) -> None:
        """``feed`` every record of a sidecar frame (``sidecar.frames`` with
        ``FRAME_COLUMNS``), in order, by Polars. Times not in the canonical form go
        record by record."""
        import polars as pl

        from .vector import num_expr

        n = df.height
        if n == 0:
            return
        ts = pl.col("ts")
        canon = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}$"
        sec = ts.str.slice(0, 19)
        base = None
        if df.select(ts.str.contains(canon).all()).item():
            if self.utc:
                base = sec.str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="ms",
                                           time_zone="UTC", strict=False).dt.epoch("s")
            else:  # local time: each second as ``ts_to_epoch`` takes it
                try:
                    secs = df.select(sec.unique()).to_series().to_list()
                    base = sec.replace_strict(
                        {x: int(ts_to_epoch(x + ",000", False)) for x in secs},
                        return_dtype=pl.Int64)
                except (ValueError, OverflowError):
                    base = None
        d = df.with_row_index("_row").with_columns(base=base) if base is not None else None
        if d is None or d.get_column("base").null_count():
            # times not in the canonical form, or not taken by Polars: record by record
            for row in df.iter_rows(named=True):
                self.feed(Record(row["ts"], "", row["level"], row["event"], {
                    k[2:]: v for k, v in row.items() if k.startswith("k_") and v is not None
                }), path)
            return
        self.records += n
        for lv, c in df.group_by("level", maintain_order=True).len().rows():
            self.levels[lv] += c
        # ``_t``: the second plus the milliseconds / 1000.0, divided by numpy (IEEE
        # division as Python's; Polars multiplies by the reciprocal)
        ms = d.get_column("ts").str.slice(20, 3).cast(pl.Int64).to_numpy()
        d = d.with_columns(b=pl.col("base") // BASE,
                           t=pl.col("base").cast(pl.Float64) + pl.Series(ms / 1000.0))
        lo, hi = d.select(ts.min().alias("lo"), ts.max().alias("hi")).row(0)
        if self.first is None or lo < self.first:
            self.first = lo
        if self.last is None or hi > self.last:
            self.last = hi
        if path is not None:
            sp = self.file_span.get(path)
            if sp is None:
                self.file_span[path] = [lo, hi]
            else:
                sp[0], sp[1] = min(sp[0], lo), max(sp[1], hi)
        ev = pl.col("event")
        comp = d.filter(ev == "synthesis_complete")
        if comp.height:
            for b, failed, c in (comp.group_by("b", (pl.col("k_status") == "failed")
                                               .fill_null(False).alias("f"),
                                               maintain_order=True)
                                 .len().rows()):
                (self.failed if failed else self.ok)[b] += c
            for name, dst in (("k_duration_ms", self.e2e), ("k_queue_ms", self.queue)):
                self._extend(comp.with_columns(x=num_expr(pl.col(name))), ["b"], dst)
        st = (d.filter((ev == "stage_time") & (pl.col("k_stage").fill_null("") != ""))
              .with_columns(x=num_expr(pl.col("k_duration_ms"))))
        if st.height:
            per: dict[tuple[Any, ...], array[float]] = {}
            self._extend(st, ["k_stage", "b"], per)
            for (stage, b), vals in per.items():
                self.stage.setdefault(stage, {}).setdefault(b, array("d")).extend(vals)
        us = (d.filter(ev == "cache_health").with_columns(x=num_expr(pl.col("k_usage")))
              .filter(pl.col("x").is_not_null()))
        self.usage.extend(us.select("t", "x").rows())
        err = d.filter(pl.col("level").is_in(["ERROR", "CRITICAL"]))
        if err.height:
            code = (pl.when(pl.col("k_error_code").fill_null("") != "")
                    .then(pl.col("k_error_code"))
                    .otherwise(pl.format("({})", pl.when(ev.fill_null("") != "").then(ev)
                                         .otherwise(pl.lit("no code")))))
            for c, b, k in err.group_by(code.alias("code"), "b", maintain_order=True).len().rows():
                cnt = self.codes.get(c)
                if cnt is None:
                    cnt = self.codes[c] = Counter()
                cnt[b] += k

    @staticmethod
    def _extend(d: Any, keys: list[str], dst: dict[Any, array[float]]) -> None:
        """Append the non-null ``x`` of ``d`` to ``dst[key]`` in the frame's order."""
        import polars as pl

        g = (d.filter(pl.col("x").is_not_null()).group_by(keys, maintain_order=True)
             .agg(pl.col("x")))
        for row in g.iter_rows():
            key = row[0] if len(keys) == 1 else tuple(row[:-1])
            a = dst.get(key)
            if a is None:
                a = dst[key] = array("d")
            a.extend(row[-1])

    def view(self, t0: float, bucket: int, n: int,
             gaps: list[tuple[float, float, str]]) -> Series:
        """The minutes merged into ``n`` buckets of ``bucket`` seconds from ``t0``;
        buckets that a gap (lost data) touches are left empty and listed."""
        ser = Series(t0, bucket, n, self.utc, gaps=gaps)
        missing = ser.missing

        def idx(b: int) -> int | None:
            i = int((b * BASE - t0) // bucket)
            return i if 0 <= i < n and not missing[i] else None
        for src, dst in ((self.ok, ser.ok), (self.failed, ser.failed)):
            for b, c in src.items():
                i = idx(b)
                if i is not None:
                    dst[i] += c
        for code, cnt in self.codes.items():
            row = ser.codes[code] = [0] * n
            for b, c in cnt.items():
                i = idx(b)
                if i is not None:
                    row[i] += c
        for src_a, dst_a in ((self.e2e, ser.e2e), (self.queue, ser.queue)):
            for b, vals in src_a.items():
                i = idx(b)
                if i is not None:
                    dst_a[i].extend(vals)
        for st, per in self.stage.items():
            rows = ser.stage[st] = [array("d") for _ in range(n)]
            for b, vals in per.items():
                i = idx(b)
                if i is not None:
                    rows[i].extend(vals)
        ser.usage = self.usage
        ser.records = self.records
        ser.levels = self.levels
        return ser


@dataclass
class Series:
    """What the charts need, per time bucket (``missing``: buckets without data)."""

    t0: float
    bucket: int
    n: int
    utc: bool = True
    ok: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    codes: dict[str, list[int]] = field(default_factory=dict)
    stage: dict[str, list[array[float]]] = field(default_factory=dict)
    e2e: list[array[float]] = field(default_factory=list)
    queue: list[array[float]] = field(default_factory=list)
    usage: list[tuple[float, float]] = field(default_factory=list)
    records: int = 0
    levels: Counter[str] = field(default_factory=Counter)
    gaps: list[tuple[float, float, str]] = field(default_factory=list)
    missing: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ok = [0] * self.n
        self.failed = [0] * self.n
        self.e2e = [array("d") for _ in range(self.n)]
        self.queue = [array("d") for _ in range(self.n)]
        self.missing = [False] * self.n
        for a, b, _why in self.gaps:
            lo = max(0, int((a - self.t0) // self.bucket))
            hi = min(self.n - 1, int((b - self.t0) // self.bucket))
            for i in range(lo, hi + 1):
                self.missing[i] = True

    @property
    def xs(self) -> list[float]:
        return [self.t0 + i * self.bucket for i in range(self.n)]


def holes(snap: Snapshot, col: Collect, utc: bool) -> list[tuple[float, float, str]]:
    """The time spans whose records were lost to damaged input, as (start, end, why):
    a problem's ``hole`` with its open ends bounded by the records around it (the last
    record of the file before, the first of the file after, in the same stream)."""
    out: list[tuple[float, float, str]] = []
    seen: set[tuple[str, str]] = set()
    files = snap.files
    for p in snap.problems:
        if p.hole is None or (p.path, p.message) in seen:
            continue
        seen.add((p.path, p.message))
        a, b = p.hole
        i = next((k for k, f in enumerate(files) if str(f.path) == p.path), None)
        if i is not None:
            f = files[i]
            same = [g for g in files if g.stream == f.stream]
            j = same.index(f)
            if a is None:  # lost from the start of the file: after the file before it
                for g in reversed(same[:j]):
                    sp = col.file_span.get(str(g.path))
                    if sp:
                        a = sp[1]
                        break
            if b is None:  # lost to the end of the file: until the file after it
                for g in same[j + 1:]:
                    sp = col.file_span.get(str(g.path))
                    if sp:
                        b = sp[0]
                        break
        if a is None or b is None or b < a:
            continue
        out.append((ts_to_epoch(a, utc), ts_to_epoch(b, utc),
                    f"{Path(p.path).name}: {p.message}"))
    return out


def _pct(vals: array[float], q: float) -> float | None:
    if not vals:
        return None
    return percentile(sorted(vals), q)


def _esc(x: object) -> str:
    return html.escape(str(x))


def _figure(name: str, title: str, how: str, svg: str | None) -> str:
    body = svg if svg else '<p class="empty">no data in this window</p>'
    return (f'<figure class="chart" data-chart="{_esc(name)}"><figcaption>{_esc(title)}'
            f'</figcaption><p class="how">{_esc(how)}</p>{body}</figure>')


def chart_requests(s: Series) -> str:
    total = [a + b for a, b in zip(s.ok, s.failed, strict=True)]
    rate = [100.0 * f / t if t else None for f, t in zip(s.failed, total, strict=True)]
    per = human_duration(s.bucket)
    svg = None
    if sum(total):
        svg = sc.stacked_bars(
            "requests and failure rate", s.xs, s.bucket,
            [("succeeded", s.ok, sc.OK), ("failed", s.failed, sc.FAIL)],
            y_label=f"syntheses per {per}",
            line=sc.Series("failure rate %", rate, "#222222"), right_label="failure rate %",
            utc=s.utc, gaps=s.gaps)
    return _figure("requests", "Requests and failure rate",
                   f"Bars: completed syntheses per {per} (red: failed). Line: share that "
                   "failed (right axis)." + GAP_NOTE * bool(s.gaps), svg)


def chart_codes(s: Series) -> str:
    ranked = sorted(s.codes, key=lambda c: -sum(s.codes[c]))
    top, rest = ranked[:TOP_CODES], ranked[TOP_CODES:]
    stacks = [(c, s.codes[c], sc.PALETTE[i % len(sc.PALETTE)]) for i, c in enumerate(top)]
    if rest:
        other = [sum(s.codes[c][i] for c in rest) for i in range(s.n)]
        stacks.append((f"{len(rest)} other codes", other, "#999999"))
    per = human_duration(s.bucket)
    svg = sc.stacked_bars("error codes over time", s.xs, s.bucket, stacks,
                          y_label=f"ERROR records per {per}", utc=s.utc,
                          gaps=s.gaps) if stacks else None
    return _figure("error_codes", "Error codes over time",
                   f"ERROR records per {per}, stacked by error_code (the most frequent "
                   f"{TOP_CODES}).", svg)


def chart_stages(s: Series) -> str:
    series: list[sc.Series] = []
    legend: list[tuple[str, str, str]] = []
    names = [x for x in STAGE_ORDER if x in s.stage] + sorted(set(s.stage) - set(STAGE_ORDER))
    for i, st in enumerate(names):
        color = sc.PALETTE[i % len(sc.PALETTE)]
        series.append(sc.Series(f"{st} p95", [_pct(v, 95) for v in s.stage[st]], color))
        series.append(sc.Series(f"{st} p50", [_pct(v, 50) for v in s.stage[st]], color,
                                dash="4 3", width=1.3))
        legend.append((st, color, ""))
    if any(s.e2e):
        series.append(sc.Series("end to end p95", [_pct(v, 95) for v in s.e2e], "#111111",
                                width=2.4))
        legend.append(("end to end", "#111111", ""))
    legend += [("p95", "#777777", ""), ("p50", "#777777", "4 3")]
    has = any(v is not None for x in series for v in x.ys)
    svg = sc.line_chart("stage latency percentiles", s.xs, series, y_label="ms (log scale)",
                        log=True, utc=s.utc, legend=legend, gaps=s.gaps) if has else None
    return _figure("stages", "Stage latency percentiles over time",
                   "Per stage: p95 (solid) and p50 (dashed) of stage_time, and end-to-end "
                   "p95 (black), per time bucket; log scale.", svg)


def chart_queue(s: Series) -> str:
    p50 = [_pct(v, 50) for v in s.queue]
    p95 = [_pct(v, 95) for v in s.queue]
    has = any(v is not None for v in p95)
    svg = sc.line_chart("queue wait", s.xs, [sc.Series("queue wait p95", p95, "#e15759"),
                                              sc.Series("queue wait p50", p50, "#4e79a7")],
                        y_label="ms", utc=s.utc, gaps=s.gaps) if has else None
    return _figure("queue", "Queue wait",
                   "Time a synthesis waited for a worker (queue_ms of synthesis_complete): "
                   "p50 and p95 per time bucket. High while stages stay flat = not enough "
                   "workers.", svg)


def chart_cache(s: Series, warn: float) -> str:
    if not s.usage:
        return _figure("cache", "Cache disk usage", "cache_health reports", None)
    xs = [t for t, _ in s.usage]
    ys: list[float | None] = [u for _, u in s.usage]
    high: list[float | None] = [u if u > warn else None for _, u in s.usage]
    svg = sc.line_chart("cache disk usage", xs,
                        [sc.Series("usage %", ys, "#4e79a7"),
                         sc.Series(f"above {warn:g}%", high, sc.FAIL, width=3.2)],
                        y_label="disk used %", y_min=0.0, y_max=100.0,
                        hlines=[(warn, f"warning {warn:g}%", "#e67e22")], utc=s.utc,
                        points=len(xs) <= 60, gaps=s.gaps)
    return _figure("cache", "Cache disk usage",
                   "Usage reported by cache_health; the dashed line is the warning "
                   "threshold, red where usage is above it.", svg)


def audio_figures(col: AudioStats) -> str:
    metrics = ("spectral_centroid", "rms")
    anomalies = col.anomalies(5.0, 20)
    out = []
    for m in metrics:
        groups = []
        outl: dict[str, list[float]] = defaultdict(list)
        for key in sorted(col.values):
            v = sorted(x for x in col.values[key][m] if x == x)
            if len(v) < 2:
                continue
            name = "/".join(key)
            groups.append((name, {"n": len(v), "p5": percentile(v, 5),
                                  "q1": percentile(v, 25), "median": percentile(v, 50),
                                  "q3": percentile(v, 75), "p95": percentile(v, 95)},
                           sc.PALETTE[len(groups) % len(sc.PALETTE)]))
        for a in anomalies:
            if a["metric"] == m:
                outl["/".join(a["group"])].append(float(a["value"]))  # type: ignore[arg-type]
        svg = sc.box_plot(f"{m} per voice", groups, y_label=m, outliers=outl) \
            if groups else None
        out.append(_figure(f"audio_{m}", f"Audio {m} per voice",
                           f"Distribution of {m} (audio_metrics) per voice; red dots: "
                           "anomalies against that voice's own baseline.", svg))
    return '<div class="pair">' + "".join(out) + "</div>"


def _kpis(items: list[tuple[str, str, bool]]) -> str:
    return '<div class="kpis">' + "".join(
        f'<div class="kpi{" bad" if bad else ""}"><b>{_esc(v)}</b><span>{_esc(k)}</span>'
        "</div>" for k, v, bad in items) + "</div>"


def findings_html(diag: Report, traces: dict[str, list[Record]]) -> str:
    from .trace import timelines

    rows = []
    for f in diag.data.get("findings", []):
        ex = f.get("example")
        link = f'<a href="#trace-{_esc(ex)}" class="mono">{_esc(ex)}</a>' \
            if ex and ex in traces else _esc(ex or "")
        details = "".join(f"<li>{_esc(d)}</li>" for d in f.get("details", []))
        rows.append(f'<tr><td class="num">{f["rank"]}</td><td><span class="sev '
                    f'{_esc(f["severity"])}">{_esc(f["severity"])}</span></td><td>'
                    f'{_esc(f["kind"])}</td><td>{_esc(f["title"])}<ul class="details">'
                    f'{details}</ul></td><td class="num">{f["affected"]}</td><td>{link}'
                    "</td></tr>")
    out = ['<h2 id="findings">Findings (diagnose)</h2>']
    if rows:
        out.append("<table><tr><th>#</th><th>severity</th><th>kind</th><th>finding</th>"
                   "<th>affected</th><th>example</th></tr>" + "".join(rows) + "</table>")
    else:
        out.append('<p class="empty">no findings in this window</p>')
    if traces:
        out.append('<h2 id="traces">Example traces</h2>')
    for sid, recs in traces.items():
        tls = [t for t in timelines(recs) if t.id == sid] or timelines(recs)
        title = f"Trace of {sid}"
        svg = None
        how = "the records of this synthesis, and where its time went"
        if tls:
            tl = tls[0]
            svg = sc.timeline(title, tl.rows(), tl.total_ms or 0.0)
            how = (f"end to end {tl.total_ms or 0:.0f} ms, {tl.status or '?'}"
                   + (f" {tl.error_code}" if tl.error_code else "")
                   + (f", last stage {tl.model_stage}" if tl.model_stage else "")
                   + "; the slowest component in red")
        lines = "\n".join(f"{r.ts} {r.level} {r.event} "
                          + ", ".join(f"{k}={v}" for k, v in list(r.fields.items())[:8])
                          for r in recs[:40])
        out.append(f'<div id="trace-{_esc(sid)}">'
                   + (_figure(f"trace_{sid}", title, how, svg) if svg else "")
                   + f'<pre class="records">{_esc(lines)}</pre></div>')
    return "".join(out)


def alerts_html(episodes: list[Any], rules: list[Rule]) -> str:
    out = ['<h2 id="alerts">Alert episodes</h2>',
           f'<p class="how">{len(rules)} rules; each episode fires once, at the record '
           "that made its condition true.</p>"]
    if not episodes:
        out.append('<p class="empty">no rule fired in this window</p>')
        return "".join(out)
    rows = "".join(
        f'<tr><td class="mono">{_esc(a.ts)}</td><td>{_esc(a.rule)}</td><td><span class="sev '
        f'{_esc(a.severity)}">{_esc(a.severity)}</span></td><td>{_esc(a.detail)}</td>'
        f'<td class="mono">{_esc(a.id or a.request_id or "")}</td><td class="mono">'
        f'{_esc(a.resolved or "ongoing")}</td><td>{_esc(a.message)}</td></tr>'
        for a in episodes[:500])
    out.append("<table><tr><th>fired</th><th>rule</th><th>severity</th><th>detail</th>"
               "<th>example</th><th>ended</th><th>meaning</th></tr>" + rows + "</table>")
    return "".join(out)


def chart_range(since: str | None, until: str | None, first: str | None,
                last: str | None) -> tuple[str, str, bool]:
    """The span the charts cover: the window asked for (``--until 2024-06-13`` includes
    that day) cut to the records read (``first``/``last``), so no empty day is
    charted; ``(lo, hi, hi_is_last_record)``."""
    lo = max(since, first) if since and first else since or first
    hi = min(until, last) if until and last else until or last
    if lo is None or hi is None:
        raise ValueError("no timestamps in these logs: nothing to chart")
    if lo >= hi:  # the window lies outside the logs: chart the window as asked
        return since or lo, until or hi, until is None
    return lo, hi, hi != until


def build(snap: Snapshot, since: str | None, until: str | None, *, rules: list[Rule],
          use_index: bool = True, utc: bool = True, warn_percent: float = 90.0,
          title: str | None = None, lookback_s: float = 6 * 3600,
          progress: Callable[[int], None] | None = None) -> tuple[str, dict[str, Any]]:
    """The report's HTML and a summary (for the command's own output)."""
    from . import alerts as alerts_mod
    from . import diagnose
    from .trace import find

    # one pass collects per minute; the span comes from the records themselves (a
    # whole-file gzip without an index tells its times only when read), then the
    # minutes are merged into the chart's buckets
    col = Collect(utc)
    audio = AudioStats()
    asm = Assembler()

    def tap(rec: Record, f: LogFile) -> None:
        col.feed(rec, str(f.path))
        s = asm.feed(rec)
        if s is not None:
            audio.feed(s)

    def tap_charts(rec: Record, f: LogFile) -> None:
        col.feed(rec, str(f.path))

    def tap_frame(f: LogFile, df: Any) -> None:
        col.feed_frame(df, str(f.path))

    if since is None:
        # one read: the charts are fed the records by diagnose's own pass (the same
        # records: without a start there is no look-back before it); read from the
        # sidecars, a file's frame at a time, counted by Polars; the syntheses (audio)
        # joined once, by diagnose
        diag = diagnose.run(snap, since, until, lookback_s=lookback_s, use_index=use_index,
                            utc=utc, tap=tap_charts, progress=progress, tap_frame=tap_frame,
                            frame_columns=Collect.FRAME_COLUMNS, audio=audio)
    else:  # diagnose reads a look-back before the window too: the charts' own read
        from .scan import Query, Scan

        for rec, f in Scan(snap, Query(since, until, use_index=use_index),
                           progress=progress).hits():
            tap(rec, f)
        diag = diagnose.run(snap, since, until, lookback_s=lookback_s, use_index=use_index,
                            utc=utc)
    lo, hi, to_end = chart_range(since, until, col.first, col.last)
    t0, t1 = ts_to_epoch(lo, utc), ts_to_epoch(hi, utc)
    if to_end:
        t1 += 0.001  # the last record (the end of the logs) belongs in the last bucket
    bucket = pick_bucket(max(t1 - t0, 60.0))
    t0 = t0 - t0 % bucket
    n = max(1, int((t1 - t0) // bucket) + (1 if (t1 - t0) % bucket else 0))
    ser = col.view(t0, bucket, n, holes(snap, col, utc))
    episodes, _ = alerts_mod.evaluate(snap, since, until, rules, use_index=use_index)
    examples = [f["example"] for f in diag.data.get("findings", []) if f.get("example")]
    examples = list(dict.fromkeys(examples))[:6]
    traces: dict[str, list[Record]] = {}
    if examples:
        start = shift(since, -lookback_s) if since else None
        hits, _ = find(snap, examples, start, until, use_index)
        for rec, _f in hits:
            for sid in examples:
                if sid in (rec.fields.get("id"), rec.fields.get("request_id")):
                    traces.setdefault(sid, []).append(rec)
    done = sum(ser.ok) + sum(ser.failed)
    nfail = sum(ser.failed)
    e2e_all = array("d")
    q_all = array("d")
    for a in ser.e2e:
        e2e_all.extend(a)
    for a in ser.queue:
        q_all.extend(a)
    p95 = _pct(e2e_all, 95)
    q95 = _pct(q_all, 95)
    crit = sum(1 for a in episodes if a.severity == "critical")
    kpis = _kpis([
        ("syntheses completed", f"{done:,}", False),
        ("failure rate", f"{100.0 * nfail / done:.2f}%" if done else "-",
         bool(done and nfail / done > 0.05)),
        ("p95 end to end", f"{p95:.0f} ms" if p95 is not None else "-", False),
        ("p95 queue wait", f"{q95:.0f} ms" if q95 is not None else "-",
         bool(q95 and q95 > 1000)),
        ("ERROR records", f"{ser.levels.get('ERROR', 0) + ser.levels.get('CRITICAL', 0):,}",
         False),
        ("alert episodes", f"{len(episodes)} ({crit} critical)", crit > 0),
    ])
    hosts = ", ".join(snap.streams)
    body = [kpis,
            '<h2 id="traffic">Traffic and errors</h2>', chart_requests(ser), chart_codes(ser),
            '<h2 id="latency">Latency</h2>', chart_stages(ser), chart_queue(ser),
            '<h2 id="cache">Cache</h2>', chart_cache(ser, warn_percent),
            '<h2 id="audio">Audio quality</h2>', audio_figures(audio),
            findings_html(diag, traces), alerts_html(episodes, rules)]
    if snap.problems:
        body.append('<h2 id="problems">Input problems</h2><ul>' + "".join(
            f"<li>{_esc(p)}</li>" for p in dict.fromkeys(str(p) for p in snap.problems))
            + "</ul>")
    if ser.gaps:
        body.append('<p class="how">Lost to damage (grey bands in the charts): ' + "; ".join(
            f"{_esc(epoch_to_ts(a, utc)[:19])} .. {_esc(epoch_to_ts(b, utc)[:19])} "
            f"({_esc(why.split(':')[0])})" for a, b, why in ser.gaps) + "</p>")
    title = title or "ttsops report"
    subtitle = (f"{lo} .. {hi} ({'UTC' if utc else 'local time'}), "
                f"{human_duration(t1 - t0)} in buckets of {human_duration(bucket)}; "
                f"{ser.records:,} records from {len(snap.files)} files ({hosts})")
    footer = (f"generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} by ttsops "
              "logs report; self-contained (no scripts, no network). Hover a bar, line or "
              "box for its values.")
    tpl = resources.files(__package__).joinpath("report_template.html").read_text("utf-8")
    page = (tpl.replace("@@TITLE@@", _esc(title)).replace("@@SUBTITLE@@", _esc(subtitle))
            .replace("@@FOOTER@@", _esc(footer)).replace("@@BODY@@", "\n".join(body)))
    summary = {"window": f"{lo} .. {hi}", "bucket": human_duration(bucket),
               "records": ser.records, "syntheses": done,
               "failure rate": f"{100.0 * nfail / done:.2f}%" if done else "-",
               "findings": len(diag.data.get("findings", [])),
               "missing spans": len(ser.gaps),
               "alert episodes": len(episodes), "example traces": len(traces)}
    return page, summary


def write(path: str | Path, page: str) -> None:
    """Write ``page`` to ``path`` atomically (a ``.part`` file renamed over it); raises
    OutputError when it cannot be written (missing directory, no permission)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".part")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(p)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
