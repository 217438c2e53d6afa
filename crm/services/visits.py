"""Visits: booked with an arrival window the customer is promised, moved (told or not), confirmed or
asked to move by the customer, and lived through on the day — on the way, running late, arrived,
done, or couldn't get in.

The window is a promise (Commitment kind ``visit``, due at the window's end): kept when the crew
arrives by then, broken by the scan when it ends without them, renegotiated when the visit moves
— proactive only when the customer is told before the window starts. Every change locks the job
(as every job service), then the visit; the person's view of the visit travels with the request
(``expected_version``), so two people moving it at once get one success and one ConflictError
that says who moved it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.dates import said_date
from crm.errors import ConflictError, DomainError
from crm.models import Commitment, Contact, Job, JobEvent, Message, Question, Visit, VisitKind
from crm.notify import visit_drafts
from crm.services import promises
from crm.services.alerts import alert_owner
from crm.services.events import record_event
from crm.services.guards import lock_job
from crm.services.jobs import ensure_can_advance, job_advance
from crm.services.outbox import messages_queue
from crm.services.questions import question_create
from crm.services.versions import jobs_touch
from crm.text import person_name
from crm.visit_slots import crew_visits, free_times
from crm.workdays import business_zone, customer_zone, opening_hours

Actor = User | None

# What a move resets: the customer confirms the new time, is reminded of it and it is watched afresh.
MOVED_FIELDS = (
    "window_start",
    "window_end",
    "all_day",
    "status",
    "confirmed_at",
    "move_asked_at",
    "on_the_way_at",
    "expected_at",
    "reminded_at",
    "at_risk_nudged_at",
)

# The earliest "on my way" ETA and the latest: an honest guess, not a promise of the impossible.
ETA_CHOICES_MINUTES = (15, 30, 45, 60)
MAX_ETA = timedelta(hours=8)


def all_day_window(day: datetime) -> tuple[datetime, datetime]:
    """The whole working day of ``day`` (business opening to closing): "all day", said as such."""
    opens, closes = opening_hours()
    local = day.astimezone(business_zone()).date()
    zone = business_zone()
    return datetime.combine(local, opens, tzinfo=zone), datetime.combine(local, closes, tzinfo=zone)


def _window(kind: VisitKind, start: datetime, end: datetime | None, all_day: bool) -> tuple[datetime, datetime]:
    if all_day:
        return all_day_window(start)
    end = end or start + kind.window
    if end <= start:
        raise DomainError(_("The window must end after it starts."))
    return start, end


def _installers_busy(
    installers: Iterable[User], start: datetime, until: datetime, *, exclude: Visit | None = None
) -> list[str]:
    """Each installer's visits that overlap [start, until) (their window plus the time they stay)."""
    ids = [u.pk for u in installers]
    if not ids:
        return []
    overlapping = crew_visits(ids, start, until, exclude=exclude).select_related("job").prefetch_related("installers")
    clashes = []
    zone = business_zone()
    for other in overlapping:
        if other.busy_until <= start:
            continue
        for person in other.installers.all():
            if person.pk in ids:
                clashes.append(
                    _("%(name)s is already at %(job)s from %(start)s to %(end)s.")
                    % {
                        "name": person_name(person),
                        "job": other.job.reference,
                        "start": other.window_start.astimezone(zone).strftime("%H:%M"),
                        "end": other.busy_until.astimezone(zone).strftime("%H:%M"),
                    }
                )
    return clashes


def _check_installers(
    installers: list[User], start: datetime, end: datetime, duration: timedelta, *, double_booking: bool, exclude=None
) -> None:
    for person in installers:
        if not (person.is_active and person.is_staff):
            raise DomainError(_("%(name)s cannot go on visits (not active staff).") % {"name": person_name(person)})
    if double_booking:
        return
    if clashes := _installers_busy(installers, start, end + duration, exclude=exclude):
        raise DomainError(" ".join([*clashes, _("Choose another time, or confirm it as a double booking.")]))


def _tell(visit: Visit, *, kind: str, key: str, actor: Actor, extra: dict | None = None) -> list[Message]:
    return messages_queue(
        drafts=visit_drafts(visit, kind=kind, extra=extra or {}, author=actor),
        job=visit.job,
        key=lambda d: f"{key}:{d.contact.pk}:{d.channel}",
        author=actor,
    )


