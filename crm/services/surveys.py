"""Satisfaction surveys: invited the morning after the job reaches its pipeline's survey stage,
answered (and answered again) from a link, and a low score turned into a call.

The schedule (``crm.tasks.send_survey_invitations``, every 15 minutes) finds the job contacts
whose invitation time has come — ``Pipeline.survey_delay_days`` after the stage was reached, at
10:00 in the contact's time zone, and only between 09:00 and 20:00 there — and queues one
invitation per job and contact: the Survey row (unique per job and contact) and the message
(idempotency key ``survey:<job>:<contact>``) are made in one transaction, so a schedule that runs
twice, or two workers at once, invite once. Contacts who opted out are never invited. Invitations
are not held back by the frequency cap (crm.services.cadence): they follow the job just done.

An answer with a 1–5 score at or below 2, or a recommendation at or below 6, alerts the owner at
once and opens a RECOVERY promise: call the customer within one business day. A logged call that
reaches the contact keeps it (crm.services.messages.call_log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Prefetch
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.errors import DomainError
from crm.models import Commitment, Contact, Job, JobEvent, Milestone, Pipeline, Survey
from crm.notify import survey_invitation_drafts
from crm.services import promises
from crm.services.alerts import alert_owner
from crm.services.events import record_event
from crm.services.outbox import messages_queue
from crm.workdays import (
    add_business_hours,
    business_day_hours,
    customer_morning,
    customer_zone,
    is_customer_daytime,
)

logger = logging.getLogger(__name__)

# An invitation whose time passed longer ago than this is not sent any more (a stage reached
# before the survey was set up, a schedule stopped for weeks): "how did it go?" a month later
# reads as a form letter, not as care.
GIVE_UP_AFTER = timedelta(days=14)
MAX_COMMENT_LENGTH = 5000
QUESTIONS = ("product_quality", "workmanship", "installer_conduct", "recommend")
RANGES = {"product_quality": (1, 5), "workmanship": (1, 5), "installer_conduct": (1, 5), "recommend": (0, 10)}


def invitation_key(job: Job, contact: Contact) -> str:
    return f"survey:{job.pk}:{contact.pk}"


# --- Inviting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueInvitation:
    job: Job
    contact: Contact
    due_at: datetime


def invitation_time(reached_at: datetime, *, pipeline: Pipeline, contact: Contact) -> datetime:
    """10:00 in the contact's time zone, ``survey_delay_days`` after the day the stage was reached."""
    return customer_morning(reached_at, days=pipeline.survey_delay_days, zone=customer_zone(contact.time_zone))


def invitations_due(*, now: datetime | None = None) -> list[DueInvitation]:
    """Job contacts to invite now: their invitation time has come, it is daytime where they are,
    they have not opted out and have no survey for that job yet. Three queries."""
    now = now or timezone.now()
    longest_delay = Pipeline.objects.filter(survey_stage__isnull=False).aggregate(d=Max("survey_delay_days"))["d"]
    if longest_delay is None:
        return []
    # The morning after a delay of N days is less than N + 1 days after the stage was reached.
    earliest = now - GIVE_UP_AFTER - timedelta(days=longest_delay + 1)
    reached = (
        Milestone.objects.filter(
            stage_id=F("job__pipeline__survey_stage_id"),
            completed_at__isnull=False,
            completed_at__gte=earliest,
            completed_at__lte=now,
        )
        .exclude(job__status=Job.Status.CANCELLED)
        .select_related("job__pipeline", "job__owner", "job__customer")
        .prefetch_related(
            Prefetch("job__contacts", queryset=Contact.objects.filter(opted_out_at__isnull=True), to_attr="invitable"),
            Prefetch("job__surveys", queryset=Survey.objects.only("pk", "job_id", "contact_id"), to_attr="existing"),
        )
        .order_by("completed_at", "pk")
    )
    due = []
    for milestone in reached:
        job = milestone.job
        invited = {survey.contact_id for survey in job.existing}  # type: ignore[attr-defined]
        for contact in job.invitable:  # type: ignore[attr-defined]
            if contact.pk in invited:
                continue
            assert milestone.completed_at is not None
            at = invitation_time(milestone.completed_at, pipeline=job.pipeline, contact=contact)
            if at <= now <= at + GIVE_UP_AFTER and is_customer_daytime(now, zone=customer_zone(contact.time_zone)):
                due.append(DueInvitation(job=job, contact=contact, due_at=at))
    return due


