"""Writes to jobs and their milestones, and a promise's new date told in one click
(commitment_move_and_tell, next to milestone_move which it uses for a stage's promise).

Every function here is keyword-only and atomic, locks the job row before it reads the state it
decides on (so two people acting on one job at once are serialised, and the second sees the first
one's result), and records one JobEvent. A rule violation raises a DomainError whose message is
shown to the person as it is.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F, Prefetch, prefetch_related_objects
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.errors import ConflictError, DomainError, ForbiddenTransition
from crm.models import (
    Commitment,
    Contact,
    Customer,
    Job,
    JobEvent,
    JobReferenceCounter,
    JobRole,
    Message,
    Milestone,
    Pipeline,
    PipelineRole,
    Question,
    Renegotiation,
    StageTemplate,
    Visit,
)
from crm.notify import (
    DateChange,
    contact_changed_drafts,
    date_moved_drafts,
    promise_moved_drafts,
    recipients,
    stage_change_drafts,
    welcome_drafts,
)
from crm.services import promises
from crm.services.alerts import alert_staff
from crm.services.events import event, record_event, record_events
from crm.services.guards import ensure_contacts_of, lock_job, lock_jobs
from crm.services.outbox import messages_queue, messages_store
from crm.services.versions import next_version, version_after
from crm.text import person_name
from crm.workdays import add_business_days, business_today, end_of_business_day, out_of_reach

Actor = User | None

REFERENCE_RE = re.compile(r"^J-(?P<year>\d{4})-(?P<number>\d{4,6})$")


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


def _ensure_staff(user: User, *, role: str) -> None:
    if not (user.is_active and getattr(user, "is_staff", False)):
        raise DomainError(
            _("%(user)s is not an active staff member and cannot be %(role)s.")
            % {
                "user": person_name(user),
                "role": role,
            }
        )


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


def _ensure_within_reach(day: date) -> None:
    """No date is planned further ahead than crm.workdays.latest_day() (the forms say so first)."""
    problem = out_of_reach(day, earliest=date.min)
    if problem is not None:
        raise DomainError(problem[1])


# --- Planning -----------------------------------------------------------------------------------


def _roll_forecasts(
    job: Job,
    *,
    after_position: int,
    from_date: date,
    milestones: list[Milestone] | None = None,
    reason: str,
    actor: Actor,
    told_customer: bool,
) -> list[DateChange]:
    """Push later open milestones out so none is expected sooner than its stages allow.

    Dates are only ever pushed later, never pulled in: a date already given to the customer
    stays unless someone moves it on purpose (underpromise, overdeliver). ``milestones``: the
    job's, with their stages, when the caller has them (no query unless a date moves). Each
    pushed-out promise is renegotiated as told (the caller's message lists it) or not.
    """
    changes = []
    cumulative = 0
    if milestones is None:
        milestones = list(job.milestones.select_related("stage"))
    later = sorted(
        (m for m in milestones if m.stage.position > after_position and m.completed_at is None),
        key=lambda m: m.stage.position,
    )
    for milestone in later:
        cumulative += milestone.stage.default_duration_days
        earliest = add_business_days(from_date, cumulative)
        if milestone.forecast_date is not None and milestone.forecast_date < earliest:
            changes.append(DateChange(milestone=milestone, old_date=milestone.forecast_date, new_date=earliest))
            milestone.forecast_date = earliest
            milestone.save(update_fields=["forecast_date"])
            # Not told: a silent slip until someone tells them (the dashboard offers to).
            promises.milestone_date_moved(milestone, reason=reason, actor=actor, told_customer=told_customer)
    return changes


def _changes_data(changes: Iterable[DateChange]) -> list[dict[str, Any]]:
    return [change.as_data() for change in changes]


# --- Roles: who answers for the customer during each stage ---------------------------------------


def _roles_plan(job: Job, *, first_stage: StageTemplate) -> list[JobRole]:
    """A new job's role holders: the owner for the first stage's role, else each role's usual
    holder (when still active staff), else the owner."""
    rows = []
    for role in job.pipeline.roles.select_related("default_holder"):
        holder = role.default_holder
        if role.pk == first_stage.role_id or holder is None or not (holder.is_active and holder.is_staff):
            holder = job.owner
        rows.append(JobRole(job=job, role=role, holder=holder))
    return rows


def _stage_holders(jobs: list[Job], stage: StageTemplate) -> dict[int, User]:
    """Who should be each job's contact once at ``stage``: the holder of the stage's role (active
    staff only), by job id, in one query; none when the stage names no role."""
    if stage.role_id is None:
        return {}
    rows = JobRole.objects.select_related("holder__staff_profile").filter(
        job_id__in=[job.pk for job in jobs], role_id=stage.role_id
    )
    return {row.job_id: row.holder for row in rows if row.holder.is_active and row.holder.is_staff}


def _hand_over(
    job: Job, *, to: User, actor: Actor, reason: str, stage: StageTemplate | None, tell_customer: bool
) -> None:
    """Make ``to`` the person responsible for ``job`` (a locked job): open promises follow, a
    JobEvent records it, and the new person is told (in their language, with the job's link)."""
    previous = job.owner
    stage_name = stage.name if stage is not None else ""
    role_name = stage.role.name if stage is not None and stage.role is not None else ""
    job.owner = to
    job.updated_at = next_version(job.updated_at)
    job.save(update_fields=["owner", "updated_at"])
    moved = promises.commitments_follow_owner(job)
    record_event(
        job=job,
        kind=JobEvent.Kind.OWNER_CHANGED,
        actor=actor,
        old_owner=person_name(previous),
        old_owner_id=previous.pk,
        new_owner=person_name(to),
        new_owner_id=to.pk,
        reason=reason.strip(),
        stage=stage_name,
        role=role_name,
        told_customer=tell_customer,
    )
    if actor is not None and actor.pk == to.pk:
        return  # nobody needs telling that they took the job themselves
    alert_staff(
        [to],
        name="job-assigned",
        context={
            "job": job,
            "previous": person_name(previous),
            "by": person_name(actor) if actor is not None else "",
            "role": role_name,
            "stage": stage_name,
            "reason": reason.strip(),
            "told_customer": tell_customer,
            "open_promises": moved,
        },
        key=f"owner:{job.pk}:{to.pk}:{job.updated_at.isoformat()}",
    )


# --- Services -----------------------------------------------------------------------------------


@transaction.atomic
def job_create(
    *,
    customer: Customer,
    pipeline: Pipeline,
    owner: User,
    title: str,
    actor: Actor,
    contacts: Iterable[Contact] | None = None,
    start_date: date | None = None,
    reference: str | None = None,
    notify_customer: bool = True,
    not_told_reason: str = "",
) -> Job:
    """Open a job at the first stage of ``pipeline``, with every milestone planned from the stage
    durations in business days, and welcome each contact: thanks, the stages ahead with their
    dates, what to prepare, who their person is, the portal link (queued in this transaction,
    sent after commit). Not welcoming them needs a reason, recorded on the job's first event.

    A job starting later than today is at its first stage without having reached it yet: that
    stage is reached when the job moves on."""
    stages = list(pipeline.stages.order_by("position"))
    if not stages:
        raise DomainError(_("The %(pipeline)s pipeline has no stages yet.") % {"pipeline": pipeline.name})
    if not pipeline.is_active:
        raise DomainError(_("The %(pipeline)s pipeline is no longer in use.") % {"pipeline": pipeline.name})
    if not title.strip():
        raise DomainError(_("A job needs a title."))
    _ensure_staff(owner, role=_("a job owner"))
    if not notify_customer and not not_told_reason.strip():
        raise DomainError(_("Say why the customer is not welcomed: they will hear nothing until the next stage."))
    if contacts is None:
        contacts = customer.contacts.all()
    contacts = ensure_contacts_of(customer, contacts)

    now = timezone.now()
    today = business_today()
    start = start_date or today
    _ensure_within_reach(start)
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
                completed_at=now if index == 0 and start <= today else None,
            )
        )
    Milestone.objects.bulk_create(milestones)
    # The first stage is where the job is: it has no promise of its own, even when it starts later.
    promises.milestone_commitments_create(job, milestones[1:])
    JobRole.objects.bulk_create(_roles_plan(job, first_stage=stages[0]))
    drafts = welcome_drafts(job, milestones=milestones) if notify_customer else []
    record_event(
        job=job,
        kind=JobEvent.Kind.CREATED,
        actor=actor,
        title=job.title,
        pipeline=pipeline.name,
        stage=stages[0].name,
        owner=person_name(owner),
        start_date=start,
        welcomed=len(drafts),
        not_told_reason="" if notify_customer else not_told_reason.strip(),
    )
    if drafts:
        messages_queue(
            drafts=drafts, job=job, key=lambda d: f"welcome:{job.pk}:{d.contact.pk}:{d.channel}", author=actor
        )
    return job


