"""The usage chart, drawn on the server as SVG so it needs no script and no library."""

from dataclasses import dataclass

from common.charts import bar_rects
from generation.selectors import UsageDay

WIDTH = 600
HEIGHT = 160
# Room under the bars for the date labels.
AXIS = 20


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: UsageDay


@dataclass(frozen=True)
class UsageChart:
    bars: list[Bar]
    peak: int
    total_credits: int
    total_images: int
    width: int = WIDTH
    height: int = HEIGHT
    baseline: int = HEIGHT - AXIS

    @property
    def first_day(self):
        return self.bars[0].day.date

    @property
    def last_day(self):
        return self.bars[-1].day.date


def usage_chart(days: list[UsageDay]) -> UsageChart:
    """One bar per day, its height the credits used that day relative to the busiest day."""
    peak = max((day.credits_used for day in days), default=0)
    rects = bar_rects(
        [day.credits_used for day in days],
        left=0,
        plot_width=WIDTH,
        plot_height=HEIGHT - AXIS,
        baseline=HEIGHT - AXIS,
        ceiling=peak or 1,
    )
    bars = [
        Bar(x=rect.x, y=rect.y, width=rect.width, height=rect.height, day=day)
        for rect, day in zip(rects, days, strict=True)
    ]
    return UsageChart(
        bars=bars,
        peak=peak,
        total_credits=sum(day.credits_used for day in days),
        total_images=sum(day.images for day in days),
    )
