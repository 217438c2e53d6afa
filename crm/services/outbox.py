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

import contextlib
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
from django.core.mail import EmailMultiAlternatives, get_connection, send_mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DatabaseError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from crm.models import Job, JobEvent, Message
from crm.notify import Draft, staff_alert
from crm.people import staff_language
from crm.services.events import event, record_event, record_events
from crm.sms import get_sms_backend
from crm.sql import update_returning_pks
from portal.access import unsubscribe_url

logger = logging.getLogger(__name__)

# Errors that no retry will fix: the address itself is refused.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (AnymailRecipientsRefused, AnymailInvalidAddress)

# How far along a message is; a report may only move it forward.
STATUS_RANK: dict[str, int] = {
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


# One task sends at most this many messages over one connection to the provider: a big commit
# (a bulk stage move) is shared by the workers, and a batch ends well inside the task timeout.
SEND_BATCH = 20
# A batch that has taken this long puts its unsent rows back in the queue for another task, so a
# slow provider never gets a task killed halfway (Q_CLUSTER timeout is 60 s).
SEND_BATCH_SECONDS = 30.0


_broker: Any = None


def task_broker(*, fresh: bool = False) -> Any:
    """django-q2's broker, one per process: ``get_broker()`` builds a new Redis connection pool at
    every call, which cost a connection per commit. (redis-py pools are thread-safe and start
    afresh in a forked child.)"""
    global _broker
    if _broker is None or fresh:
        _broker = get_broker()
    return _broker


def enqueue_now(message_ids: list[int], *, broker: Any = None) -> None:
    """One send task per SEND_BATCH ids, over one broker connection (callers inside a transaction
    use enqueue_on_commit)."""
    broker = broker or task_broker()
    for start in range(0, len(message_ids), SEND_BATCH):
        chunk = message_ids[start : start + SEND_BATCH]
        async_task("crm.tasks.send_messages", chunk, task_name=f"send-messages-{chunk[0]}-{len(chunk)}", broker=broker)


def enqueue_on_commit(message_ids: Iterable[int]) -> None:
    """Hand the rows to the workers once the transaction that made them has committed.

    A failure to reach the broker loses nothing: the rows stay queued and the sweep sends them.
    """
    ids = list(message_ids)
    if not ids:
        return

    def enqueue() -> None:
        try:
            enqueue_now(ids)
        except Exception:
            # The kept connection may have been cut (a Redis restart): once more on a new one. A
            # batch pushed twice is harmless: the claim, not the enqueue, makes a send happen once.
            try:
                enqueue_now(ids, broker=task_broker(fresh=True))
            except Exception:
                logger.exception("Could not enqueue messages %s; the outbox sweep will send them", ids)

    transaction.on_commit(enqueue)


def _row(
    draft: Draft, job: Job | None, key: str, *, author: Any, in_reply_to: Message | None, now: datetime
) -> Message:
    email = draft.channel == Message.Channel.EMAIL
    return Message(
        idempotency_key=key,
        job=job,
        contact=draft.contact,
        channel=draft.channel,
        direction=Message.Direction.OUT,
        kind=draft.kind,
        status=draft.status,
        language=draft.language,
        to_address=draft.to_address,
        from_address=settings.DEFAULT_FROM_EMAIL if email else "",
        subject=draft.subject,
        body_text=draft.body_text,
        body_html=draft.body_html,
        email_message_id=make_msgid(domain=_message_id_domain()) if email else "",
        author=author,
        in_reply_to=in_reply_to,
        created_at=now,
        sent_at=now if draft.status == Message.Status.SENT else None,
    )


@transaction.atomic(savepoint=False)
def messages_store(
    entries: Iterable[tuple[Draft, Job | None, str]],
    *,
    author: Any = None,
    in_reply_to: Message | None = None,
) -> list[Message]:
    """Store each (draft, job, idempotency key) as a message row, once per key, and send the
    queued ones after commit. Returns the rows in the order given, including ones that existed.

    Two statements whatever the number: an INSERT that skips keys already stored (PostgreSQL waits
    for a concurrent insert of the same key to commit, then skips it), and a SELECT of the rows.
    """
    now = timezone.now()
    rows = [_row(draft, job, key, author=author, in_reply_to=in_reply_to, now=now) for draft, job, key in entries]
    if not rows:
        return []
    Message.objects.bulk_create(rows, ignore_conflicts=True)
    stored = Message.objects.in_bulk([row.idempotency_key for row in rows], field_name="idempotency_key")
    result = [stored[row.idempotency_key] for row in rows]
    bucket = _captured.get()
    if bucket is not None:
        bucket.extend(result)
    # Every queued row goes to the workers; a row that already existed under its key gets a second
    # task, which finds it claimed or sent already (the claim, not the enqueue, makes it once).
    enqueue_on_commit(m.pk for m in result if m.status == Message.Status.QUEUED)
    return result


def messages_queue(
    *,
    drafts: Iterable[Draft],
    job: Job | None,
    key: Callable[[Draft], str],
    author: Any = None,
    in_reply_to: Message | None = None,
) -> list[Message]:
    """Store each draft for ``job`` as a message row (once per idempotency key) and send it after
    commit. Returns the rows, including ones that already existed for the same key."""
    return messages_store(((d, job, key(d)) for d in drafts), author=author, in_reply_to=in_reply_to)


# --- Sending ------------------------------------------------------------------------------------


def claim_many(message_ids: Iterable[int], *, now: datetime | None = None) -> list[Message]:
    """Move the rows from queued to sending; the ones this call moved (not those another worker
    has, already sent, or whose retry is not due yet), in id order."""
    now = now or timezone.now()
    claimed = update_returning_pks(
        Message.objects.filter(pk__in=list(message_ids), status=Message.Status.QUEUED).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        ),
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


def _reply_to(message: Message) -> list[str]:
    if settings.INBOUND_EMAIL_DOMAIN and message.job is not None:
        return [f"reply+{message.job.reply_token}@{settings.INBOUND_EMAIL_DOMAIN}"]
    return []


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
    # Anymail passes these to the ESP; tracking webhooks bring the outbox id back.
    email.metadata = {"outbox_id": str(message.pk)}  # type: ignore[attr-defined]
    email.tags = [message.kind]  # type: ignore[attr-defined]
    return email


def _hand_over(message: Message, *, connection: BaseEmailBackend | None = None) -> str:
    """Give the message to its channel; the provider's id for it."""
    if message.channel == Message.Channel.SMS:
        return get_sms_backend().send(message.to_address, message.body_text)
    email = build_email(message, connection=connection)
    email.send(fail_silently=False)
    status = getattr(email, "anymail_status", None)
    return (status.message_id or "") if status is not None else ""


def retry_delay(attempt: int) -> timedelta:
    """Exponential backoff with jitter: base × 2^(attempt-1), capped at an hour, then a random
    point in its upper half so a burst of failures does not retry in lockstep."""
    ceiling = min(settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0), 3600)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311


