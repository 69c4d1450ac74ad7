"""Small hand-written SVG charts for the HTML report: time series (lines, stacked bars),
box plots and a stage timeline. Static markup, no script: a chart renders wherever SVG
does, offline, and every data mark carries a ``<title>`` (its value on hover) and the
class ``mark``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

W, H = 820, 270
ML, MR, MT, MB = 64, 64, 18, 44
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac")
FAIL = "#d62728"
OK = "#4e79a7"


def fmt(v: float) -> str:
    """A value for an axis or a tooltip: 0.05, 850, 12.5k, 3.2M."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 100 or v == int(v):
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.3g}"
    return f"{v:.2g}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    out = []
    x = start
    while x <= hi + step * 0.5:
        out.append(round(x, 10))
        x += step
    return out


def log_ticks(lo: float, hi: float) -> list[float]:
    lo, hi = max(lo, 1e-3), max(hi, lo * 10)
    out = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 10:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo / 2 <= v <= hi * 2:
                out.append(v)
        e += 1
    return out


def time_label(t: float, span: float, utc: bool = True) -> str:
    tm = time.gmtime(t) if utc else time.localtime(t)
    if span <= 2 * 86400:
        return time.strftime("%H:%M", tm)
    return time.strftime("%m-%d %H:%M", tm) if span <= 10 * 86400 else \
        time.strftime("%m-%d", tm)


