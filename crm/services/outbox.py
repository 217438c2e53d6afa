"""The outbox: storing messages, handing them to a channel exactly once per claim, retrying,
failing visibly, and following what the provider reports afterwards.

The life of an outbound message::

    queued ──claim──► sending ──handed over──► sent ──webhook──► delivered / bounced
      ▲                 │ error                                   (a status never moves back)
      └── retry later ◄─┤ (attempts < max, exponential backoff with jitter)
                        └─► failed (owner alerted, JobEvent)

A row is only sent by the worker that moved it from queued to sending with a conditional UPDATE;
a duplicate task finds nothing to claim. The sweep requeues rows whose worker died and enqueues
retries that are due. Nothing is sent inside a request: rows are enqueued after commit.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import datetime, timedelta
from email.utils import make_msgid
from typing import Any

from anymail.exceptions import AnymailInvalidAddress, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, send_mail
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from crm.models import Job, JobEvent, Message
from crm.notify import Draft, staff_alert
from crm.services.events import record_event
from crm.sms import get_sms_backend
from portal.access import unsubscribe_url

logger = logging.getLogger(__name__)

# Errors that no retry will fix: the address itself is refused.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (AnymailRecipientsRefused, AnymailInvalidAddress)

# How far along a message is; a report may only move it forward.
STATUS_RANK = {
    Message.Status.QUEUED: 0,
    Message.Status.SENDING: 1,
    Message.Status.SENT: 2,
    Message.Status.DELIVERED: 3,
    Message.Status.BOUNCED: 4,
    Message.Status.FAILED: 4,
}


def statuses_below(status: str) -> list[str]:
    return [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]


def _message_id_domain() -> str:
    return settings.INBOUND_EMAIL_DOMAIN or settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip("> ")


# --- Storing ------------------------------------------------------------------------------------

# While a preview runs, the messages a service queues are collected here as well.
_captured: ContextVar[list[Message] | None] = ContextVar("captured_messages", default=None)


class _PreviewRollback(Exception):
    pass


def preview(action: Callable[[], Any]) -> list[Message]:
    """Exactly what a service would send: run it in a transaction that is always rolled back and
    return the message rows it queued (nothing is kept, nothing is enqueued)."""
    rows: list[Message] = []
    token = _captured.set(rows)
    try:
        with transaction.atomic():
            action()
            raise _PreviewRollback
    except _PreviewRollback:
        pass
    finally:
        _captured.reset(token)
    return rows


def enqueue_on_commit(message_ids: Iterable[int]) -> None:
    """Hand the rows to the workers once the transaction that made them has committed.

    A failure to reach the broker loses nothing: the row stays queued and the sweep sends it.
    """
    ids = list(message_ids)
    if not ids:
        return

    def enqueue() -> None:
        try:
            # One broker connection for the batch (django-q2 opens one per call otherwise).
            broker = get_broker()
        except Exception:
            logger.exception("Task broker unreachable; the outbox sweep will send messages %s", ids)
            return
        for message_id in ids:
            try:
                async_task("crm.tasks.send_message", message_id, task_name=f"send-message-{message_id}", broker=broker)
            except Exception:
                logger.exception("Could not enqueue message %s; the outbox sweep will send it", message_id)

    transaction.on_commit(enqueue)


@transaction.atomic
def messages_queue(
    *,
    drafts: Iterable[Draft],
    job: Job | None,
    key: Callable[[Draft], str],
    author: Any = None,
    in_reply_to: Message | None = None,
) -> list[Message]:
    """Store each draft as a message row (once per idempotency key) and send it after commit.

    Returns the rows, including ones that already existed for the same key.
    """
    rows = []
    to_send = []
    for draft in drafts:
        message, created = Message.objects.get_or_create(
            idempotency_key=key(draft),
            defaults={
                "job": job,
                "contact": draft.contact,
                "channel": draft.channel,
                "direction": Message.Direction.OUT,
                "kind": draft.kind,
                "status": draft.status,
                "language": draft.language,
                "to_address": draft.to_address,
                "from_address": settings.DEFAULT_FROM_EMAIL if draft.channel == Message.Channel.EMAIL else "",
                "subject": draft.subject,
                "body_text": draft.body_text,
                "body_html": draft.body_html,
                "email_message_id": make_msgid(domain=_message_id_domain())
                if draft.channel == Message.Channel.EMAIL
                else "",
                "author": author,
                "in_reply_to": in_reply_to,
                "sent_at": timezone.now() if draft.status == Message.Status.SENT else None,
            },
        )
        rows.append(message)
        if created and message.status == Message.Status.QUEUED:
            to_send.append(message.pk)
    bucket = _captured.get()
    if bucket is not None:
        bucket.extend(rows)
    enqueue_on_commit(to_send)
    return rows


# --- Sending ------------------------------------------------------------------------------------


def claim(message_id: int, *, now: datetime | None = None) -> Message | None:
    """Move the row from queued to sending; None if another worker has it or it is not due."""
    now = now or timezone.now()
    claimed = (
        Message.objects.filter(pk=message_id, status=Message.Status.QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(status=Message.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return Message.objects.select_related("job__owner", "contact").get(pk=message_id)


def _reply_to(message: Message) -> list[str]:
    if settings.INBOUND_EMAIL_DOMAIN and message.job_id:
        return [f"reply+{message.job.reply_token}@{settings.INBOUND_EMAIL_DOMAIN}"]
    return []


def build_email(message: Message) -> EmailMultiAlternatives:
    headers = {"Message-ID": message.email_message_id} if message.email_message_id else {}
    if not message.is_essential and message.contact_id:
        # One-click unsubscribe (RFC 8058): mail clients show an "Unsubscribe" button.
        headers["List-Unsubscribe"] = f"<{unsubscribe_url(message.contact)}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.body_text,
        from_email=message.from_address or settings.DEFAULT_FROM_EMAIL,
        to=[message.to_address],
        reply_to=_reply_to(message),
        headers=headers,
    )
    if message.body_html:
        email.attach_alternative(message.body_html, "text/html")
    # Anymail passes these to the ESP; tracking webhooks bring the outbox id back.
    email.metadata = {"outbox_id": str(message.pk)}  # type: ignore[attr-defined]
    email.tags = [message.kind]  # type: ignore[attr-defined]
    return email


def _hand_over(message: Message) -> str:
    """Give the message to its channel; the provider's id for it."""
    if message.channel == Message.Channel.SMS:
        return get_sms_backend().send(message.to_address, message.body_text)
    email = build_email(message)
    email.send(fail_silently=False)
    status = getattr(email, "anymail_status", None)
    return (status.message_id or "") if status is not None else ""


