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

Series = Sequence[tuple[str, float | None]]


def format_number(value: float) -> str:
    """12 → "12", 12.345 → "12.3"."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above ``value`` (the top of the y axis)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-9:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


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


def _text(x: float, y: float, content: str, *, anchor: str = "middle", fill: str = TEXT, extra: str = "") -> str:
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" fill="{fill}" font-size="12"{extra}>'
        f"{escape(content)}</text>"
    )


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
    format_value: Callable[[float], str] = format_number,
    missing: str = "–",
) -> SafeString:
    """An accessible SVG chart of ``points`` ((label, value or None) in order) as a "line" or "bar".

    ``None`` is "no data" (a gap in the line, no bar) and is said so in the description. Every
    text is escaped; ``chart_id`` must be unique on the page (it ties the title and description).
    """
    if kind not in ("line", "bar"):
        raise ValueError(f"Unknown chart kind: {kind!r}")
    values = [value for _label, value in points if value is not None]
    top = y_max if y_max is not None else nice_ceiling(max(values, default=0))
    frame = _Frame(count=len(points), y_max=top)
    no_data = _("no data")
    readout = "; ".join(
        f"{label}: {format_value(value) if value is not None else no_data}" for label, value in points
    )
    desc = " ".join(part for part in (description, readout + "." if readout else _("No data.")) if part)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" style="max-width:100%;height:auto" class="chart chart-{kind}" '
        f'id="{escape(chart_id)}" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
    # The y axis: four steps, labelled, with light grid lines.
    for tick in range(5):
        value = top * tick / 4
        y = frame.y(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_n(y)}" y2="{_n(y)}" stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(_text(LEFT - 6, y + 4, format_value(value), anchor="end", fill=MUTED))
    parts.append(
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{_n(frame.baseline)}" stroke="{MUTED}" stroke-width="1"/>'
    )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_n(frame.baseline)}" y2="{_n(frame.baseline)}" '
        f'stroke="{MUTED}" stroke-width="1"/>'
    )
    if y_label:
        parts.append(_text(LEFT - 6, TOP - 12, y_label, anchor="end", fill=MUTED))
    if x_label:
        parts.append(_text(LEFT + frame.plot_width / 2, HEIGHT - 8, x_label, fill=MUTED))

    # The x axis: every label when they fit, else every n-th.
    every = max(1, math.ceil(len(points) / MAX_X_LABELS))
    for index, (label, _value) in enumerate(points):
        if index % every == 0:
            parts.append(_text(frame.x(index), frame.baseline + 18, label, fill=MUTED))

    show_values = len(points) <= MAX_VALUE_LABELS
    if kind == "bar":
        width = frame.step * 0.6
        for index, (_label, value) in enumerate(points):
            x = frame.x(index)
            if value is None:
                if show_values:
                    parts.append(_text(x, frame.baseline - 6, missing, fill=MUTED))
                continue
            y = frame.y(value)
            height = max(frame.baseline - y, 0)
            parts.append(
                f'<rect x="{_n(x - width / 2)}" y="{_n(y)}" width="{_n(width)}" height="{_n(height)}" fill="{SERIES}"/>'
            )
            if show_values:
                parts.append(_text(x, y - 6, format_value(value)))
    else:
        segment: list[str] = []
        segments: list[list[str]] = []
        for index, (_label, value) in enumerate(points):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{_n(frame.x(index))},{_n(frame.y(value))}")
        if segment:
            segments.append(segment)
        for line in segments:
            if len(line) > 1:
                parts.append(
                    f'<polyline points="{" ".join(line)}" fill="none" stroke="{SERIES}" stroke-width="2.5" '
                    'stroke-linejoin="round"/>'
                )
        for index, (_label, value) in enumerate(points):
            x = frame.x(index)
            if value is None:
                if show_values:
                    parts.append(_text(x, frame.baseline - 6, missing, fill=MUTED))
                continue
            y = frame.y(value)
            parts.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="4" fill="{SERIES}"/>')
            if show_values:
                parts.append(_text(x, y - 9, format_value(value)))
    parts.append("</svg>")
    # Every piece above is either our own markup or escaped text.
    return mark_safe("".join(parts))  # noqa: S308


line_chart = partial(chart, kind="line")
bar_chart = partial(chart, kind="bar")
