"""Writes to jobs and their milestones.

Every function here is keyword-only and atomic, locks the job row before it reads the state it
decides on (so two people acting on one job at once are serialised, and the second sees the first
one's result), and records one JobEvent. A rule violation raises a DomainError whose message is
shown to the person as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.errors import ConflictError, DomainError, ForbiddenTransition
from crm.models import Contact, Customer, Job, JobEvent, JobReferenceCounter, Milestone, Pipeline, StageTemplate
from crm.notify import date_moved_drafts, stage_change_drafts
from crm.services import promises
from crm.services.events import record_event
from crm.services.outbox import messages_queue
from crm.text import person_name
from crm.workdays import add_business_days, business_today, end_of_business_day

Actor = AbstractBaseUser | None

REFERENCE_RE = re.compile(r"^J-(?P<year>\d{4})-(?P<number>\d{4,6})$")


def lock_job(job: Job) -> Job:
    """Re-read the job under a row lock; decisions are made on this copy, never on the caller's.

    The job row alone: with joins, PostgreSQL would also lock the stage, pipeline and owner rows
    (blocking every other job that shares them) and, re-checking the join after a concurrent
    stage change, drop the row instead of returning the new state.
    """
    return Job.objects.select_for_update().get(pk=job.pk)


# --- References ---------------------------------------------------------------------------------


def next_job_reference(*, year: int) -> str:
    """Hand out the next J-<year>-NNNN. The counter row's update lock makes it safe under concurrency."""
    if not JobReferenceCounter.objects.filter(year=year).update(last_number=F("last_number") + 1):
        try:
            with transaction.atomic():
                JobReferenceCounter.objects.create(year=year, last_number=1)
        except IntegrityError:
            # Another transaction created this year's row between our update and our insert.
            JobReferenceCounter.objects.filter(year=year).update(last_number=F("last_number") + 1)
    number = JobReferenceCounter.objects.get(year=year).last_number
    return f"J-{year}-{number:04d}"


def _claim_reference(reference: str) -> str:
    """Accept a reference given from outside (an import) and keep the counter past it."""
    match = REFERENCE_RE.match(reference)
    if not match or reference != f"J-{match['year']}-{int(match['number']):04d}":
        raise DomainError(_("A job reference looks like J-2026-0042, not “%(ref)s”.") % {"ref": reference})
    if Job.objects.filter(reference=reference).exists():
        raise DomainError(_("The reference %(ref)s is already used by another job.") % {"ref": reference})
    year, number = int(match["year"]), int(match["number"])
    JobReferenceCounter.objects.get_or_create(year=year)
    JobReferenceCounter.objects.filter(year=year).update(last_number=Greatest(F("last_number"), number))
    return reference


# --- Checks shared by services and the forms that offer the same actions ------------------------


def _ensure_staff(user: AbstractBaseUser, *, role: str) -> None:
    if not (user.is_active and getattr(user, "is_staff", False)):
        raise DomainError(
            _("%(user)s is not an active staff member and cannot be %(role)s.")
            % {
                "user": person_name(user),
                "role": role,
            }
        )


def ensure_contacts_of(customer: Customer, contacts: Iterable[Contact]) -> list[Contact]:
    contacts = list(contacts)
    strangers = [c.name for c in contacts if c.customer_id != customer.pk]
    if strangers:
        raise DomainError(
            _("%(names)s is not a contact of %(customer)s.")
            % {
                "names": ", ".join(strangers),
                "customer": customer.name,
            }
        )
    return contacts


def _ensure_open(job: Job, *, doing: str) -> None:
    if not job.is_open:
        raise ForbiddenTransition(
            _("Job %(ref)s is %(status)s: it can no longer %(doing)s.")
            % {
                "ref": job.reference,
                "status": job.get_status_display().lower(),
                "doing": doing,
            }
        )


def ensure_can_advance(job: Job, to_stage: StageTemplate, *, backwards: bool = False) -> None:
    """Raise the DomainError that advancing ``job`` to ``to_stage`` would raise, without writing."""
    _ensure_open(job, doing=_("change stage"))
    if job.status == Job.Status.ON_HOLD:
        raise ForbiddenTransition(
            _("Job %(ref)s is on hold: resume it before changing its stage.") % {"ref": job.reference}
        )
    if to_stage.pipeline_id != job.pipeline_id:
        raise ForbiddenTransition(
            _("“%(stage)s” belongs to the %(other)s pipeline, not to %(mine)s.")
            % {
                "stage": to_stage.name,
                "other": to_stage.pipeline.name,
                "mine": job.pipeline.name,
            }
        )
    if to_stage.pk == job.current_stage_id:
        raise ConflictError(
            _("Job %(ref)s is already at “%(stage)s”.") % {"ref": job.reference, "stage": to_stage.name}
        )
    if to_stage.position < job.current_stage.position and not backwards:
        raise ForbiddenTransition(
            _("Going back from “%(current)s” to “%(stage)s” needs a reason.")
            % {
                "current": job.current_stage.name,
                "stage": to_stage.name,
            }
        )


