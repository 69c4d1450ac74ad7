"""``logs report``, the HTML pieces: one figure per chart (SVG from ``svgchart``), the
KPIs, the findings with their example traces, the alert episodes.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ...logline import Record
from ..analyses.answer import Report
from ..analyses.audio import AudioStats
from ..analyses.rules import Rule
from ..analyses.stats import partitioned, percentile, sort
from ..reading.timeargs import human_duration
from . import svgchart as sc
from .report_data import Series

STAGE_ORDER = ("text_normalize", "llm_prompt_gen", "llm_inference", "llm_postproc",
               "audio_render")
TOP_CODES = 8
GAP_NOTE = (" Grey bands: no data -- the records of that span were lost to damaged input "
            "(see Input problems), not a dip in traffic.")


def percentile_of(vals: Sequence[float], q: float) -> float | None:
    return percentiles_of(vals, (q,))[0]


def percentiles_of(vals: Sequence[float], qs: Sequence[float]) -> list[float | None]:
    """``percentile(sort(vals), q)`` for each q, None for no values (``stats.partitioned``)."""
    if not len(vals):
        return [None] * len(qs)
    return list(partitioned(vals, qs))


def esc(x: object) -> str:
    return html.escape(str(x))


def figure(name: str, title: str, how: str, svg: str | None) -> str:
    body = svg if svg else '<p class="empty">no data in this window</p>'
    return (f'<figure class="chart" data-chart="{esc(name)}"><figcaption>{esc(title)}'
            f'</figcaption><p class="how">{esc(how)}</p>{body}</figure>')


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
    return figure("requests", "Requests and failure rate",
                   f"Bars: completed syntheses per {per} (red: failed). Line: share that "
                   "failed (right axis)." + GAP_NOTE * bool(s.gaps), svg)


def chart_codes(s: Series) -> str:
    ranked = sorted(s.codes, key=lambda c: -sum(s.codes[c]))
    top, rest = ranked[:TOP_CODES], ranked[TOP_CODES:]
    stacks: list[tuple[str, Sequence[float], str]] = [
        (c, s.codes[c], sc.PALETTE[i % len(sc.PALETTE)]) for i, c in enumerate(top)]
    if rest:
        other = [sum(s.codes[c][i] for c in rest) for i in range(s.n)]
        stacks.append((f"{len(rest)} other codes", other, "#999999"))
    per = human_duration(s.bucket)
    svg = sc.stacked_bars("error codes over time", s.xs, s.bucket, stacks,
                          y_label=f"ERROR records per {per}", utc=s.utc,
                          gaps=s.gaps) if stacks else None
    return figure("error_codes", "Error codes over time",
                   f"ERROR records per {per}, stacked by error_code (the most frequent "
                   f"{TOP_CODES}).", svg)


def chart_stages(s: Series) -> str:
    series: list[sc.Series] = []
    legend: list[tuple[str, str, str]] = []
    names = [x for x in STAGE_ORDER if x in s.stage] + sorted(set(s.stage) - set(STAGE_ORDER))
    for i, st in enumerate(names):
        color = sc.PALETTE[i % len(sc.PALETTE)]
        both = [percentiles_of(v, (95, 50)) for v in s.stage[st]]
        series.append(sc.Series(f"{st} p95", [p[0] for p in both], color))
        series.append(sc.Series(f"{st} p50", [p[1] for p in both], color,
                                dash="4 3", width=1.3))
        legend.append((st, color, ""))
    if any(s.e2e):
        series.append(sc.Series("end to end p95", [percentile_of(v, 95) for v in s.e2e], "#111111",
                                width=2.4))
        legend.append(("end to end", "#111111", ""))
    legend += [("p95", "#777777", ""), ("p50", "#777777", "4 3")]
    has = any(v is not None for x in series for v in x.ys)
    svg = sc.line_chart("stage latency percentiles", s.xs, series, y_label="ms (log scale)",
                        log=True, utc=s.utc, legend=legend, gaps=s.gaps) if has else None
    return figure("stages", "Stage latency percentiles over time",
                   "Per stage: p95 (solid) and p50 (dashed) of stage_time, and end-to-end "
                   "p95 (black), per time bucket; log scale.", svg)


def chart_queue(s: Series) -> str:
    both = [percentiles_of(v, (50, 95)) for v in s.queue]
    p50 = [p[0] for p in both]
    p95 = [p[1] for p in both]
    has = any(v is not None for v in p95)
    svg = sc.line_chart("queue wait", s.xs, [sc.Series("queue wait p95", p95, "#e15759"),
                                              sc.Series("queue wait p50", p50, "#4e79a7")],
                        y_label="ms", utc=s.utc, gaps=s.gaps) if has else None
    return figure("queue", "Queue wait",
                   "Time a synthesis waited for a worker (queue_ms of synthesis_complete): "
                   "p50 and p95 per time bucket. High while stages stay flat = not enough "
                   "workers.", svg)


def chart_cache(s: Series, warn: float) -> str:
    if not s.usage:
        return figure("cache", "Cache disk usage", "cache_health reports", None)
    xs = [t for t, _ in s.usage]
    ys: list[float | None] = [u for _, u in s.usage]
    high: list[float | None] = [u if u > warn else None for _, u in s.usage]
    svg = sc.line_chart("cache disk usage", xs,
                        [sc.Series("usage %", ys, "#4e79a7"),
                         sc.Series(f"above {warn:g}%", high, sc.FAIL, width=3.2)],
                        y_label="disk used %", y_min=0.0, y_max=100.0,
                        hlines=[(warn, f"warning {warn:g}%", "#e67e22")], utc=s.utc,
                        points=len(xs) <= 60, gaps=s.gaps)
    return figure("cache", "Cache disk usage",
                   "Usage reported by cache_health; the dashed line is the warning "
                   "threshold, red where usage is above it.", svg)


def audio_figures(col: AudioStats) -> str:
    metrics = ("spectral_centroid", "rms")
    anomalies = col.anomalies(5.0, 20)
    out = []
    for m in metrics:
        groups: list[tuple[str, dict[str, float], str]] = []
        outl: dict[str, list[float]] = defaultdict(list)
        for key in sorted(col.values):
            v = sort(col.finite(key, m))
            if len(v) < 2:
                continue
            name = "/".join(key)
            groups.append((name, {"n": len(v), "p5": percentile(v, 5),
                                  "q1": percentile(v, 25), "median": percentile(v, 50),
                                  "q3": percentile(v, 75), "p95": percentile(v, 95)},
                           sc.PALETTE[len(groups) % len(sc.PALETTE)]))
        for a in anomalies:
            if a["metric"] == m:
                outl["/".join(a["group"])].append(float(a["value"]))
        svg = sc.box_plot(f"{m} per voice", groups, y_label=m, outliers=outl) \
            if groups else None
        out.append(figure(f"audio_{m}", f"Audio {m} per voice",
                           f"Distribution of {m} (audio_metrics) per voice; red dots: "
                           "anomalies against that voice's own baseline.", svg))
    return '<div class="pair">' + "".join(out) + "</div>"


def kpis(items: list[tuple[str, str, bool]]) -> str:
    return '<div class="kpis">' + "".join(
        f'<div class="kpi{" bad" if bad else ""}"><b>{esc(v)}</b><span>{esc(k)}</span>'
        "</div>" for k, v, bad in items) + "</div>"


def findings_html(diag: Report, traces: dict[str, list[Record]]) -> str:
    from ..analyses.trace import timelines

    rows = []
    for f in diag.data.get("findings", []):
        ex = f.get("example")
        link = f'<a href="#trace-{esc(ex)}" class="mono">{esc(ex)}</a>' \
            if ex and ex in traces else esc(ex or "")
        details = "".join(f"<li>{esc(d)}</li>" for d in f.get("details", []))
        rows.append(f'<tr><td class="num">{f["rank"]}</td><td><span class="sev '
                    f'{esc(f["severity"])}">{esc(f["severity"])}</span></td><td>'
                    f'{esc(f["kind"])}</td><td>{esc(f["title"])}<ul class="details">'
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
        out.append(f'<div id="trace-{esc(sid)}">'
                   + (figure(f"trace_{sid}", title, how, svg) if svg else "")
                   + f'<pre class="records">{esc(lines)}</pre></div>')
    return "".join(out)


def alerts_html(episodes: list[Any], rules: list[Rule]) -> str:
    out = ['<h2 id="alerts">Alert episodes</h2>',
           f'<p class="how">{len(rules)} rules; each episode fires once, at the record '
           "that made its condition true.</p>"]
    if not episodes:
        out.append('<p class="empty">no rule fired in this window</p>')
        return "".join(out)
    rows = "".join(
        f'<tr><td class="mono">{esc(a.ts)}</td><td>{esc(a.rule)}</td><td><span class="sev '
        f'{esc(a.severity)}">{esc(a.severity)}</span></td><td>{esc(a.detail)}</td>'
        f'<td class="mono">{esc(a.id or a.request_id or "")}</td><td class="mono">'
        f'{esc(a.resolved or "ongoing")}</td><td>{esc(a.message)}</td></tr>'
        for a in episodes[:500])
    out.append("<table><tr><th>fired</th><th>rule</th><th>severity</th><th>detail</th>"
               "<th>example</th><th>ended</th><th>meaning</th></tr>" + rows + "</table>")
    return "".join(out)
