"""The overview's 90-day chart as inline SVG: requests as bars, erasures as a line.

Pure and dependency-free; colours come from the stylesheet (classes only, no inline styles, so the
content-security-policy can forbid them). The SVG scales with its container via `viewBox`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from xml.sax.saxutils import escape

from plugin.admin.queries import DayCount

WIDTH = 900
HEIGHT = 220
LEFT = 34
RIGHT = 10
TOP = 12
BOTTOM = 28


def nice_max(value: int) -> int:
    """Round the top of the axis up to 1, 2 or 5 times a power of ten (at least 4)."""
    value = max(value, 4)
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def ticks(top: int) -> range:
    """Whole-number grid lines: five steps where the top divides by five, else fewer."""
    for divisions in (5, 4, 2, 1):
        if top % divisions == 0:
            return range(0, top + 1, top // divisions)
    return range(0, top + 1, top)


def render(
    days: Sequence[DayCount], *, title: str, month_names: Sequence[str], legend: tuple[str, str]
) -> str:
    if not days:
        return ""
    top = nice_max(max(max(day.requests, day.erasures) for day in days))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / len(days)
    bar_w = max(slot * 0.7, 1.0)

    def y(value: int) -> float:
        return TOP + plot_h - (value / top) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title" '
        'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
    ]
    for tick in ticks(top):
        ty = y(tick)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">{tick}</text>')
    for index, day in enumerate(days):
        if day.requests:
            x = LEFT + index * slot + (slot - bar_w) / 2
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y(day.requests):.1f}" width="{bar_w:.1f}" '
                f'height="{(day.requests / top) * plot_h:.1f}"><title>{day.day.isoformat()}: '
                f"{day.requests}</title></rect>"
            )
        # The first day gets its month's name only if that month has room before the next one.
        if day.day.day == 1 or (index == 0 and day.day.day <= 20):
            parts.append(_month_label(day.day, LEFT + index * slot, month_names))
    points = " ".join(
        f"{LEFT + index * slot + slot / 2:.1f},{y(day.erasures):.1f}" for index, day in enumerate(days)
    )
    parts.append(f'<polyline class="line" points="{points}"/>')
    legend_x = WIDTH - RIGHT - 250
    parts.append(f'<rect class="bar" x="{legend_x}" y="2" width="10" height="10"/>')
    parts.append(f'<text class="legend" x="{legend_x + 14}" y="11">{escape(legend[0])}</text>')
    parts.append(
        f'<line class="line" x1="{legend_x + 120}" x2="{legend_x + 134}" y1="7" y2="7"/>'
        f'<text class="legend" x="{legend_x + 138}" y="11">{escape(legend[1])}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _month_label(day: date, x: float, month_names: Sequence[str]) -> str:
    return f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}">{escape(month_names[day.month - 1])}</text>'