# --- Planning -----------------------------------------------------------------------------------


def _roll_forecasts(job: Job, *, after_position: int, from_date: date) -> list[dict[str, Any]]:
    """Push later open milestones out so none is expected sooner than its stages allow.

    Dates are only ever pushed later, never pulled in: a date already given to the customer
    stays unless someone moves it on purpose (underpromise, overdeliver).
    """
    changes = []
    cumulative = 0
    later = (
        job.milestones.select_related("stage")
        .filter(stage__position__gt=after_position, completed_at__isnull=True)
        .order_by("stage__position")
    )
    for milestone in later:
        cumulative += milestone.stage.default_duration_days
        earliest = add_business_days(from_date, cumulative)
        if milestone.forecast_date is not None and milestone.forecast_date < earliest:
            changes.append({"stage": milestone.stage.name, "old_date": milestone.forecast_date, "new_date": earliest})
            milestone.forecast_date = earliest
            milestone.save(update_fields=["forecast_date"])
            # The customer has not been told: a silent slip, until someone tells them.
            promises.milestone_date_moved(
                milestone, reason=_("An earlier stage was reached late."), actor=None, told_customer=False
            )
    return changes


# --- Services -----------------------------------------------------------------------------------


@transaction.atomic
def job_create(
    *,
    customer: Customer,
    pipeline: Pipeline,
    owner: AbstractBaseUser,
    title: str,
    actor: Actor,
    contacts: Iterable[Contact] | None = None,
    start_date: date | None = None,
    reference: str | None = None,
) -> Job:
    """Open a job at the first stage of ``pipeline``, with every milestone planned from the stage
    durations in business days."""
    stages = list(pipeline.stages.order_by("position"))
    if not stages:
        raise DomainError(_("The %(pipeline)s pipeline has no stages yet.") % {"pipeline": pipeline.name})
    if not pipeline.is_active:
        raise DomainError(_("The %(pipeline)s pipeline is no longer in use.") % {"pipeline": pipeline.name})
    if not title.strip():
        raise DomainError(_("A job needs a title."))
    _ensure_staff(owner, role=_("a job owner"))
    if contacts is None:
        contacts = customer.contacts.all()
    contacts = ensure_contacts_of(customer, contacts)

    now = timezone.now()
    start = start_date or business_today()
    job = Job.objects.create(
        reference=_claim_reference(reference) if reference else next_job_reference(year=business_today().year),
        title=title.strip(),
        customer=customer,
        pipeline=pipeline,
        current_stage=stages[0],
        owner=owner,
        created_at=now,
        updated_at=now,
    )
    job.contacts.set(contacts)

    milestones = []
    cumulative = 0
    for index, stage in enumerate(stages):
        cumulative += stage.default_duration_days if index else 0
        planned = add_business_days(start, cumulative) if index else start
        milestones.append(
            Milestone(
                job=job,
                stage=stage,
                planned_date=planned,
                forecast_date=planned,
                completed_at=now if index == 0 else None,
            )
        )
    Milestone.objects.bulk_create(milestones)
    promises.milestone_commitments_create(job, milestones)
    record_event(
        job=job,
        kind=JobEvent.Kind.CREATED,
        actor=actor,
        title=job.title,
        pipeline=pipeline.name,
        stage=stages[0].name,
        owner=person_name(owner),
        start_date=start,
    )
    return job