def retry_delay(attempt: int) -> timedelta:
    """Exponential backoff with jitter: base × 2^(attempt-1), capped at an hour, then a random
    point in its upper half so a burst of failures does not retry in lockstep."""
    ceiling = min(settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0), 3600)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311


def _record_sent(message: Message, provider_id: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        moved = Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
            status=Message.Status.SENT, sent_at=now, provider_message_id=provider_id, last_error=""
        )
        if not moved:
            # A tracking webhook got here first and recorded the send: keep its status, add the id.
            Message.objects.filter(pk=message.pk, provider_message_id="").update(provider_message_id=provider_id)
            return
        record_message_sent(message)


def record_message_sent(message: Message) -> None:
    """The job's log says the customer was sent this message (once per message)."""
    if message.job_id:
        record_event(
            job=message.job,
            kind=JobEvent.Kind.MESSAGE_SENT,
            actor=None,
            message_id=message.pk,
            message_kind=message.kind,
            channel=message.channel,
            to=message.to_address,
        )


def _record_sent_durably(message: Message, provider_id: str, *, tries: int = 3) -> None:
    """The provider has the message: never let a passing database error make it look unsent."""
    for attempt in range(1, tries + 1):
        try:
            _record_sent(message, provider_id)
            return
        except DatabaseError:
            if attempt == tries:
                # Left in "sending": a tracking webhook (matched by outbox id) or, failing that,
                # the sweep will settle it.
                logger.exception("Message %s was handed over but its status could not be saved", message.pk)
                raise
            time.sleep(0.2 * attempt)