def last_mover(job: Job, actor: Actor) -> str:
    """Who last changed the job's stage, as a colleague names them ("you", in another tab)."""
    last = (
        job.events.filter(kind__in=[JobEvent.Kind.STAGE_ADVANCED, JobEvent.Kind.STAGE_REVERTED])
        .select_related("actor")
        .order_by("-created_at", "-pk")
        .first()
    )
    if last is None or last.actor is None:
        return _("The system")
    if actor is not None and last.actor.pk == actor.pk:
        return _("You (in another window)")
    return person_name(last.actor)


def _advance(
    jobs: list[Job], *, to_stage: StageTemplate, actor: Actor, note: str, notify_customer: bool, reason: str = ""
) -> None:
    """Move locked jobs (read by lock_jobs, each checked by ensure_can_advance) forward to
    ``to_stage``. A fixed number of statements however many jobs move (a date pushed out by a
    late stage, or a hand-over to the stage's person, adds its own): milestones read once, one
    UPDATE each for milestones, promises and jobs, one INSERT of events, and the customers'
    messages stored together.

    The stage's message lists every later date the late stage pushes out, and those promises
    are recorded as told; when the stage names a role held by someone else, that person becomes
    the job's owner and the message introduces them."""
    now = timezone.now()
    today = business_today()
    ids = [job.pk for job in jobs]
    milestones: dict[int, list[Milestone]] = defaultdict(list)
    for milestone in Milestone.objects.filter(job_id__in=ids).select_related("stage").order_by("stage__position"):
        milestones[milestone.job_id].append(milestone)
    telling = notify_customer and to_stage.customer_visible
    if telling:
        # A job's contacts are all its customer's: by name, without the default order's join.
        prefetch_related_objects(jobs, Prefetch("contacts", queryset=Contact.objects.order_by("name", "pk")))

    reached: list[int] = []
    for job in jobs:
        for milestone in milestones[job.pk]:
            # Up to the new stage, every stage not reached yet (a job that started later than
            # the day it was opened had not reached its first one).
            if milestone.stage.position <= to_stage.position and milestone.completed_at is None:
                milestone.completed_at = now
                reached.append(milestone.pk)
    Milestone.objects.filter(pk__in=reached).update(completed_at=now)
    promises.milestones_reached(reached)
    told = {job.pk: telling and bool(recipients(job, kind=Message.Kind.STAGE_CHANGE)) for job in jobs}
    rolled = {
        job.pk: _roll_forecasts(
            job,
            after_position=to_stage.position,
            from_date=today,
            milestones=milestones[job.pk],
            reason=_("“%(stage)s” was reached later than planned.") % {"stage": to_stage.name},
            actor=actor,
            told_customer=told[job.pk],
        )
        for job in jobs
    }

    Job.objects.filter(pk__in=ids).update(current_stage=to_stage, updated_at=version_after(now))
    handed_over: set[int] = set()
    holders = _stage_holders(jobs, to_stage)
    for job in jobs:
        holder = holders.get(job.pk)
        if holder is not None and holder.pk != job.owner_id:
            _hand_over(
                job,
                to=holder,
                actor=actor,
                reason=_("“%(stage)s” is in the hands of the %(role)s.")
                % {"stage": to_stage.name, "role": to_stage.role.name if to_stage.role else ""},
                stage=to_stage,
                tell_customer=told[job.pk],
            )
            handed_over.add(job.pk)
    events = []
    for job in jobs:
        from_stage, job.current_stage, job.updated_at = job.current_stage, to_stage, now
        events.append(
            event(
                job=job,
                kind=JobEvent.Kind.STAGE_ADVANCED,
                actor=actor,
                from_stage=from_stage.name,
                from_stage_id=from_stage.pk,
                to_stage=to_stage.name,
                to_stage_id=to_stage.pk,
                customer_visible=to_stage.customer_visible,
                reason=reason.strip(),
                note=note.strip(),
                rolled=_changes_data(rolled[job.pk]),
                told_customer=told[job.pk],
            )
        )
    record_events(events)

    if telling:
        messages_store(
            (
                (draft, job, f"stage:{job.pk}:{to_stage.pk}:{job_event.pk}:{draft.contact.pk}:{draft.channel}")
                for job, job_event in zip(jobs, events, strict=True)
                for draft in stage_change_drafts(
                    job,
                    stage=to_stage,
                    note=note,
                    milestones=milestones[job.pk],
                    author=actor,
                    changes=rolled[job.pk],
                    handed_over=job.pk in handed_over,
                )
            ),
            author=actor,
        )