@transaction.atomic
def job_advance(
    *,
    job: Job,
    to_stage: StageTemplate,
    actor: Actor,
    expected_stage: StageTemplate | None = None,
    backwards_reason: str = "",
    note: str = "",
    notify_customer: bool = True,
) -> Job:
    """Move the job to ``to_stage``: its milestone (and any skipped) is reached now, later
    forecasts roll out if the plan no longer fits.

    ``expected_stage`` is the stage the person saw when they clicked: if the job has moved since,
    they get a ConflictError instead of silently overriding a colleague. Going back needs
    ``backwards_reason``. Reaching a stage shown to the customer queues its message to each
    contact (with ``note`` as a personal word), sent after commit.
    """
    job = lock_job(job)
    if expected_stage is not None and job.current_stage_id != expected_stage.pk:
        raise ConflictError(
            _("Job %(ref)s was moved to “%(stage)s” by someone else in the meantime; look again before changing it.")
            % {"ref": job.reference, "stage": job.current_stage.name}
        )
    backwards = bool(backwards_reason.strip())
    ensure_can_advance(job, to_stage, backwards=backwards)

    now = timezone.now()
    from_stage = job.current_stage
    going_back = to_stage.position < from_stage.position
    if going_back:
        # The stages after the target are no longer reached: they are promised again.
        reopened = job.milestones.filter(stage__position__gt=to_stage.position)
        reopened.update(completed_at=None)
        promises.milestones_reopened(job, reopened)
        rolled: list[dict[str, Any]] = []
    else:
        reached = job.milestones.filter(
            stage__position__gt=from_stage.position,
            stage__position__lte=to_stage.position,
            completed_at__isnull=True,
        )
        reached_ids = list(reached.values_list("pk", flat=True))
        reached.update(completed_at=now)
        promises.milestones_reached(job, Milestone.objects.filter(pk__in=reached_ids), actor=actor)
        rolled = _roll_forecasts(job, after_position=to_stage.position, from_date=business_today())

    job.current_stage = to_stage
    job.updated_at = now
    job.save(update_fields=["current_stage", "updated_at"])
    event = record_event(
        job=job,
        kind=JobEvent.Kind.STAGE_REVERTED if going_back else JobEvent.Kind.STAGE_ADVANCED,
        actor=actor,
        from_stage=from_stage.name,
        from_stage_id=from_stage.pk,
        to_stage=to_stage.name,
        to_stage_id=to_stage.pk,
        customer_visible=to_stage.customer_visible,
        reason=backwards_reason.strip(),
        note=note.strip(),
        rolled=rolled,
    )
    if notify_customer and not going_back:
        messages_queue(
            drafts=stage_change_drafts(job, stage=to_stage, note=note),
            job=job,
            key=lambda d: f"stage:{job.pk}:{to_stage.pk}:{event.pk}:{d.contact.pk}:{d.channel}",
            author=actor,
        )
    return job


@transaction.atomic
def milestone_move(
    *,
    milestone: Milestone,
    new_date: date,
    reason: str,
    actor: Actor,
    tell_customer: bool = False,
    note: str = "",
) -> Milestone:
    """Change the date we expect a stage to be reached. The first promise (planned date) stays,
    so the history of the promise is never overwritten. With ``tell_customer``, each contact is
    sent the new date and the reason now."""
    job = lock_job(milestone.job)
    milestone = job.milestones.select_related("stage").get(pk=milestone.pk)
    _ensure_open(job, doing=_("have its dates moved"))
    if milestone.is_done:
        raise DomainError(
            _("“%(stage)s” was already reached; its date can no longer move.") % {"stage": milestone.stage.name}
        )
    if not reason.strip():
        raise DomainError(_("Say why the date moves: the customer will ask."))
    today = business_today()
    if new_date < today:
        raise DomainError(_("The new date cannot be in the past."))
    old_date = milestone.forecast_date
    if new_date == old_date:
        raise DomainError(_("%(date)s is already the expected date.") % {"date": new_date})

    milestone.forecast_date = new_date
    if milestone.planned_date is None:
        milestone.planned_date = new_date
    milestone.save(update_fields=["forecast_date", "planned_date"])
    promises.milestone_date_moved(milestone, reason=reason, actor=actor, told_customer=tell_customer)
    rolled = _roll_forecasts(job, after_position=milestone.stage.position, from_date=new_date)
    job.updated_at = timezone.now()
    job.save(update_fields=["updated_at"])
    event = record_event(
        job=job,
        kind=JobEvent.Kind.DATE_MOVED,
        actor=actor,
        milestone_id=milestone.pk,
        stage=milestone.stage.name,
        planned_date=milestone.planned_date,
        old_date=old_date,
        new_date=new_date,
        reason=reason.strip(),
        tell_customer=tell_customer,
        # Told before the old date passed (its closing time) = a proactive notice, as the promise
        # records it; the reports count these.
        before_old_date=old_date is None or timezone.now() <= end_of_business_day(old_date),
        rolled=rolled,
    )
    if tell_customer:
        drafts = date_moved_drafts(
            job, milestone=milestone, old_date=old_date, new_date=new_date, reason=reason, note=note
        )
        messages_queue(
            drafts=drafts,
            job=job,
            key=lambda d: f"date:{job.pk}:{milestone.pk}:{event.pk}:{d.contact.pk}:{d.channel}",
            author=actor,
        )
    return milestone


