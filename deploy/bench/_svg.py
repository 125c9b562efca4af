"""``--plot FILE.svg``: latency percentiles against throughput, one point per step, written as SVG
text (no plotting library: the light install has none, and a line chart is a few dozen elements)."""

from __future__ import annotations

import math
from html import escape

from ._report import BenchReport

__all__ = ["plot_svg"]

WIDTH, HEIGHT = 720, 440
LEFT, RIGHT, TOP, BOTTOM = 70, 130, 40, 50
#: percentile -> line colour (colour-blind-safe Okabe-Ito hues)
SERIES = {"p50": "#0072B2", "p90": "#009E73", "p95": "#E69F00", "p99": "#D55E00"}


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values spanning [low, high]."""
    span = max(high - low, 1e-9)
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.3g}"


def plot_svg(report: BenchReport, title: str | None = None) -> str:
    """The SVG document: x throughput (requests per second), y latency (ms, logarithmic when the
    percentiles span more than 20x); the knee ringed; steps the generator did not sustain hollow."""
    points = [(s.throughput, s.latency_ms, s.sustained) for s in report.steps if s.throughput > 0]
    values = [lat[k] for _, lat, _ in points for k in SERIES if math.isfinite(lat[k]) and lat[k] > 0]
    x_high = max([t for t, _, _ in points], default=1.0) * 1.05
    y_low, y_high = (min(values), max(values)) if values else (0.1, 1.0)
    log = y_high / y_low > 20
    if log:
        y_low, y_high = 10 ** math.floor(math.log10(y_low)), 10 ** math.ceil(math.log10(y_high))
    else:
        y_low, y_high = 0.0, y_high * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(value: float) -> float:
        return LEFT + plot_w * value / x_high

    def y(value: float) -> float:
        share = (math.log10(value) - math.log10(y_low)) / (math.log10(y_high) - math.log10(y_low)) if log else (
            (value - y_low) / (y_high - y_low))
        return TOP + plot_h * (1 - share)

    heading = title or f"{report.model} ({report.signature}) on {', '.join(report.target)}, {report.protocol}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
             f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(heading)}</text>',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>']
    for tick in _ticks(0, x_high):
        parts.append(f'<line x1="{x(tick):.1f}" y1="{TOP + plot_h}" x2="{x(tick):.1f}" y2="{TOP + plot_h + 5}" stroke="#444"/>'
                     f'<text x="{x(tick):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{_label(tick)}</text>')
    y_ticks = [10.0 ** e for e in range(round(math.log10(y_low)), round(math.log10(y_high)) + 1)] if log else _ticks(y_low, y_high)
    for tick in y_ticks:
        parts.append(f'<line x1="{LEFT}" y1="{y(tick):.1f}" x2="{LEFT + plot_w}" y2="{y(tick):.1f}" stroke="#ddd"/>'
                     f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{_label(tick)}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">throughput (requests/s)</text>')
    parts.append(f'<text transform="translate(16 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">'
                 f'latency (ms{", log scale" if log else ""})</text>')
    for row, (name, colour) in enumerate(SERIES.items()):
        series = [(x(t), y(lat[name]), ok) for t, lat, ok in points if math.isfinite(lat[name]) and lat[name] > 0]
        if len(series) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in series)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for px, py, ok in series:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" stroke="{colour}" stroke-width="1.5" '
                         f'fill="{colour if ok else "white"}"/>')
        legend_y = TOP + 16 + row * 18
        parts.append(f'<line x1="{WIDTH - RIGHT + 14}" y1="{legend_y - 4}" x2="{WIDTH - RIGHT + 34}" y2="{legend_y - 4}" '
                     f'stroke="{colour}" stroke-width="2"/><text x="{WIDTH - RIGHT + 40}" y="{legend_y}">{name}</text>')
    if report.knee is not None:
        knee = report.steps[report.knee]
        if math.isfinite(knee.latency_ms["p99"]) and knee.latency_ms["p99"] > 0:
            kx, ky = x(knee.throughput), y(knee.latency_ms["p99"])
            parts.append(f'<circle cx="{kx:.1f}" cy="{ky:.1f}" r="9" fill="none" stroke="black" stroke-width="1.5"/>'
                         f'<text x="{kx + 12:.1f}" y="{ky - 8:.1f}">knee: {escape(knee.step.describe())}</text>')
    if any(not ok for _, _, ok in points):
        parts.append(f'<text x="{WIDTH - RIGHT + 14}" y="{TOP + 100}" font-size="11">hollow: rate not</text>'
                     f'<text x="{WIDTH - RIGHT + 14}" y="{TOP + 114}" font-size="11">sustained</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