def _revert(job: Job, *, to_stage: StageTemplate, actor: Actor, reason: str, note: str) -> None:
    """Take a locked job back to an earlier stage: the stages after it are promised again."""
    from_stage = job.current_stage
    reopened = job.milestones.filter(stage__position__gt=to_stage.position)
    reopened.update(completed_at=None)
    promises.milestones_reopened(job, reopened)
    job.current_stage = to_stage
    job.updated_at = next_version(job.updated_at)
    job.save(update_fields=["current_stage", "updated_at"])
    record_event(
        job=job,
        kind=JobEvent.Kind.STAGE_REVERTED,
        actor=actor,
        from_stage=from_stage.name,
        from_stage_id=from_stage.pk,
        to_stage=to_stage.name,
        to_stage_id=to_stage.pk,
        customer_visible=to_stage.customer_visible,
        reason=reason.strip(),
        note=note.strip(),
        rolled=[],
    )


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
    [job] = lock_jobs([job])
    if expected_stage is not None and job.current_stage_id != expected_stage.pk:
        raise ConflictError(
            _("%(who)s moved job %(ref)s to “%(stage)s” in the meantime; look again before changing it.")
            % {"who": last_mover(job, actor), "ref": job.reference, "stage": job.current_stage.name}
        )
    ensure_can_advance(job, to_stage, backwards=bool(backwards_reason.strip()))
    if to_stage.position < job.current_stage.position:
        _revert(job, to_stage=to_stage, actor=actor, reason=backwards_reason, note=note)
    else:
        _advance(
            [job], to_stage=to_stage, actor=actor, note=note, notify_customer=notify_customer, reason=backwards_reason
        )
    return job


