"""Scatter plots as inline SVG (no plotting library): colour per series, marker shape per group, a legend,
labelled points, axes with units, and a Pareto front highlighted per group."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563")
# a series' colour is its own everywhere (every plot of every page): the built-in targets' fixed, any
# other's from its name
FIXED = {"onnx": COLOURS[0], "gguf": COLOURS[1], "executorch": COLOURS[2], "coreml": COLOURS[3]}


def colour_of(series: str) -> str:
    import zlib

    return FIXED.get(series) or COLOURS[4 + zlib.crc32(series.encode()) % (len(COLOURS) - 4)]
MARKERS = ("circle", "square", "triangle", "diamond", "cross")
W, H = 640, 420
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 40, 56  # the legend lives in the right margin


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    series: str  # colour
    group: str  # marker shape; the Pareto front is drawn per group
    x_err: float | None = None  # the x value's standard error: an error bar (an accuracy axis)


def pareto(points: list[Point], x_lower_better: bool = True, y_higher_better: bool = True) -> list[Point]:
    """Points no other point of the same group beats on both axes (ties on one axis allowed)."""
    def better_eq(a: Point, b: Point) -> bool:  # a at least as good as b on both axes
        bx = a.x <= b.x if x_lower_better else a.x >= b.x
        by = a.y >= b.y if y_higher_better else a.y <= b.y
        return bx and by

    return [p for p in points if not any(q.group == p.group and better_eq(q, p) and (q.x, q.y) != (p.x, p.y)
                                         for q in points)]


def scatter(points: list[Point], title: str, x_label: str, y_label: str, front: list[Point]) -> str:
    if not points:
        return (f'<svg width="{W}" height="80" role="img"><text x="10" y="40" font-size="14">'
                f'{escape(title)}: nothing to plot</text></svg>')
    ys = [p.y for p in points]
    x0, x1, x_ticks = _axis(min(p.x - (p.x_err or 0) for p in points), max(p.x + (p.x_err or 0) for p in points))
    y0, y1, y_ticks = _axis(min(0.0, min(ys)), max(ys))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return TOP + ph - (y - y0) / (y1 - y0) * ph

    series = list(dict.fromkeys(p.series for p in points))
    groups = list(dict.fromkeys(p.group for p in points))
    colour = {s: colour_of(s) for s in series}
    marker = {g: MARKERS[i % len(MARKERS)] for i, g in enumerate(groups)}
    out = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
           f'font-family="system-ui, sans-serif" font-size="12"><title>{escape(title)}</title>',
           f'<text x="{LEFT}" y="22" font-size="15" font-weight="600">{escape(title)}</text>',
           f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#d4d4d8"/>']
    for t in x_ticks:
        out.append(f'<line x1="{sx(t):.1f}" y1="{TOP}" x2="{sx(t):.1f}" y2="{TOP + ph}" stroke="#e4e4e7"/>'
                   f'<text x="{sx(t):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{_tick(t)}</text>')
    for t in y_ticks:
        out.append(f'<line x1="{LEFT}" y1="{sy(t):.1f}" x2="{LEFT + pw}" y2="{sy(t):.1f}" stroke="#e4e4e7"/>'
                   f'<text x="{LEFT - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{_tick(t)}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 12}" text-anchor="middle" font-size="13">{escape(x_label)}</text>'
               f'<text transform="translate(18 {TOP + ph / 2}) rotate(-90)" text-anchor="middle" '
               f'font-size="13">{escape(y_label)}</text>')
    for g in groups:  # the front of each group, as a dashed line through its points
        line = sorted((p for p in front if p.group == g), key=lambda p: p.x)
        if len(line) > 1:
            coords = " ".join(f"{sx(p.x):.1f},{sy(p.y):.1f}" for p in line)
            out.append(f'<polyline points="{coords}" fill="none" stroke="#111827" stroke-width="1.2" '
                       'stroke-dasharray="5 4"/>')
    for p in points:  # error bars first, under the markers
        if p.x_err:
            a, b, y = sx(p.x - p.x_err), sx(p.x + p.x_err), sy(p.y)
            out.append(f'<path d="M{a:.1f},{y:.1f}H{b:.1f}M{a:.1f},{y - 4:.1f}V{y + 4:.1f}M{b:.1f},{y - 4:.1f}'
                       f'V{y + 4:.1f}" stroke="{colour[p.series]}" stroke-width="1.3" fill="none" class="err"/>')
    for p in points:
        out.append(f'<g class="mk">{_marker(marker[p.group], sx(p.x), sy(p.y), colour[p.series], p in front)}</g>')
    marks = [(sx(p.x), sy(p.y)) for p in points]
    placed: list[tuple[float, float, float]] = []  # labels so far: x, baseline y, width
    for p in points:  # labels last: each beside its point, over no other label and no marker
        weight = ' font-weight="600"' if p in front else ""
        width = (LABEL_CHAR_BOLD if p in front else LABEL_CHAR) * len(p.label)
        x, y = _label_spot(sx(p.x), sy(p.y), width, placed, marks, LEFT, LEFT + pw, TOP, TOP + ph)
        out.append(_leader(sx(p.x), sy(p.y), x, y, width)
                   + f'<text class="pt" x="{x:.1f}" y="{y:.1f}"{weight}>{escape(p.label)}</text>')
    lx, ly = LEFT + pw + 18, TOP + 6
    out.append(f'<text x="{lx}" y="{ly}" font-weight="600">target</text>')
    for i, s in enumerate(series):
        y = ly + 18 * (i + 1)
        out.append(_marker("circle", lx + 6, y - 4, colour[s], False)
                   + f'<text x="{lx + 18}" y="{y}">{escape(s)}</text>')
    ly += 18 * (len(series) + 2)
    out.append(f'<text x="{lx}" y="{ly}" font-weight="600">device</text>')
    for i, g in enumerate(groups):
        y = ly + 18 * (i + 1)
        out.append(_marker(marker[g], lx + 6, y - 4, "#6b7280", False)
                   + f'<text x="{lx + 18}" y="{y}">{escape(g)}</text>')
    ly += 18 * (len(groups) + 2)
    out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 14}" y2="{ly - 4}" stroke="#111827" stroke-dasharray="5 4"/>'
               f'<text x="{lx + 18}" y="{ly}">Pareto front</text>')
    out.append("</svg>")
    return "".join(out)


LABEL_CHAR, LABEL_CHAR_BOLD = 7.2, 8.0  # a label's width per character at the plots' 12 px font, generously
LABEL_H, MARK_R = 12.0, 8.0  # a label's height above its baseline; a marker's reach (with its outline)


def _label_spot(x: float, y: float, width: float, placed: list, marks: list, left: float, right: float, top: float,
                bottom: float) -> tuple[float, float]:
    """Beside the point, at the first of a ring of spots inside the plot whose box overlaps no label
    already placed and no marker (its own included); the least crowded one where none is free."""
    spots = []  # rings of spots around the point, nearest first: right, left, above, below, the diagonals
    for d in (10, 22, 36, 52, 70):
        spots += [(x + d, y + 4), (x - d - width, y + 4), (x - width / 2, y - d + 2), (x - width / 2, y + d + 8),
                  (x + d, y - d + 4), (x - d - width, y - d + 4), (x + d, y + d + 4), (x - d - width, y + d + 4)]

    def clashes(lx: float, ly: float) -> int:
        box = (lx, ly - LABEL_H, lx + width, ly + 3)
        n = sum(box[0] < px + pw and px < box[2] and box[1] < py + 3 and py - LABEL_H < box[3] for px, py, pw in placed)
        n += sum(box[0] - MARK_R < mx < box[2] + MARK_R and box[1] - MARK_R < my < box[3] + MARK_R for mx, my in marks)
        return n + (0 if left <= lx and lx + width <= right and top + LABEL_H <= ly <= bottom else 100)

    lx, ly = min(spots, key=lambda spot: (clashes(*spot), spots.index(spot)))
    placed.append((lx, ly, width))
    return lx, ly


def _leader(x: float, y: float, lx: float, ly: float, width: float) -> str:
    """A thin line from a point to its label where the label had to go further than beside it."""
    tx = min(max(x, lx), lx + width)  # the label box's nearest x
    ty = ly - LABEL_H / 2
    if math.hypot(tx - x, ty - y) < 20:
        return ""
    return f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{tx:.1f}" y2="{ty:.1f}" stroke="#9ca3af" stroke-width="0.8"/>'


def _marker(shape: str, x: float, y: float, colour: str, bold: bool) -> str:
    stroke = 'stroke="#111827" stroke-width="2"' if bold else 'stroke="white" stroke-width="1"'
    r = 7 if bold else 5.5
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colour}" {stroke}/>'
    if shape == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" fill="{colour}" {stroke}/>'
    if shape == "triangle":
        pts = f"{x:.1f},{y - r * 1.2:.1f} {x - r * 1.1:.1f},{y + r * 0.8:.1f} {x + r * 1.1:.1f},{y + r * 0.8:.1f}"
    elif shape == "diamond":
        pts = f"{x:.1f},{y - r * 1.3:.1f} {x + r:.1f},{y:.1f} {x:.1f},{y + r * 1.3:.1f} {x - r:.1f},{y:.1f}"
    else:  # cross
        a, b = r * 0.4, r
        pts = " ".join(f"{x + dx:.1f},{y + dy:.1f}" for dx, dy in (
            (-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)))
    return f'<polygon points="{pts}" fill="{colour}" {stroke}/>'


def _axis(lo: float, hi: float, n: int = 6) -> tuple[float, float, list[float]]:
    """A range covering [lo, hi] with round tick values."""
    if hi == lo:
        lo, hi = (lo - 1, hi + 1) if lo == 0 else (lo - abs(lo) * 0.1, hi + abs(hi) * 0.1)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start, stop = math.floor(lo / step) * step, math.ceil(hi / step) * step
    if stop - hi < step * 0.15:  # room for the labels of the highest points
        stop += step
    ticks = [start + i * step for i in range(int(round((stop - start) / step)) + 1)]
    return start, stop, ticks


def _tick(v: float) -> str:
    return f"{v:.6g}" if abs(v) >= 1e-9 else "0"


def line_plot(points: list[tuple[float, float]], title: str, x_label: str, y_label: str,
              width: int = 520, height: int = 240) -> str:
    """A small plot of one series over time (a sustained run's decode speed or temperature)."""
    if not points:
        return ""
    left, right, top, bottom = 64, 16, 36, 44
    x0, x1, x_ticks = _axis(min(x for x, _ in points), max(x for x, _ in points))
    y0, y1, y_ticks = _axis(min(0.0, min(y for _, y in points)), max(y for _, y in points))
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'font-family="system-ui, sans-serif" font-size="12"><title>{escape(title)}</title>',
           f'<text x="{left}" y="22" font-size="14" font-weight="600">{escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#d4d4d8"/>']
    for t in x_ticks:
        out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{_tick(t)}</text>')
    for t in y_ticks:
        out.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{left + pw}" y2="{sy(t):.1f}" stroke="#e4e4e7"/>'
                   f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{_tick(t)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>'
               f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
               f'{escape(y_label)}</text>')
    coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    out.append(f'<polyline points="{coords}" fill="none" stroke="#2563eb" stroke-width="1.6"/></svg>')
    return "".join(out)
