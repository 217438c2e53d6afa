"""Sending the outbox: claim rows, hand each to its channel, record each one's fate at once.

A row is only sent by the worker that moved it from queued to sending with a conditional UPDATE;
a duplicate task finds nothing to claim. Each message's result is recorded right after its own
provider call, in its own short transaction, so whatever goes wrong with one message (an odd
answer from the provider, a database error while recording it) is that message's alone, and a
worker killed mid-batch leaves at most the message whose call was under way unrecorded.

Attempts are bounded everywhere: the claim counts one, never claims a row that has used them all,
and the sweep fails a row out of attempts instead of requeueing it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr

from anymail.exceptions import AnymailInvalidAddress, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from crm import phones
from crm.email_backends import IDEMPOTENCY_ATTRIBUTE
from crm.links import unsubscribe_url
from crm.models import JobEvent, Message, SmsOptOut, number_opted_out
from crm.notify import document_attached
from crm.services.alerts import alert_message_failed, digest_absorb
from crm.services.events import record_event
from crm.services.outbox import enqueue_now, record_message_sent, send_later
from crm.services.sms_consent import sms_opt_out
from crm.services.versions import jobs_touch
from crm.sms import SmsRefused, get_sms_backend
from crm.sql import update_returning_pks
from crm.text import clean_text

logger = logging.getLogger(__name__)

# Errors that no retry will fix: the address itself is refused.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (AnymailRecipientsRefused, AnymailInvalidAddress, SmsRefused)

# A batch that has taken this long puts its unsent rows back in the queue for another task, so a
# slow provider never gets a task killed halfway (Q_CLUSTER timeout is 60 s).
SEND_BATCH_SECONDS = 30.0
# A retry is enqueued by its own schedule; the sweep only takes one this late (its schedule was
# lost). django-q2's scheduler looks every 30 seconds.
SCHEDULE_GRACE = timedelta(minutes=2)
# A row never enqueued (the broker was unreachable at commit) is picked up after this long.
ENQUEUE_GRACE = timedelta(minutes=1)


# --- Claiming -----------------------------------------------------------------------------------


def claim_many(message_ids: Iterable[int], *, now: datetime | None = None) -> list[Message]:
    """Move the rows from queued to sending, counting the attempt; the ones this call moved (not
    those another worker has, already sent, out of attempts, or whose retry is not due yet), in id
    order."""
    now = now or timezone.now()
    claimed = update_returning_pks(
        Message.objects.filter(
            pk__in=list(message_ids), status=Message.Status.QUEUED, attempts__lt=settings.OUTBOX_MAX_ATTEMPTS
        ).filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)),
        status=Message.Status.SENDING,
        claimed_at=now,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return []
    return list(Message.objects.select_related("job", "contact").filter(pk__in=claimed).order_by("pk"))


def claim(message_id: int, *, now: datetime | None = None) -> Message | None:
    """Move one row from queued to sending; None if another worker has it or it is not due."""
    claimed = claim_many([message_id], now=now)
    return claimed[0] if claimed else None


# --- Handing over -------------------------------------------------------------------------------


def _reply_to(message: Message) -> list[str]:
    if settings.INBOUND_EMAIL_DOMAIN and message.job is not None:
        return [f"reply+{message.job.reply_token}@{settings.INBOUND_EMAIL_DOMAIN}"]
    return []


def provider_idempotency_key(message: Message) -> str:
    """The same on every attempt of the row to the same address, so a provider that honours
    idempotency keys drops a resend; another after staff correct the address ("send again")."""
    address = hashlib.sha256(message.to_address.lower().encode()).hexdigest()[:12]
    return f"outbox-{message.pk}-{address}"


def build_email(message: Message, *, connection: BaseEmailBackend | None = None) -> EmailMultiAlternatives:
    headers = {"Message-ID": message.email_message_id} if message.email_message_id else {}
    if not message.is_essential and message.contact is not None:
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
        connection=connection,
    )
    if message.body_html:
        email.attach_alternative(message.body_html, "text/html")
    document = message.document if message.document_id else None
    if document is not None and document.on_portal and document_attached(document, message.channel):
        with document.file.open("rb") as stored:
            email.attach(document.download_name(), stored.read(), document.content_type)
    # Anymail passes these to the ESP; tracking webhooks bring the outbox id back.
    email.metadata = {"outbox_id": str(message.pk)}  # type: ignore[attr-defined]
    email.tags = [message.kind]  # type: ignore[attr-defined]
    setattr(email, IDEMPOTENCY_ATTRIBUTE, provider_idempotency_key(message))
    return email


@dataclass(frozen=True)
class HandedOver:
    """The provider took the message: its id for it (empty when its answer gave none), and why
    there is none when that is odd."""

    provider_id: str
    note: str = ""


def _email_handed_over(email: EmailMultiAlternatives, to_address: str) -> HandedOver:
    """Read anymail's status defensively. Its ``message_id`` is a string for one recipient, but a
    set when the provider's answer names recipients other than the one sent (or several ids), and
    None when there is none: take the id of our recipient, else store none and say why."""
    status = getattr(email, "anymail_status", None)
    if status is None:  # not an anymail backend (console, locmem, SMTP)
        return HandedOver("")
    address = parseaddr(to_address)[1].lower()
    recipients = {str(addr).lower(): state for addr, state in (getattr(status, "recipients", None) or {}).items()}
    mine = recipients.get(address)
    if mine is not None and getattr(mine, "status", None) in ("rejected", "invalid"):
        raise AnymailRecipientsRefused(f"The provider refused {to_address} ({mine.status}).")
    own_id = getattr(mine, "message_id", None) if mine is not None else None
    if not recipients:
        own_id = status.message_id
    if isinstance(own_id, str) and own_id:
        return HandedOver(clean_text(own_id)[:255])
    others = sorted(addr for addr in recipients if addr != address)
    named = ", ".join(others) if others else "no other recipient"
    return HandedOver(
        "",
        clean_text(
            f"Sent, but the provider's answer gave no message id for {address} (it named {named}; ids "
            f"{status.message_id!r}): none stored; its tracking webhook finds the message by its outbox id."
        )[:2000],
    )


def _hand_over(message: Message, *, connection: BaseEmailBackend | None = None) -> HandedOver:
    """Give the message to its channel."""
    if message.channel == Message.Channel.SMS:
        # One reading of the number decides both who it is and where the text goes (E.164).
        number = phones.e164_or_none(message.to_address)
        if number is None:
            raise SmsRefused(f"{message.to_address!r} is not a phone number a text can reach.")
        # Never a text to a number that said STOP, whatever the message and however it was queued.
        if number_opted_out(number):
            raise SmsRefused(f"{number} asked for no more text messages (STOP).", opted_out=True)
        provider_id = get_sms_backend().send(number, message.body_text, reference=str(message.pk))
        return HandedOver(clean_text(str(provider_id or ""))[:255])
    email = build_email(message, connection=connection)
    email.send(fail_silently=False)
    return _email_handed_over(email, message.to_address)


def retry_delay(attempt: int) -> timedelta:
    """Exponential backoff with jitter: base × 2^(attempt-1), capped at an hour, then a random
    point in its upper half so a burst of failures does not retry in lockstep."""
    ceiling = min(settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0), 3600)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311


# --- Recording, one message at a time -----------------------------------------------------------


def _record_sent(message: Message, handed: HandedOver) -> None:
    """The provider took the message: sent, with its log line, in one short transaction."""
    with transaction.atomic():
        moved = update_returning_pks(
            Message.objects.filter(pk=message.pk, status=Message.Status.SENDING),
            status=Message.Status.SENT,
            sent_at=timezone.now(),
            provider_message_id=handed.provider_id,
            last_error=handed.note,
        )
        if not moved:
            # A tracking webhook got there first and recorded the send: keep its status, add the id.
            if handed.provider_id:
                Message.objects.filter(pk=message.pk, provider_message_id="").update(
                    provider_message_id=handed.provider_id
                )
            return
        record_message_sent(message)
        # The customer's page shows where each message stands (no longer "on its way").
        jobs_touch([message.job_id])


def _record_sent_durably(message: Message, handed: HandedOver, *, tries: int = 3) -> None:
    """The provider has the message: a passing database error must not make it look unsent."""
    for attempt in range(1, tries + 1):
        try:
            _record_sent(message, handed)
            return
        except DatabaseError:
            if attempt == tries:
                raise
            time.sleep(0.2 * attempt)


def _error_text(error: BaseException) -> str:
    return clean_text(f"{type(error).__name__}: {error}")[:2000]


def message_failed(message: Message, *, error: str) -> None:
    """A message that will not be tried again: in its job's log, and in its owner's digest. (A
    staff alert that failed stays on the dashboard; alerting about an alert would loop.)"""
    if message.job is None:
        return
    record_event(
        job=message.job,
        kind=JobEvent.Kind.MESSAGE_FAILED,
        actor=None,
        message_id=message.pk,
        message_kind=message.kind,
        channel=message.channel,
        to=message.to_address,
        attempts=message.attempts,
        error=error,
    )
    alert_message_failed(message)


@transaction.atomic
def _record_failure(message: Message, error: BaseException) -> str:
    """Retry at the message's own time while it has attempts left and the error is not final;
    else failed. Only a row still "sending" is moved (a webhook may have settled it)."""
    now = timezone.now()
    text = _error_text(error)
    if message.attempts < settings.OUTBOX_MAX_ATTEMPTS and not isinstance(error, PERMANENT_ERRORS):
        due = now + retry_delay(message.attempts)
        if Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
            status=Message.Status.QUEUED, next_attempt_at=due, last_error=text
        ):
            send_later([message.pk], at=due)
            digest_absorb(message)
        return "retry"
    if Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
        status=Message.Status.FAILED, failed_at=now, next_attempt_at=None, last_error=text
    ):
        jobs_touch([message.job_id])
        message_failed(message, error=text)
        if isinstance(error, SmsRefused) and error.opted_out and error.code:
            # The provider says the recipient unsubscribed (they texted STOP to it): so do we.
            sms_opt_out(number=message.to_address, source=SmsOptOut.Source.PROVIDER, said=error.code)
    return "failed"


class Unrecorded(Exception):
    """Not even the failure could be recorded (the database is gone): stop the batch."""


def _deliver_one(message: Message, *, connection: BaseEmailBackend | None) -> str:
    try:
        handed = _hand_over(message, connection=connection)
    except Exception as error:
        logger.warning("Sending message %s failed (attempt %s): %s", message.pk, message.attempts, error)
        outcome_error: BaseException = error
    else:
        try:
            _record_sent_durably(message, handed)
            return "sent"
        except Exception as error:
            logger.exception("Message %s was handed over but its status could not be saved", message.pk)
            outcome_error = error
    try:
        return _record_failure(message, outcome_error)
    except Exception as error:
        # Left "sending": the provider's webhook (by outbox id) or the sweep settles it, the
        # attempt counted.
        raise Unrecorded(message.pk) from error


def _release(messages: list[Message], *, enqueue: bool = True) -> list[int]:
    """Put claimed rows that were not tried back in the queue (not an attempt) and enqueue them,
    or leave them to the sweep (``enqueue=False``: the database is in trouble, not now)."""
    released = update_returning_pks(
        Message.objects.filter(pk__in=[m.pk for m in messages], status=Message.Status.SENDING),
        status=Message.Status.QUEUED,
        claimed_at=None,
        attempts=F("attempts") - 1,
        **({} if enqueue else {"next_attempt_at": timezone.now()}),
    )
    if released and enqueue:
        try:
            enqueue_now(released)
        except Exception:
            logger.exception("Could not enqueue messages %s; the outbox sweep will send them", released)
    return released


def _open_connection(messages: list[Message]) -> BaseEmailBackend | None:
    if not any(m.channel == Message.Channel.EMAIL for m in messages):
        return None
    connection = get_connection()
    try:
        connection.open()
    except Exception as error:
        # Each send then opens its own connection, and fails (and is retried) on its own.
        logger.warning("Could not open a connection to the email provider: %s", error)
    return connection


def deliver_many(*, message_ids: Iterable[int]) -> dict[int, str]:
    """Send queued messages over one connection to the provider: for each id "sent", "retry",
    "failed", "skipped" when there was nothing to claim (already sent, claimed by another worker,
    out of attempts, or its retry is not due yet), "released" when the batch ran out of time before
    trying it (queued again for another task), or "unrecorded" when the database could not be
    reached to record it (the sweep settles it)."""
    ids = list(dict.fromkeys(message_ids))
    outcomes = dict.fromkeys(ids, "skipped")
    messages = claim_many(ids)
    if not messages:
        return outcomes
    began = time.monotonic()
    connection = _open_connection(messages)
    try:
        for index, message in enumerate(messages):
            if time.monotonic() - began > SEND_BATCH_SECONDS:
                outcomes.update(dict.fromkeys(_release(messages[index:]), "released"))
                break
            try:
                outcomes[message.pk] = _deliver_one(message, connection=connection)
            except Unrecorded:
                logger.exception("The outbox cannot record messages; batch stopped at message %s", message.pk)
                outcomes[message.pk] = "unrecorded"
                rest = messages[index + 1 :]
                with contextlib.suppress(Exception):
                    _release(rest, enqueue=False)
                outcomes.update(dict.fromkeys((m.pk for m in rest), "unrecorded"))
                break
    finally:
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()
    return outcomes


def deliver(*, message_id: int) -> str:
    """Send one queued message; see deliver_many for the outcomes."""
    return deliver_many(message_ids=[message_id])[message_id]


# --- The sweep ----------------------------------------------------------------------------------


def sweep(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Settle what no worker will: a send whose worker died (requeued, or failed when it has used
    its attempts), a retry whose schedule was lost, a row whose enqueue was lost. Safe to run any
    number of times, from any number of processes."""
    now = now or timezone.now()
    stale = Q(
        status=Message.Status.SENDING, claimed_at__lt=now - timedelta(seconds=settings.OUTBOX_STUCK_AFTER_SECONDS)
    )
    out_of_attempts = Q(attempts__gte=settings.OUTBOX_MAX_ATTEMPTS)
    unfinished = "The send did not finish (the worker stopped)."
    failed = update_returning_pks(
        Message.objects.filter((stale | Q(status=Message.Status.QUEUED)) & out_of_attempts),
        status=Message.Status.FAILED,
        failed_at=now,
        next_attempt_at=None,
        last_error=unfinished,
    )
    for message in Message.objects.select_related("job").filter(pk__in=failed).order_by("pk"):
        with transaction.atomic():
            message_failed(message, error=message.last_error)
    requeued = update_returning_pks(
        Message.objects.filter(stale),
        status=Message.Status.QUEUED,
        next_attempt_at=now,
        last_error=f"Requeued: {unfinished}",
    )
    lost = list(
        Message.objects.filter(status=Message.Status.QUEUED)
        .filter(
            Q(next_attempt_at__lte=now - SCHEDULE_GRACE)
            | Q(next_attempt_at__isnull=True, created_at__lt=now - ENQUEUE_GRACE)
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:batch]
    )
    due = sorted(requeued) + lost
    if due:
        enqueue_now(due)
    return {"requeued": len(requeued), "enqueued": len(due), "failed": len(failed)}