def _record_sent(sent: list[tuple[Message, str]]) -> None:
    """The provider took these (message, provider id): sent, with one log line each, in one
    transaction of four statements whatever their number."""
    now = timezone.now()
    provider_ids = {message.pk: provider_id for message, provider_id in sent}
    by_id = Case(*(When(pk=pk, then=Value(pid)) for pk, pid in provider_ids.items()), default=F("provider_message_id"))
    with transaction.atomic():
        moved = set(
            update_returning_pks(
                Message.objects.filter(pk__in=list(provider_ids), status=Message.Status.SENDING),
                status=Message.Status.SENT,
                sent_at=now,
                provider_message_id=by_id,
                last_error="",
            )
        )
        if len(moved) < len(provider_ids):
            # A tracking webhook got there first and recorded the send: keep its status, add the id.
            Message.objects.filter(
                pk__in=[pk for pk in provider_ids if pk not in moved], provider_message_id=""
            ).update(provider_message_id=by_id)
        record_messages_sent([message for message, _ in sent if message.pk in moved])


def record_messages_sent(messages: Iterable[Message]) -> None:
    """The job's log says the customer was sent each message (once per message)."""
    record_events(
        event(
            job_id=message.job_id,
            kind=JobEvent.Kind.MESSAGE_SENT,
            actor=None,
            message_id=message.pk,
            message_kind=message.kind,
            channel=message.channel,
            to=message.to_address,
        )
        for message in messages
        if message.job_id
    )


