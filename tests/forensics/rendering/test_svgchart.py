"""The report's SVG charts, read back as XML: axes, marks where the data puts them, empty
data, and labels that stay text (escaped)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ttsops.forensics.rendering import svgchart as sc

NS = "{http://www.w3.org/2000/svg}"
T0 = 1718150400.0  # 2024-06-12 00:00:00 UTC


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on markup that is not well-formed
    assert root.tag == f"{NS}svg"
    return root


def cls(el: ET.Element) -> set[str]:
    return set((el.get("class") or "").split())


def marks(root: ET.Element, tag: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if "mark" in cls(e)]


def title(el: ET.Element) -> str:
    t = el.find(f"{NS}title")
    assert t is not None
    return t.text or ""


def y_scale(root: ET.Element) -> tuple[float, float]:
    """(a, b) with pixel y = a + b * value, from the left axis' tick labels (a label is
    drawn 4 px below its grid line)."""
    pts = [(float(e.text or ""), float(e.get("y", "")) - 4.0) for e in root.iter(f"{NS}text")
           if "tick" in cls(e) and e.get("text-anchor") == "end"
           and e.get("x") == str(sc.ML - 6)]
    assert len(pts) >= 2
    (v0, y0), (v1, y1) = pts[0], pts[-1]
    b = (y1 - y0) / (v1 - v0)
    a = y0 - b * v0
    for v, y in pts:  # every tick on the same straight line
        assert y == pytest.approx(a + b * v, abs=0.11)
    return a, b


def axes(root: ET.Element) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}line") if "axis" in cls(e)]


def test_line_chart_axes_and_points_follow_the_data() -> None:
    xs = [T0 + 600 * i for i in range(7)]
    ys = [10.0, 40.0, 25.0, 80.0, 5.0, 60.0, 35.0]
    root = parse(sc.line_chart("latency", xs, [sc.Series("p95", ys, "#123456")],
                               y_label="ms"))
    w, h = sc.W, sc.H
    # the y axis at the left margin, the time axis at the bottom margin
    ax = axes(root)
    assert any(e.get("x1") == e.get("x2") == str(sc.ML) for e in ax)
    assert any(e.get("y1") == e.get("y2") == str(h - sc.MB) and e.get("x1") == str(sc.ML)
               and e.get("x2") == str(w - sc.MR) for e in ax)
    # time ticks under the axis, in order, labelled HH:MM (UTC)
    tlabels = [e.text for e in root.iter(f"{NS}text") if e.get("y") == str(h - sc.MB + 17)]
    assert tlabels and tlabels[0] == "00:00" and tlabels == sorted(tlabels)
    # one line through all seven points: x from margin to margin, y on the axis' scale
    (line,) = marks(root, "polyline")
    assert line.get("stroke") == "#123456" and title(line) == "p95"
    pts = [tuple(map(float, p.split(","))) for p in (line.get("points") or "").split()]
    assert len(pts) == len(ys)
    assert pts[0][0] == pytest.approx(sc.ML, abs=0.06)
    assert pts[-1][0] == pytest.approx(w - sc.MR, abs=0.06)
    step = (w - sc.ML - sc.MR) / 6
    for i, (px, _py) in enumerate(pts):
        assert px == pytest.approx(sc.ML + i * step, abs=0.06)
    a, b = y_scale(root)
    assert b < 0  # larger values higher up
    for (_px, py), v in zip(pts, ys, strict=True):
        assert py == pytest.approx(a + b * v, abs=0.11)


def test_line_chart_none_breaks_the_line_and_points_carry_values() -> None:
    xs = [T0 + 60 * i for i in range(6)]
    ys: list[float | None] = [1.0, 2.0, None, 4.0, None, 6.5]
    root = parse(sc.line_chart("gap", xs, [sc.Series("s", ys, "#000000")], y_label="n"))
    # [1, 2] a line; [4] and [6.5] alone: a dot each, with its value in the title
    assert len(marks(root, "polyline")) == 1
    dots = marks(root, "circle")
    assert [title(c) for c in dots] == ["s 00:03: 4", "s 00:05: 6.5"]
    a, b = y_scale(root)
    assert float(dots[1].get("cy", "")) == pytest.approx(a + b * 6.5, abs=0.11)


def test_line_chart_threshold_and_gap() -> None:
    xs = [T0 + 3600 * i for i in range(5)]
    root = parse(sc.line_chart("disk", xs, [sc.Series("usage %", [50, 60, 70, 80, 95],
                                                      "#4e79a7")],
                               y_label="%", y_min=0.0, y_max=100.0,
                               hlines=[(90.0, "warning 90%", "#e67e22")],
                               gaps=[(T0 + 3600, T0 + 7200, "app.log.3.gz: damaged")]))
    a, b = y_scale(root)
    (thr,) = [e for e in root.iter(f"{NS}line") if "threshold" in cls(e)]
    assert float(thr.get("y1", "")) == pytest.approx(a + b * 90.0, abs=0.11)
    (band,) = [e for e in root.iter(f"{NS}rect") if "missing" in cls(e)]
    x0 = float(band.get("x", ""))
    span = (sc.W - sc.ML - sc.MR) / 4  # one hour of the four charted
    assert x0 == pytest.approx(sc.ML + span, abs=0.06)
    assert float(band.get("width", "")) == pytest.approx(span, abs=0.11)
    assert title(band) == "no data: app.log.3.gz: damaged"


def test_stacked_bars_heights_are_the_counts() -> None:
    xs = [T0 + 300 * i for i in range(4)]
    ok = [10.0, 20.0, 0.0, 40.0]
    failed = [5.0, 0.0, 3.0, 10.0]
    root = parse(sc.stacked_bars("requests", xs, 300.0,
                                 [("succeeded", ok, sc.OK), ("failed", failed, sc.FAIL)],
                                 y_label="per 5m"))
    rects = marks(root, "rect")
    assert len(rects) == sum(1 for v in ok + failed if v > 0)  # nothing drawn for 0
    a, b = y_scale(root)
    by_x: dict[str, list[ET.Element]] = {}
    for r in rects:
        by_x.setdefault(r.get("x", ""), []).append(r)
    assert len(by_x) == 4
    for i, x in enumerate(sorted(by_x, key=float)):
        base = 0.0
        for r in by_x[x]:  # drawn bottom up: succeeded, then failed on top of it
            name, count = title(r).split(" ", 1)[1].split(": ")
            v = float(count)
            assert v == {"succeeded": ok, "failed": failed}[name][i]
            top, height = float(r.get("y", "")), float(r.get("height", ""))
            assert top == pytest.approx(a + b * (base + v), abs=0.11)
            assert top + height == pytest.approx(a + b * base, abs=0.21)
            assert r.get("fill") == (sc.OK if name == "succeeded" else sc.FAIL)
            base += v


def test_stacked_bars_with_a_rate_line_on_the_right_axis() -> None:
    xs = [T0 + 300 * i for i in range(3)]
    root = parse(sc.stacked_bars("r", xs, 300.0, [("n", [4.0, 4.0, 4.0], sc.OK)],
                                 y_label="n", line=sc.Series("rate %", [0.0, 50.0, 100.0],
                                                             "#222222"),
                                 right_label="rate %"))
    (line,) = marks(root, "polyline")
    ys = [float(p.split(",")[1]) for p in (line.get("points") or "").split()]
    assert ys[0] == pytest.approx(sc.H - sc.MB, abs=0.06)  # 0% on the bottom axis
    assert ys[0] > ys[1] > ys[2]
    assert ys[1] == pytest.approx((ys[0] + ys[2]) / 2, abs=0.11)  # linear
    assert any(e.text == "rate %" for e in root.iter(f"{NS}text"))


def test_box_plot_boxes_follow_the_quartiles() -> None:
    st = {"n": 40, "p5": 100.0, "q1": 200.0, "median": 250.0, "q3": 300.0, "p95": 400.0}
    root = parse(sc.box_plot("centroid", [("nova", st, "#4e79a7"),
                                          ("alloy", dict(st, median=220.0), "#f28e2b")],
                             y_label="Hz", outliers={"nova": [900.0, 950.0]}))
    a, b = y_scale(root)
    groups = [g for g in root.iter(f"{NS}g") if "mark" in cls(g)]
    assert len(groups) == 2
    assert title(groups[0]).startswith("nova: n=40, median 250")
    for g, med in zip(groups, (250.0, 220.0), strict=True):
        (box,) = g.iter(f"{NS}rect")
        assert float(box.get("y", "")) == pytest.approx(a + b * 300.0, abs=0.11)
        bottom = float(box.get("y", "")) + float(box.get("height", ""))
        assert bottom == pytest.approx(a + b * 200.0, abs=0.21)
        med_line = [ln for ln in g.iter(f"{NS}line") if ln.get("stroke-width") == "2"]
        assert float(med_line[0].get("y1", "")) == pytest.approx(a + b * med, abs=0.11)
    dots = [c for c in root.iter(f"{NS}circle") if "outlier" in cls(c)]
    assert sorted(float(c.get("cy", "")) for c in dots) == pytest.approx(
        sorted(a + b * v for v in (900.0, 950.0)), abs=0.11)
    assert [e.text for e in root.iter(f"{NS}text")
            if e.get("y") == str(sc.H - sc.MB + 17)] == ["nova", "alloy"]


def test_timeline_bars_are_the_durations_and_the_slowest_is_red() -> None:
    rows = [("queue_wait", 0.0, 20.0), ("text_normalize", 20.0, 10.0),
            ("llm_inference", 30.0, 150.0), ("audio_render", 180.0, 20.0)]
    root = parse(sc.timeline("trace", rows, 200.0))
    rects = marks(root, "rect")
    assert [title(r).split(":")[0] for r in rects] == [r[0] for r in rows]
    widths = [float(r.get("width", "")) for r in rects]
    xs = [float(r.get("x", "")) for r in rects]
    px_per_ms = widths[2] / 150.0
    for (_n, start, dur), w, x in zip(rows, widths, xs, strict=True):
        assert w == pytest.approx(dur * px_per_ms, abs=0.11)
        assert x == pytest.approx(140 + start * px_per_ms, abs=0.11)
    assert [r.get("fill") for r in rects] == ["#bab0ac", sc.OK, sc.FAIL, sc.OK]


@pytest.mark.parametrize("svg", [
    sc.line_chart("empty", [], [sc.Series("s", [], "#000000")], y_label="ms"),
    sc.line_chart("all none", [T0, T0 + 60], [sc.Series("s", [None, None], "#000000")],
                  y_label="ms", log=True),
    sc.stacked_bars("empty", [], 60.0, [("n", [], sc.OK)], y_label="n"),
    sc.stacked_bars("zeros", [T0, T0 + 60], 60.0, [("n", [0.0, 0.0], sc.OK)], y_label="n"),
    sc.box_plot("empty", [], y_label="Hz"),
    sc.timeline("empty", [], 0.0),
], ids=["line", "line-none-log", "bars", "bars-zero", "box", "timeline"])
def test_empty_data_draws_axes_and_no_marks(svg: str) -> None:
    root = parse(svg)
    assert not [e for e in root.iter() if "mark" in cls(e)]
    assert root.get("viewBox", "").startswith("0 0 ")


def test_labels_are_escaped_text() -> None:
    nasty = '<script>alert("x")</script> & \'q\''
    xs = [T0, T0 + 60]
    svgs = [
        sc.line_chart(nasty, xs, [sc.Series(nasty, [1.0, 2.0], "#000000")], y_label=nasty,
                      hlines=[(1.5, nasty, "#e67e22")], right_label=nasty,
                      gaps=[(T0, T0 + 30, nasty)]),
        sc.stacked_bars(nasty, xs, 60.0, [(nasty, [1.0, 2.0], sc.OK)], y_label=nasty),
        sc.box_plot(nasty, [(nasty, {"n": 3, "p5": 1, "q1": 2, "median": 3, "q3": 4,
                                     "p95": 5}, sc.OK)], y_label=nasty,
                    outliers={nasty: [9.0]}),
        sc.timeline(nasty, [(nasty, 0.0, 5.0)], 5.0),
    ]
    for svg in svgs:
        assert "<script" not in svg
        root = parse(svg)
        assert not list(root.iter(f"{NS}script")) and not list(root.iter("script"))
        assert root.get("aria-label") == nasty
        texts = [e.text or "" for e in root.iter()]
        # the label comes back whole, as text, where it is drawn or in a tooltip
        assert any(nasty in t for t in texts)
