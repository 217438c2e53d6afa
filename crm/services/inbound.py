"""Email from customers (anymail's normalized inbound messages): thread it onto its job, or keep it
in the unassigned list. Never dropped: whatever its length or its characters it is stored, a webhook
delivered twice stores it once, and one that cannot be filed for any reason is kept as it arrived,
unassigned, with the error (inbound_keep_raw)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from anymail.inbound import AnymailInboundMessage
from django.conf import settings
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import translation
from django.utils.translation import gettext as _

from crm.models import Contact, Job, JobEvent, Message, Question
from crm.replies import html_to_text, strip_quoted
from crm.services.alerts import alert_owner
from crm.services.events import record_event
from crm.services.files import email_files_keep, room_left, stored_files_undone_on_failure
from crm.services.guards import lock_job
from crm.services.questions import question_create
from crm.text import clean_text
from crm.uploads import Inspected, UploadRefused, inspect

logger = logging.getLogger(__name__)

REPLY_ADDRESS_RE = re.compile(r"^reply\+(?P<token>[0-9a-f]{8,32})@", re.IGNORECASE)
MESSAGE_ID_RE = re.compile(r"<[^<>\s]+>")
# Idempotency keys: a filed email, and one kept as it arrived because filing it failed. Distinct,
# so the kept copy can never take the place of a filed one.
FILED_KEY = "in:"
KEPT_RAW_KEY = "in-raw:"


def _clean(value: object) -> str:
    """A header or body as text the database takes (anymail gives header objects, or None)."""
    return "" if value is None else clean_text(str(value))


def _recipients(email: AnymailInboundMessage) -> list[str]:
    addresses = [email.envelope_recipient or ""]
    addresses += [a.addr_spec for a in [*email.to, *email.cc]]
    return [_clean(a) for a in addresses if a]


def _referenced_ids(email: AnymailInboundMessage) -> list[str]:
    headers = " ".join(_clean(v) for name in ("In-Reply-To", "References") for v in email.get_all(name, []))
    return MESSAGE_ID_RE.findall(headers)


def _sender_address(email: AnymailInboundMessage) -> str:
    sender = email.from_email
    if isinstance(sender, list):
        # Several authors in From (legal, rare): the first one is who we answer.
        sender = sender[0] if sender else None
    return _clean(sender.addr_spec) if sender is not None else ""


def _body(email: AnymailInboundMessage, content_type: str) -> str:
    """The email's first body of this type. A charset Python has no codec for is read as UTF-8,
    with replacement characters, rather than losing the text."""
    for part in email.walk():
        if part.get_content_type() == content_type and not part.is_attachment():
            try:
                return _clean(part.get_content_text())
            except LookupError:
                return _clean(part.get_content_text(charset="utf-8"))
    return ""


@dataclass(frozen=True)
class Attachment:
    """A file that came with an email, as it came."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Kept:
    attachment: Attachment
    file: Inspected


@dataclass(frozen=True)
class NotKept:
    attachment: Attachment
    reason: str


def _attachments(email: AnymailInboundMessage) -> list[Attachment]:
    """Each file that came with the email. Inline parts with a name count: some mail clients put a
    pasted photo inline."""
    files = []
    for part in [*email.attachments, *(p for p in email.inlines if p.get_filename())]:
        try:
            data = part.get_content_bytes() or b""
        except ValueError:
            # A multipart attachment (a forwarded email) has no single content: its encoded whole.
            data = part.as_bytes()
        files.append(Attachment(_clean(part.get_filename()), _clean(part.get_content_type()), data))
    return files


def _file_line(attachment: Attachment, reason: str = "") -> str:
    line = "- " + _("%(name)s (%(type)s, %(size)s)") % {
        "name": attachment.name or _("no name"),
        "type": attachment.content_type,
        "size": filesizeformat(len(attachment.data)),
    }
    return f"{line}: {reason}" if reason else line


