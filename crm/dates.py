"""Dates as people say them in their language: Django's formats, with the French ordinal for the
first of the month (« le 1er décembre », never « le 1 décembre »); and the one way the staff pages
show days, times, windows, durations and relative times (day_text … relative_text, used by the
template filters of crm/templatetags/when.py, by forms and by messages of errors), in the active
language and the active time zone (the business one on every staff page and the admin)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.utils import timezone, translation
from django.utils.formats import date_format, time_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def said_date(value: date | datetime, fmt: str) -> str:
    """``value`` in the date format ``fmt`` (Django's letters) for the active language."""
    if value.day == 1 and (translation.get_language() or "").split("-")[0] == "fr":
        # "j" is the day of the month; an escaped literal stands in for it on the first.
        fmt = _replace_unescaped(fmt, "j", r"\1\e\r")
    return date_format(value, fmt)


def _replace_unescaped(fmt: str, letter: str, replacement: str) -> str:
    out, escaped = [], False
    for char in fmt:
        if escaped:
            out.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == letter:
            out.append(replacement)
        else:
            out.append(char)
    return "".join(out)


# --- One way to show time on the staff pages (crm/templatetags/when.py) ---------------------------

# A day, by language: "Thu 5 Mar", "jeu 5 mars" (French abbreviates the month its own way:
# "déc.", "mars"); with the year when it is not this one.
DAY = {"en": "D j M", "fr": "D j N"}
CLOCK = "H:i"


def _this_year() -> int:
    # The active zone: the business one on every staff page and the admin (crm.access).
    return timezone.localdate().year


def _local(value: datetime) -> datetime:
    return timezone.localtime(value) if timezone.is_aware(value) else value


def day_text(value: date | datetime) -> str:
    """A day as the staff read it everywhere: "Thu 5 Mar" (its year only when not this year's)."""
    if isinstance(value, datetime):
        value = _local(value)
    fmt = DAY.get((translation.get_language() or "en").split("-")[0], DAY["en"])
    return said_date(value, fmt if value.year == _this_year() else f"{fmt} Y")


def clock_text(value: datetime | time) -> str:
    """A time of day: "14:30"."""
    return time_format(_local(value) if isinstance(value, datetime) else value, CLOCK)


def moment_text(value: datetime) -> str:
    """A day and its time: "Thu 5 Mar 14:30"."""
    return f"{day_text(value)} {clock_text(value)}"


def window_text(start: datetime, end: datetime) -> str:
    """From one moment to another: "Thu 5 Mar 14:00–16:00", or both days when they differ."""
    if _local(start).date() == _local(end).date():
        return f"{day_text(start)} {clock_text(start)}–{clock_text(end)}"
    return f"{moment_text(start)} – {moment_text(end)}"


def duration_text(value: timedelta | float | int) -> str:
    """How long, in the units people use, rounded to the minute: "15 min", "4 h 30 min", "3 days 2 h"."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    minutes = round(abs(seconds) / 60)
    if minutes < 60:
        return _("%(minutes)s min") % {"minutes": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        if minutes:
            return _("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
        return _("%(hours)s h") % {"hours": hours}
    days, hours = divmod(hours, 24)
    text = ngettext("%(days)s day", "%(days)s days", days) % {"days": days}
    return _("%(days)s %(hours)s h") % {"days": text, "hours": hours} if hours else text


def _about(seconds: float) -> str:
    """A length of time in its one largest unit, rounded: "5 min", "3 h", "2 days"."""
    minutes = round(abs(seconds) / 60)
    if minutes < 60:
        return _("%(minutes)s min") % {"minutes": minutes}
    if minutes < 48 * 60:
        return _("%(hours)s h") % {"hours": round(minutes / 60)}
    days = round(minutes / (24 * 60))
    return ngettext("%(days)s day", "%(days)s days", days) % {"days": days}


def relative_text(value: date | datetime, now: datetime | None = None) -> str:
    """When, said as people read it fastest: "3 h ago", "in 2 days", "yesterday", "just now"."""
    now = now or timezone.now()
    if not isinstance(value, datetime):
        days = (value - timezone.localdate()).days
        if days == 0:
            return str(_("today"))
        if days == 1:
            return str(_("tomorrow"))
        if days == -1:
            return str(_("yesterday"))
        if days > 0:
            return ngettext("in %(n)s day", "in %(n)s days", days) % {"n": days}
        return ngettext("%(n)s day ago", "%(n)s days ago", -days) % {"n": -days}
    seconds = (value - now).total_seconds()
    if abs(seconds) < 60:
        return str(_("just now"))
    length = _about(seconds)
    return _("in %(when)s") % {"when": length} if seconds > 0 else _("%(when)s ago") % {"when": length}
