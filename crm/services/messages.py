"""Conversations on a job: messages staff write, the ready status update they send, calls they log,
replies they deal with, failed messages they send again, unassigned emails they file."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm import phones
from crm.errors import DomainError
from crm.models import Commitment, Contact, Job, JobEvent, Message, Question, number_opted_out
from crm.notify import free_message_drafts, reachable_channel, render_draft, status_update_drafts
from crm.services import promises
from crm.services.contacts import contacts_with_phone
from crm.services.events import record_event
from crm.services.guards import ensure_contacts_of, lock_job
from crm.services.outbox import message_send_again, messages_queue
from crm.services.questions import question_create
from crm.services.versions import next_version
from crm.sms_segments import measure, plain_punctuation
from crm.workdays import business_today

MAX_MESSAGE_LENGTH = 5000


class CallOutcome:
    REACHED = "reached"
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no_answer"
    # Lazy: read in the language of whoever sees them (defined once, at import).
    CHOICES = [
        (REACHED, gettext_lazy("Spoke with them")),
        (VOICEMAIL, gettext_lazy("Left a voicemail")),
        (NO_ANSWER, gettext_lazy("No answer")),
    ]


def _clean_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise DomainError(_("Write the message first."))
    if len(body) > MAX_MESSAGE_LENGTH:
        raise DomainError(_("Keep the message under %(n)s characters.") % {"n": MAX_MESSAGE_LENGTH})
    return body


def _written_to(job: Job, contacts: list[Contact]) -> None:
    """Writing to someone answers what they sent us (their replies leave "not yet answered"); the
    job's page changes."""
    now = timezone.now()
    Message.objects.filter(
        job=job, contact__in=contacts, direction=Message.Direction.IN, handled_at__isnull=True, question__isnull=True
    ).update(handled_at=now)
    job.updated_at = next_version(job.updated_at, now)
    job.save(update_fields=["updated_at"])


@transaction.atomic
def free_message_send(*, job: Job, actor: User, body: str, contacts: Iterable[Contact] | None = None) -> list[Message]:
    """A message written by staff, to the chosen contacts (default: all the job's contacts), each on
    their channel and in the text as written."""
    job = lock_job(job)
    body = _clean_body(body)
    chosen = ensure_contacts_of(job.customer, contacts) if contacts is not None else list(job.contacts.all())
    if not chosen:
        raise DomainError(_("Choose at least one contact."))
    # Each message written is its own: a fresh key per call (the form, not the key, guards clicks).
    stamp = uuid.uuid4().hex
    rows = messages_queue(
        drafts=free_message_drafts(job, body=body, contacts=chosen, author=actor),
        job=job,
        key=lambda d: f"free:{job.pk}:{d.contact.pk}:{d.channel}:{stamp}",
        author=actor,
    )
    _written_to(job, chosen)
    return rows


def may_text(contact: Contact) -> bool:
    """Whether a text may go to ``contact`` now: their consent on record, a number that takes texts
    and did not say STOP."""
    return contact.has_sms_consent and phones.can_text(contact.phone) and not number_opted_out(contact.phone)


def _text_overflow(job: Job, contact: Contact, actor: User, body: str) -> int:
    """How many characters too long ``body`` is for a text of SMS_MAX_SEGMENTS messages, with
    what the text adds around it (the company's name, the writer's, the link)."""
    frame = render_draft(
        contact=contact, job=job, kind=Message.Kind.FREE, extra={"body": ""}, channel=Message.Channel.SMS, author=actor
    ).body_text
    whole = measure(f"{frame} {body}")
    room = settings.SMS_MAX_SEGMENTS * whole.per_segment if whole.segments > 1 else whole.units
    return max(whole.units - room, 1)


