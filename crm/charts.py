"""Small server-rendered SVG charts: a series of (label, value) as a line or bars.

No JavaScript and nothing fetched from elsewhere: the chart is part of the page. Each chart is an
``img`` with a ``<title>`` and a ``<desc>`` that reads out every value, its axes are labelled in
text, and the values are printed on the chart, so nothing is only told by a colour or a shape.
Colours are dark enough on white for text (WCAG AA) and for the marks (3:1 for graphics).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

# Bootstrap's body text, a darker grey than Bootstrap's secondary text, and a darker blue than
# its primary: all above 4.5:1 on white.
TEXT = "#212529"
MUTED = "#495057"
GRID = "#ced4da"
SERIES = "#0a58ca"

WIDTH = 640
HEIGHT = 260
LEFT = 56
RIGHT = 16
TOP = 28
BOTTOM = 56
# Beyond this many points the values are not printed on the chart (they would overlap); they
# are still in the description and the page's table.
MAX_VALUE_LABELS = 16
MAX_X_LABELS = 12
# The y axis is cut in this many steps.
TICKS = 4

Series = Sequence[tuple[str, float | None]]


def format_number(value: float) -> str:
    """12 → "12", 12.345 → "12.3" (in the active language's notation)."""
    rounded = round(value, 1)
    return number_format(rounded, decimal_pos=0 if rounded == int(rounded) else 1)


def tick_format(step: float) -> Callable[[float], str]:
    """Axis numbers with as many decimals as the step needs, so no two ticks read the same."""
    decimals = next((d for d in range(4) if abs(round(step, d) - step) < 1e-9), 4)
    return lambda value: number_format(round(value, decimals), decimal_pos=decimals)


def axis_top(value: float, *, integer: bool = False) -> float:
    """The top of the y axis: four equal, round steps (whole ones for counts) reaching at least
    ``value``."""
    if value <= 0:
        return 4 if integer else 1
    wanted = value / TICKS
    power = 10 ** math.floor(math.log10(wanted))
    for multiple in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5, 8, 10):
        step = multiple * power
        if integer and step != int(step):
            continue
        if wanted <= step + 1e-9:
            return max(step, 1 if integer else step) * TICKS
    return 10 * power * TICKS  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class _Frame:
    count: int
    y_max: float

    @property
    def plot_width(self) -> float:
        return WIDTH - LEFT - RIGHT

    @property
    def plot_height(self) -> float:
        return HEIGHT - TOP - BOTTOM

    @property
    def step(self) -> float:
        return self.plot_width / max(self.count, 1)

    def x(self, index: int) -> float:
        """The centre of the index-th slot."""
        return LEFT + self.step * (index + 0.5)

    def y(self, value: float) -> float:
        return TOP + self.plot_height * (1 - min(max(value, 0), self.y_max) / self.y_max)

    @property
    def baseline(self) -> float:
        return TOP + self.plot_height


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content: str, *, anchor: str = "middle", fill: str = TEXT) -> str:
    return f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" fill="{fill}" font-size="12">{escape(content)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, colour: str) -> str:
    return f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{colour}" stroke-width="1"/>'


def _axes(frame: _Frame, labels: list[str], *, x_label: str, y_label: str) -> list[str]:
    """Grid lines and numbers up the y axis (four steps), labels along the x axis (thinned out
    when there are many), and the axes' titles."""
    parts = []
    tick_text = tick_format(frame.y_max / TICKS)
    for tick in range(TICKS + 1):
        level = frame.y_max * tick / TICKS
        parts.append(_line(LEFT, frame.y(level), WIDTH - RIGHT, frame.y(level), GRID))
        parts.append(_text(LEFT - 6, frame.y(level) + 4, tick_text(level), anchor="end", fill=MUTED))
    parts.append(_line(LEFT, TOP, LEFT, frame.baseline, MUTED))
    parts.append(_line(LEFT, frame.baseline, WIDTH - RIGHT, frame.baseline, MUTED))
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    for index, label in enumerate(labels):
        if index % every == 0:
            parts.append(_text(frame.x(index), frame.baseline + 18, label, fill=MUTED))
    if y_label:
        parts.append(_text(LEFT - 6, TOP - 12, y_label, anchor="end", fill=MUTED))
    if x_label:
        parts.append(_text(LEFT + frame.plot_width / 2, HEIGHT - 8, x_label, fill=MUTED))
    return parts