# The most jobs one bulk move takes (a page of the jobs list is far fewer).
BULK_MOVE_MAX = 200


@transaction.atomic
def jobs_advance(
    *, jobs: Iterable[Job], to_stage: StageTemplate, actor: Actor, note: str = "", notify_customer: bool = True
) -> list[Job]:
    """Move every job forward to ``to_stage`` in one transaction, exactly as job_advance would one
    at a time (milestones reached, promises kept, forecasts rolled, a JobEvent per job, each
    contact's stage-change message queued and sent after commit).

    Forward only: going back needs a reason and is done on the job page. If any job cannot move
    (closed, on hold, another pipeline, already there or past it), the DomainError names each one
    and nothing changes."""
    jobs = list(jobs)
    if not jobs:
        raise DomainError(_("Choose at least one job to move."))
    if len({job.pk for job in jobs}) > BULK_MOVE_MAX:
        raise DomainError(_("Move at most %(max)d jobs at once.") % {"max": BULK_MOVE_MAX})
    locked = lock_jobs(jobs)
    problems = []
    for job in locked:
        try:
            ensure_can_advance(job, to_stage)
        except DomainError as error:
            problems.append(str(error))
    if problems:
        raise DomainError(_("Nothing was moved. %(problems)s") % {"problems": " ".join(problems)})
    _advance(locked, to_stage=to_stage, actor=actor, note=note, notify_customer=notify_customer)
    return locked


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
    _ensure_within_reach(new_date)
    old_date = milestone.forecast_date
    if new_date == old_date:
        raise DomainError(_("%(date)s is already the expected date.") % {"date": new_date})

    milestone.forecast_date = new_date
    if milestone.planned_date is None:
        milestone.planned_date = new_date
    milestone.save(update_fields=["forecast_date", "planned_date"])
    # Told only when someone will actually receive it.
    told = tell_customer and bool(recipients(job, kind=Message.Kind.DATE_MOVED))
    promises.milestone_date_moved(milestone, reason=reason, actor=actor, told_customer=told)
    rolled = _roll_forecasts(
        job,
        after_position=milestone.stage.position,
        from_date=new_date,
        reason=reason,
        actor=actor,
        told_customer=told,
    )
    changes = [DateChange(milestone=milestone, old_date=old_date, new_date=new_date), *rolled]
    job.updated_at = next_version(job.updated_at)
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
        tell_customer=told,
        # Told before the old date passed (its closing time) = a proactive notice, as the promise
        # records it; the reports count these.
        before_old_date=old_date is None or timezone.now() <= end_of_business_day(old_date),
        rolled=_changes_data(rolled),
        # The dates pushed out are in the same message.
        rolled_told=told,
    )
    if told:
        drafts = date_moved_drafts(job, changes=changes, reason=reason, note=note, author=actor)
        messages_queue(
            drafts=drafts,
            job=job,
            key=lambda d: f"date:{job.pk}:{milestone.pk}:{event.pk}:{d.contact.pk}:{d.channel}",
            author=actor,
        )
    return milestone


