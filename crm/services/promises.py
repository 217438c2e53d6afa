"""Promises (commitments): every date given to a customer, kept, moved or broken.

The other services call the hooks here inside their own transaction: a stage reached keeps its
promise, a date moved renegotiates it (proactive when the customer is told before the old time),
an answer sent keeps the "answer by" promise, a call logged keeps a promised callback. The scan
that nudges owners and breaks promises whose time passed is crm.services.scan; a new date told in
one click (commitment_move_and_tell) is in crm.services.jobs, next to milestone_move.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.errors import DomainError
from crm.models import Commitment, Contact, Job, JobEvent, Message, Milestone, Question, Renegotiation
from crm.services.events import record_event
from crm.services.guards import ensure_contacts_of
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
    question: Question | None = None,
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
        question=question,
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
    told_in_time_until: datetime | None = None,
) -> Renegotiation:
    """Move a promise's date, keeping the history: proactive only when the customer is told now,
    before the old time has passed (or before ``told_in_time_until``: a visit's window counts as
    told in time only before it starts)."""
    now = timezone.now()
    old_due_at = commitment.due_at
    in_time_until = told_in_time_until or old_due_at
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
        proactive=told_customer and now <= in_time_until,
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


# --- A promised document delivered --------------------------------------------------------------


@transaction.atomic
def commitment_mark_kept(*, commitment: Commitment, actor: Actor) -> Commitment:
    """A promised quote or document was delivered."""
    if commitment.kind != Commitment.Kind.DOCUMENT:
        raise DomainError(_("This promise is kept by the work itself (the stage, the answer, the call)."))
    if not commitments_keep(Commitment.objects.filter(pk=commitment.pk), actor=actor):
        raise DomainError(_("This promise is no longer open."))
    commitment.refresh_from_db()
    return commitment


# --- What the scan reads and breaks (crm.services.scan) -----------------------------------------


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


def commitment_break(commitment: Commitment, *, at: datetime) -> bool:
    """Its time passed: the promise is broken (and escalated) at ``at``, credited to who holds it.
    False if it is no longer open: kept, moved or broken meanwhile, by another run perhaps."""
    moved = Commitment.objects.filter(pk=commitment.pk, state__in=Commitment.OPEN_STATES).update(
        state=Commitment.State.BROKEN, broken_at=at, escalated_at=at, broken_holder_id=F("owner_id")
    )
    if not moved:
        return False
    _event(commitment, JobEvent.Kind.PROMISE_BROKEN, None, due_at=commitment.due_at)
    return True