def _bars(frame: _Frame, values: list[float | None]) -> list[str]:
    width = frame.step * 0.6
    parts = []
    for index, value in enumerate(values):
        if value is not None:
            x, y = frame.x(index) - width / 2, frame.y(value)
            height = max(frame.baseline - y, 0)
            parts.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="{_n(height)}" fill="{SERIES}"/>')
    return parts


def _polyline(frame: _Frame, values: list[float | None]) -> list[str]:
    """The line, broken where there is no data, and a dot on every value."""
    runs: list[list[str]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append(f"{_n(frame.x(index))},{_n(frame.y(value))}")
    parts = [
        f'<polyline points="{" ".join(run)}" fill="none" stroke="{SERIES}" stroke-width="2.5" stroke-linejoin="round"/>'
        for run in runs
        if len(run) > 1
    ]
    parts += [
        f'<circle cx="{_n(frame.x(index))}" cy="{_n(frame.y(value))}" r="4" fill="{SERIES}"/>'
        for index, value in enumerate(values)
        if value is not None
    ]
    return parts


def _value_labels(
    frame: _Frame, values: list[float | None], *, above: float, format_value: Callable[[float], str], missing: str
) -> list[str]:
    if len(values) > MAX_VALUE_LABELS:
        return []
    return [
        _text(frame.x(index), frame.baseline - 6, missing, fill=MUTED)
        if value is None
        else _text(frame.x(index), frame.y(value) - above, format_value(value))
        for index, value in enumerate(values)
    ]


def chart(
    points: Series,
    *,
    kind: str,
    chart_id: str,
    title: str,
    description: str = "",
    x_label: str = "",
    y_label: str = "",
    y_max: float | None = None,
    integer: bool = False,
    format_value: Callable[[float], str] = format_number,
    missing: str = "–",
) -> SafeString:
    """An accessible SVG chart of ``points`` ((label, value or None) in order) as a "line" or "bar".

    ``None`` is "no data" (a gap in the line, no bar) and is said so in the description. Every
    text is escaped; ``chart_id`` must be unique on the page (it ties the title and description).
    The y axis is numbered plainly (its unit is ``y_label``); the values are shown with
    ``format_value``. ``integer``: the values are counts, so the axis is numbered in whole steps.
    """
    if kind not in ("line", "bar"):
        raise ValueError(f"Unknown chart kind: {kind!r}")
    labels = [label for label, _value in points]
    values = [value for _label, value in points]
    known = [value for value in values if value is not None]
    frame = _Frame(
        count=len(points), y_max=y_max if y_max is not None else axis_top(max(known, default=0), integer=integer)
    )
    no_data = _("no data")
    readout = "; ".join(
        _("%(label)s: %(value)s") % {"label": label, "value": format_value(value) if value is not None else no_data}
        for label, value in points
    )
    desc = " ".join(part for part in (description, readout + "." if readout else _("No data.")) if part)
    ident = escape(chart_id)
    # Shrunk to fit by the stylesheet (app.css, svg.chart): the CSP refuses style attributes.
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" class="chart chart-{kind}" '
        f'id="{ident}" aria-labelledby="{ident}-title {ident}-desc">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(desc)}</desc>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        *_axes(frame, labels, x_label=x_label, y_label=y_label),
        *(_bars(frame, values) if kind == "bar" else _polyline(frame, values)),
        *_value_labels(frame, values, above=6 if kind == "bar" else 9, format_value=format_value, missing=missing),
        "</svg>",
    ]
    # Every piece above is either our own markup or escaped text.
    return mark_safe("".join(parts))  # noqa: S308


line_chart = partial(chart, kind="line")
bar_chart = partial(chart, kind="bar")
