"""Geometry for the server-rendered SVG charts (no JavaScript, no CDN): the staff usage
report's (reporting.admin) and the customer's usage chart (dashboard.charts).

A chart is computed here in plain numbers; the template only draws the rectangles, the
polyline and the labels it is given. `bar_chart` and `line_chart` make the report's framed
charts (grid lines, value and date labels); `bar_rects` is the bars alone, for a chart that
frames itself.
"""

import math
from dataclasses import dataclass, field

# The framed charts' size.
WIDTH = 760
HEIGHT = 200
# Room for the value labels on the left and the date labels below.
LEFT = 56
BOTTOM = 22
TOP = 8
PLOT_WIDTH = WIDTH - LEFT - 8
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    y: float
    height: float
    # The highlighted part at the bottom of the bar (e.g. moderated jobs): its y and height.
    part_y: float
    part_height: float
    title: str


@dataclass(frozen=True)
class Rect:
    x: float
    width: float
    y: float
    height: float


def bar_rects(
    values: list[int],
    *,
    left: float,
    plot_width: float,
    plot_height: float,
    baseline: float,
    ceiling: float,
    max_gap: float = math.inf,
) -> list[Rect]:
    """One bar per value standing on `baseline`, `ceiling` reaching `plot_height`; a fifth
    of each bar's slot (at most `max_gap`) is left between bars."""
    slot = plot_width / max(len(values), 1)
    gap = min(max_gap, slot * 0.2)
    rects = []
    for index, value in enumerate(values):
        height = _scaled(value, ceiling, plot_height)
        rects.append(
            Rect(
                x=round(left + slot * index + gap / 2, 1),
                width=round(max(slot - gap, 0.5), 1),
                y=round(baseline - height, 1),
                height=height,
            )
        )
    return rects


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class XLabel:
    x: float
    label: str


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - 8
    baseline: float = TOP + PLOT_HEIGHT
    bars: list[Bar] = field(default_factory=list)
    points: str = ""
    area: str = ""
    ticks: list[Tick] = field(default_factory=list)
    x_labels: list[XLabel] = field(default_factory=list)
    empty: bool = True
    # The value at the top of the plot and the width given to each label.
    ceiling: float = 1
    slot: float = 1


def _nice_ceiling(value: float) -> float:
    """A round number at least `value` whose quarters are round too: the grid lines."""
    if value <= 4:
        return 4
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _frame(labels: list[str], top_value: float, format_value) -> Chart:
    chart = Chart()
    ceiling = _nice_ceiling(top_value)
    for quarter in range(5):
        value = ceiling * quarter / 4
        chart.ticks.append(
            Tick(y=round(chart.baseline - PLOT_HEIGHT * quarter / 4, 1), label=format_value(value))
        )
    slot = PLOT_WIDTH / max(len(labels), 1)
    # About eight date labels, whatever the range.
    every = max(1, round(len(labels) / 8))
    for index, label in enumerate(labels):
        if index % every == 0:
            chart.x_labels.append(XLabel(x=round(LEFT + slot * (index + 0.5), 1), label=label))
    chart.empty = top_value <= 0
    chart.ceiling = ceiling
    chart.slot = slot
    return chart


def _scaled(value: float, ceiling: float, plot_height: float = PLOT_HEIGHT) -> float:
    return round(plot_height * value / ceiling, 1)


def bar_chart(
    labels: list[str],
    values: list[int],
    parts: list[int] | None = None,
    *,
    title,
    format_value=lambda value: f"{value:,.0f}",
) -> Chart:
    """One bar per label; `parts` (same length) is drawn over the bottom of each bar."""
    chart = _frame(labels, max(values, default=0), format_value)
    frame = {
        "left": LEFT,
        "plot_width": PLOT_WIDTH,
        "plot_height": PLOT_HEIGHT,
        "baseline": chart.baseline,
        "ceiling": chart.ceiling,
        "max_gap": 2.0,
    }
    parts = bar_rects(parts or [0] * len(values), **frame)
    for index, rect in enumerate(bar_rects(values, **frame)):
        chart.bars.append(
            Bar(
                x=rect.x,
                width=rect.width,
                y=rect.y,
                height=rect.height,
                part_y=parts[index].y,
                part_height=parts[index].height,
                title=title(index),
            )
        )
    return chart


def line_chart(labels: list[str], values: list[int], *, format_value=lambda v: f"{v:,.0f}"):
    """A line through one point per label, over a shaded area."""
    chart = _frame(labels, max(values, default=0), format_value)
    coordinates = [
        (round(LEFT + chart.slot * (index + 0.5), 1), chart.baseline - _scaled(v, chart.ceiling))
        for index, v in enumerate(values)
    ]
    chart.points = " ".join(f"{x},{y:.1f}" for x, y in coordinates)
    if coordinates:
        chart.area = (
            f"{coordinates[0][0]},{chart.baseline} {chart.points} "
            f"{coordinates[-1][0]},{chart.baseline}"
        )
    return chart
