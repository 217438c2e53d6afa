"""What the report pages show, shared by the communication-health page (crm.views.reports) and the
satisfaction page (crm.reports_satisfaction): a table cell (the figure and what it is counted
from), a figure's week-by-week chart with the table under it, and the numbers and dates as the
active language writes them. The SVG itself is drawn by crm.charts; the figures are computed by
crm.reports and crm.reports_satisfaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from django.utils import formats
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from crm import charts

if TYPE_CHECKING:
    from crm.reports import Period


@dataclass
class Cell:
    """One figure in a table: the value (empty: nothing to count) and what it is counted from."""

    value: str
    detail: str


@dataclass
class FigureChart:
    key: str
    title: str
    svg: SafeString
    # (week label, value, what it is counted from) for the table under the chart.
    rows: list[tuple[str, str, str]]


def rounded(value: float, places: int = 0) -> Decimal:
    """Rounded the way people do it by hand: 4.25 → 4.3, 62.5 → 63, −66.67 → −66.7."""
    return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def percent(value: float, *, half_up: bool = False) -> str:
    """ "63%" in the active language's notation, a whole number. The two pages round a half
    differently, and each is kept as it is: the health page as Python's round() does (to the even
    number: 62.5 → 62), the satisfaction page with ``half_up`` (62.5 → 63, as its CSV does)."""
    whole = rounded(value) if half_up else round(value)
    return _("%(percent)s%%") % {"percent": formats.number_format(whole)}


def week_label(week: Period) -> str:
    """A week as the charts and their tables name it: the day it starts ("3 Mar")."""
    return formats.date_format(week.first_day, "j M")


def day_label(day: date) -> str:
    """A period's first or last day in a chart's description ("3 Mar 2026")."""
    return formats.date_format(day, "j M Y")


def weekly_chart(
    *,
    key: str,
    figure: str,
    who: str,
    kind: str,
    labels: list[str],
    values: list[float | None],
    cells: Sequence[Cell],
    description: str,
    **options: Any,
) -> FigureChart:
    """One figure of one row of a report (an owner, an installer, the team…), week by week: the
    chart (``kind`` "line" or "bar", ``options`` for crm.charts.chart) and, for each week of
    ``labels``, the table row under it from that week's cell. ``key`` names the chart on the page."""
    svg = charts.chart(
        list(zip(labels, values, strict=True)),
        kind=kind,
        chart_id=f"chart-{key}",
        title=_("%(figure)s, week by week: %(who)s") % {"figure": figure, "who": who},
        description=description,
        x_label=_("Week starting"),
        **options,
    )
    rows = [(label, cell.value, cell.detail) for label, cell in zip(labels, cells, strict=True)]
    return FigureChart(key, figure, svg, rows)
