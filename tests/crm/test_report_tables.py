"""crm.report_tables: what both report pages show (cells, week-by-week charts, numbers)."""

from __future__ import annotations

from datetime import date

import pytest
from django.utils import translation

from crm.report_tables import Cell, day_label, percent, rounded, week_label, weekly_chart
from crm.reports import Period


@pytest.mark.parametrize(
    ("value", "plain", "half_up"),
    [
        (62.5, "62%", "63%"),
        (63.5, "64%", "64%"),
        (0.5, "0%", "1%"),
        (62.4, "62%", "62%"),
        (100.0, "100%", "100%"),
    ],
)
def test_it_rounds_a_percentage_as_each_page_does(value: float, plain: str, half_up: str) -> None:
    with translation.override("en"):
        # The health page: Python's round() (a half to the even number); satisfaction: half up.
        assert percent(value) == plain
        assert percent(value, half_up=True) == half_up


def test_it_rounds_half_up() -> None:
    assert str(rounded(4.25, 1)) == "4.3"
    assert str(rounded(-66.666, 1)) == "-66.7"


def test_it_labels_weeks_and_days() -> None:
    with translation.override("en"):
        assert week_label(Period(date(2026, 3, 2), date(2026, 3, 8))) == "2 Mar"
        assert day_label(date(2026, 3, 2)) == "2 Mar 2026"


def test_it_builds_a_chart_with_the_table_under_it() -> None:
    with translation.override("en"):
        figure = weekly_chart(
            key="kept",
            figure="Promises kept on time",
            who="Team",
            kind="line",
            labels=["2 Mar", "9 Mar"],
            values=[50.0, None],
            cells=[Cell("50%", "1 of 2 promises"), Cell("", "0 of 0 promises")],
            description="Weeks of 2 Mar 2026 to 15 Mar 2026.",
            y_max=100,
        )
    assert figure.key == "kept"
    assert figure.title == "Promises kept on time"
    assert figure.rows == [("2 Mar", "50%", "1 of 2 promises"), ("9 Mar", "", "0 of 0 promises")]
    assert 'id="chart-kept"' in figure.svg
    assert "Promises kept on time, week by week: Team" in figure.svg
    assert "Weeks of 2 Mar 2026 to 15 Mar 2026." in figure.svg


def test_it_wants_a_cell_for_each_week() -> None:
    with pytest.raises(ValueError):
        weekly_chart(
            key="kept",
            figure="Kept",
            who="Team",
            kind="line",
            labels=["2 Mar", "9 Mar"],
            values=[50.0, None],
            cells=[Cell("50%", "")],
            description="",
        )