def _attachments_note(kept: list[Attachment], not_kept: list[NotKept]) -> str:
    """What staff read of the files beside the email's text: those kept on the job (shown with it)
    and, for each one not kept, why — enough to ask for it again."""
    # Stored once and read by staff, so in the team's language rather than the sender's.
    with translation.override(settings.LANGUAGE_CODE):
        lines = []
        if kept:
            lines += [_("Files attached to this email, kept on the job:"), *(_file_line(a) for a in kept)]
        if not_kept:
            if lines:
                lines.append("")
            lines += [
                _("Files attached to this email, not kept:"),
                *(_file_line(n.attachment, n.reason) for n in not_kept),
            ]
    return "\n".join(lines)


def _with_note(text: str, note: str) -> str:
    if not note:
        return text
    return f"{text}\n\n{note}" if text else note


def _named_only(email: AnymailInboundMessage) -> str:
    """The note for an email that is not filed on a job: its files are named, not kept."""
    files = _attachments(email)
    with translation.override(settings.LANGUAGE_CODE):
        reason = _("not kept: this email is not filed on a job.")
    return _attachments_note([], [NotKept(a, reason) for a in files]) if files else ""


def _sorted_attachments(job: Job, email: AnymailInboundMessage) -> tuple[list[Kept], list[NotKept]]:
    """The email's files the job keeps (inspected like a portal upload, within the job's room),
    each with the attachment it came as, and those refused with the reason."""
    kept: list[Kept] = []
    not_kept: list[NotKept] = []
    room = room_left(job)
    with translation.override(settings.LANGUAGE_CODE):
        for attachment in _attachments(email):
            try:
                inspected = inspect(attachment.name, attachment.data)
            except UploadRefused as refused:
                not_kept.append(NotKept(attachment, refused.reason))
                continue
            if any(k.file.sha256 == inspected.sha256 for k in kept):
                # The same file twice (inline and attached, as some clients send it): kept once.
                continue
            if inspected.size > room:
                not_kept.append(NotKept(attachment, _("this job has no room left for it.")))
                continue
            room -= inspected.size
            kept.append(Kept(attachment, inspected))
    return kept, not_kept


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
            for part in (
                email["From"],
                email["To"],
                email["Subject"],
                email["Date"],
                _body(email, "text/plain"),
                _body(email, "text/html"),
            )
        )
    return hashlib.sha256(source.encode("utf-8", "replace")).hexdigest()


def inbound_receive(*, email: AnymailInboundMessage) -> Message:
    """File a customer's email on its job (a new question, or a reply its owner hears of), its
    photos and documents kept on the job like a portal upload; else keep it unassigned. Stored
    whole whatever its length: the limit of the portal's question box is not one for an email."""
    with stored_files_undone_on_failure(), transaction.atomic():
        return _file(email)


def _file(email: AnymailInboundMessage) -> Message:
    header_id = _clean(email["Message-ID"]).strip()
    fingerprint = _fingerprint(email, header_id)
    key = FILED_KEY + fingerprint
    # An earlier delivery kept raw counts too: staff have that email already.
    existing = Message.objects.filter(idempotency_key__in=[key, KEPT_RAW_KEY + fingerprint]).first()
    if existing is not None:
        return existing

    job, parent = _thread(email)
    sender = _sender_address(email)
    contact = _sender(sender, job)
    text = strip_quoted(_body(email, "text/plain") or html_to_text(_body(email, "text/html")))
    files: list[Inspected] = []
    if job is None:
        note = _named_only(email)
    else:
        # Locked: the job's room for files is counted once at a time.
        job = lock_job(job)
        kept, not_kept = _sorted_attachments(job, email)
        files = [k.file for k in kept]
        note = _attachments_note([k.attachment for k in kept], not_kept)
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
            "subject": _clean(email.subject)[:300],
            "body_text": _with_note(text, note),
            "email_message_id": header_id[:255],
            "in_reply_to": parent,
        },
    )
    if not created:
        return message
    if job is None:
        logger.info("Inbound email from %s matches no job; kept as unassigned (message %s)", sender, message.pk)
        return message
    stored = email_files_keep(message=message, files=files) if files else []
    record_event(
        job=job,
        kind=JobEvent.Kind.MESSAGE_RECEIVED,
        actor=None,
        message_id=message.pk,
        sender=sender,
        contact=contact.name if contact else "",
        subject=message.subject,
        **({"names": [f.title for f in stored]} if stored else {}),
    )
    request_or_follow_up(message, job=job, contact=contact, source=Question.Source.EMAIL)
    return message