@transaction.atomic
def text_send(*, job: Job, contact: Contact, actor: User, body: str) -> Message:
    """A text written by staff to one contact who may receive texts (may_text), with the portal
    link, through the outbox. Never cut: a text that would not fit in SMS_MAX_SEGMENTS messages is
    refused with how long it is, so the writer shortens it (or sends an email)."""
    job = lock_job(job)
    [contact] = ensure_contacts_of(job.customer, [contact])
    body = _clean_body(body)
    if not may_text(contact):
        raise DomainError(
            _("%(name)s has not agreed to text messages: write to them another way.") % {"name": contact.name}
        )
    draft = render_draft(
        contact=contact,
        job=job,
        kind=Message.Kind.FREE,
        extra={"body": body},
        channel=Message.Channel.SMS,
        author=actor,
    )
    if " ".join(plain_punctuation(body).split()) not in draft.body_text:
        raise DomainError(
            _(
                "Too long for a text: shorten it by about %(over)s characters (%(most)s text messages at most, "
                "with the link), or send it as a message."
            )
            % {"over": _text_overflow(job, contact, actor, body), "most": settings.SMS_MAX_SEGMENTS}
        )
    stamp = uuid.uuid4().hex
    [row] = messages_queue(drafts=[draft], job=job, key=lambda d: f"text:{job.pk}:{contact.pk}:{stamp}", author=actor)
    _written_to(job, [contact])
    return row


@transaction.atomic
def status_update_send(*, job: Job, actor: User | None, note: str = "") -> list[Message]:
    """Send the ready "here is where we are" update to every contact, each in their language."""
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
    job.updated_at = next_version(job.updated_at)
    job.save(update_fields=["updated_at"])
    return rows


@transaction.atomic
def call_log(
    *,
    job: Job,
    contact: Contact,
    actor: User,
    outcome: str,
    notes: str = "",
    callback_on: date | None = None,
    asked: str = "",
) -> Message:
    """Record a phone call with a contact. Calls waiting to be made to this contact on this job are
    done once they are reached; a promised callback date goes on the dashboard. What they
    ``asked`` for on the call becomes a request (source phone, received now), acknowledged in
    writing with its answer-by date, in the same transaction."""
    job = lock_job(job)
    ensure_contacts_of(job.customer, [contact])
    if outcome not in dict(CallOutcome.CHOICES):
        raise DomainError(_("Say how the call went."))
    asked = asked.strip()
    if asked and outcome != CallOutcome.REACHED:
        raise DomainError(_("Only someone you spoke with can have asked for something."))
    if callback_on is not None and callback_on < business_today():
        raise DomainError(_("A callback date cannot be in the past."))
    now = timezone.now()
    label = dict(CallOutcome.CHOICES)[outcome]
    call = Message.objects.create(
        job=job,
        contact=contact,
        channel=Message.Channel.PHONE,
        direction=Message.Direction.OUT,
        kind=Message.Kind.CALL,
        status=Message.Status.SENT,
        language=contact.language,
        to_address=contact.phone,
        subject=str(label),
        body_text=notes.strip(),
        idempotency_key=f"call:{job.pk}:{contact.pk}:{uuid.uuid4().hex}",
        author=actor,
        sent_at=now,
        callback_due_on=callback_on,
    )
    if outcome == CallOutcome.REACHED:
        Message.objects.filter(job=job, contact=contact, status=Message.Status.CALL_PENDING).update(
            status=Message.Status.SENT, sent_at=now
        )
    # Calling back keeps the callback promised in an earlier call, whatever the outcome. The call
    # owed to an unhappy customer (a low survey score) is kept only by speaking with them: a
    # voicemail does not put things right, so it stays on the dashboard.
    owed = Q(kind=Commitment.Kind.CALLBACK, call__contact=contact)
    if outcome == CallOutcome.REACHED:
        owed |= Q(kind=Commitment.Kind.RECOVERY, contact=contact)
    promises.commitments_keep(Commitment.objects.filter(owed, job=job), actor=actor, at=now)
    if callback_on is not None:
        promises.commitment_make(
            job=job,
            kind=Commitment.Kind.CALLBACK,
            title=_("A call back"),
            due_at=promises.due_at_for(callback_on),
            actor=actor,
            contact=contact,
            call=call,
        )
    job.updated_at = next_version(job.updated_at, now)
    job.save(update_fields=["updated_at"])
    record_event(
        job=job,
        kind=JobEvent.Kind.CALL_LOGGED,
        actor=actor,
        message_id=call.pk,
        contact=contact.name,
        outcome=outcome,
        notes=notes.strip(),
        callback_on=callback_on,
    )
    if asked:
        # Last: its acknowledgement is never one of the calls waiting that this call just made.
        question_create(job=job, contact=contact, body=asked, source=Question.Source.PHONE, actor=actor)
    return call