def _record(visit: Visit, kind: str, actor: Actor, **data: Any) -> None:
    """The job's log line about this visit (which one, of what kind, and what happened)."""
    record_event(job=visit.job, kind=kind, actor=actor, visit=str(visit.public_id), title=visit.kind.name, **data)


def _touch(visit: Visit, actor: Actor, fields: Iterable[str]) -> None:
    now = timezone.now()
    visit.version += 1
    visit.updated_at = now
    visit.last_changed_by = actor
    visit.save(update_fields=[*fields, "version", "updated_at", "last_changed_by"])
    jobs_touch([visit.job_id])


def _lock(visit: Visit, *, expected_version: int | None = None) -> Visit:
    """The job locked (the order of every job service), then the visit, read afresh."""
    lock_job(visit.job)
    locked = (
        Visit.objects.select_for_update(of=("self",))
        .select_related("job__customer", "job__pipeline", "job__owner__staff_profile", "kind", "last_changed_by")
        .get(pk=visit.pk)
    )
    if not locked.job.is_open:
        raise DomainError(_("This job is closed."))
    if expected_version is not None and locked.version != expected_version:
        who = person_name(locked.last_changed_by) if locked.last_changed_by else _("Someone")
        raise ConflictError(
            _("%(who)s changed this visit in the meantime; look again before changing it.") % {"who": who}
        )
    return locked


def _upcoming(visit: Visit) -> None:
    if not visit.is_upcoming:
        raise DomainError(
            _("This visit is %(status)s: it can no longer change.") % {"status": visit.get_status_display()}
        )


def _window_title(kind: VisitKind) -> str:
    return _("%(visit)s: the arrival window") % {"visit": kind.name}


