"""What the schedule does about visits (crm.tasks.scan_visits, every 5 minutes): the reminder before
each visit, and "get in front of it" on the day — a crew still at its previous visit, or nobody on
the way, this close to a window, tells the installers and the owner once.

A window that ends without an arrival is broken by the promise scan like any promise (its
Commitment is due at the window's end). Every step here is a conditional UPDATE that only one run
can win, so two runs, or two workers at once, remind and warn once.
"""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils import timezone

from crm.models import Contact, Message, Visit
from crm.notify import visit_drafts
from crm.services.alerts import alert_owner, alert_staff, staff_url
from crm.services.outbox import messages_queue
from crm.workdays import business_zone, customer_zone, is_business_day, is_customer_daytime

# How far ahead a reminder can fall (a week-end and holidays between the two days).
REMINDER_LOOKAHEAD = timedelta(days=14)
# The widest at-risk threshold a pipeline may set (the query's window; each pipeline's own applies).
AT_RISK_LOOKAHEAD = timedelta(hours=12)


def _business_days_before(day: date, days: int) -> date:
    """The business day ``days`` business days before ``day``."""
    while days:
        day -= timedelta(days=1)
        if is_business_day(day):
            days -= 1
    return day


def _zone(visit: Visit) -> zoneinfo.ZoneInfo:
    """The time zone the visit's customer lives in (their first contact's)."""
    contacts = list(visit.job.contacts.all())
    return customer_zone(contacts[0].time_zone if contacts else "")


def reminder_moment(visit: Visit) -> datetime:
    """When the visit's reminder is due: the pipeline's time, its number of business days before
    the visit's day, in the customer's time zone."""
    pipeline = visit.job.pipeline
    zone = _zone(visit)
    day = _business_days_before(visit.window_start.astimezone(zone).date(), pipeline.visit_reminder_business_days)
    return datetime.combine(day, pipeline.visit_reminder_at, tzinfo=zone)


def _candidates(now: datetime, until: datetime, **filters: object) -> QuerySet[Visit]:
    """Visits whose window starts in (now, until], soonest first, with what the messages need."""
    return (
        Visit.objects.filter(window_start__gt=now, window_start__lte=until, **filters)
        .select_related("job__pipeline", "job__owner__staff_profile", "job__customer", "kind")
        .prefetch_related(Prefetch("job__contacts", queryset=Contact.objects.order_by("pk")), "installers")
        .order_by("window_start", "pk")
    )


def reminders_send(*, now: datetime, batch: int = 500) -> int:
    """Remind the customer of each visit whose reminder time has come (in their daytime), with
    what to prepare; an unconfirmed visit's reminder goes to the owner too. A visit booked,
    moved or answered after its reminder time is not reminded: that message was the reminder."""
    sent = 0
    due = _candidates(
        now,
        now + REMINDER_LOOKAHEAD,
        status__in=[Visit.Status.PLANNED, Visit.Status.CONFIRMED],
        reminded_at__isnull=True,
        job__pipeline__visit_reminder_business_days__gt=0,
    )[:batch]
    for visit in due:
        moment = reminder_moment(visit)
        if now < moment or not is_customer_daytime(now, zone=_zone(visit)):
            continue
        with transaction.atomic():
            told_since = visit.updated_at >= moment
            if not Visit.objects.filter(pk=visit.pk, reminded_at__isnull=True).update(reminded_at=now):
                continue
            if told_since:
                continue
            sent += 1
            stamp = f"visit:{visit.pk}:reminder:{visit.window_start.isoformat()}"
            messages_queue(
                drafts=visit_drafts(visit, kind=Message.Kind.VISIT_REMINDER, extra={}),
                job=visit.job,
                key=lambda d: f"{stamp}:{d.contact.pk}:{d.channel}",
            )
            if visit.status == Visit.Status.PLANNED:
                alert_owner(
                    visit.job,
                    name="visit-unconfirmed",
                    context={"visit": visit},
                    key=f"visit:{visit.pk}:unconfirmed:{visit.window_start.isoformat()}",
                )
    return sent


def _still_at(visit: Visit, arrived: list[Visit]) -> Visit | None:
    """The earlier visit today that one of this visit's crew has arrived at and not finished."""
    crew = {person.pk for person in visit.installers.all()}
    for earlier in arrived:
        if earlier.window_start < visit.window_start and crew & {person.pk for person in earlier.installers.all()}:
            return earlier
    return None


def at_risk_warn(*, now: datetime, batch: int = 500) -> int:
    """Warn the installers and the owner, once per window, of each visit at risk: its crew still
    at an earlier visit they will not finish in time, or nobody on the way as the window nears."""
    upcoming = list(
        _candidates(
            now - timedelta(hours=24),
            now + AT_RISK_LOOKAHEAD,
            status__in=[Visit.Status.PLANNED, Visit.Status.CONFIRMED],
            at_risk_nudged_at__isnull=True,
        )[:batch]
    )
    upcoming = [visit for visit in upcoming if visit.window_end > now]
    if not upcoming:
        return 0
    zone = business_zone()
    day_start = datetime.combine(now.astimezone(zone).date(), datetime.min.time(), tzinfo=zone)
    arrived = list(
        Visit.objects.filter(
            status=Visit.Status.ARRIVED, window_start__gte=day_start, window_start__lt=day_start + timedelta(days=1)
        )
        .prefetch_related("installers")
        .select_related("job")
    )
    warned = 0
    for visit in upcoming:
        threshold = timedelta(minutes=visit.job.pipeline.visit_at_risk_minutes)
        earlier = _still_at(visit, arrived)
        overrunning = earlier is not None and (
            now >= visit.window_start - threshold
            or (earlier.arrived_at or now) + earlier.duration + threshold > visit.window_end
        )
        if not (overrunning or visit.nobody_on_the_way(now)):
            continue
        with transaction.atomic():
            if not Visit.objects.filter(pk=visit.pk, at_risk_nudged_at__isnull=True).update(at_risk_nudged_at=now):
                continue
            warned += 1
            alert_staff(
                [visit.job.owner, *visit.installers.all()],
                name="visit-at-risk",
                context={
                    "visit": visit,
                    "job": visit.job,
                    "earlier": earlier if overrunning else None,
                    "today_url": staff_url(reverse("crm:today")),
                },
                key=f"visit:{visit.pk}:at-risk:{visit.window_start.isoformat()}",
            )
    return warned


def scan(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Counts: visits ``reminded``, visits warned ``at_risk``."""
    now = now or timezone.now()
    return {"reminded": reminders_send(now=now, batch=batch), "at_risk": at_risk_warn(now=now, batch=batch)}