def record_message_sent(message: Message) -> None:
    record_messages_sent([message])


def _record_sent_durably(sent: list[tuple[Message, str]], *, tries: int = 3) -> None:
    """The provider has the messages: never let a passing database error make them look unsent."""
    for attempt in range(1, tries + 1):
        try:
            _record_sent(sent)
            return
        except DatabaseError:
            if attempt == tries:
                # Left in "sending": a tracking webhook (matched by outbox id) or, failing that,
                # the sweep will settle them.
                logger.exception(
                    "Messages %s were handed over but their status could not be saved", [m.pk for m, _ in sent]
                )
                raise
            time.sleep(0.2 * attempt)


def _release(messages: list[Message]) -> None:
    """Put claimed rows that were not tried back in the queue (not an attempt) and enqueue them."""
    ids = [m.pk for m in messages]
    released = update_returning_pks(
        Message.objects.filter(pk__in=ids, status=Message.Status.SENDING),
        status=Message.Status.QUEUED,
        claimed_at=None,
        attempts=F("attempts") - 1,
    )
    if released:
        try:
            enqueue_now(released)
        except Exception:
            logger.exception("Could not enqueue messages %s; the outbox sweep will send them", released)


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
    if message.job is not None:
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
            name="message-failed",
            context={"message": message, "error": text},
        )
    return "failed"


def deliver_many(*, message_ids: Iterable[int]) -> dict[int, str]:
    """Send queued messages over one connection to the provider: for each id "sent", "retry",
    "failed", "skipped" when there was nothing to claim (already sent, claimed by another worker,
    or its retry is not due yet), or "released" when the batch ran out of time before trying it
    (it is queued again for another task)."""
    ids = list(dict.fromkeys(message_ids))
    outcomes = dict.fromkeys(ids, "skipped")
    messages = claim_many(ids)
    if not messages:
        return outcomes
    began = time.monotonic()
    sent: list[tuple[Message, str]] = []
    connection = get_connection()
    try:
        connection.open()
    except Exception as error:
        # Each send then opens its own connection, and fails (and is retried) on its own.
        logger.warning("Could not open a connection to the email provider: %s", error)
    try:
        for index, message in enumerate(messages):
            if time.monotonic() - began > SEND_BATCH_SECONDS:
                _release(messages[index:])
                outcomes.update(dict.fromkeys((m.pk for m in messages[index:]), "released"))
                break
            try:
                provider_id = _hand_over(message, connection=connection)
            except Exception as error:
                logger.warning("Sending message %s failed (attempt %s): %s", message.pk, message.attempts, error)
                outcomes[message.pk] = _record_failure(message, error)
                continue
            sent.append((message, provider_id))
            outcomes[message.pk] = "sent"
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    if sent:
        _record_sent_durably(sent)
    return outcomes


def deliver(*, message_id: int) -> str:
    """Send one queued message; see deliver_many for the outcomes."""
    return deliver_many(message_ids=[message_id])[message_id]


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
    if due:
        enqueue_now(due)
    return {"requeued": stuck, "enqueued": len(due)}


# --- Staff alerts -------------------------------------------------------------------------------


def job_staff_url(job: Job) -> str:
    return f"{settings.SITE_URL}{job.get_absolute_url()}"


def alert_owner(job: Job, *, name: str, context: dict[str, Any]) -> None:
    """Email the job's owner after commit (the dashboard shows the same thing durably)."""
    alert_staff([job.owner], name=name, context={"job": job, **context})


def alert_staff(people: Iterable[Any], *, name: str, context: dict[str, Any]) -> None:
    """Email staff after commit, each in their own language (``emails/staff/<name>-…``), one task
    per person with an address; the dashboard keeps the same facts."""
    job = context.get("job")
    extra = {"job_url": job_staff_url(job)} if job is not None else {}
    by_address = {person.email: person for person in people if person.email}
    for address, person in sorted(by_address.items()):
        subject, body = staff_alert(name=name, context={**extra, **context}, language=staff_language(person))

        def enqueue(address: str = address, subject: str = subject, body: str = body) -> None:
            async_task("crm.tasks.send_staff_email", address, subject, body)

        transaction.on_commit(enqueue)


def send_staff_email(to: str, subject: str, body: str) -> None:
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)
