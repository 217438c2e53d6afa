"""The staff pages' one way to show time: ``{% load when %}``, then

- ``{{ day|day }}`` "Thu 5 Mar" (the year only when not this one), ``{{ moment|moment }}``
  "Thu 5 Mar 14:30", ``{{ moment|clock }}`` "14:30", ``{% window start end %}``;
- ``{{ moment|ago }}`` "3 h ago" / "in 2 days", in a ``<time>`` whose title (hover, focus) is the
  exact moment; ``{{ delta|duration }}`` "2 h 30 min".

All in the reader's language and the business time zone (crm.access.staff_required activates it;
the admin too), through crm.dates.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django import template
from django.utils.html import format_html

from crm import dates

register = template.Library()


@register.filter(name="day")
def day(value: date | datetime | None) -> str:
    return dates.day_text(value) if value else ""


@register.filter(name="moment")
def moment(value: datetime | None) -> str:
    return dates.moment_text(value) if value else ""


@register.filter(name="clock")
def clock(value: datetime | None) -> str:
    return dates.clock_text(value) if value else ""


@register.simple_tag(name="window")
def window(start: datetime | None, end: datetime | None) -> str:
    return dates.window_text(start, end) if start and end else ""


@register.filter(name="duration")
def duration(value: timedelta | float | None) -> str:
    return dates.duration_text(value) if value is not None else ""


@register.filter(name="ago")
def ago(value: date | datetime | None) -> Any:
    """The relative time, its exact moment on hover and focus (a ``<time>`` with a title)."""
    if not value:
        return ""
    exact = dates.moment_text(value) if isinstance(value, datetime) else dates.day_text(value)
    return format_html(
        '<time datetime="{}" title="{}" tabindex="0">{}</time>', value.isoformat(), exact, dates.relative_text(value)
    )
