"""Texts from customers (the SMS provider's inbound webhook, crm.sms_webhooks): matched to the
contact by their E.164 number, threaded onto that contact's most recently active job as a reply —
a new request acknowledged like an email, or a follow-up its owner hears of — or kept unassigned
when the number is unknown. Stored once per provider message id, never dropped: one that cannot
be filed is kept as it arrived (sms_keep_raw).

A text that is only a keyword is an instruction, not a message to answer (crm.sms_keywords says
which): STOP and its French forms withdraw SMS consent for the number, START restores it, HELP is
answered at once with the company's name and how to reach the owner. Any other text from a
contact records their consent to texts ("texted us") unless the number opted out."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm import phones
from crm.models import Contact, Job, JobEvent, Message, Question, SmsOptOut, number_opted_out
from crm.people import person_card
from crm.services.events import record_event
from crm.services.inbound import request_or_follow_up
from crm.services.outbox import rows_store
from crm.services.sms_consent import (
    consent_by_texting,
    contacts_with_number,
    latest_job,
    sms_opt_in,
    sms_opt_out,
)
from crm.sms_keywords import Keyword, keyword_of
from crm.sms_segments import plain_punctuation
from crm.text import clean_text

logger = logging.getLogger(__name__)

# Idempotency keys: a filed text, and one kept as it arrived because filing it failed.
FILED_KEY = "sms-in:"
KEPT_RAW_KEY = "sms-in-raw:"


@dataclass(frozen=True)
class InboundSms:
    """A text as the provider hands it over: who sent it, to which of our numbers, what it says."""

    provider_id: str
    sender: str
    recipient: str
    body: str
    media_count: int = 0

    @property
    def number(self) -> str:
        """The sender in E.164 (what contacts' numbers are stored as); as given if it does not
        parse (a short code, an alphanumeric sender)."""
        return phones.e164_or_none(self.sender) or clean_text(self.sender)[:32]

    def text(self) -> str:
        body = clean_text(self.body)
        if self.media_count:
            with translation.override(settings.LANGUAGE_CODE):
                note = _(
                    "(%(n)s picture(s) sent by MMS, not kept: ask them to send photos from their portal page.)"
                ) % {"n": self.media_count}
            body = f"{body}\n\n{note}" if body else note
        return body


def _existing(sms: InboundSms) -> Message | None:
    return Message.objects.filter(
        idempotency_key__in=[FILED_KEY + sms.provider_id, KEPT_RAW_KEY + sms.provider_id]
    ).first()


def sms_receive(*, sms: InboundSms) -> Message:
    """File one inbound text (see the module's docstring); the same text delivered again is the
    message stored the first time. A STOP is recorded before anything else, on its own: whatever
    happens to the filing, the number is never texted again."""
    if keyword_of(sms.body) is Keyword.STOP and _existing(sms) is None:
        sms_opt_out(number=sms.number, source=SmsOptOut.Source.KEYWORD, said=sms.body.strip())
    return _file(sms)


@transaction.atomic
def _file(sms: InboundSms) -> Message:
    existing = _existing(sms)
    if existing is not None:
        return existing
    number = sms.number
    contacts = contacts_with_number(number)
    job = latest_job(contacts)
    contact = _sender(contacts, job)
    keyword = keyword_of(sms.body)
    if keyword is Keyword.YES:
        # "Yes" restarts texts to a number that opted out; from any other, it is an answer.
        keyword = Keyword.START if number_opted_out(number) else None
    now = timezone.now()
    message, created = Message.objects.get_or_create(
        idempotency_key=FILED_KEY + sms.provider_id,
        defaults={
            "job": job,
            "contact": contact,
            "channel": Message.Channel.SMS,
            "direction": Message.Direction.IN,
            "kind": Message.Kind.REPLY,
            "status": Message.Status.RECEIVED,
            "language": contact.language if contact else "",
            "from_address": number,
            "to_address": clean_text(sms.recipient)[:254],
            "body_text": sms.text(),
            "provider_message_id": clean_text(sms.provider_id)[:255],
            # An instruction is not a message waiting for an answer.
            "handled_at": now if keyword is not None else None,
        },
    )
    if not created:
        return message
    if keyword is Keyword.STOP:
        return message  # recorded already (sms_receive)
    if keyword is Keyword.START:
        sms_opt_in(number=number, said=sms.body.strip(), at=now)
        return message
    if keyword is Keyword.HELP:
        _answer_help(message, contact=contact, job=job)
        return message
    if contact is not None:
        consent_by_texting(contact=contact, job=job, at=now)
    if job is None:
        logger.info("Text from %s matches no job; kept as unassigned (message %s)", number, message.pk)
        return message
    _thread(message, job=job, contact=contact)
    return message


def _sender(contacts: list[Contact], job: Job | None) -> Contact | None:
    """Of the contacts with the number, the one on ``job`` (several contacts may share a phone)."""
    if job is not None:
        on_job = {c.pk for c in job.contacts.all()}
        for contact in contacts:
            if contact.pk in on_job:
                return contact
    return contacts[0] if contacts else None


def _thread(message: Message, *, job: Job, contact: Contact | None) -> None:
    record_event(
        job=job,
        kind=JobEvent.Kind.MESSAGE_RECEIVED,
        actor=None,
        message_id=message.pk,
        sender=message.from_address,
        contact=contact.name if contact else "",
        channel=Message.Channel.SMS,
    )
    request_or_follow_up(message, job=job, contact=contact, source=Question.Source.SMS)


def _answer_help(message: Message, *, contact: Contact | None, job: Job | None) -> Message | None:
    """HELP: who we are and how to reach the person responsible — by text, at once, through the
    outbox; none to a number that opted out (it would only be refused)."""
    if number_opted_out(message.from_address):
        return None
    language = contact.language if contact else settings.LANGUAGE_CODE
    owner = person_card(job.owner) if job is not None else None
    with translation.override(language):
        rendered = render_to_string(
            "sms/auto-reply-help.txt",
            {"company": settings.COMPANY_NAME, "owner": owner, "company_phone": settings.COMPANY_PHONE, "job": job},
        )
    text = plain_punctuation(" ".join(rendered.split()))
    [answer] = rows_store(
        [
            Message(
                idempotency_key=f"sms-help:{message.pk}",
                job=job,
                contact=contact,
                channel=Message.Channel.SMS,
                direction=Message.Direction.OUT,
                kind=Message.Kind.AUTO_REPLY,
                status=Message.Status.QUEUED,
                language=language,
                to_address=message.from_address,
                body_text=text,
                in_reply_to=message,
            )
        ]
    )
    return answer


def sms_keep_raw(*, sms: InboundSms, error: BaseException) -> Message:
    """The safety net: a text that could not be filed is kept unassigned as it arrived, with the
    error, so the team sees it (the unassigned inbox) and nothing is lost."""
    existing = _existing(sms)
    if existing is not None:
        return existing
    message, _created = Message.objects.get_or_create(
        idempotency_key=KEPT_RAW_KEY + sms.provider_id,
        defaults={
            "channel": Message.Channel.SMS,
            "direction": Message.Direction.IN,
            "kind": Message.Kind.REPLY,
            "status": Message.Status.RECEIVED,
            "from_address": clean_text(sms.sender)[:254],
            "to_address": clean_text(sms.recipient)[:254],
            "body_text": sms.text(),
            "provider_message_id": clean_text(sms.provider_id)[:255],
            "last_error": clean_text(f"{type(error).__name__}: {error}")[:2000],
        },
    )
    return message