def request_or_follow_up(message: Message, *, job: Job, contact: Contact | None, source: str) -> None:
    """A customer's message filed on its job, by email or by text: a new request (from a contact
    with no question open on the job) is acknowledged at once with the date of our answer, like a
    question asked on the portal (which alerts the owner); anything else is a reply its owner is
    alerted to, waiting under "Replies not yet answered"."""
    if contact is not None and not job.questions.filter(contact=contact, answered_at__isnull=True).exists():
        with translation.override(settings.LANGUAGE_CODE):
            no_text = _("(no text)")
        body = message.body_text.strip() or message.subject or no_text
        question_create(job=job, contact=contact, body=body, source=source, message=message)
        return
    alert_owner(
        job,
        name="reply-received",
        context={"message": message, "contact": contact, "sender": message.from_address},
        key=f"message:{message.pk}",
    )


def _read(part: Callable[[], str]) -> str:
    """One part of an email being kept raw. Any error leaves that part out, so whatever broke
    filing does not stop the rest of the email from being kept."""
    try:
        return part()
    except Exception:
        logger.warning("A part of an inbound email could not be read; kept without it", exc_info=True)
        return ""


def _header(email: AnymailInboundMessage, name: str) -> str:
    return ", ".join(_clean(value) for value in email.get_all(name, []))


def _raw_text(email: AnymailInboundMessage) -> str:
    """The email as staff read it when it could not be filed: its main headers, its whole text
    (the quoted history too: nothing is judged) and what was attached."""
    headers = []
    for name in ("From", "To", "Cc", "Subject", "Date", "Message-ID"):
        value = _read(partial(_header, email, name))
        if value:
            headers.append(f"{name}: {value}")
    text = _read(lambda: _body(email, "text/plain")) or _read(lambda: html_to_text(_body(email, "text/html")))
    files = _read(lambda: _named_only(email))
    return "\n\n".join(part for part in ("\n".join(headers), text, files) if part)


@transaction.atomic
def inbound_keep_raw(*, email: AnymailInboundMessage, error: BaseException) -> Message:
    """Keep an email that inbound_receive could not file, whatever went wrong (its transaction
    was rolled back): unassigned, as it arrived, with the error, so staff file it by hand. Stored
    once however often the provider delivers it."""
    header_id = _read(lambda: _clean(email["Message-ID"]).strip())
    raw_text = _raw_text(email)
    fingerprint = (
        _read(lambda: _fingerprint(email, header_id)) or hashlib.sha256(raw_text.encode("utf-8", "replace")).hexdigest()
    )
    keys = [FILED_KEY + fingerprint, KEPT_RAW_KEY + fingerprint]
    existing = Message.objects.filter(idempotency_key__in=keys).first()
    if existing is not None:
        # Kept by an earlier delivery, or filed after all (what failed ran after the commit).
        return existing
    detail = clean_text(str(error))
    message, _created = Message.objects.get_or_create(
        idempotency_key=keys[1],
        defaults={
            "job": None,
            "contact": None,
            "channel": Message.Channel.EMAIL,
            "direction": Message.Direction.IN,
            "kind": Message.Kind.REPLY,
            "status": Message.Status.RECEIVED,
            "from_address": _read(lambda: _sender_address(email))[:254],
            "to_address": _read(lambda: (_recipients(email) or [""])[0])[:254],
            "subject": _read(lambda: _clean(email.subject))[:300],
            "body_text": raw_text,
            "body_html": _read(lambda: _body(email, "text/html")),
            "email_message_id": header_id[:255],
            "last_error": (f"{type(error).__name__}: {detail}" if detail else type(error).__name__)[:2000],
        },
    )
    logger.warning("Inbound email kept unassigned as it arrived (message %s): %s", message.pk, message.last_error)
    return message
