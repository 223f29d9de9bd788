"""The delivery overview's rate chart as inline SVG: no script, no build step, prints well.

One line per fate, counts per bucket; the y axis is scaled to the busiest bucket. Colours are
SVG attributes (not style), so the dashboard's Content-Security-Policy can forbid inline styles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 1000, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 28, 12, 26
COLOURS = {
    "delivered": "#1f9d55",
    "adjusted": "#6cb2eb",
    "filtered": "#a0aec0",
    "retrying": "#e3a008",
    "dead_lettered": "#e3342f",
}


@dataclass(slots=True)
class Chart:
    svg: Markup
    peak: int
    legend: list[tuple[str, str, int]]  # (fate, colour, total)


def rate_chart(series: dict[str, list[int]], bucket_seconds: int, since: float) -> Chart:
    buckets = max((len(v) for v in series.values()), default=0)
    peak = max((max(v) for v in series.values() if v), default=0)
    top = max(peak, 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * i / max(buckets - 1, 1))

    def y(v: int) -> float:
        return TOP + plot_h - plot_h * v / top

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="messages per {_unit(bucket_seconds)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for fraction in (0, 0.5, 1):
        value = round(top * fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#e2e8f0" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#718096">{value}</text>'
        )
    for index in range(0, buckets, max(1, buckets // 6)):
        label = datetime.fromtimestamp(since + index * bucket_seconds, UTC).strftime("%H:%M")
        parts.append(
            f'<text x="{x(index):.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11" '
            f'fill="#718096">{label}</text>'
        )
    legend = []
    for fate, colour in COLOURS.items():
        values = series.get(fate, [])
        legend.append((fate, colour, sum(values)))
        if not any(values):
            continue
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
            f'stroke-linejoin="round" points="{points}"><title>{escape(fate)}</title></polyline>'
        )
    parts.append("</svg>")
    return Chart(Markup("".join(parts)), peak, legend)


def _unit(seconds: int) -> str:
    return "minute" if seconds == 60 else f"{seconds // 60} minutes"