@transaction.atomic
def job_reassign(*, job: Job, owner: AbstractBaseUser, actor: Actor, reason: str = "") -> Job:
    """Hand the job, and the responsibility for talking to its customer, to another person."""
    job = lock_job(job)
    _ensure_open(job, doing=_("change owner"))
    _ensure_staff(owner, role=_("a job owner"))
    if owner.pk == job.owner_id:
        raise DomainError(_("%(user)s already owns job %(ref)s.") % {"user": person_name(owner), "ref": job.reference})
    old_owner = job.owner
    job.owner = owner
    job.updated_at = timezone.now()
    job.save(update_fields=["owner", "updated_at"])
    promises.commitments_follow_owner(job)
    record_event(
        job=job,
        kind=JobEvent.Kind.OWNER_CHANGED,
        actor=actor,
        old_owner=person_name(old_owner),
        old_owner_id=old_owner.pk,
        new_owner=person_name(owner),
        new_owner_id=owner.pk,
        reason=reason.strip(),
    )
    return job


@transaction.atomic
def job_update_details(
    *,
    job: Job,
    actor: Actor,
    title: str | None = None,
    contacts: Iterable[Contact] | None = None,
    installers: Iterable[AbstractBaseUser] | None = None,
) -> Job:
    """Change what the job is called and who is on it. Records which fields changed."""
    job = lock_job(job)
    changed: dict[str, Any] = {}
    if title is not None and title.strip() != job.title:
        if not title.strip():
            raise DomainError(_("A job needs a title."))
        changed["title"] = {"old": job.title, "new": title.strip()}
        job.title = title.strip()
    if contacts is not None:
        contacts = ensure_contacts_of(job.customer, contacts)
        old = sorted(job.contacts.values_list("pk", flat=True))
        new = sorted({c.pk for c in contacts})
        if old != new:
            job.contacts.set(contacts)
            changed["contacts"] = {"old": old, "new": new}
    if installers is not None:
        installers = list(installers)
        for installer in installers:
            _ensure_staff(installer, role=_("an installer"))
        old = sorted(job.installers.values_list("pk", flat=True))
        new = sorted({u.pk for u in installers})
        if old != new:
            job.installers.set(installers)
            changed["installers"] = {"old": old, "new": new}
    if not changed:
        return job
    job.updated_at = timezone.now()
    job.save(update_fields=["title", "updated_at"])
    record_event(job=job, kind=JobEvent.Kind.DETAILS_CHANGED, actor=actor, changed=changed)
    return job


def _set_status(
    job: Job, *, status: str, allowed_from: set[str], kind: str, actor: Actor, reason: str, doing: str
) -> Job:
    job = lock_job(job)
    if job.status not in allowed_from:
        raise ForbiddenTransition(
            _("Job %(ref)s is %(status)s: it cannot %(doing)s.")
            % {
                "ref": job.reference,
                "status": job.get_status_display().lower(),
                "doing": doing,
            }
        )
    now = timezone.now()
    old_status = job.status
    job.status = status
    job.updated_at = now
    job.closed_at = now if status in (Job.Status.DONE, Job.Status.CANCELLED) else None
    job.save(update_fields=["status", "updated_at", "closed_at"])
    if job.closed_at:
        promises.commitments_withdraw(job, actor=actor)
    record_event(
        job=job,
        kind=kind,
        actor=actor,
        old_status=old_status,
        new_status=status,
        stage=job.current_stage.name,
        reason=reason.strip(),
    )
    return job


@transaction.atomic
def job_hold(*, job: Job, actor: Actor, reason: str) -> Job:
    if not reason.strip():
        raise DomainError(_("Say why the job is put on hold."))
    return _set_status(
        job,
        status=Job.Status.ON_HOLD,
        allowed_from={Job.Status.ACTIVE},
        kind=JobEvent.Kind.HELD,
        actor=actor,
        reason=reason,
        doing=_("be put on hold"),
    )


@transaction.atomic
def job_resume(*, job: Job, actor: Actor, reason: str = "") -> Job:
    return _set_status(
        job,
        status=Job.Status.ACTIVE,
        allowed_from={Job.Status.ON_HOLD},
        kind=JobEvent.Kind.RESUMED,
        actor=actor,
        reason=reason,
        doing=_("be resumed"),
    )


@transaction.atomic
def job_cancel(*, job: Job, actor: Actor, reason: str) -> Job:
    if not reason.strip():
        raise DomainError(_("Say why the job is cancelled."))
    return _set_status(
        job,
        status=Job.Status.CANCELLED,
        allowed_from={Job.Status.ACTIVE, Job.Status.ON_HOLD},
        kind=JobEvent.Kind.CANCELLED,
        actor=actor,
        reason=reason,
        doing=_("be cancelled"),
    )


@transaction.atomic
def job_complete(*, job: Job, actor: Actor, reason: str = "") -> Job:
    return _set_status(
        job,
        status=Job.Status.DONE,
        allowed_from={Job.Status.ACTIVE},
        kind=JobEvent.Kind.COMPLETED,
        actor=actor,
        reason=reason,
        doing=_("be completed"),
    )
