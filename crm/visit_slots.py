"""When a visit's crew is free: the times a customer who needs another one may choose themselves
(when their pipeline allows it: ``Pipeline.visit_self_booking``), and the busy visits the
overlap check of a booking refuses.

A free time is a window as long as the visit's own (a whole working day for an all-day visit),
laid end to end from opening time on each working day from tomorrow, for the number of working
days the pipeline says, in which none of the visit's installers is at another visit (its window
and the time they stay). The visit's own window is not offered back. A visit nobody is going on
yet is free whenever the business is open: whoever the office sends will be booked then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from crm.models import Visit
from crm.workdays import business_today, business_zone, next_business_day, opening_hours

# The longest a visit may keep its crew (window and time on site): older ones cannot overlap.
MAX_VISIT_SPAN = timedelta(days=7)
# How many free times the customer is offered at once (the nearest first).
TIMES_OFFERED = 6


@dataclass(frozen=True)
class FreeTime:
    start: datetime
    end: datetime
    all_day: bool


def crew_visits(
    installer_ids: Iterable[int], start: datetime, until: datetime, *, exclude: Visit | None = None
) -> QuerySet[Visit]:
    """The visits still to happen (or under way) of any of these installers whose window starts
    before ``until`` and whose crew may still be there after ``start`` (see ``Visit.busy_until``:
    filter on it in Python)."""
    visits: QuerySet[Visit] = (
        Visit.objects.filter(
            installers__in=list(installer_ids), status__in=[*Visit.UPCOMING_STATUSES, Visit.Status.ARRIVED]
        )
        .filter(window_start__lt=until, window_start__gt=start - MAX_VISIT_SPAN)
        .distinct()
    )
    return visits.exclude(pk=exclude.pk) if exclude is not None else visits


def _days(first: date, count: int) -> list[date]:
    days: list[date] = []
    day = next_business_day(first)
    while len(days) < count:
        days.append(day)
        day = next_business_day(day + timedelta(days=1))
    return days


def _windows_of(day: date, length: timedelta | None) -> list[FreeTime]:
    """The windows of one working day: end to end from opening time (the whole day for None, or
    for a window longer than the day)."""
    zone = business_zone()
    opens, closes = opening_hours()
    day_open, day_close = datetime.combine(day, opens, tzinfo=zone), datetime.combine(day, closes, tzinfo=zone)
    if length is None or length >= day_close - day_open:
        return [FreeTime(start=day_open, end=day_close, all_day=True)]
    windows, start = [], day_open
    while start + length <= day_close:
        windows.append(FreeTime(start=start, end=start + length, all_day=False))
        start += length
    return windows


def free_times(visit: Visit, *, limit: int = TIMES_OFFERED, now: datetime | None = None) -> list[FreeTime]:
    """The nearest free times for ``visit`` (select_related ``job__pipeline``): at most ``limit``,
    within the pipeline's days of self-booking from tomorrow. Two queries: the crew, their visits."""
    now = now or timezone.now()
    days = _days(business_today() + timedelta(days=1), visit.job.pipeline.visit_self_booking_days)
    if not days:
        return []
    length = None if visit.all_day else visit.window_end - visit.window_start
    candidates = [window for day in days for window in _windows_of(day, length)]
    installer_ids = [person.pk for person in visit.installers.all()]
    busy: list[tuple[datetime, datetime]] = []
    if installer_ids and candidates:
        until = candidates[-1].end + visit.duration
        others = crew_visits(installer_ids, candidates[0].start, until, exclude=visit)
        busy = [(other.window_start, other.busy_until) for other in others]
    offered = []
    for window in candidates:
        if (window.start, window.end) == (visit.window_start, visit.window_end) or window.start <= now:
            continue
        crew_until = window.end + visit.duration
        if any(start < crew_until and busy_until > window.start for start, busy_until in busy):
            continue
        offered.append(window)
        if len(offered) == limit:
            break
    return offered