@transaction.atomic
def _record_failure(message: Message, error: Exception) -> str:
    now = timezone.now()
    text = f"{type(error).__name__}: {error}"[:2000]
    permanent = isinstance(error, PERMANENT_ERRORS)
    if message.attempts < settings.OUTBOX_MAX_ATTEMPTS and not permanent:
        Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
            status=Message.Status.QUEUED, next_attempt_at=now + retry_delay(message.attempts), last_error=text
        )
        return "retry"
    Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
        status=Message.Status.FAILED, failed_at=now, next_attempt_at=None, last_error=text
    )
    if message.job_id:
        record_event(
            job=message.job,
            kind=JobEvent.Kind.MESSAGE_FAILED,
            actor=None,
            message_id=message.pk,
            message_kind=message.kind,
            channel=message.channel,
            to=message.to_address,
            attempts=message.attempts,
            error=text,
        )
        alert_owner(
            message.job,
            subject=f"Message to {message.to_address} failed — {message.job.reference}",
            template="emails/staff/message-failed.txt",
            context={"message": message, "error": text},
        )
    return "failed"


def deliver(*, message_id: int) -> str:
    """Send one queued message: "sent", "retry", "failed", or "skipped" when there was nothing to
    claim (already sent, claimed by another worker, or its retry is not due yet)."""
    message = claim(message_id)
    if message is None:
        return "skipped"
    try:
        provider_id = _hand_over(message)
    except Exception as error:
        logger.warning("Sending message %s failed (attempt %s): %s", message.pk, message.attempts, error)
        return _record_failure(message, error)
    _record_sent_durably(message, provider_id)
    return "sent"


def sweep(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Requeue rows whose worker died mid-send, and enqueue retries that are due (and rows whose
    enqueue was lost). Safe to run any number of times, from any number of processes."""
    now = now or timezone.now()
    stuck = Message.objects.filter(
        status=Message.Status.SENDING, claimed_at__lt=now - timedelta(seconds=settings.OUTBOX_STUCK_AFTER_SECONDS)
    ).update(status=Message.Status.QUEUED, next_attempt_at=now, last_error="Requeued: the send did not finish.")
    due = list(
        Message.objects.filter(status=Message.Status.QUEUED)
        .filter(
            Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, created_at__lt=now - timedelta(minutes=1))
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:batch]
    )
    broker = get_broker() if due else None
    for message_id in due:
        async_task("crm.tasks.send_message", message_id, task_name=f"send-message-{message_id}", broker=broker)
    return {"requeued": stuck, "enqueued": len(due)}


# --- Staff alerts -------------------------------------------------------------------------------


def job_staff_url(job: Job) -> str:
    return f"{settings.SITE_URL}{job.get_absolute_url()}"


def alert_owner(job: Job, *, subject: str, template: str, context: dict[str, Any]) -> None:
    """Email the job's owner after commit (the dashboard shows the same thing durably)."""
    alert_staff([job.owner.email], subject=subject, template=template, context={"job": job, **context})


def alert_staff(emails: Iterable[str], *, subject: str, template: str, context: dict[str, Any]) -> None:
    """Email staff after commit, one task per address; the dashboard keeps the same facts."""
    job = context.get("job")
    extra = {"job_url": job_staff_url(job)} if job is not None else {}
    subject, body = staff_alert(subject=subject, template=template, context={**extra, **context})
    for address in {e for e in emails if e}:
        transaction.on_commit(lambda address=address: async_task("crm.tasks.send_staff_email", address, subject, body))


def send_staff_email(to: str, subject: str, body: str) -> None:
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)
