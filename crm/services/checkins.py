"""Check-ins: "has everything kept working?" some weeks after a job was completed.

``Pipeline.checkin_days`` after the job was completed (``job_complete``), at 10:00 in the
contact's time zone and only between 09:00 and 20:00 there, the schedule
(``crm.tasks.send_check_ins``, every 15 minutes) queues one check-in per job and contact: the
CheckIn row (unique per job and contact) and the message (idempotency key
``checkin:<job>:<contact>``) in one transaction. A check-in is non-essential: contacts who opted
out never get one, and the frequency cap (crm.services.cadence) holds it back while the contact
had another non-essential message recently — it goes out once the cap allows, or not at all if
that is more than GIVE_UP_AFTER late.

The answer is one click from the message plus a confirmation (a link scanner must not answer for
the customer): "all good" is recorded on the job's log; "there is a problem" opens a question on
the job, acknowledged with its answer-by date like any other (crm.services.questions).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max, Prefetch
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.errors import DomainError
from crm.models import CheckIn, Contact, Job, JobEvent, Pipeline, Question
from crm.notify import check_in_drafts
from crm.services import cadence
from crm.services.events import record_event
from crm.services.outbox import messages_queue
from crm.services.questions import question_create
from crm.workdays import customer_morning, customer_zone, is_customer_daytime

logger = logging.getLogger(__name__)

# A check-in more than this late (held back by the cap for weeks, a schedule stopped) is dropped:
# "has it kept working?" should not arrive months after the question made sense.
GIVE_UP_AFTER = timedelta(days=30)


def check_in_key(job: Job, contact: Contact) -> str:
    return f"checkin:{job.pk}:{contact.pk}"


@dataclass(frozen=True)
class DueCheckIn:
    job: Job
    contact: Contact
    due_at: datetime


def check_in_time(completed_at: datetime, *, pipeline: Pipeline, contact: Contact) -> datetime:
    assert pipeline.checkin_days is not None
    return customer_morning(completed_at, days=pipeline.checkin_days, zone=customer_zone(contact.time_zone))


def check_ins_due(*, now: datetime | None = None) -> list[DueCheckIn]:
    """Completed jobs' contacts to check in with now: their time has come, it is daytime where
    they are, they have not opted out, the frequency cap allows it and they have no check-in for
    that job yet. Four queries."""
    now = now or timezone.now()
    longest = Pipeline.objects.filter(checkin_days__isnull=False).aggregate(d=Max("checkin_days"))["d"]
    if longest is None:
        return []
    jobs = (
        Job.objects.filter(
            status=Job.Status.DONE,
            pipeline__checkin_days__isnull=False,
            closed_at__lte=now,
            closed_at__gte=now - GIVE_UP_AFTER - timedelta(days=longest + 1),
        )
        .select_related("pipeline", "owner", "customer")
        .prefetch_related(
            Prefetch("contacts", queryset=Contact.objects.filter(opted_out_at__isnull=True), to_attr="reachable"),
            Prefetch("check_ins", queryset=CheckIn.objects.only("pk", "job_id", "contact_id"), to_attr="existing"),
        )
        .order_by("closed_at", "pk")
    )
    candidates = []
    for job in jobs:
        done = {check_in.contact_id for check_in in job.existing}  # type: ignore[attr-defined]
        for contact in job.reachable:  # type: ignore[attr-defined]
            if contact.pk in done:
                continue
            assert job.closed_at is not None
            at = check_in_time(job.closed_at, pipeline=job.pipeline, contact=contact)
            if at <= now <= at + GIVE_UP_AFTER and is_customer_daytime(now, zone=customer_zone(contact.time_zone)):
                candidates.append(DueCheckIn(job=job, contact=contact, due_at=at))
    allowed = {contact.pk for contact in cadence.filter_capped([c.contact for c in candidates], at=now)}
    return [c for c in candidates if c.contact.pk in allowed]


@transaction.atomic
def check_in_send(*, job: Job, contact: Contact, now: datetime | None = None) -> CheckIn | None:
    """Queue the check-in of ``contact`` about ``job``; None when they had it already, opted out,
    or the frequency cap holds it back (it is tried again on a later run)."""
    now = now or timezone.now()
    # The contact row lock serialises everything that counts against the cap for this person (a
    # campaign sending at the same moment waits here, then sees this message).
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if not cadence.allowed(contact, at=now):
        return None
    check_in, created = CheckIn.objects.get_or_create(job=job, contact=contact, defaults={"sent_at": now})
    if not created:
        return None
    messages_queue(
        drafts=check_in_drafts(job, contacts=[contact]),
        job=job,
        key=lambda draft: check_in_key(job, draft.contact),
    )
    return check_in


def check_ins_send(*, now: datetime | None = None) -> int:
    """The schedule: send every check-in whose time has come, once. Safe to run any number of
    times, concurrently too."""
    now = now or timezone.now()
    sent = 0
    for due in check_ins_due(now=now):
        try:
            sent += check_in_send(job=due.job, contact=due.contact, now=now) is not None
        except Exception:
            logger.exception("Could not send the check-in of contact %s on job %s", due.contact.pk, due.job.pk)
    return sent


# --- The answer ---------------------------------------------------------------------------------


def _opens_a_question(check_in: CheckIn, answer: str, details: str) -> bool:
    """Whether this answer is a problem we have not heard yet: the first one, new details, or a
    problem again after "all good" once the earlier question was answered. The same answer sent
    twice (a double click, the back button) is not."""
    if answer != CheckIn.Answer.PROBLEM:
        return False
    earlier = check_in.question
    if earlier is None:
        return True
    if details:
        return details != earlier.body
    return check_in.answer != CheckIn.Answer.PROBLEM and earlier.answered_at is not None


@transaction.atomic
def check_in_answer(*, check_in: CheckIn, answer: str, details: str = "") -> CheckIn:
    """Record "all good" or "there is a problem". A problem we have not heard yet opens a question
    on the job, acknowledged at once with the date of our answer (and its owner alerted): the
    first one, and every later answer that tells us something new. Answering the same again
    changes nothing; changing one's mind is recorded."""
    check_in = (
        CheckIn.objects.select_for_update(of=("self",)).select_related("job", "contact", "question").get(pk=check_in.pk)
    )
    if answer not in CheckIn.Answer.values:
        raise DomainError(_("Choose “all good” or “there is a problem”."))
    details = details.strip()
    job, contact = check_in.job, check_in.contact
    opens = _opens_a_question(check_in, answer, details)
    if answer == check_in.answer and not opens:
        return check_in
    question: Question | None = None
    if opens:
        body = details
        if not body:
            with translation.override(contact.language if contact else None):
                body = _("Something has stopped working since the job was finished (answer to our check-in).")
        question = question_create(job=job, contact=contact, body=body, source=Question.Source.PORTAL)
        check_in.question = question
    check_in.answer = answer
    check_in.answered_at = timezone.now()
    check_in.save(update_fields=["answer", "answered_at", "question"])
    record_event(
        job=job,
        kind=JobEvent.Kind.CHECK_IN_ANSWERED,
        actor=None,
        check_in_id=check_in.pk,
        contact=contact.name if contact else "",
        answer=answer,
        details=details,
        request_id=question.pk if question else check_in.question_id,  # the key events already hold
    )
    return check_in