@transaction.atomic
def dates_tell(*, job: Job, actor: Actor, note: str = "") -> list[DateChange]:
    """Tell the customer every date of ``job`` that moved without them being told, in one
    message (old → new for each), and record each of those moves as told now — proactive when
    now is still before the date the customer had."""
    job = lock_job(job)
    _ensure_open(job, doing=_("have its dates told"))
    untold = promises.untold_moves(job)
    if not untold:
        raise DomainError(_("Every new date of %(ref)s has been told already.") % {"ref": job.reference})
    if not recipients(job, kind=Message.Kind.DATE_MOVED):
        raise DomainError(_("No contact on this job: nobody would receive it."))
    changes = [DateChange(milestone=move.milestone, old_date=move.old_date, new_date=move.new_date) for move in untold]
    told = promises.moves_told(
        Renegotiation.objects.filter(pk__in=[pk for move in untold for pk in move.renegotiation_ids])
    )
    job.updated_at = next_version(job.updated_at)
    job.save(update_fields=["updated_at"])
    told_event = record_event(
        job=job,
        kind=JobEvent.Kind.DATES_TOLD,
        actor=actor,
        changes=_changes_data(changes),
        proactive=told["proactive"],
        late=told["late"],
    )
    reasons = sorted({move.reason for move in untold if move.reason})
    messages_queue(
        drafts=date_moved_drafts(job, changes=changes, reason=" ".join(reasons), note=note, author=actor),
        job=job,
        key=lambda d: f"dates:{job.pk}:{told_event.pk}:{d.contact.pk}:{d.channel}",
        author=actor,
    )
    return changes


@transaction.atomic
def commitment_move_and_tell(
    *, commitment: Commitment, new_date: date, reason: str, actor: Actor, note: str = ""
) -> Commitment:
    """Get in front of it: give the customer the new date now, before the old one passes. A stage's
    promise moves with its stage (milestone_move, knock-on dates included); any other promise is
    renegotiated and told on its own."""
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
    new_due_at = promises.due_at_for(new_date)
    if new_due_at == old_due_at:
        raise DomainError(_("%(date)s is already the promised date.") % {"date": new_date})
    promises.commitment_renegotiate(
        commitment=commitment, new_due_at=new_due_at, reason=reason, actor=actor, told_customer=True
    )
    if commitment.question_id:
        # The question shows the date now promised.
        Question.objects.filter(pk=commitment.question_id).update(answer_due_on=new_date)
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
def job_reassign(*, job: Job, owner: User, actor: Actor, reason: str = "", tell_customer: bool = True) -> Job:
    """Hand the job, and the responsibility for talking to its customer, to another person: open
    promises follow, the new person is told (in their language), and each contact is introduced
    to them with their card. The holder of the current stage's role becomes them too."""
    job = lock_job(job)
    _ensure_open(job, doing=_("change owner"))
    _ensure_staff(owner, role=_("a job owner"))
    if owner.pk == job.owner_id:
        raise DomainError(_("%(user)s already owns job %(ref)s.") % {"user": person_name(owner), "ref": job.reference})
    previous = job.owner
    told = tell_customer and bool(recipients(job, kind=Message.Kind.CONTACT_CHANGED))
    _hand_over(job, to=owner, actor=actor, reason=reason, stage=None, tell_customer=told)
    if job.current_stage.role_id is not None:
        JobRole.objects.update_or_create(job=job, role_id=job.current_stage.role_id, defaults={"holder": owner})
    if told:
        stamp = job.updated_at.isoformat()
        messages_queue(
            drafts=contact_changed_drafts(job, previous=previous, author=actor),
            job=job,
            key=lambda d: f"owner:{job.pk}:{owner.pk}:{stamp}:{d.contact.pk}:{d.channel}",
            author=actor,
        )
    return job


