"""Customers' questions: acknowledged at once with a date, answered by the job's owner."""

from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.errors import DomainError
from crm.models import Commitment, Contact, Customer, Job, JobEvent, Message, Pipeline, Question
from crm.notify import acknowledgement_drafts, free_message_drafts
from crm.services import promises
from crm.services.alerts import alert_owner
from crm.services.events import record_event
from crm.services.jobs import job_create
from crm.services.outbox import messages_queue
from crm.workdays import add_business_days, add_business_hours, business_zone, end_of_business_day

# The longest question typed in a form (the portal's question box, a check-in). An email is never
# refused for its length: it has arrived already, and refusing it would lose it.
MAX_QUESTION_LENGTH = 5000


def answer_promise(source: str, received_at: datetime) -> tuple[datetime, date]:
    """Our internal target for a request of this kind (business hours), and the date promised to
    the customer: the target's day plus a buffer of business days (underpromise, overdeliver)."""
    target = add_business_hours(received_at, settings.REQUEST_TARGET_HOURS.get(source, 9))
    promised = add_business_days(target.astimezone(business_zone()).date(), settings.REQUEST_BUFFER_BUSINESS_DAYS)
    return target, promised


@transaction.atomic
def question_create(
    *,
    job: Job,
    contact: Contact | None,
    body: str,
    source: str,
    actor: User | None = None,
    message: Message | None = None,
    received_at: datetime | None = None,
) -> Question:
    """Record the question and, in the same transaction, queue the acknowledgement that tells the
    contact by when they will have an answer.

    ``received_at``: when the customer asked, for a request staff log after the fact (a call, a
    visit); default now. The promise counts from then, and so do the health report's figures."""
    body = body.strip()
    if not body:
        raise DomainError(_("Write your question first."))
    if source not in (Question.Source.EMAIL, Question.Source.SMS) and len(body) > MAX_QUESTION_LENGTH:
        raise DomainError(_("Please keep your question under %(n)s characters.") % {"n": MAX_QUESTION_LENGTH})
    if contact is not None and contact.customer_id != job.customer_id:
        raise DomainError(_("%(name)s is not a contact of this job's customer.") % {"name": contact.name})
    now = timezone.now()
    if received_at is None:
        received_at = now
    elif received_at > now:
        raise DomainError(_("A request cannot have been received in the future."))
    target, due = answer_promise(source, received_at)
    if target < now:
        # Logged after its internal target had passed: the customer is promised the time a
        # request asked now gets, never a date already gone or hours away (the target stays as
        # counted from when they asked, so the lateness shows).
        due = answer_promise(source, now)[1]
    question = Question.objects.create(
        job=job,
        contact=contact,
        source=source,
        body=body,
        received_at=received_at,
        target_at=target,
        answer_due_on=due,
        message=message,
    )
    promises.commitment_make(
        job=job,
        kind=Commitment.Kind.ANSWER,
        title=_("An answer to your question"),
        due_at=promises.due_at_for(due),
        actor=actor,
        contact=contact,
        question=question,
    )
    record_event(
        job=job,
        kind=JobEvent.Kind.REQUEST_RECEIVED,
        actor=actor,
        request_id=question.pk,
        source=source,
        contact=contact.name if contact else "",
        answer_due_on=due,
    )
    if contact is not None:
        messages_queue(
            drafts=acknowledgement_drafts(job, question=question, contact=contact),
            job=job,
            key=lambda d: f"ack:{question.pk}:{d.contact.pk}:{d.channel}",
        )
    if actor is None or actor.pk != job.owner_id:
        # The owner who logged it themselves needs no email about it (the dashboard lists it).
        alert_owner(
            job,
            name="request-received",
            context={"question": question, "contact": contact},
            key=f"request:{question.pk}",
        )
    return question


@transaction.atomic
def enquiry_create(
    *,
    customer: Customer,
    pipeline: Pipeline,
    title: str,
    contact: Contact,
    body: str,
    source: str,
    actor: User,
    received_at: datetime | None = None,
) -> Question:
    """A request about no job yet (a new enquiry by phone or in person): it opens the job it is
    about, at the first stage of ``pipeline``, owned by the person who took it, and is logged on
    it. The customer gets the acknowledgement with its answer-by date; the job's welcome would say
    the same thing again, so it is not sent (the reason is on the job's first event). One
    transaction: a refused request opens no job."""
    job = job_create(
        customer=customer,
        pipeline=pipeline,
        owner=actor,
        title=title,
        actor=actor,
        notify_customer=False,
        not_told_reason=_("Opened for a request of the customer's: they are acknowledged with its answer-by date."),
    )
    return question_create(job=job, contact=contact, body=body, source=source, actor=actor, received_at=received_at)


@transaction.atomic
def question_answer(*, question: Question, body: str, actor: User) -> Question:
    """Send the answer to the contact who asked and close the request."""
    question = Question.objects.select_for_update(of=("self",)).select_related("job", "contact").get(pk=question.pk)
    if not question.is_open:
        raise DomainError(_("This question was already answered."))
    if not body.strip():
        raise DomainError(_("Write the answer first."))
    contacts = [question.contact] if question.contact else None
    messages_queue(
        drafts=free_message_drafts(question.job, body=body, contacts=contacts, author=actor),
        job=question.job,
        key=lambda d: f"answer:{question.pk}:{d.contact.pk}:{d.channel}",
        author=actor,
    )
    now = timezone.now()
    question.answered_at = now
    question.save(update_fields=["answered_at"])
    promises.commitments_keep(Commitment.objects.filter(question=question), actor=actor, at=now)
    if question.message_id:
        Message.objects.filter(pk=question.message_id, handled_at__isnull=True).update(handled_at=now)
    record_event(
        job=question.job,
        kind=JobEvent.Kind.REQUEST_ANSWERED,
        actor=actor,
        request_id=question.pk,
        answer_due_on=question.answer_due_on,
        early=now <= end_of_business_day(question.answer_due_on),
    )
    return question
