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

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max, Prefetch, QuerySet
from django.urls import reverse
from django.utils import timezone

from crm.models import Contact, Job, Message, Pipeline, Visit
from crm.notify import visit_drafts
from crm.services.alerts import alert_owner, alert_staff, staff_url
from crm.services.guards import lock_job
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


def at_risk_candidates(now: datetime, *, until: datetime | None = None) -> QuerySet[Visit]:
    """Visits nobody has set off for whose window is under way or starts by ``until`` (default:
    the widest lookahead), not warned yet, soonest first (a window already over is the promise
    scan's: broken)."""
    return _candidates(
        now - timedelta(hours=24),
        until or now + AT_RISK_LOOKAHEAD,
        status__in=[Visit.Status.PLANNED, Visit.Status.CONFIRMED],
        at_risk_nudged_at__isnull=True,
        window_end__gt=now,
    )


def reminder_candidates(now: datetime) -> QuerySet[Visit]:
    """Visits not reminded yet whose reminder may have come, soonest first."""
    return _candidates(
        now,
        now + REMINDER_LOOKAHEAD,
        status__in=[Visit.Status.PLANNED, Visit.Status.CONFIRMED],
        reminded_at__isnull=True,
        job__pipeline__visit_reminder_business_days__gt=0,
    )


def _candidates(now: datetime, until: datetime, **filters: object) -> QuerySet[Visit]:
    """Visits whose window starts in (now, until], soonest first, with what the messages need."""
    return (
        Visit.objects.filter(
            window_start__gt=now, window_start__lte=until, job__status__in=Job.OPEN_STATUSES, **filters
        )
        .select_related("job__pipeline", "job__owner__staff_profile", "job__customer", "kind__stage")
        .prefetch_related(
            Prefetch("job__contacts", queryset=Contact.objects.order_by("pk")),
            Prefetch("installers", queryset=get_user_model().objects.select_related("staff_profile")),
        )
        .order_by("window_start", "pk")
    )


def _claim(visit: Visit, **flag: datetime) -> bool:
    """Set the visit's flag (reminded, warned) if nobody has since — and only if the visit is still
    as it was read (its version: not moved, answered or cancelled meanwhile). The job is locked
    first, as every service does, so a scan and a service never wait for each other in turn."""
    lock_job(visit.job)
    (name,) = flag
    return bool(Visit.objects.filter(pk=visit.pk, version=visit.version, **{f"{name}__isnull": True}).update(**flag))


def reminders_send(*, now: datetime, batch: int = 500) -> int:
    """Remind the customer of each visit whose reminder time has come (in their daytime), with
    what to prepare; an unconfirmed visit's reminder goes to the owner too. A visit booked,
    moved or answered after its reminder time is not reminded: that message was the reminder."""
    sent = 0
    due = reminder_candidates(now)[:batch]
    for visit in due:
        moment = reminder_moment(visit)
        if now < moment or not is_customer_daytime(now, zone=_zone(visit)):
            continue
        with transaction.atomic():
            told_since = visit.updated_at >= moment
            if not _claim(visit, reminded_at=now):
                continue
            if told_since:
                continue
            sent += 1
            stamp = f"visit:{visit.pk}:reminder:{visit.version}"
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
                    key=f"visit:{visit.pk}:unconfirmed:{visit.version}",
                )
    return sent


def _crews_still_at(now: datetime) -> dict[int, Visit]:
    """Each installer at a visit today they have arrived at and not finished: their latest one."""
    zone = business_zone()
    day_start = datetime.combine(now.astimezone(zone).date(), datetime.min.time(), tzinfo=zone)
    still: dict[int, Visit] = {}
    arrived = (
        Visit.objects.filter(
            status=Visit.Status.ARRIVED, window_start__gte=day_start, window_start__lt=day_start + timedelta(days=1)
        )
        .prefetch_related("installers")
        .select_related("job")
        .order_by("window_start")
    )
    for visit in arrived:
        for person in visit.installers.all():
            still[person.pk] = visit
    return still


def _next_visits_of(crews: dict[int, Visit], now: datetime, batch: int) -> set[int]:
    """For each installer still at a visit, their next visit (the one an overrun reaches first):
    ids only, from one narrow query."""
    if not crews:
        return set()
    rows = (
        at_risk_candidates(now)
        .filter(installers__in=list(crews))
        .values_list("pk", "window_start", "installers")
        .order_by("window_start", "pk")
    )
    chosen: dict[int, int] = {}
    for pk, window_start, person in rows:
        if person not in chosen and window_start > crews[person].window_start:
            chosen[person] = pk
            if len(chosen) == len(crews):
                break
    return set(list(chosen.values())[:batch])


def at_risk_warn(*, now: datetime, batch: int = 500) -> int:
    """Warn the installers and the owner, once per window, of each visit at risk: its crew still
    at an earlier visit they will not finish in time for it, or nobody on the way as the window
    nears (each pipeline's threshold). Only the visits that can be at risk are read: those
    within the widest threshold, and each busy installer's next one."""
    widest = Pipeline.objects.aggregate(widest=Max("visit_at_risk_minutes"))["widest"] or 0
    crews = _crews_still_at(now)
    ids = set(at_risk_candidates(now, until=now + timedelta(minutes=widest)).values_list("pk", flat=True)[:batch])
    ids |= _next_visits_of(crews, now, batch)
    if not ids:
        return 0
    warned = 0
    for visit in at_risk_candidates(now).filter(pk__in=ids):
        threshold = timedelta(minutes=visit.job.pipeline.visit_at_risk_minutes)
        earlier = next((crews[p.pk] for p in visit.installers.all() if p.pk in crews), None)
        if earlier is not None and earlier.window_start >= visit.window_start:
            earlier = None
        overrunning = earlier is not None and (
            now >= visit.window_start - threshold
            or (earlier.arrived_at or now) + earlier.duration + threshold > visit.window_end
        )
        if not (overrunning or visit.nobody_on_the_way(now)):
            continue
        with transaction.atomic():
            if not _claim(visit, at_risk_nudged_at=now):
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
                key=f"visit:{visit.pk}:at-risk:{visit.version}",
            )
    return warned


def scan(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Counts: visits ``reminded``, visits warned ``at_risk``."""
    now = now or timezone.now()
    return {"reminded": reminders_send(now=now, batch=batch), "at_risk": at_risk_warn(now=now, batch=batch)}
