"""Promises (commitments): every date given to a customer, kept, moved or broken — and the scan
that nudges an owner before a promise slips and tells a manager when one broke.

The other services call the hooks here inside their own transaction: a stage reached keeps its
promise, a date moved renegotiates it (proactive when the customer is told before the old time),
an answer sent keeps the "answer by" promise, a call logged keeps a promised callback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.access import MANAGERS_GROUP
from crm.errors import DomainError
from crm.models import Commitment, Contact, Job, JobEvent, Message, Milestone, Renegotiation, Request
from crm.notify import promise_moved_drafts, status_update_drafts
from crm.services.alerts import alert_staff
from crm.services.events import record_event
from crm.services.outbox import messages_queue
from crm.workdays import add_business_days, business_today, business_zone, end_of_business_day

logger = logging.getLogger(__name__)

Actor = User | None


def due_at_for(day: date) -> datetime:
    """A promise "by <day>" falls due at closing time that day."""
    return end_of_business_day(day)


def warning_threshold() -> datetime:
    """Open promises due before this are about to slip: the owner should get in front of them."""
    return end_of_business_day(add_business_days(business_today(), settings.COMMITMENT_WARNING_BUSINESS_DAYS))


def open_commitments() -> QuerySet[Commitment]:
    return Commitment.objects.filter(state__in=Commitment.OPEN_STATES)


def _event(commitment: Commitment, kind: str, actor: Actor, **data: Any) -> None:
    # A stage's promise is made, kept and moved by the job's own events (created, stage_advanced,
    # date_moved); only its breaking is news of its own.
    if commitment.kind == Commitment.Kind.MILESTONE and kind != JobEvent.Kind.PROMISE_BROKEN:
        return
    record_event(
        job=commitment.job,
        kind=kind,
        actor=actor,
        commitment_id=commitment.pk,
        promise=commitment.title,
        promise_kind=commitment.kind,
        **data,
    )


# --- Made ---------------------------------------------------------------------------------------


def commitment_make(
    *,
    job: Job,
    kind: str,
    title: str,
    due_at: datetime,
    actor: Actor,
    contact: Contact | None = None,
    request: Request | None = None,
    call: Message | None = None,
) -> Commitment:
    """A promise of ``kind`` (a stage's own promises are made by milestone_commitments_create)."""
    commitment = Commitment.objects.create(
        job=job,
        kind=kind,
        title=title[:200],
        owner_id=job.owner_id,
        contact=contact,
        first_due_at=due_at,
        due_at=due_at,
        request=request,
        call=call,
    )
    _event(commitment, JobEvent.Kind.PROMISE_MADE, actor, due_at=due_at)
    return commitment


def milestone_commitments_create(job: Job, milestones: Iterable[Milestone]) -> list[Commitment]:
    """A planned job promises the customer a date for every stage they will see."""
    rows = [
        Commitment(
            job=job,
            kind=Commitment.Kind.MILESTONE,
            title=milestone.stage.name,
            owner_id=job.owner_id,
            first_due_at=due_at_for(milestone.forecast_date),
            due_at=due_at_for(milestone.forecast_date),
            milestone=milestone,
        )
        for milestone in milestones
        if milestone.stage.customer_visible and milestone.completed_at is None and milestone.forecast_date
    ]
    return Commitment.objects.bulk_create(rows)


@transaction.atomic
def document_promise(*, job: Job, title: str, due_on: date, actor: Actor, contact: Contact | None = None) -> Commitment:
    """Staff promise something by a date ("the quote by Friday")."""
    if not title.strip():
        raise DomainError(_("Say what you promised."))
    if due_on < business_today():
        raise DomainError(_("A promise cannot be due in the past."))
    if not job.is_open:
        raise DomainError(_("This job is closed."))
    if contact is not None:
        from crm.services.jobs import ensure_contacts_of  # jobs imports this module

        ensure_contacts_of(job.customer, [contact])
    return commitment_make(
        job=job,
        kind=Commitment.Kind.DOCUMENT,
        title=title.strip(),
        due_at=due_at_for(due_on),
        actor=actor,
        contact=contact,
    )


# --- Kept, moved, withdrawn ---------------------------------------------------------------------


# What "kept" can still be said of: an open promise, or a broken one finally done (late).
KEEPABLE_STATES = [*Commitment.OPEN_STATES, Commitment.State.BROKEN]


def commitments_keep(commitments: QuerySet[Commitment], *, actor: Actor, at: datetime | None = None) -> int:
    """The work is done: these promises are kept now (on time or late, the report tells)."""
    at = at or timezone.now()
    keeping = list(commitments.filter(state__in=KEEPABLE_STATES).select_related("job"))
    # One UPDATE for all of them, then their log lines.
    Commitment.objects.filter(pk__in=[c.pk for c in keeping]).update(state=Commitment.State.KEPT, kept_at=at)
    for commitment in keeping:
        _event(
            commitment,
            JobEvent.Kind.PROMISE_KEPT,
            actor,
            on_time=at <= commitment.first_due_at,
            due_at=commitment.due_at,
        )
    return len(keeping)


def commitment_renegotiate(
    *,
    commitment: Commitment,
    new_due_at: datetime,
    reason: str,
    actor: Actor,
    told_customer: bool,
) -> Renegotiation:
    """Move a promise's date, keeping the history: proactive only when the customer is told now,
    before the old time has passed."""
    now = timezone.now()
    old_due_at = commitment.due_at
    if told_customer and commitment.state != Commitment.State.OPEN:
        # The customer now hears the current date: earlier moves they were not told of are told
        # with it (in time if their old date has not passed yet). A promise never moved has none.
        moves_told(Renegotiation.objects.filter(commitment=commitment), at=now)
    renegotiation = Renegotiation.objects.create(
        commitment=commitment,
        old_due_at=old_due_at,
        new_due_at=new_due_at,
        reason=reason.strip()[:300],
        told_customer_at=now if told_customer else None,
        proactive=told_customer and now <= old_due_at,
        actor=actor,
        # Who held it when it moved: the figures credit them, whoever owns it later.
        holder_id=commitment.owner_id,
    )
    # A moved promise can slip again: the owner may be nudged again for the new date.
    Commitment.objects.filter(pk=commitment.pk).update(
        due_at=new_due_at, state=Commitment.State.RENEGOTIATED, nudged_at=None
    )
    commitment.refresh_from_db()
    _event(
        commitment,
        JobEvent.Kind.PROMISE_MOVED,
        actor,
        old_due_at=old_due_at,
        new_due_at=new_due_at,
        reason=reason.strip(),
        told_customer=told_customer,
        proactive=renegotiation.proactive,
    )
    return renegotiation


def commitments_withdraw(job: Job, *, actor: Actor) -> int:
    """A cancelled or finished job releases its open promises (they are neither kept nor broken).

    Except the call owed to an unhappy customer: closing the job does not make them happy."""
    return (
        open_commitments()
        .filter(job=job)
        .exclude(kind=Commitment.Kind.RECOVERY)
        .update(state=Commitment.State.WITHDRAWN, withdrawn_at=timezone.now())
    )


def commitments_follow_owner(job: Job) -> int:
    """The job's open promises are kept by its owner now; how many moved to them."""
    return open_commitments().filter(job=job).exclude(owner_id=job.owner_id).update(owner_id=job.owner_id)


# --- Dates moved without telling the customer ---------------------------------------------------


@dataclass(frozen=True)
class UntoldMove:
    """A stage date the customer has not been told of: the date they know, the one it is now."""

    milestone: Milestone
    old_date: date
    new_date: date
    reason: str
    renegotiation_ids: list[int]


def untold_moves(job: Job) -> list[UntoldMove]:
    """The job's open stage promises whose latest moves were not told (a late stage pushed them
    out, or someone moved a date without telling), in stage order."""
    zone = business_zone()
    moves = []
    pending = Renegotiation.objects.untold(job).values("commitment_id")
    commitments = (
        Commitment.objects.filter(milestone__isnull=False, pk__in=pending)
        .select_related("milestone__stage")
        .prefetch_related("renegotiations")
        .order_by("milestone__stage__position")
    )
    for commitment in commitments:
        history = list(commitment.renegotiations.all())
        untold: list[Renegotiation] = []
        for renegotiation in reversed(history):
            if renegotiation.told_customer_at is not None:
                break
            untold.insert(0, renegotiation)
        if not untold:
            continue
        milestone = cast(Milestone, commitment.milestone)
        moves.append(
            UntoldMove(
                milestone=milestone,
                old_date=untold[0].old_due_at.astimezone(zone).date(),
                new_date=commitment.due_at.astimezone(zone).date(),
                reason=untold[-1].reason,
                renegotiation_ids=[r.pk for r in history if r.told_customer_at is None],
            )
        )
    return moves


def moves_told(moves: QuerySet[Renegotiation], *, at: datetime | None = None) -> dict[str, int]:
    """These moves are told to the customer now: in time (proactive) where the date they replaced
    has not passed yet, late otherwise. Already told ones stay."""
    at = at or timezone.now()
    untold = moves.filter(told_customer_at__isnull=True)
    proactive = untold.filter(old_due_at__gte=at).update(told_customer_at=at, proactive=True)
    late = untold.update(told_customer_at=at, proactive=False)
    return {"proactive": proactive, "late": late}


# --- Hooks for the job services -----------------------------------------------------------------


def milestones_reached(milestone_ids: list[int]) -> None:
    """These stages are reached: their promises are kept, in one UPDATE. (Only a stage's own
    promises point at a milestone, and the stage event is their log line: see _event.)"""
    if milestone_ids:
        Commitment.objects.filter(milestone_id__in=milestone_ids, state__in=KEEPABLE_STATES).update(
            state=Commitment.State.KEPT, kept_at=timezone.now()
        )


def milestones_reopened(job: Job, milestones: QuerySet[Milestone]) -> None:
    """Going back a stage: the reopened stages are promised again, at their current dates."""
    reopened = list(
        milestones.select_related("stage").exclude(Exists(open_commitments().filter(milestone=OuterRef("pk"))))
    )
    milestone_commitments_create(job, reopened)


def milestone_date_moved(milestone: Milestone, *, reason: str, actor: Actor, told_customer: bool) -> None:
    # An open promise, or a broken one getting a (late) new date.
    commitment = (
        Commitment.objects.filter(milestone=milestone, state__in=KEEPABLE_STATES).order_by("-created_at").first()
    )
    if commitment is None:
        if milestone.stage.customer_visible and milestone.forecast_date:
            milestone_commitments_create(milestone.job, [milestone])
        return
    # Both callers have just set the milestone's new forecast date.
    new_due = due_at_for(cast(date, milestone.forecast_date))
    if new_due != commitment.due_at:
        commitment_renegotiate(
            commitment=commitment, new_due_at=new_due, reason=reason, actor=actor, told_customer=told_customer
        )


# --- The one-click flow: a new date, told to the customer now -----------------------------------


@transaction.atomic
def commitment_move_and_tell(
    *, commitment: Commitment, new_date: date, reason: str, actor: Actor, note: str = ""
) -> Commitment:
    """Get in front of it: give the customer the new date now, before the old one passes."""
    from crm.services.jobs import lock_job, milestone_move  # jobs imports this module

    job = lock_job(commitment.job)
    commitment = Commitment.objects.select_for_update().get(pk=commitment.pk)
    if not job.is_open:
        raise DomainError(_("This job is closed."))
    if commitment.state not in (*Commitment.OPEN_STATES, Commitment.State.BROKEN):
        raise DomainError(_("This promise is no longer open."))
    if not reason.strip():
        raise DomainError(_("Say why the date moves: the customer will ask."))
    if new_date < business_today():
        raise DomainError(_("The new date cannot be in the past."))
    if commitment.milestone is not None:
        milestone_move(
            milestone=commitment.milestone, new_date=new_date, reason=reason, actor=actor, tell_customer=True, note=note
        )
        commitment.refresh_from_db()
        return commitment
    old_due_at = commitment.due_at
    new_due_at = due_at_for(new_date)
    if new_due_at == old_due_at:
        raise DomainError(_("%(date)s is already the promised date.") % {"date": new_date})
    commitment_renegotiate(commitment=commitment, new_due_at=new_due_at, reason=reason, actor=actor, told_customer=True)
    if commitment.request_id:
        # The question shows the date now promised.
        Request.objects.filter(pk=commitment.request_id).update(answer_due_on=new_date)
    contacts = [commitment.contact] if commitment.contact else list(job.contacts.all())
    messages_queue(
        drafts=promise_moved_drafts(
            job,
            commitment=commitment,
            old_due_at=old_due_at,
            reason=reason,
            note=note,
            contacts=contacts,
            author=actor,
        ),
        job=job,
        key=lambda d: f"promise:{commitment.pk}:{new_due_at.isoformat()}:{d.contact.pk}:{d.channel}",
        author=actor,
    )
    commitment.refresh_from_db()
    return commitment


@transaction.atomic
def commitment_mark_kept(*, commitment: Commitment, actor: Actor) -> Commitment:
    """A promised quote or document was delivered."""
    if commitment.kind != Commitment.Kind.DOCUMENT:
        raise DomainError(_("This promise is kept by the work itself (the stage, the answer, the call)."))
    if not commitments_keep(Commitment.objects.filter(pk=commitment.pk), actor=actor):
        raise DomainError(_("This promise is no longer open."))
    commitment.refresh_from_db()
    return commitment


@transaction.atomic
def status_update_send(*, job: Job, actor: Actor, note: str = "") -> list[Message]:
    """Send the ready "here is where we are" update to every contact, each in their language."""
    from crm.services.jobs import lock_job

    job = lock_job(job)
    if not job.is_open:
        raise DomainError(_("This job is closed."))
    drafts = status_update_drafts(job, note=note, author=actor)
    if not drafts:
        raise DomainError(_("No contact on this job: nobody would receive it."))
    stamp = uuid.uuid4().hex
    rows = messages_queue(
        drafts=drafts, job=job, key=lambda d: f"update:{job.pk}:{d.contact.pk}:{d.channel}:{stamp}", author=actor
    )
    job.updated_at = timezone.now()
    job.save(update_fields=["updated_at"])
    return rows


# --- The scan (a django-q2 schedule every few minutes) ------------------------------------------


def _managers() -> list[Any]:
    """The managers to tell of a broken promise (with their profiles, for their language)."""
    return list(
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name=MANAGERS_GROUP))
        .exclude(email="")
        .select_related("staff_profile")
        .distinct()
        .order_by("pk")
    )


