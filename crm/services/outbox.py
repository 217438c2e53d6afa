"""The outbox: every message is a row before anything is sent. This module stores the rows (once
per idempotency key), hands them to the workers after commit, and schedules the ones that must
wait (a retry, a digest) for their own time. Sending them is ``crm.services.delivery``.

The life of an outbound message::

    queued ──claim──► sending ──handed over──► sent ──webhook──► delivered / bounced
      ▲                 │ error                                   (a status never moves back)
      └── retry later ◄─┤ (attempts < max, exponential backoff with jitter, at its own time)
                        └─► failed (owner alerted in a digest, JobEvent)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import datetime
from email.utils import make_msgid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from crm.models import Job, JobEvent, Message
from crm.notify import Draft
from crm.services.broker import push, push_on_commit
from crm.services.events import event, record_events
from crm.services.versions import jobs_touch

logger = logging.getLogger(__name__)

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


def message_id_header() -> str:
    """A fresh ``Message-ID`` for an email we send: the same on every attempt of its row."""
    domain = settings.INBOUND_EMAIL_DOMAIN or settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip("> ")
    return make_msgid(domain=domain)


# --- Previews -----------------------------------------------------------------------------------

# While a preview runs, the customer messages a service queues are collected here as well.
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


# --- Handing rows to the workers ----------------------------------------------------------------

# One task sends at most this many messages over one connection to the provider: a big commit
# (a bulk stage move) is shared by the workers, and a batch ends well inside the task timeout.
SEND_BATCH = 20
SEND_TASK = "crm.tasks.send_messages"


def enqueue_now(message_ids: list[int], *, broker: Any = None) -> None:
    """One send task per SEND_BATCH ids, over one broker connection (callers inside a transaction
    use enqueue_on_commit)."""
    push(SEND_TASK, message_ids, batch=SEND_BATCH, name="send-messages", broker=broker)


def enqueue_on_commit(message_ids: Iterable[int]) -> None:
    """Hand the rows to the workers once the transaction that made them has committed; the outbox
    sweep sends any whose enqueue was lost."""
    push_on_commit(lambda ids, broker: enqueue_now(ids, broker=broker), message_ids, what="messages")


def send_later(message_ids: list[int], *, at: datetime) -> None:
    """Enqueue the rows at ``at``, not before: a django-q2 schedule that runs once, written in the
    caller's transaction (so it exists exactly when the row's new state does). The cluster's
    scheduler looks every 30 seconds; a retry is claimed only once its own time has come, and the
    sweep catches one whose schedule was lost."""
    Schedule.objects.create(
        name=f"outbox-{message_ids[0]}-{len(message_ids)}-{at.timestamp():.3f}"[:100],
        func=SEND_TASK,
        args=repr(list(message_ids)),
        schedule_type=Schedule.ONCE,
        next_run=at,
        repeats=-1,
    )


# --- Storing ------------------------------------------------------------------------------------


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
        stage=draft.stage,
        status=draft.status,
        language=draft.language,
        to_address=draft.to_address,
        from_address=settings.DEFAULT_FROM_EMAIL if email else "",
        subject=draft.subject,
        body_text=draft.body_text,
        body_html=draft.body_html,
        email_message_id=message_id_header() if email else "",
        author=author,
        in_reply_to=in_reply_to,
        created_at=now,
        sent_at=now if draft.status == Message.Status.SENT else None,
    )


@transaction.atomic(savepoint=False)
def rows_store(rows: list[Message], *, shown_in_previews: bool = True) -> list[Message]:
    """Store the rows, once per idempotency key, and have the queued ones sent: after commit, or
    at their ``next_attempt_at`` when it is later. Returns the stored rows in the order given,
    including ones that existed under the same key.

    Two statements whatever the number: an INSERT that skips keys already stored (PostgreSQL waits
    for a concurrent insert of the same key to commit, then skips it), and a SELECT of the rows.
    """
    if not rows:
        return []
    now = timezone.now()
    Message.objects.bulk_create(rows, ignore_conflicts=True)
    stored = Message.objects.in_bulk([row.idempotency_key for row in rows], field_name="idempotency_key")
    result = [stored[row.idempotency_key] for row in rows]
    # Their jobs' pages list them (crm.services.versions).
    jobs_touch(m.job_id for m in result)
    bucket = _captured.get()
    if bucket is not None and shown_in_previews:
        bucket.extend(result)
    queued = [m for m in result if m.status == Message.Status.QUEUED]
    waiting = {m.pk: m.next_attempt_at for m in queued if m.next_attempt_at is not None and m.next_attempt_at > now}
    for pk, at in waiting.items():
        send_later([pk], at=at)
    # Every other queued row goes to the workers now; a row that already existed under its key
    # gets a second task, which finds it claimed or sent already (the claim makes it once).
    enqueue_on_commit(m.pk for m in queued if m.pk not in waiting)
    return result


def messages_store(
    entries: Iterable[tuple[Draft, Job | None, str]],
    *,
    author: Any = None,
    in_reply_to: Message | None = None,
) -> list[Message]:
    """Store each (draft, job, idempotency key) as a message row, once per key, and send the
    queued ones after commit. Returns the rows in the order given, including ones that existed."""
    now = timezone.now()
    return rows_store(
        [_row(draft, job, key, author=author, in_reply_to=in_reply_to, now=now) for draft, job, key in entries]
    )


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


def message_send_again(message: Message, *, to_address: str) -> None:
    """A failed or bounced row, queued again as new (its attempts start over, to ``to_address``)
    and sent after commit; the caller has locked it and checked that it may be."""
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.QUEUED,
        to_address=to_address,
        attempts=0,
        next_attempt_at=None,
        provider_message_id="",
        failed_at=None,
        handled_at=timezone.now(),
    )
    enqueue_on_commit([message.pk])


# --- The job's log ------------------------------------------------------------------------------


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
