"""The experiment chart's geometry, computed without a browser."""

from __future__ import annotations

import pytest

from ensign.web.dashboard.charts import LABEL_WIDTH, VALUE_WIDTH, WIDTH, Datum, bar_chart

SPAN = WIDTH - LABEL_WIDTH - VALUE_WIDTH


def test_bar_chart__values__scaled_to_the_largest() -> None:
    chart = bar_chart([Datum("control", 100, 50.0), Datum("a", 50, 50.0)], title="t")

    assert [b.width for b in chart.bars] == [SPAN, SPAN / 2]
    # 150 exposures at 50% each expect 75: the tick sits at 75/100 of the span
    assert [b.expected_x for b in chart.bars] == pytest.approx([LABEL_WIDTH + SPAN * 0.75] * 2)
    # the count is written after the longer of bar and tick
    assert chart.bars[0].value_x == pytest.approx(LABEL_WIDTH + SPAN + 8)
    assert chart.bars[1].value_x == pytest.approx(LABEL_WIDTH + SPAN * 0.75 + 8)
    assert chart.bars[0].y < chart.bars[1].y < chart.height


def test_bar_chart__an_expected_share_above_every_value__nothing_runs_off() -> None:
    chart = bar_chart([Datum("control", 10, 90.0), Datum("a", 0, 10.0)], title="t")

    assert max(b.expected_x or 0 for b in chart.bars) <= LABEL_WIDTH + SPAN
    assert all(b.value_x <= WIDTH - VALUE_WIDTH + 8 for b in chart.bars)


def test_bar_chart__no_exposures__empty_bars_and_no_ticks() -> None:
    chart = bar_chart([Datum("control", 0, 50.0), Datum("a", 0, 50.0)], title="t")

    assert [(b.width, b.expected_x) for b in chart.bars] == [(0.0, None), (0.0, None)]
