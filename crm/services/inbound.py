"""Email from customers (anymail's normalized inbound messages): thread it onto its job, or keep it
in the unassigned list. Never dropped; a webhook delivered twice stores the message once."""

from __future__ import annotations

import hashlib
import logging
import re

from anymail.inbound import AnymailInboundMessage
from django.db import transaction

from crm.models import Contact, Job, JobEvent, Message, Request
from crm.replies import html_to_text, strip_quoted
from crm.services.events import record_event
from crm.services.outbox import alert_owner
from crm.services.requests import request_create

logger = logging.getLogger(__name__)

REPLY_ADDRESS_RE = re.compile(r"^reply\+(?P<token>[0-9a-f]{8,32})@", re.IGNORECASE)
MESSAGE_ID_RE = re.compile(r"<[^<>\s]+>")


def _recipients(email: AnymailInboundMessage) -> list[str]:
    addresses = [email.envelope_recipient or ""]
    addresses += [a.addr_spec for a in [*email.to, *email.cc]]
    return [a for a in addresses if a]


def _referenced_ids(email: AnymailInboundMessage) -> list[str]:
    headers = " ".join(str(v) for name in ("In-Reply-To", "References") for v in email.get_all(name, []))
    return MESSAGE_ID_RE.findall(headers)


def _thread(email: AnymailInboundMessage) -> tuple[Job | None, Message | None]:
    """The job a reply belongs to: by its reply+token address, else by the message it answers."""
    parent = None
    ids = _referenced_ids(email)
    if ids:
        parent = (
            Message.objects.select_related("job")
            .filter(email_message_id__in=ids, direction=Message.Direction.OUT)
            .order_by("-created_at")
            .first()
        )
    for address in _recipients(email):
        match = REPLY_ADDRESS_RE.match(address)
        if match:
            job = Job.objects.filter(reply_token=match["token"].lower()).first()
            if job is not None:
                return job, parent if parent is not None and parent.job_id == job.pk else None
    return (parent.job, parent) if parent is not None else (None, None)


def _sender(address: str, job: Job | None) -> Contact | None:
    if not address:
        return None
    contacts = Contact.objects.filter(email__iexact=address)
    if job is not None:
        return contacts.filter(customer_id=job.customer_id).first()
    found = list(contacts[:2])
    return found[0] if len(found) == 1 else None


def _fingerprint(email: AnymailInboundMessage, header_id: str) -> str:
    """Stable across deliveries of the same email (a provider retrying its webhook): the Message-ID,
    or the fields a resend keeps — never the raw bytes, whose MIME boundaries change. Hashed, so
    a very long Message-ID still fits."""
    if header_id:
        source = header_id
    else:
        source = "\n".join(
            str(part or "")
            for part in (email["From"], email["To"], email["Subject"], email["Date"], email.text, email.html)
        )
    return hashlib.sha256(source.encode("utf-8", "replace")).hexdigest()


@transaction.atomic
def inbound_receive(*, email: AnymailInboundMessage) -> Message:
    header_id = (email["Message-ID"] or "").strip()
    key = "in:" + _fingerprint(email, header_id)
    existing = Message.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing

    job, parent = _thread(email)
    sender = email.from_email.addr_spec if email.from_email else ""
    contact = _sender(sender, job)
    text = email.text or html_to_text(email.html or "")
    message, created = Message.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "job": job,
            "contact": contact,
            "channel": Message.Channel.EMAIL,
            "direction": Message.Direction.IN,
            "kind": Message.Kind.REPLY,
            "status": Message.Status.RECEIVED,
            "language": contact.language if contact else "",
            "from_address": sender[:254],
            "to_address": (_recipients(email) or [""])[0][:254],
            "subject": (email.subject or "")[:300],
            "body_text": strip_quoted(text),
            "email_message_id": header_id[:255],
            "in_reply_to": parent,
        },
    )
    if not created:
        return message
    if job is None:
        logger.info("Inbound email from %s matches no job; kept as unassigned (message %s)", sender, message.pk)
        return message
    record_event(
        job=job,
        kind=JobEvent.Kind.MESSAGE_RECEIVED,
        actor=None,
        message_id=message.pk,
        sender=sender,
        contact=contact.name if contact else "",
        subject=message.subject,
    )
    if contact is not None and not job.requests.filter(contact=contact, answered_at__isnull=True).exists():
        # A new request by email (not a follow-up to an open question): acknowledged at once with
        # the date of our answer, like a question asked on the portal (which alerts the owner).
        request_create(
            job=job,
            contact=contact,
            body=message.body_text or message.subject or "(no text)",
            source=Request.Source.EMAIL,
            message=message,
        )
        return message
    alert_owner(
        job,
        name="reply-received",
        context={"message": message, "contact": contact, "sender": sender},
    )
    return message
