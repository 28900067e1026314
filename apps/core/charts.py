"""Server-rendered SVG charts for the admin pages: no JavaScript library, no CDN, just markup.

`line_chart` draws one or more series over a shared x axis (a run's loss by step, a learning-rate
schedule, a sweep's metric by trial); `interval_chart` draws points with confidence intervals (the
leaderboard). Values are plain numbers; None and non-finite values leave gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

PALETTE = ("#417690", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#2c3e50")
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass(frozen=True)
class Series:
    name: str
    xs: list
    ys: list


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:.3g}"


class _Frame:
    """Maps data to pixels inside the plot area and draws the axes."""

    def __init__(self, width, height, x_range, y_range, margin=(10, 12, 28, 48)):
        self.width, self.height = width, height
        self.top, self.right, self.bottom, self.left = margin
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range

    def x(self, value) -> float:
        span = (self.x1 - self.x0) or 1
        return self.left + (value - self.x0) / span * (self.width - self.left - self.right)

    def y(self, value) -> float:
        span = (self.y1 - self.y0) or 1
        return self.height - self.bottom - (value - self.y0) / span * (self.height - self.top - self.bottom)

    def axes(self, x_label: str) -> list[str]:
        parts = [f'<line x1="{self.left}" y1="{self.height - self.bottom}" x2="{self.width - self.right}" '
                 f'y2="{self.height - self.bottom}" stroke="#999"/>',
                 f'<line x1="{self.left}" y1="{self.top}" x2="{self.left}" y2="{self.height - self.bottom}" '
                 f'stroke="#999"/>']
        for tick in _ticks(self.y0, self.y1):
            y = self.y(tick)
            parts.append(f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.width - self.right}" y2="{y:.1f}" '
                         f'stroke="#eee"/><text x="{self.left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>'
                         f"{_label(tick)}</text>")
        for tick in _ticks(self.x0, self.x1):
            x = self.x(tick)
            parts.append(f'<text x="{x:.1f}" y="{self.height - self.bottom + 14}" text-anchor="middle" {FONT}>'
                         f"{_label(tick)}</text>")
        parts.append(f'<text x="{(self.left + self.width - self.right) / 2:.1f}" y="{self.height - 2}" '
                     f'text-anchor="middle" {FONT} fill="#666">{escape(x_label)}</text>')
        return parts


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def _empty(width: int, height: int, title: str, message: str) -> str:
    return _svg(width, height, title, [f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" {FONT} '
                                       f'fill="#999">{escape(message)}</text>'])


def line_chart(series: list[Series], *, title: str, x_label: str = "step", width: int = 640,
               height: int = 220, log_y: bool = False) -> str:
    points = [(x, y) for s in series for x, y in zip(s.xs, s.ys, strict=True) if _finite(x) and _finite(y)
              and (not log_y or y > 0)]
    if not points:
        return _empty(width, height, title, "no data yet")
    transform = math.log10 if log_y else (lambda v: v)
    xs, ys = [p[0] for p in points], [transform(p[1]) for p in points]
    pad = (max(ys) - min(ys)) * 0.05 or abs(max(ys)) * 0.05 or 1
    frame = _Frame(width, height, (min(xs), max(xs)), (min(ys) - pad, max(ys) + pad))
    body = frame.axes(x_label)
    for index, item in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        path, pen_down = [], False
        for x, y in zip(item.xs, item.ys, strict=True):
            if not (_finite(x) and _finite(y)) or (log_y and y <= 0):
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{frame.x(x):.1f},{frame.y(transform(y)):.1f}")
            pen_down = True
        body.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        body.append(f'<text x="{frame.left + 8 + 110 * index}" y="{frame.top + 10}" {FONT} fill="{color}">'
                    f"{escape(item.name)}{' (log)' if log_y else ''}</text>")
    return _svg(width, height, title, body)


def interval_chart(rows: list[tuple[str, float, float, float]], *, title: str, width: int = 640,
                   row_height: int = 22, lower: float = 0.0, upper: float = 1.0) -> str:
    """One horizontal row per (label, value, ci_low, ci_high): a dot and its interval bar."""
    if not rows:
        return _empty(width, 60, title, "nothing to show")
    height = 30 + row_height * len(rows)
    label_width = 180
    span = (upper - lower) or 1

    def x(value):
        return label_width + (value - lower) / span * (width - label_width - 20)

    body = []
    for tick in _ticks(lower, upper):
        body.append(f'<line x1="{x(tick):.1f}" y1="6" x2="{x(tick):.1f}" y2="{height - 18}" stroke="#eee"/>'
                    f'<text x="{x(tick):.1f}" y="{height - 4}" text-anchor="middle" {FONT}>{_label(tick)}</text>')
    for index, (label, value, low, high) in enumerate(rows):
        y = 16 + index * row_height
        body.append(f'<text x="{label_width - 8}" y="{y + 4}" text-anchor="end" {FONT}>{escape(label[:32])}</text>')
        if _finite(low) and _finite(high):
            body.append(f'<line x1="{x(low):.1f}" y1="{y}" x2="{x(high):.1f}" y2="{y}" stroke="{PALETTE[0]}" '
                        f'stroke-width="3" stroke-opacity="0.4"/>')
        if _finite(value):
            body.append(f'<circle cx="{x(value):.1f}" cy="{y}" r="4" fill="{PALETTE[0]}"/>')
    return _svg(width, height, title, body)


def scatter_chart(xs: list, ys: list, *, title: str, x_label: str, width: int = 320, height: int = 200,
                  log_x: bool = False, highlight: int | None = None) -> str:
    """Points (x, y), e.g. a sweep's metric against one parameter; `highlight` marks one point (the best)."""
    points = [(i, x, y) for i, (x, y) in enumerate(zip(xs, ys, strict=True))
              if _finite(x) and _finite(y) and (not log_x or x > 0)]
    if not points:
        return _empty(width, height, title, "no finished trials yet")
    transform = math.log10 if log_x else (lambda v: v)
    px, py = [transform(p[1]) for p in points], [p[2] for p in points]
    xpad = (max(px) - min(px)) * 0.08 or 1
    ypad = (max(py) - min(py)) * 0.08 or abs(max(py)) * 0.08 or 1
    frame = _Frame(width, height, (min(px) - xpad, max(px) + xpad), (min(py) - ypad, max(py) + ypad))
    body = frame.axes(f"{x_label} (log10)" if log_x else x_label)
    for (index, x, y), tx in zip(points, px, strict=True):
        best = index == highlight
        body.append(f'<circle cx="{frame.x(tx):.1f}" cy="{frame.y(y):.1f}" r="{6 if best else 4}" '
                    f'fill="{PALETTE[1] if best else PALETTE[0]}" fill-opacity="0.8"><title>trial {index}: '
                    f"{escape(str(x))} → {y:.4g}</title></circle>")
    body.append(f'<text x="{frame.left + 6}" y="{frame.top + 10}" {FONT}>{escape(title)}</text>')
    return _svg(width, height, title, body)