def time_ticks(t0: float, t1: float, n: int = 8) -> list[float]:
    span = max(t1 - t0, 1.0)
    steps = (60, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400,
             2 * 86400, 7 * 86400)
    step = next((s for s in steps if span / s <= n), steps[-1])
    first = math.ceil(t0 / step) * step
    return [first + i * step for i in range(int((t1 - first) // step) + 1)]


@dataclass
class Series:
    name: str
    ys: Sequence[float | None]
    color: str
    dash: str = ""
    width: float = 2.0
    right: bool = False  # on the right-hand axis


class _Frame:
    """Plot area, scales and axes of one chart."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, *, log: bool = False,
                 w: int = W, h: int = H) -> None:
        self.w, self.h = w, h
        self.x0, self.x1 = x0, (x1 if x1 > x0 else x0 + 1)
        self.log = log
        if log:
            y0, y1 = max(y0, 1e-3), max(y1, max(y0, 1e-3) * 10)
        self.y0, self.y1 = y0, (y1 if y1 > y0 else y0 + 1)
        self.parts: list[str] = []

    def x(self, v: float) -> float:
        return ML + (v - self.x0) / (self.x1 - self.x0) * (self.w - ML - MR)

    def y(self, v: float, lo: float | None = None, hi: float | None = None) -> float:
        lo = self.y0 if lo is None else lo
        hi = self.y1 if hi is None else hi
        if self.log:
            v = max(v, lo)
            f = (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        else:
            f = (v - lo) / (hi - lo)
        return self.h - MB - f * (self.h - MT - MB)

    def axes(self, y_label: str, ticks: list[float], *, time_axis: bool = True,
             utc: bool = True, right: tuple[str, list[float], float, float] | None = None,
             ) -> None:
        p = self.parts
        bottom, top = self.h - MB, MT
        for v in ticks:
            yy = self.y(v)
            if top - 1 <= yy <= bottom + 1:
                p.append(f'<line class="grid" x1="{ML}" x2="{self.w - MR}" y1="{yy:.1f}" '
                         f'y2="{yy:.1f}"/><text class="tick" x="{ML - 6}" y="{yy + 4:.1f}" '
                         f'text-anchor="end">{escape(fmt(v))}</text>')
        p.append(f'<line class="axis" x1="{ML}" x2="{ML}" y1="{top}" y2="{bottom}"/>'
                 f'<line class="axis" x1="{ML}" x2="{self.w - MR}" y1="{bottom}" '
                 f'y2="{bottom}"/>')
        p.append(f'<text class="label" transform="translate(14,{(top + bottom) / 2:.0f}) '
                 f'rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
        if right is not None:
            label, rticks, lo, hi = right
            for v in rticks:
                yy = self.y(v, lo, hi) if not self.log else _lin(v, lo, hi, self.h)
                if top - 1 <= yy <= bottom + 1:
                    p.append(f'<text class="tick" x="{self.w - MR + 6}" y="{yy + 4:.1f}">'
                             f'{escape(fmt(v))}</text>')
            p.append(f'<text class="label" transform="translate({self.w - 12},'
                     f'{(top + bottom) / 2:.0f}) rotate(90)" text-anchor="middle">'
                     f'{escape(label)}</text>')
        if time_axis:
            span = self.x1 - self.x0
            for t in time_ticks(self.x0, self.x1):
                xx = self.x(t)
                p.append(f'<line class="axis" x1="{xx:.1f}" x2="{xx:.1f}" y1="{bottom}" '
                         f'y2="{bottom + 4}"/><text class="tick" x="{xx:.1f}" '
                         f'y="{bottom + 17}" text-anchor="middle">'
                         f'{escape(time_label(t, span, utc))}</text>')

    def svg(self, label: str, legend: list[tuple[str, str, str]]) -> str:
        leg, rows = _legend(legend, self.w, self.h + 10)
        return (f'<svg class="chart-svg" viewBox="0 0 {self.w} {self.h + 8 + 16 * rows}" '
                f'role="img" aria-label="{escape(label)}" '
                f'xmlns="http://www.w3.org/2000/svg">' + "".join(self.parts) + leg + "</svg>")


def _lin(v: float, lo: float, hi: float, h: int) -> float:
    f = (v - lo) / (hi - lo) if hi > lo else 0.0
    return h - MB - f * (h - MT - MB)


MISSING = "#b0b0b0"  # the band over a time span with no data (a damaged file's hole)


def _gaps(fr: _Frame, gaps: Sequence[tuple[float, float, str]]) -> None:
    """Grey hatched bands over spans whose records were lost (not a dip to zero)."""
    for a, b, why in gaps:
        a, b = max(a, fr.x0), min(b, fr.x1)
        if b <= a:
            continue
        x0, x1 = fr.x(a), fr.x(b)
        fr.parts.append(f'<rect class="missing" x="{x0:.1f}" y="{MT}" '
                        f'width="{max(x1 - x0, 1.5):.1f}" height="{fr.h - MT - MB}" '
                        f'fill="{MISSING}" fill-opacity="0.45" stroke="{MISSING}" '
                        f'stroke-dasharray="3 3"><title>no data: {escape(why)}</title></rect>')


def _legend(items: list[tuple[str, str, str]], w: int, y0: int) -> tuple[str, int]:
    """(name, color, dash) entries in rows under the chart; (markup, rows used)."""
    out = []
    x: float = ML
    y, rows = y0, 1 if items else 0
    for name, color, dash in items:
        width = 32 + 7.6 * len(name)
        if x + width > w - 8 and x > ML:
            x = ML
            y += 16
            rows += 1
        d = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{x}" x2="{x + 18}" y1="{y}" y2="{y}" stroke="{color}" '
                   f'stroke-width="3"{d}/><text class="legend" x="{x + 22}" y="{y + 4}">'
                   f'{escape(name)}</text>')
        x += width
    return "".join(out), rows


def line_chart(label: str, xs: Sequence[float], series: list[Series], *, y_label: str,
               log: bool = False, y_min: float | None = None, y_max: float | None = None,
               hlines: Sequence[tuple[float, str, str]] = (), right_label: str = "",
               utc: bool = True, points: bool = False,
               legend: list[tuple[str, str, str]] | None = None,
               gaps: Sequence[tuple[float, float, str]] = ()) -> str:
    """Lines over time (``None`` leaves a gap); ``hlines``: (value, label, color);
    ``gaps``: (start, end, why) spans drawn as missing data."""
    vals = [v for s in series if not s.right for v in s.ys if v is not None]
    vals += [v for v, _, _ in hlines]
    lo = y_min if y_min is not None else (min(vals) if vals else 0.0)
    hi = y_max if y_max is not None else (max(vals) if vals else 1.0)
    if not log and y_min is None:
        lo = min(lo, 0.0)
    ticks = log_ticks(lo, hi) if log else nice_ticks(lo, hi)
    if not log:
        lo, hi = min(ticks[0], lo), max(ticks[-1], hi)
    else:
        lo, hi = min(ticks[0], max(lo, 1e-3)), max(ticks[-1], hi)
    fr = _Frame(xs[0] if xs else 0.0, xs[-1] if xs else 1.0, lo, hi, log=log)
    rvals = [v for s in series if s.right for v in s.ys if v is not None]
    right = None
    if rvals or right_label:
        rt = nice_ticks(0.0, max(rvals) if rvals else 1.0)
        right = (right_label, rt, rt[0], rt[-1])
    fr.axes(y_label, ticks, utc=utc, right=right)
    _gaps(fr, gaps)
    for hv, name, color in hlines:
        yy = fr.y(hv)
        fr.parts.append(f'<line class="threshold" x1="{ML}" x2="{fr.w - MR}" y1="{yy:.1f}" '
                        f'y2="{yy:.1f}" stroke="{color}"/><text class="tick" '
                        f'x="{fr.w - MR - 4}" y="{yy - 4:.1f}" text-anchor="end" '
                        f'fill="{color}">{escape(name)}</text>')
    for s in series:
        runs: list[list[tuple[float, float, float, float]]] = [[]]
        for x, v in zip(xs, s.ys, strict=False):
            if v is None:
                if runs[-1]:
                    runs.append([])
                continue
            yy = _lin(v, right[2], right[3], fr.h) if s.right and right else fr.y(v)
            runs[-1].append((fr.x(x), yy, x, v))
        d = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        for run in runs:
            if not run:
                continue
            if len(run) == 1 or points:
                for px, py, x, v in run:
                    fr.parts.append(f'<circle class="mark" cx="{px:.1f}" cy="{py:.1f}" r="2.6" '
                                    f'fill="{s.color}"><title>{escape(s.name)} '
                                    f'{escape(time_label(x, 0, utc))}: {escape(fmt(v))}'
                                    f'</title></circle>')
                if len(run) == 1:
                    continue
            pts = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in run)
            fr.parts.append(f'<polyline class="mark" fill="none" stroke="{s.color}" '
                            f'stroke-width="{s.width}"{d} points="{pts}"><title>'
                            f'{escape(s.name)}</title></polyline>')
    if legend is None:
        legend = [(s.name, s.color, s.dash) for s in series]
    legend = legend + [(n, c, "6 4") for _, n, c in hlines]
    if gaps:
        legend = [*legend, ("no data (damaged input)", MISSING, "3 3")]
    return fr.svg(label, legend)


def stacked_bars(label: str, xs: Sequence[float], width_s: float,
                 stacks: list[tuple[str, Sequence[float], str]], *, y_label: str,
                 line: Series | None = None, right_label: str = "", utc: bool = True,
                 gaps: Sequence[tuple[float, float, str]] = ()) -> str:
    """Stacked bars per time bucket (``xs`` are bucket starts), optionally a line on a
    right-hand axis (e.g. the failure rate); ``gaps``: (start, end, why) spans drawn as
    missing data (the caller leaves their buckets empty)."""
    totals = [sum(st[1][i] for st in stacks) for i in range(len(xs))]
    ticks = nice_ticks(0.0, max(totals) if totals and max(totals) > 0 else 1.0)
    x1 = (xs[-1] + width_s) if xs else 1.0
    fr = _Frame(xs[0] if xs else 0.0, x1, 0.0, ticks[-1])
    right = None
    if line is not None:
        rv = [v for v in line.ys if v is not None]
        rt = nice_ticks(0.0, max(rv) if rv and max(rv) > 0 else 1.0)
        right = (right_label, rt, rt[0], rt[-1])
    fr.axes(y_label, ticks, utc=utc, right=right)
    _gaps(fr, gaps)
    bw = max(1.0, fr.x(xs[0] + width_s) - fr.x(xs[0]) - 1.0) if xs else 1.0
    for i, x in enumerate(xs):
        base = 0.0
        for name, counts, color in stacks:
            c = counts[i]
            if c <= 0:
                continue
            ytop, ybot = fr.y(base + c), fr.y(base)
            fr.parts.append(f'<rect class="mark" x="{fr.x(x):.1f}" y="{ytop:.1f}" '
                            f'width="{bw:.1f}" height="{max(ybot - ytop, 0.8):.1f}" '
                            f'fill="{color}"><title>{escape(time_label(x, 0, utc))} '
                            f'{escape(name)}: {escape(fmt(c))}</title></rect>')
            base += c
    legend = [(n, c, "") for n, _, c in stacks]
    if line is not None and right is not None:
        runs: list[list[str]] = [[]]
        for x, v in zip(xs, line.ys, strict=False):
            if v is None:  # no syntheses: skipped; no data (a gap): the line breaks
                if runs[-1] and any(a <= x + width_s and x < b for a, b, _ in gaps):
                    runs.append([])
                continue
            runs[-1].append(f"{fr.x(x) + bw / 2:.1f},"
                            f"{_lin(v, right[2], right[3], fr.h):.1f}")
        for pts in runs:
            if pts:
                fr.parts.append(f'<polyline class="mark" fill="none" stroke="{line.color}" '
                                f'stroke-width="2" points="{" ".join(pts)}"><title>'
                                f'{escape(line.name)}</title></polyline>')
        legend.append((line.name, line.color, ""))
    if gaps:
        legend.append(("no data (damaged input)", MISSING, "3 3"))
    return fr.svg(label, legend)


def box_plot(label: str, groups: list[tuple[str, dict[str, float], str]], *, y_label: str,
             outliers: dict[str, list[float]] | None = None, w: int = 500) -> str:
    """One box per group: whiskers p5..p95, box q1..q3, median line; ``outliers``
    (values beyond the robust baseline) as dots."""
    outliers = outliers or {}
    vals = [s[k] for _, s, _ in groups for k in ("p5", "p95")]
    vals += [v for vs in outliers.values() for v in vs]
    ticks = nice_ticks(min(vals) if vals else 0.0, max(vals) if vals else 1.0)
    fr = _Frame(0, max(len(groups), 1), ticks[0], ticks[-1], w=w)
    fr.axes(y_label, ticks, time_axis=False)
    step = (fr.w - ML - MR) / max(len(groups), 1)
    for i, (name, st, color) in enumerate(groups):
        cx = ML + step * (i + 0.5)
        bw = min(46.0, step * 0.5)
        y5, y25, y50, y75, y95 = (fr.y(st[k]) for k in ("p5", "q1", "median", "q3", "p95"))
        tip = (f"{name}: n={int(st['n'])}, median {fmt(st['median'])}, quartiles "
               f"{fmt(st['q1'])}..{fmt(st['q3'])}, p5..p95 {fmt(st['p5'])}..{fmt(st['p95'])}")
        fr.parts.append(
            f'<g class="mark"><title>{escape(tip)}</title>'
            f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y95:.1f}" y2="{y5:.1f}" stroke="#555"/>'
            f'<line x1="{cx - bw / 4:.1f}" x2="{cx + bw / 4:.1f}" y1="{y95:.1f}" '
            f'y2="{y95:.1f}" stroke="#555"/><line x1="{cx - bw / 4:.1f}" '
            f'x2="{cx + bw / 4:.1f}" y1="{y5:.1f}" y2="{y5:.1f}" stroke="#555"/>'
            f'<rect x="{cx - bw / 2:.1f}" y="{y75:.1f}" width="{bw:.1f}" '
            f'height="{max(y25 - y75, 1):.1f}" fill="{color}" fill-opacity="0.75" '
            f'stroke="#333"/><line x1="{cx - bw / 2:.1f}" x2="{cx + bw / 2:.1f}" '
            f'y1="{y50:.1f}" y2="{y50:.1f}" stroke="#111" stroke-width="2"/></g>'
            f'<text class="tick" x="{cx:.1f}" y="{fr.h - MB + 17}" text-anchor="middle">'
            f'{escape(name)}</text>')
        for v in outliers.get(name, [])[:300]:
            fr.parts.append(f'<circle class="mark outlier" cx="{cx + bw * 0.7:.1f}" '
                            f'cy="{fr.y(v):.1f}" r="2.4" fill="{FAIL}"><title>{escape(name)}'
                            f' anomaly: {escape(fmt(v))}</title></circle>')
    legend = [("box: quartiles, whiskers: p5..p95", "#555", "")]
    if any(outliers.values()):
        legend.append(("anomalies", FAIL, ""))
    return fr.svg(label, legend)


def timeline(label: str, rows: list[tuple[str, float, float]], total_ms: float) -> str:
    """Horizontal bars: (component, start ms, duration ms), e.g. queue wait and stages."""
    h = 30 + 24 * max(len(rows), 1) + 30
    total = max(total_ms, max((a + d for _, a, d in rows), default=0.0), 1e-9)
    fr = _Frame(0.0, total, 0.0, 1.0, h=h)
    ticks = nice_ticks(0.0, total)
    parts = fr.parts
    left, right = 140, fr.w - 30
    for t in ticks:
        xx = left + t / total * (right - left)
        if xx <= right + 1:
            parts.append(f'<line class="grid" x1="{xx:.1f}" x2="{xx:.1f}" y1="20" '
                         f'y2="{h - 28}"/><text class="tick" x="{xx:.1f}" y="{h - 12}" '
                         f'text-anchor="middle">{escape(fmt(t))} ms</text>')
    slow = max(rows, key=lambda r: r[2])[0] if rows else None
    for i, (name, a, d) in enumerate(rows):
        y = 24 + i * 24
        x = left + a / total * (right - left)
        wdt = max(2.0, d / total * (right - left))
        color = FAIL if name == slow else ("#bab0ac" if name == "queue_wait" else OK)
        parts.append(f'<text class="tick" x="{left - 8}" y="{y + 13}" text-anchor="end">'
                     f'{escape(name)}</text><rect class="mark" x="{x:.1f}" y="{y}" '
                     f'width="{wdt:.1f}" height="16" fill="{color}"><title>{escape(name)}: '
                     f'{escape(fmt(d))} ms, from +{escape(fmt(a))} ms</title></rect>')
        lab = f"{fmt(d)} ms"
        if x + wdt + 8 + 7 * len(lab) <= fr.w:
            parts.append(f'<text class="tick" x="{x + wdt + 4:.1f}" y="{y + 13}">'
                         f'{escape(lab)}</text>')
        else:
            parts.append(f'<text class="tick" x="{x - 4:.1f}" y="{y + 13}" '
                         f'text-anchor="end">{escape(lab)}</text>')
    return (f'<svg class="chart-svg" viewBox="0 0 {fr.w} {h}" role="img" '
            f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
            + "".join(parts) + "</svg>")
