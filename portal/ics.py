"""iCalendar for the customer: the calendar feed (the customer's dated milestones as all-day
events, their visits in their windows) and a visit's own .ics, the booking confirmation's
"add to my calendar". The writing itself (escaping, folding, CRLF) is crm.ics, shared with the
installers' feeds."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from crm.ics import AllDayEvent, Event, TimedEvent, escape_text, fold
from crm.ics import calendar as write_calendar

__all__ = ["AllDayEvent", "TimedEvent", "calendar", "escape_text", "fold"]

SOURCE = "Customer portal"


def calendar(*, product: str, name: str, events: Iterable[Event], stamp: datetime, feed: bool = True) -> str:
    return write_calendar(product=product, source=SOURCE, name=name, events=events, stamp=stamp, feed=feed)
