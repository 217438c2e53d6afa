"""Template helpers for portal pages: dates as people say them, form controls with their labels'
descriptions wired up for screen readers, and whether a page (an error page) is the portal's."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

from django import template
from django.forms import BoundField
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.safestring import SafeString

from crm.access import is_portal_page
from crm.dates import said_date

register = template.Library()


def _with_year(value: date, with_year: str, without: str) -> str:
    # The year only when it is not this one: "Tuesday 2 April", but "Friday 3 January 2025".
    fmt = without if value.year == timezone.localdate().year else with_year
    return _said(value, fmt, translation.get_language() or "")


@lru_cache(maxsize=4096)
def _said(value: date, fmt: str, language: str) -> str:
    """A page names the same few days again and again (its timeline, promises, messages): each is
    formatted once per language and format (``language`` is in the key: the active one formats)."""
    return said_date(value, fmt)


@register.filter(expects_localtime=True)
def long_day(value: date | datetime | None) -> str:
    """ "Tuesday 2 April" (in French: "mardi 2 avril"); datetimes in the active time zone."""
    if not value:
        return ""
    day = value.date() if isinstance(value, datetime) else value
    return _with_year(day, "l j F Y", "l j F")


@register.filter(expects_localtime=True)
def short_day(value: date | datetime | None) -> str:
    """ "2 April" (in French: "2 avril")."""
    if not value:
        return ""
    day = value.date() if isinstance(value, datetime) else value
    return _with_year(day, "j F Y", "j F")


@register.filter(expects_localtime=True)
def day_and_time(value: datetime | None) -> str:
    """ "2 March, 09:00" in the active time zone (the year only when it is not this one)."""
    if not value:
        return ""
    return f"{_with_year(value.date(), 'j F Y', 'j F')}, {date_format(value, 'H:i')}"


# Whether a page is under the portal (the error pages offer "My jobs" there, the staff home elsewhere).
register.filter("on_portal", is_portal_page)


@register.filter
def control(field: BoundField, css: str = "form-control") -> SafeString:
    """The field's widget with Bootstrap's class, marked invalid and described by its help text
    and its errors (the ids ``<id>_helptext`` and ``<id>_error`` used by portal/_field.html)."""
    described_by = []
    if field.help_text:
        described_by.append(f"{field.auto_id}_helptext")
    if field.errors:
        described_by.append(f"{field.auto_id}_error")
    attrs: dict[str, str | bool] = {"class": css + (" is-invalid" if field.errors else "")}
    if described_by:
        attrs["aria-describedby"] = " ".join(described_by)
    return field.as_widget(attrs=attrs)