@transaction.atomic
def job_roles_set(*, job: Job, holders: dict[PipelineRole, User], actor: Actor) -> Job:
    """Say who holds each of the pipeline's roles on this job. Changing the holder of the current
    stage's role changes the customer's contact now (a reassignment, told to both sides)."""
    job = lock_job(job)
    _ensure_open(job, doing=_("change who answers for each stage"))
    current: dict[int, JobRole] = {row.role_id: row for row in job.roles.select_related("holder")}
    changed = []
    for role, holder in holders.items():
        if role.pipeline_id != job.pipeline_id:
            raise DomainError(
                _("“%(role)s” is not a role of the %(pipeline)s pipeline.")
                % {"role": role.name, "pipeline": job.pipeline.name}
            )
        row = current.get(role.pk)
        if row is not None and row.holder_id == holder.pk:
            continue
        _ensure_staff(holder, role=role.name)
        JobRole.objects.update_or_create(job=job, role=role, defaults={"holder": holder})
        changed.append({"role": role.name, "old": person_name(row.holder) if row else "", "new": person_name(holder)})
    if not changed:
        return job
    record_event(job=job, kind=JobEvent.Kind.ROLE_CHANGED, actor=actor, changed=changed)
    stage_role = job.current_stage.role_id
    new_contact = next((holder for role, holder in holders.items() if role.pk == stage_role), None)
    if new_contact is not None and new_contact.pk != job.owner_id:
        job_reassign(job=job, owner=new_contact, actor=actor, reason=_("Holds the role of the current stage."))
    return job


@transaction.atomic
def job_update_details(
    *,
    job: Job,
    actor: Actor,
    title: str | None = None,
    contacts: Iterable[Contact] | None = None,
    installers: Iterable[User] | None = None,
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
            changed["contacts"] = {"old": old, "new": new, "names": sorted(c.name for c in contacts)}
    if installers is not None:
        installers = list(installers)
        old = sorted(job.installers.values_list("pk", flat=True))
        # Who joins the job must be active staff; someone already on it who has left since stays
        # until taken off (the surveys and reports of the work they did still name them).
        for installer in installers:
            if installer.pk not in old:
                _ensure_staff(installer, role=_("an installer"))
        new = sorted({u.pk for u in installers})
        if old != new:
            job.installers.set(installers)
            changed["installers"] = {"old": old, "new": new, "names": sorted(person_name(u) for u in installers)}
    if not changed:
        return job
    job.updated_at = next_version(job.updated_at)
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
    job.updated_at = next_version(job.updated_at, now)
    job.closed_at = now if status in (Job.Status.DONE, Job.Status.CANCELLED) else None
    job.save(update_fields=["status", "updated_at", "closed_at"])
    if job.closed_at:
        promises.commitments_withdraw(job, actor=actor)
        # Its visits still to happen will not: nobody is reminded, warned or expected at the door.
        Visit.objects.filter(job=job, status__in=Visit.UPCOMING_STATUSES).update(
            status=Visit.Status.CANCELLED,
            closed_at=now,
            close_reason=reason.strip()[:300],
            updated_at=now,
            version=F("version") + 1,
        )
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
        allowed_from=set(Job.OPEN_STATUSES),
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