@transaction.atomic
def visit_book(
    *,
    job: Job,
    kind: VisitKind,
    window_start: datetime,
    actor: Actor,
    window_end: datetime | None = None,
    all_day: bool = False,
    installers: Iterable[User] = (),
    subcontractor: str = "",
    address: str | None = None,
    prepare: str | None = None,
    duration_minutes: int | None = None,
    tell_customer: bool = True,
    double_booking: bool = False,
) -> Visit:
    """Book a visit: its window is promised to the customer, who is told (with who is coming, what
    to prepare, and "that works" / "I need another time") unless ``tell_customer`` is off."""
    job = lock_job(job)
    if not job.is_open:
        raise DomainError(_("This job is closed."))
    if kind.pipeline_id != job.pipeline_id:
        raise DomainError(_("“%(kind)s” is not a visit of this job's pipeline.") % {"kind": kind.name})
    start, end = _window(kind, window_start, window_end, all_day)
    if end <= timezone.now():
        raise DomainError(_("The window has already passed."))
    installers = list(installers)
    duration = timedelta(minutes=duration_minutes if duration_minutes is not None else kind.duration_minutes)
    _check_installers(installers, start, end, duration, double_booking=double_booking)
    if address is None:
        address = job.customer.address
    if not (address or "").strip():
        raise DomainError(_("Give the visit's address: the customer's is not on file."))
    # Empty: the stage's own instructions, read in each reader's language (Visit.what_to_prepare).
    prepare = prepare or ""
    visit = Visit.objects.create(
        job=job,
        kind=kind,
        window_start=start,
        window_end=end,
        all_day=all_day,
        duration_minutes=int(duration.total_seconds() // 60),
        subcontractor=subcontractor.strip(),
        address=address.strip(),
        prepare=prepare.strip(),
        last_changed_by=actor,
    )
    visit.installers.set(installers)
    visit.commitment = promises.commitment_make(
        job=job, kind=Commitment.Kind.VISIT, title=_window_title(kind), due_at=end, actor=actor
    )
    visit.save(update_fields=["commitment"])
    _record(
        visit,
        JobEvent.Kind.VISIT_BOOKED,
        actor,
        window_start=start,
        window_end=end,
        all_day=all_day,
        told_customer=tell_customer,
    )
    jobs_touch([job.pk])
    if tell_customer:
        _tell(visit, kind=Message.Kind.VISIT_BOOKED, key=f"visit:{visit.pk}:booked:{start.isoformat()}", actor=actor)
    return visit


def _window_promise_moves(
    visit: Visit, new_due_at: datetime, *, reason: str, actor: Actor, told_customer: bool
) -> None:
    """The window's promise moves to ``new_due_at``: told in time only before the window (as it
    stands now) starts."""
    if visit.commitment_id:
        promises.commitment_renegotiate(
            commitment=Commitment.objects.select_for_update().get(pk=visit.commitment_id),
            new_due_at=new_due_at,
            reason=reason,
            actor=actor,
            told_customer=told_customer,
            told_in_time_until=visit.window_start,
        )


def _move_window(
    visit: Visit,
    start: datetime,
    end: datetime,
    all_day: bool,
    *,
    reason: str,
    actor: Actor,
    told_customer: bool,
    confirmed_by: Contact | None = None,
) -> None:
    """The visit's new window, with its promise moved (proactive only when the customer is told
    now, before the old window starts) and the move logged. It is confirmed afresh — at once when
    the customer chose it (``confirmed_by``) — reminded of and watched afresh."""
    old_start, old_end = visit.window_start, visit.window_end
    now = timezone.now()
    _window_promise_moves(visit, end, reason=reason, actor=actor, told_customer=told_customer)
    visit.window_start, visit.window_end, visit.all_day = start, end, all_day
    visit.status = Visit.Status.CONFIRMED if confirmed_by else Visit.Status.PLANNED
    visit.confirmed_at = now if confirmed_by else None
    visit.move_asked_at = visit.on_the_way_at = visit.expected_at = None
    visit.reminded_at = visit.at_risk_nudged_at = None
    _touch(visit, actor, [*MOVED_FIELDS])
    chosen = {"contact": confirmed_by.name, "chosen_by_customer": True} if confirmed_by else {}
    _record(
        visit,
        JobEvent.Kind.VISIT_MOVED,
        actor,
        old_start=old_start,
        old_end=old_end,
        window_start=start,
        window_end=end,
        reason=reason,
        told_customer=told_customer,
        proactive=told_customer and now <= old_start,
        **chosen,
    )


@transaction.atomic
def visit_move(
    *,
    visit: Visit,
    window_start: datetime,
    reason: str,
    actor: Actor,
    window_end: datetime | None = None,
    all_day: bool = False,
    expected_version: int | None = None,
    tell_customer: bool = True,
    double_booking: bool = False,
) -> Visit:
    """Another time for the visit: the window's promise moves (proactive only when the customer is
    told now, before the old window starts); the customer confirms again."""
    visit = _lock(visit, expected_version=expected_version)
    _upcoming(visit)
    if not reason.strip():
        raise DomainError(_("Say why the visit moves: the customer will ask."))
    start, end = _window(visit.kind, window_start, window_end, all_day)
    if end <= timezone.now():
        raise DomainError(_("The new window has already passed."))
    if (start, end) == (visit.window_start, visit.window_end):
        raise DomainError(_("That is already the visit's window."))
    _check_installers(
        list(visit.installers.all()), start, end, visit.duration, double_booking=double_booking, exclude=visit
    )
    old_start, old_end, old_all_day = visit.window_start, visit.window_end, visit.all_day
    _move_window(visit, start, end, all_day, reason=reason.strip(), actor=actor, told_customer=tell_customer)
    if tell_customer:
        _tell(
            visit,
            kind=Message.Kind.VISIT_MOVED,
            key=f"visit:{visit.pk}:moved:{visit.version}",
            actor=actor,
            extra={"old_start": old_start, "old_end": old_end, "old_all_day": old_all_day, "reason": reason.strip()},
        )
    return visit


def _answerable(visit: Visit) -> None:
    """What the customer answers must still be ahead of them."""
    _upcoming(visit)
    if visit.window_end <= timezone.now():
        raise DomainError(_("This visit's time has passed."))


@transaction.atomic
def visit_crew_set(
    *,
    visit: Visit,
    installers: Iterable[User],
    subcontractor: str,
    actor: Actor,
    expected_version: int | None = None,
    double_booking: bool = False,
) -> Visit:
    """Who goes on the visit: the installers (each one joining checked against their other visits,
    as for a booking) and a subcontractor. Recorded on the job; the customer hears it with the
    next message about the visit (the reminder, "on my way")."""
    visit = _lock(visit, expected_version=expected_version)
    _upcoming(visit)
    installers = list(installers)
    going = {person.pk for person in visit.installers.all()}
    joining = [person for person in installers if person.pk not in going]
    _check_installers(
        joining, visit.window_start, visit.window_end, visit.duration, double_booking=double_booking, exclude=visit
    )
    subcontractor = subcontractor.strip()
    if {person.pk for person in installers} == going and subcontractor == visit.subcontractor:
        return visit
    visit.installers.set(installers)
    visit.subcontractor = subcontractor
    _touch(visit, actor, ["subcontractor"])
    names = sorted(person_name(person) for person in installers) + ([subcontractor] if subcontractor else [])
    _record(visit, JobEvent.Kind.DETAILS_CHANGED, actor, changed={"crew": {"names": names}})
    return visit


@transaction.atomic
def visit_confirm(*, visit: Visit, contact: Contact, expected_version: int | None = None) -> Visit:
    """The customer's "that works" (to the window they saw: ``expected_version``). Confirming twice
    changes nothing."""
    visit = _lock(visit, expected_version=expected_version)
    _answerable(visit)
    if visit.status != Visit.Status.PLANNED:
        return visit
    visit.status = Visit.Status.CONFIRMED
    visit.confirmed_at = timezone.now()
    visit.move_asked_at = None
    _touch(visit, None, ["status", "confirmed_at", "move_asked_at"])
    _record(visit, JobEvent.Kind.VISIT_CONFIRMED, None, contact=contact.name)
    return visit


@transaction.atomic
def visit_ask_to_move(
    *, visit: Visit, contact: Contact, note: str = "", expected_version: int | None = None
) -> Question:
    """The customer's "I need another time": a question on the job, acknowledged with its
    answer-by date like any other, and the visit shows that they asked. The question says the
    window as the customer saw it (their time zone and language)."""
    visit = _lock(visit, expected_version=expected_version)
    _answerable(visit)
    zone = customer_zone(contact.time_zone)
    start, end = visit.window_start.astimezone(zone), visit.window_end.astimezone(zone)
    with translation.override(contact.language):
        with_when = _("Can we find another time for the visit “%(visit)s” planned on %(day)s, %(start)s–%(end)s?") % {
            "visit": visit.kind.label,
            "day": said_date(start, "l j F Y"),
            "start": start.strftime("%H:%M"),
            "end": end.strftime("%H:%M"),
        }
    body = f"{with_when}\n\n{note.strip()}" if note.strip() else with_when
    question = question_create(job=visit.job, contact=contact, body=body, source=Question.Source.PORTAL)
    visit.move_asked_at = timezone.now()
    if visit.status == Visit.Status.CONFIRMED:
        visit.status, visit.confirmed_at = Visit.Status.PLANNED, None
    _touch(visit, None, ["move_asked_at", "status", "confirmed_at"])
    _record(visit, JobEvent.Kind.VISIT_MOVE_ASKED, None, contact=contact.name)
    return question


@transaction.atomic
def visit_choose_time(
    *, visit: Visit, contact: Contact, window_start: datetime, expected_version: int | None = None
) -> Visit:
    """The customer books another time themselves, among the crew's free times (when the pipeline
    lets them: crm.visit_slots). The window's promise moves, told at once (they chose it), and
    the new time is confirmed; every contact of the job hears it, the owner too."""
    visit = _lock(visit, expected_version=expected_version)
    _answerable(visit)
    if not visit.job.pipeline.visit_self_booking:
        raise DomainError(
            _("This visit's time cannot be chosen here: ask for another time and we will find one with you.")
        )
    chosen = next((free for free in free_times(visit) if free.start == window_start), None)
    if chosen is None:
        raise DomainError(_("That time is no longer free. Here are the times free now."))
    old_start, old_end, old_all_day = visit.window_start, visit.window_end, visit.all_day
    _move_window(
        visit,
        chosen.start,
        chosen.end,
        chosen.all_day,
        reason=_("Chosen by the customer"),
        actor=None,
        told_customer=True,
        confirmed_by=contact,
    )
    extra = {"old_start": old_start, "old_end": old_end, "old_all_day": old_all_day, "chosen_by": contact.name}
    _tell(
        visit, kind=Message.Kind.VISIT_CHOSEN, key=f"visit:{visit.pk}:chosen:{visit.version}", actor=None, extra=extra
    )
    alert_owner(
        visit.job,
        name="visit-chosen",
        context={"visit": visit, "contact": contact, "old_start": old_start},
        key=f"visit:{visit.pk}:chosen:{visit.version}",
    )
    return visit


def _eta(*, minutes: int | None, at: datetime | None) -> datetime:
    now = timezone.now()
    if at is None:
        if minutes is None or minutes <= 0:
            raise DomainError(_("Say when you will be there."))
        at = now + timedelta(minutes=minutes)
    if at <= now:
        raise DomainError(_("The arrival time must be later than now."))
    if at > now + MAX_ETA:
        raise DomainError(_("More than 8 hours away: move the visit to another time instead."))
    return at


def _arriving_after_window(visit: Visit, expected: datetime, *, reason: str, actor: Actor) -> None:
    """An arrival told for after the window's end moves the window's promise to it: proactive
    when the customer hears it before the window starts."""
    if expected > visit.window_end:
        _window_promise_moves(visit, expected, reason=reason, actor=actor, told_customer=True)


@transaction.atomic
def visit_on_the_way(*, visit: Visit, actor: Actor, minutes: int | None = None, at: datetime | None = None) -> Visit:
    """ "On my way — about 25 minutes": told to the customer at once (once per window: a second
    tap only updates the time the portal shows), shown live on the portal."""
    visit = _lock(visit)
    _upcoming(visit)
    expected = _eta(minutes=minutes, at=at)
    _arriving_after_window(visit, expected, reason=_("On the way, arriving after the window"), actor=actor)
    already = visit.status == Visit.Status.ON_THE_WAY
    visit.status = Visit.Status.ON_THE_WAY
    visit.on_the_way_at = visit.on_the_way_at if already else timezone.now()
    visit.expected_at = expected
    _touch(visit, actor, ["status", "on_the_way_at", "expected_at"])
    if already:
        return visit
    _record(visit, JobEvent.Kind.VISIT_ON_THE_WAY, actor, expected_at=expected)
    _tell(
        visit,
        kind=Message.Kind.VISIT_ON_THE_WAY,
        key=f"visit:{visit.pk}:on-the-way:{visit.window_start.isoformat()}",
        actor=actor,
    )
    return visit


@transaction.atomic
def visit_running_late(
    *, visit: Visit, actor: Actor, reason: str, minutes: int | None = None, at: datetime | None = None
) -> Visit:
    """ "We are running late: about 15:10 instead of 14:00–16:00", told at once with an apology and
    the reason. An arrival after the window moves the window's promise (proactive when told
    before the window starts); another day is a move (visit_move)."""
    visit = _lock(visit)
    _upcoming(visit)
    if not reason.strip():
        raise DomainError(_("Say why: the customer will want to know."))
    # Another day first: it is a move, however far away (the ETA's own limits come after).
    asked = at if at is not None else timezone.now() + timedelta(minutes=minutes or 0)
    if asked.astimezone(business_zone()).date() != visit.window_start.astimezone(business_zone()).date():
        raise DomainError(_("That is another day: move the visit instead."))
    expected = _eta(minutes=minutes, at=at)
    if visit.expected_at == expected:
        return visit  # the same news again (a second tap): already told
    now = timezone.now()
    _arriving_after_window(visit, expected, reason=reason, actor=actor)
    visit.expected_at = expected
    _touch(visit, actor, ["expected_at"])
    _record(
        visit,
        JobEvent.Kind.VISIT_RUNNING_LATE,
        actor,
        expected_at=expected,
        reason=reason.strip(),
        before_window=now <= visit.window_start,
    )
    _tell(
        visit,
        kind=Message.Kind.VISIT_RUNNING_LATE,
        key=f"visit:{visit.pk}:late:{visit.version}",
        actor=actor,
        extra={"reason": reason.strip()},
    )
    return visit


def _advance_to_stage(visit: Visit, actor: Actor) -> None:
    """A done visit of a kind that reaches its stage moves the job there (never back)."""
    from_stage = visit.job.current_stage
    stage = visit.kind.stage
    if not (visit.kind.completes_stage and stage is not None) or from_stage.position >= stage.position:
        return
    try:
        ensure_can_advance(visit.job, stage, backwards=False)
    except DomainError:
        # On hold, say: the visit is done all the same; the stage waits for the office.
        return
    job_advance(job=visit.job, to_stage=stage, actor=actor, expected_stage=from_stage)


def _arrive(visit: Visit, actor: Actor, now: datetime) -> None:
    """Record the crew at the door (on a locked visit): the window's promise is kept now, on time
    or late as it is."""
    visit.status = Visit.Status.ARRIVED
    visit.arrived_at = now
    if visit.commitment_id:
        promises.commitments_keep(Commitment.objects.filter(pk=visit.commitment_id), actor=actor, at=now)
    _record(visit, JobEvent.Kind.VISIT_ARRIVED, actor, in_window=visit.window_start <= now <= visit.window_end)


@transaction.atomic
def visit_arrived(*, visit: Visit, actor: Actor) -> Visit:
    """The crew is at the door."""
    visit = _lock(visit)
    if visit.status not in Visit.UPCOMING_STATUSES:
        raise DomainError(_("This visit is already %(status)s.") % {"status": visit.get_status_display().lower()})
    _arrive(visit, actor, timezone.now())
    _touch(visit, actor, ["status", "arrived_at"])
    return visit


@transaction.atomic
def visit_done(*, visit: Visit, actor: Actor) -> Visit:
    """The work of the visit is done (the arrival recorded now if nobody pressed "Arrived"); a kind
    that completes its stage moves the job there."""
    visit = _lock(visit)
    now = timezone.now()
    if visit.status in Visit.UPCOMING_STATUSES:
        _arrive(visit, actor, now)
    elif visit.status != Visit.Status.ARRIVED:
        raise DomainError(_("This visit is already %(status)s.") % {"status": visit.get_status_display().lower()})
    visit.status = Visit.Status.DONE
    visit.done_at = now
    _touch(visit, actor, ["status", "arrived_at", "done_at"])
    _record(visit, JobEvent.Kind.VISIT_DONE, actor)
    _advance_to_stage(visit, actor)
    return visit


@transaction.atomic
def visit_cancel(
    *, visit: Visit, actor: Actor, reason: str, tell_customer: bool = True, expected_version: int | None = None
) -> Visit:
    """Not happening, the customer told why: the window's promise is released when they hear it
    before the window starts, else broken (a cancelled visit never hides a missed window)."""
    visit = _lock(visit, expected_version=expected_version)
    _upcoming(visit)
    if not reason.strip():
        raise DomainError(_("Say why the visit is cancelled."))
    visit.status = Visit.Status.CANCELLED
    visit.closed_at = timezone.now()
    visit.close_reason = reason.strip()[:300]
    _touch(visit, actor, ["status", "closed_at", "close_reason"])
    if visit.commitment_id:
        promise = Commitment.objects.select_for_update().get(pk=visit.commitment_id)
        if tell_customer and visit.closed_at < visit.window_start:
            # Told before the window: a promise released in time, neither kept nor broken.
            Commitment.objects.filter(pk=promise.pk, state__in=Commitment.OPEN_STATES).update(
                state=Commitment.State.WITHDRAWN, withdrawn_at=visit.closed_at
            )
        else:
            # Called off once the window had begun, or without a word: the window was not kept.
            promises.commitment_break(promise, at=visit.closed_at)
    _record(visit, JobEvent.Kind.VISIT_CANCELLED, actor, reason=visit.close_reason, told_customer=tell_customer)
    if tell_customer:
        _tell(
            visit,
            kind=Message.Kind.VISIT_CANCELLED,
            key=f"visit:{visit.pk}:cancelled",
            actor=actor,
            extra={"reason": visit.close_reason},
        )
    return visit


@transaction.atomic
def visit_missed(*, visit: Visit, actor: Actor, reason: str) -> Visit:
    """ "Couldn't get in": the crew came (the window was kept by us) but could not do the work;
    the owner is alerted to call the customer and book another time."""
    visit = _lock(visit)
    if visit.status not in (*Visit.UPCOMING_STATUSES, Visit.Status.ARRIVED):
        raise DomainError(_("This visit is already %(status)s.") % {"status": visit.get_status_display().lower()})
    if not reason.strip():
        raise DomainError(_("Say what happened: the owner will call the customer."))
    now = timezone.now()
    if visit.arrived_at is None:
        visit.arrived_at = now
        if visit.commitment_id:
            promises.commitments_keep(Commitment.objects.filter(pk=visit.commitment_id), actor=actor, at=now)
    visit.status = Visit.Status.MISSED
    visit.closed_at = now
    visit.close_reason = reason.strip()[:300]
    _touch(visit, actor, ["status", "arrived_at", "closed_at", "close_reason"])
    _record(visit, JobEvent.Kind.VISIT_MISSED, actor, reason=visit.close_reason)
    alert_owner(visit.job, name="visit-missed", context={"visit": visit}, key=f"visit:{visit.pk}:missed")
    return visit
