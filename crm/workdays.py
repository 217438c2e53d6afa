"""Business days: what "we'll answer within two days" means on a calendar."""

import zoneinfo
from datetime import date, timedelta

from django.conf import settings
from django.utils import timezone

# Monday = 0 ... Sunday = 6.
WORKING_WEEKDAYS = frozenset({0, 1, 2, 3, 4})


def is_business_day(day: date) -> bool:
    return day.weekday() in WORKING_WEEKDAYS


def add_business_days(start: date, days: int) -> date:
    """The date ``days`` business days after ``start``.

    Zero days from a weekend lands on the next business day: a promise is never due on a day
    nobody works.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    while not is_business_day(day):
        day += timedelta(days=1)
    remaining = days
    while remaining:
        day += timedelta(days=1)
        if is_business_day(day):
            remaining -= 1
    return day


def business_today() -> date:
    """Today's date where the team works (settings.BUSINESS_TIME_ZONE)."""
    return timezone.localdate(timezone=zoneinfo.ZoneInfo(settings.BUSINESS_TIME_ZONE))