def about_to_slip(*, now: datetime, batch: int, entered_before: datetime | None = None) -> QuerySet[Commitment]:
    """Open promises inside the warning window whose owner was not nudged yet, soonest first (with
    what the nudge needs: the job, the owner and their language).

    ``entered_before``: only the promises already due at their current time before that moment
    (made before it, and not moved since): the ones that were in the window then."""
    at_risk = open_commitments().filter(due_at__gt=now, due_at__lte=warning_threshold(), nudged_at__isnull=True)
    if entered_before is not None:
        at_risk = at_risk.filter(created_at__lt=entered_before).exclude(
            Exists(Renegotiation.objects.filter(commitment=OuterRef("pk"), created_at__gte=entered_before))
        )
    return at_risk.select_related("job", "owner__staff_profile", "contact", "milestone__stage").order_by(
        "due_at", "pk"
    )[:batch]


def past_due(*, now: datetime, batch: int) -> QuerySet[Commitment]:
    """Open promises whose time has passed: to mark broken, soonest first."""
    return (
        open_commitments()
        .filter(due_at__lte=now)
        .select_related("job", "owner__staff_profile", "contact", "milestone__stage")
        .order_by("due_at")[:batch]
    )


def scan(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Send each owner their morning digest of promises about to slip (the first run of a business
    day from opening time; each promise in one digest), mark promises whose time passed as broken
    and tell the managers (once each), and tell owners of silent jobs (once per silence). Safe to
    run any number of times, from any number of processes: every step is a conditional UPDATE that
    only one run can win. Counts: promises ``nudged``, ``digests`` sent, promises ``broken``,
    ``silent`` jobs."""
    from crm.services.nudges import digests_send  # nudges reads about_to_slip from here

    now = now or timezone.now()
    counts = {"nudged": 0, "digests": 0, "broken": 0, "silent": 0}

    counts["nudged"], counts["digests"] = digests_send(now=now, batch=batch)

    due = past_due(now=now, batch=batch)
    managers = _managers() if due else []
    for commitment in due:
        with transaction.atomic():
            moved = Commitment.objects.filter(pk=commitment.pk, state__in=Commitment.OPEN_STATES).update(
                state=Commitment.State.BROKEN, broken_at=now, escalated_at=now, broken_holder_id=F("owner_id")
            )
            if not moved:
                continue
            counts["broken"] += 1
            _event(commitment, JobEvent.Kind.PROMISE_BROKEN, None, due_at=commitment.due_at)
            alert_staff(
                [*managers, commitment.owner],
                name="promise-broken",
                context={"commitment": commitment, "job": commitment.job},
                key=f"commitment:{commitment.pk}:{commitment.due_at.isoformat()}",
            )

    counts["silent"] = _silence_alarm(now)
    return counts


def _silence_alarm(now: datetime) -> int:
    """Jobs the customer has heard nothing about for their pipeline's silence_days: tell the owner
    once, with a ready status update one click away."""
    from crm.selectors import silent_jobs

    sent = 0
    for job in silent_jobs(now=now).select_related("owner__staff_profile"):
        last = job.last_out or job.created_at
        with transaction.atomic():
            claimed = (
                Job.objects.filter(pk=job.pk)
                .filter(Q(silence_nudged_at__isnull=True) | Q(silence_nudged_at__lt=last))
                .update(silence_nudged_at=now)
            )
            if not claimed:
                continue
            sent += 1
            alert_staff(
                [job.owner],
                name="silence",
                context={"job": job, "last": last, "days": (now - last).days},
                key=f"job:{job.pk}:{last.isoformat()}",
            )
    return sent
