"""Bar charts drawn on the server as SVG geometry, so that the dashboard needs no chart script
(its Content-Security-Policy runs none inline) and a chart reads the same without JavaScript.
The template `partials/bar_chart.html` draws what `bar_chart` computes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 640
ROW_HEIGHT = 44
BAR_HEIGHT = 16
LABEL_WIDTH = 150  # the variant's name, left of the bars
VALUE_WIDTH = 90  # the count, right of the longest bar


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    # The share the value should have (the configured weight), in percent, drawn as a tick so a
    # skewed split shows at a glance; None when there is none to draw.
    expected_percent: float | None
    y: float
    width: float
    expected_x: float | None
    # Where the count is written: after the bar, and after the tick when that is further.
    value_x: float


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]
    title: str


@dataclass(frozen=True)
class Datum:
    label: str
    value: int
    expected_percent: float | None = None


def bar_chart(data: Sequence[Datum], title: str) -> BarChart:
    """Horizontal bars, one a row, scaled to the largest of the values and of the expected
    values (each expected share of the total), so that neither runs off the chart."""
    total = sum(d.value for d in data)
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    expected = [total * d.expected_percent / 100 for d in data if d.expected_percent is not None]
    top = max([*(d.value for d in data), *expected, 1])
    bars = []
    for index, datum in enumerate(data):
        expected_x = None
        if datum.expected_percent is not None and total:
            expected_x = LABEL_WIDTH + span * (total * datum.expected_percent / 100) / top
        bars.append(
            Bar(
                label=datum.label,
                value=datum.value,
                expected_percent=datum.expected_percent,
                y=index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                width=span * datum.value / top,
                expected_x=expected_x,
                value_x=max(LABEL_WIDTH + span * datum.value / top, expected_x or 0) + 8,
            )
        )
    return BarChart(
        width=WIDTH,
        height=max(1, len(data)) * ROW_HEIGHT,
        label_width=LABEL_WIDTH,
        bar_height=BAR_HEIGHT,
        bars=bars,
        title=title,
    )
