"""Business time: what "we'll answer within two days" means on a calendar.

Working days, opening hours and holidays come from settings (WORKING_DAYS, BUSINESS_HOURS,
HOLIDAYS) and are counted in BUSINESS_TIME_ZONE, wherever the server or the customer is.

The calendar has ends (date.min, date.max): counting business days past them raises a DomainError
("too far from today") instead of Python's OverflowError, so a date typed by mistake is a message
to the person, never a crash. Forms keep the dates people type within reach first: from
EARLIEST_DAY to latest_day() (PLANNING_YEARS ahead).
"""

from __future__ import annotations

import zoneinfo
from datetime import MAXYEAR, MINYEAR, date, datetime, time, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.dates import day_text
from crm.errors import DomainError

# No date anyone types (a report period, a start date, a campaign) lies before this one.
EARLIEST_DAY = date(2000, 1, 1)
# No date is promised, planned or reported on further ahead than this many years.
PLANNING_YEARS = 5


def _off_the_calendar() -> DomainError:
    return DomainError(_("This date is too far from today to plan with: choose a nearer one."))


def business_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.BUSINESS_TIME_ZONE)


def opening_hours() -> tuple[time, time]:
    start, end = settings.BUSINESS_HOURS
    return start, end


def is_business_day(day: date) -> bool:
    return day.weekday() in settings.WORKING_DAYS and day not in settings.HOLIDAYS


def next_business_day(day: date) -> date:
    """``day`` itself when people work that day, else the next day they do (a DomainError past
    the end of the calendar)."""
    try:
        while not is_business_day(day):
            day += timedelta(days=1)
    except OverflowError:
        raise _off_the_calendar() from None
    return day


def add_business_days(start: date, days: int) -> date:
    """The date ``days`` business days after ``start``.

    Zero days from a weekend or holiday lands on the next business day: a promise is never due on
    a day nobody works. Past the end of the calendar (date.max): a DomainError.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    day = next_business_day(start)
    remaining = days
    try:
        while remaining:
            day += timedelta(days=1)
            if is_business_day(day):
                remaining -= 1
    except OverflowError:
        raise _off_the_calendar() from None
    return day


def subtract_business_days(start: date, days: int) -> date:
    """The business day ``days`` business days before ``start``."""
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    remaining = days
    try:
        while remaining:
            day -= timedelta(days=1)
            if is_business_day(day):
                remaining -= 1
    except OverflowError:
        raise _off_the_calendar() from None
    return day


def business_today() -> date:
    """Today's date where the team works (settings.BUSINESS_TIME_ZONE)."""
    return timezone.localdate(timezone=business_zone())


def years_after(day: date, years: int) -> date:
    """The same day ``years`` later (29 February becomes the 28th in a common year); negative
    ``years``: earlier. The calendar's ends (date.min, date.max) at most."""
    year = day.year + years
    if not MINYEAR <= year <= MAXYEAR:
        return date.max if years > 0 else date.min
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def latest_day(today: date | None = None) -> date:
    """The furthest date anyone may promise, plan or report on: PLANNING_YEARS from today."""
    return years_after(today or business_today(), PLANNING_YEARS)


def out_of_reach(day: date, *, earliest: date = EARLIEST_DAY, latest: date | None = None) -> tuple[str, str] | None:
    """Why ``day`` cannot be planned with — ``(code, message)`` — or None when it lies between
    ``earliest`` and ``latest`` (default: latest_day()). Forms show the message on the field,
    services raise it as a DomainError: one rule, one wording."""
    latest = latest or latest_day()
    if day < earliest:
        return "too_early", _("Choose a date on or after %(date)s.") % {"date": day_text(earliest)}
    if day > latest:
        return "too_late", _("Choose a date no later than %(date)s.") % {"date": day_text(latest)}
    return None


def end_of_business_day(day: date) -> datetime:
    """Closing time on ``day`` where the team works: when a promise "by <day>" falls due."""
    return datetime.combine(day, opening_hours()[1], tzinfo=business_zone())


def add_business_hours(start: datetime, hours: float) -> datetime:
    """``hours`` of opening time after ``start``, skipping nights, weekends and holidays."""
    zone = business_zone()
    opens, closes = opening_hours()
    moment = start.astimezone(zone)
    remaining = timedelta(hours=hours)
    while True:
        day = moment.date()
        day_open = datetime.combine(day, opens, tzinfo=zone)
        day_close = datetime.combine(day, closes, tzinfo=zone)
        if not is_business_day(day) or moment >= day_close:
            moment = datetime.combine(next_business_day(day + timedelta(days=1)), opens, tzinfo=zone)
            continue
        moment = max(moment, day_open)
        if moment + remaining <= day_close:
            return moment + remaining
        remaining -= day_close - moment
        moment = day_close


def business_day_hours() -> float:
    """How many hours of opening time make one business day (9 for 09:00-18:00)."""
    opens, closes = opening_hours()
    return (datetime.combine(date.min, closes) - datetime.combine(date.min, opens)).total_seconds() / 3600


# --- The customer's clock -----------------------------------------------------------------------
# Messages that do not answer something the customer did (surveys, check-ins) reach them in the
# morning of their own day, never at night.

CUSTOMER_SEND_AT = time(10, 0)
CUSTOMER_DAYTIME = (time(9, 0), time(20, 0))


def customer_zone(name: str) -> zoneinfo.ZoneInfo:
    """The contact's time zone; the default contact time zone if the stored name is unknown."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.DEFAULT_CONTACT_TIME_ZONE)


def customer_morning(moment: datetime, *, days: int, zone: zoneinfo.ZoneInfo) -> datetime:
    """CUSTOMER_SEND_AT, ``days`` calendar days after ``moment``'s date in ``zone`` (never before
    ``moment`` itself, for a delay of 0 days)."""
    day = moment.astimezone(zone).date() + timedelta(days=days)
    return max(datetime.combine(day, CUSTOMER_SEND_AT, tzinfo=zone), moment)


def is_customer_daytime(moment: datetime, *, zone: zoneinfo.ZoneInfo) -> bool:
    """Whether ``moment`` is a decent hour to message someone in ``zone`` (09:00 to 20:00)."""
    start, end = CUSTOMER_DAYTIME
    return start <= moment.astimezone(zone).time() < end