@transaction.atomic
def survey_invite(*, job: Job, contact: Contact, now: datetime | None = None) -> Survey | None:
    """Create the contact's survey of ``job`` and queue its invitation; None when they were
    invited already (or opted out in the meantime)."""
    now = now or timezone.now()
    # Re-read under a lock: an opt-out that landed since the schedule looked is honoured.
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.opted_out_at is not None:
        return None
    survey, created = Survey.objects.get_or_create(job=job, contact=contact, defaults={"invited_at": now})
    if not created:
        return None
    survey.installers.set(job.installers.all())
    messages_queue(
        drafts=survey_invitation_drafts(job, contacts=[contact]),
        job=job,
        key=lambda draft: invitation_key(job, draft.contact),
    )
    return survey


def invitations_send(*, now: datetime | None = None) -> int:
    """The schedule: invite every contact whose time has come (each in its own transaction, so one
    failure does not hold back the others). Safe to run any number of times, concurrently too."""
    now = now or timezone.now()
    sent = 0
    for due in invitations_due(now=now):
        try:
            sent += survey_invite(job=due.job, contact=due.contact, now=now) is not None
        except Exception:
            # Left uninvited, so the next run tries again; the others go out now.
            logger.exception("Could not invite contact %s to the survey of job %s", due.contact.pk, due.job.pk)
    return sent


# --- Answering ----------------------------------------------------------------------------------


def _checked_score(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    low, high = RANGES[name]
    if not low <= value <= high:
        raise DomainError(_("Choose a score from %(low)s to %(high)s.") % {"low": low, "high": high})
    return value


@transaction.atomic
def survey_answer(
    *,
    survey: Survey,
    product_quality: int | None,
    workmanship: int | None,
    installer_conduct: int | None,
    recommend: int | None,
    comment: str = "",
) -> Survey:
    """Record the contact's answer, replacing any earlier one (one survey per job and contact).

    A low answer alerts the owner and opens a recovery call, once: not again while that call is
    still to make, nor when someone already called about the same low answer.
    """
    survey = Survey.objects.select_for_update(of=("self",)).select_related("job__owner", "contact").get(pk=survey.pk)
    answers = {
        "product_quality": _checked_score("product_quality", product_quality),
        "workmanship": _checked_score("workmanship", workmanship),
        "installer_conduct": _checked_score("installer_conduct", installer_conduct),
        "recommend": _checked_score("recommend", recommend),
    }
    comment = comment.strip()
    if all(value is None for value in answers.values()):
        raise DomainError(_("Choose at least one score before sending."))
    if len(comment) > MAX_COMMENT_LENGTH:
        raise DomainError(_("Please keep your comment under %(n)s characters.") % {"n": MAX_COMMENT_LENGTH})
    now = timezone.now()
    was_answered, was_low = survey.is_answered, survey.is_answered and survey.is_low
    for name, value in answers.items():
        setattr(survey, name, value)
    survey.comment = comment
    survey.answered_at = survey.answered_at or now
    survey.updated_at = now
    survey.save(update_fields=[*QUESTIONS, "comment", "answered_at", "updated_at"])
    # Who did the work, as the job says now: reports per installer read it from here.
    survey.installers.set(survey.job.installers.all())
    record_event(
        job=survey.job,
        kind=JobEvent.Kind.SURVEY_ANSWERED,
        actor=None,
        survey_id=survey.pk,
        contact=survey.contact.name if survey.contact else "",
        changed=was_answered,
        low=survey.is_low,
        comment=comment,
        **answers,
    )
    if survey.is_low and not _recovery_under_way(survey, was_low=was_low):
        recovery_open(survey=survey, now=now)
    return survey


def _recovery_under_way(survey: Survey, *, was_low: bool) -> bool:
    """A call is still to make, or one was made about this same unhappy answer."""
    if survey.recovery_id is None:
        return False
    return survey.recovery.is_open or was_low  # type: ignore[union-attr]


# --- Recovery -----------------------------------------------------------------------------------


def recovery_due_at(now: datetime) -> datetime:
    """One business day of opening time from ``now`` (Friday 15:00 → Monday 15:00)."""
    return add_business_hours(now, business_day_hours())


def recovery_open(*, survey: Survey, now: datetime) -> Commitment:
    """An unhappy customer: the owner is alerted now and owes them a call within one business
    day (a promise on the dashboard, nudged and escalated like any other)."""
    job, contact = survey.job, survey.contact
    # Staff read the promise: the site's language, not the customer's page language (the alert is
    # written in the owner's own).
    with translation.override(settings.LANGUAGE_CODE):
        name = contact.name if contact else _("the customer")
        commitment = promises.commitment_make(
            job=job,
            kind=Commitment.Kind.RECOVERY,
            title=_("Call %(name)s: low survey score") % {"name": name},
            due_at=recovery_due_at(now),
            actor=None,
            contact=contact,
        )
        Survey.objects.filter(pk=survey.pk).update(recovery=commitment)
        survey.recovery = commitment
        alert_owner(
            job,
            name="survey-low",
            context={"survey": survey, "contact": contact, "commitment": commitment},
            key=f"recovery:{commitment.pk}",
        )
    return commitment