@transaction.atomic
def message_mark_handled(*, message: Message, actor: User) -> Message:
    """A reply answered another way, or a failure seen to: off the dashboard."""
    if message.direction == Message.Direction.OUT and message.status not in (
        Message.Status.FAILED,
        Message.Status.BOUNCED,
    ):
        raise DomainError(_("Only replies and failed messages can be marked as dealt with."))
    Message.objects.filter(pk=message.pk, handled_at__isnull=True).update(handled_at=timezone.now())
    message.refresh_from_db()
    return message


@transaction.atomic
def message_retry(*, message: Message, actor: User) -> Message:
    """Send a failed or bounced message again, to the contact's current address and channel."""
    message = Message.objects.select_for_update(of=("self",)).select_related("contact", "job").get(pk=message.pk)
    if message.status not in (Message.Status.FAILED, Message.Status.BOUNCED):
        raise DomainError(_("Only a failed or bounced message can be sent again."))
    contact = message.contact
    if contact is None:
        raise DomainError(_("This message has no contact any more."))
    channel = reachable_channel(contact)
    if channel != message.channel:
        raise DomainError(
            _("%(name)s is now reached by %(channel)s: write them a new message instead.")
            % {"name": contact.name, "channel": Message.Channel(channel).label}
        )
    address = contact.email if channel == Message.Channel.EMAIL else contact.phone
    if message.status == Message.Status.BOUNCED and address == message.to_address:
        raise DomainError(_("This address bounced: correct the contact's address first."))
    old_address = message.to_address
    message_send_again(message, to_address=address)
    if message.job is not None:
        record_event(
            job=message.job,
            kind=JobEvent.Kind.MESSAGE_RETRIED,
            actor=actor,
            message_id=message.pk,
            old_to=old_address,
            to=address,
        )
    message.refresh_from_db()
    return message


@transaction.atomic
def inbound_assign(*, message: Message, job: Job, actor: User) -> Message:
    """File an email or a text that matched no job onto the job it is about (its sender, when a
    contact of the job's customer, becomes the message's contact)."""
    message = Message.objects.select_for_update().get(pk=message.pk)
    if message.direction != Message.Direction.IN or message.job_id is not None:
        raise DomainError(_("This message is already filed on a job."))
    contact = message.contact
    if contact is None and message.from_address:
        if message.channel == Message.Channel.SMS:
            contact = next(
                (c for c in contacts_with_phone(message.from_address) if c.customer_id == job.customer_id), None
            )
        else:
            contact = job.customer.contacts.filter(email__iexact=message.from_address).first()
    if contact is not None and contact.customer_id != job.customer_id:
        raise DomainError(
            _("The sender is a contact of %(customer)s, not of this job's customer.")
            % {"customer": contact.customer.name}
        )
    Message.objects.filter(pk=message.pk).update(job=job, contact=contact)
    record_event(
        job=job,
        kind=JobEvent.Kind.MESSAGE_ASSIGNED,
        actor=actor,
        message_id=message.pk,
        sender=message.from_address,
        subject=message.subject,
    )
    message.refresh_from_db()
    return message
