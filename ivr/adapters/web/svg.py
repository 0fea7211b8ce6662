"""Small SVG charts drawn on the server: line, bar, funnel and split bar.

Inline SVG needs no JavaScript and no CDN, renders the same on a wall screen
and in a screenshot, and stays readable with scripts off. Colours come from
CSS classes, so the stylesheet alone decides the theme. Every text that
reaches the markup goes through `html.escape`: agent and queue names come
from the PBX configuration and must not be able to inject markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

MAX_X_LABELS = 12


@dataclass(frozen=True, slots=True)
class Series:
    """One line: a value per x label, None where there is no data (a gap)."""

    name: str
    values: Sequence[float | None]
    css: str


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float | None
    css: str = "bar"
    note: str = ""


Written = Callable[[float, int], str]
"""How a figure is written: value and decimals in, text out (a locale's digits, say)."""


def plain(value: float, decimals: int = 1) -> str:
    """Figures as the API writes them; the dashboard passes its reader's instead."""
    return f"{value:,.{decimals}f}" if decimals == 0 else f"{value:.{decimals}f}"


def _coordinate(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _open(width: int, height: int, title: str, css: str) -> list[str]:
    return [
        f'<svg class="chart {css}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]


def _ticks(y_min: float, y_max: float) -> list[float]:
    step = (y_max - y_min) / 4
    return [y_min + step * index for index in range(5)]


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_min: float = -100.0,
    y_max: float = 100.0,
    width: int = 960,
    height: int = 320,
    written: Written = plain,
) -> str:
    """Lines over shared x labels, with a zero line, a legend and point tooltips."""
    left, right, top, bottom = 52, 16, 36, 44
    plot_width, plot_height = width - left - right, height - top - bottom

    def x(index: int) -> float:
        if len(labels) <= 1:
            return left + plot_width / 2
        return left + plot_width * index / (len(labels) - 1)

    def y(value: float) -> float:
        clamped = min(max(value, y_min), y_max)
        return top + plot_height * (y_max - clamped) / (y_max - y_min)

    parts = _open(width, height, title, "line-chart")
    parts.extend(_y_axis(y, y_min, y_max, left=left, right=width - right, written=written))
    parts.extend(_x_labels(labels, x, baseline=height - bottom + 20))
    for number, line in enumerate(series):
        parts.extend(_line(line, labels, x, y, written))
        legend_x = left + number * 220
        parts.append(
            f'<rect class="swatch {line.css}" x="{legend_x}" y="10" width="18" height="6" rx="3"/>'
        )
        parts.append(f'<text class="legend" x="{legend_x + 26}" y="18">{escape(line.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _x_labels(labels: Sequence[str], x: Callable[[int], float], *, baseline: float) -> list[str]:
    """At most about MAX_X_LABELS of them, always the last: a year of days would
    otherwise print over each other."""
    every = max(1, -(-len(labels) // MAX_X_LABELS))
    return [
        f'<text class="axis" x="{_coordinate(x(index))}" y="{baseline}" '
        f'text-anchor="middle">{escape(label)}</text>'
        for index, label in enumerate(labels)
        if index % every == 0 or index == len(labels) - 1
    ]


def _line(
    line: Series,
    labels: Sequence[str],
    x: Callable[[int], float],
    y: Callable[[float], float],
    written: Written,
) -> list[str]:
    """A gap (None) breaks the line instead of being bridged, so a day without
    answers does not pass for a trend; a value alone between gaps is a point."""
    parts: list[str] = []
    segment: list[str] = []
    segments: list[list[str]] = []
    for index, value in enumerate(line.values):
        if value is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{_coordinate(x(index))},{_coordinate(y(value))}")
    if segment:
        segments.append(segment)
    for points in segments:
        if len(points) > 1:
            parts.append(f'<polyline class="series {line.css}" points="{" ".join(points)}"/>')
    for index, value in enumerate(line.values):
        if value is not None:
            label = labels[index] if index < len(labels) else ""
            parts.append(
                f'<circle class="point {line.css}" cx="{_coordinate(x(index))}" '
                f'cy="{_coordinate(y(value))}" r="4"><title>{escape(line.name)} '
                f"{escape(label)}: {escape(written(value, 1))}</title></circle>"
            )
    return parts


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    y_min: float = -100.0,
    y_max: float = 100.0,
    width: int = 960,
    height: int = 300,
    written: Written = plain,
) -> str:
    """Vertical bars from the zero line (NPS can be negative), value on each bar."""
    left, right, top, bottom = 52, 16, 24, 56
    plot_width, plot_height = width - left - right, height - top - bottom
    slot = plot_width / max(1, len(bars))

    def y(value: float) -> float:
        clamped = min(max(value, y_min), y_max)
        return top + plot_height * (y_max - clamped) / (y_max - y_min)

    parts = _open(width, height, title, "bar-chart")
    parts.extend(_y_axis(y, y_min, y_max, left=left, right=width - right, written=written))
    zero = y(0.0) if y_min <= 0 <= y_max else y(y_min)
    for index, bar in enumerate(bars):
        middle = left + slot * index + slot / 2
        bar_width = slot * 0.6
        if bar.value is not None:
            end = y(bar.value)
            top_edge, bar_height = min(zero, end), abs(zero - end)
            parts.append(
                f'<rect class="bar {bar.css}" x="{_coordinate(middle - bar_width / 2)}" '
                f'y="{_coordinate(top_edge)}" width="{_coordinate(bar_width)}" '
                f'height="{_coordinate(max(bar_height, 1.0))}" rx="3"><title>'
                f"{escape(bar.label)}: {escape(written(bar.value, 1))}</title></rect>"
            )
            # Above a positive bar; inside the far end of a negative one, where
            # below it would collide with the labels of the x axis.
            inside = bar.value < 0 and bar_height >= 24
            if bar.value >= 0:
                value_y = top_edge - 6
            elif inside:
                value_y = top_edge + bar_height - 8
            else:
                value_y = top_edge + bar_height + 16
            css = "value inside" if inside else "value"
            parts.append(
                f'<text class="{css}" x="{_coordinate(middle)}" y="{_coordinate(value_y)}" '
                f'text-anchor="middle">{escape(written(bar.value, 1))}</text>'
            )
        parts.append(
            f'<text class="axis" x="{_coordinate(middle)}" y="{height - bottom + 20}" '
            f'text-anchor="middle">{escape(bar.label)}</text>'
        )
        if bar.note:
            parts.append(
                f'<text class="note" x="{_coordinate(middle)}" y="{height - bottom + 38}" '
                f'text-anchor="middle">{escape(bar.note)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def funnel_chart(
    steps: Sequence[tuple[str, int]], *, title: str, width: int = 600, written: Written = plain
) -> str:
    """Horizontal bars, each as wide as its count against the first step."""
    row, label_width, right = 46, 110, 150
    height = row * len(steps) + 12
    widest = max((count for _, count in steps), default=0) or 1
    first = steps[0][1] if steps else 0
    parts = _open(width, height, title, "funnel-chart")
    for index, (label, count) in enumerate(steps):
        top = 6 + row * index
        bar_width = (width - label_width - right) * count / widest
        share = f" · {written(100.0 * count / first, 1)}%" if first and index else ""
        parts.append(
            f'<text class="legend" x="{label_width - 12}" y="{top + 26}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        parts.append(
            f'<rect class="bar step-{index}" x="{label_width}" y="{top + 4}" '
            f'width="{_coordinate(max(bar_width, 2.0))}" height="{row - 14}" rx="4"/>'
        )
        parts.append(
            f'<text class="value" x="{_coordinate(label_width + max(bar_width, 2.0) + 10)}" '
            f'y="{top + 26}">{escape(written(count, 0) + share)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def split_bar(promoters: int, passives: int, detractors: int, *, width: int = 160) -> str:
    """One stacked bar: promoters, passives, detractors as shares of the answers."""
    total = promoters + passives + detractors
    height = 14
    title = f"promoters {promoters}, passives {passives}, detractors {detractors}"
    parts = _open(width, height, title, "split-bar")
    if total == 0:
        parts.append(f'<rect class="empty" x="0" y="0" width="{width}" height="{height}" rx="3"/>')
    offset = 0.0
    for css, count in (("promoter", promoters), ("passive", passives), ("detractor", detractors)):
        if total and count:
            share = width * count / total
            parts.append(
                f'<rect class="{css}" x="{_coordinate(offset)}" y="0" '
                f'width="{_coordinate(share)}" height="{height}"/>'
            )
            offset += share
    parts.append("</svg>")
    return "".join(parts)


def _y_axis(
    y: Callable[[float], float],
    y_min: float,
    y_max: float,
    *,
    left: float,
    right: float,
    written: Written,
) -> list[str]:
    """Grid lines and labels of the value axis, shared by the line and bar charts."""
    parts: list[str] = []
    for tick in _ticks(y_min, y_max):
        css = "zero" if tick == 0 else "grid"
        parts.append(
            f'<line class="{css}" x1="{left}" x2="{right}" '
            f'y1="{_coordinate(y(tick))}" y2="{_coordinate(y(tick))}"/>'
        )
        parts.append(
            f'<text class="axis" x="{left - 8}" y="{_coordinate(y(tick) + 4)}" '
            f'text-anchor="end">{escape(written(tick, 0 if tick.is_integer() else 1))}</text>'
        )
    return parts
