"""Outbox rows made directly, for the tests of sending: queued emails to distinct addresses
(customer<n>@example.com), as a service would have stored them."""

from __future__ import annotations

from email.utils import make_msgid

from django.conf import settings

from crm.models import Contact, Job, Message


def queued_emails(
    job: Job,
    contact: Contact,
    count: int,
    *,
    prefix: str = "batch",
    start: int = 0,
    kind: str = Message.Kind.FREE,
    attempts: int = 0,
) -> list[int]:
    """``count`` queued emails of ``job``, numbered from ``start``; their ids in order."""
    rows = Message.objects.bulk_create(
        Message(
            job=job,
            contact=contact,
            channel=Message.Channel.EMAIL,
            kind=kind,
            to_address=f"customer{n}@example.com",
            from_address=settings.DEFAULT_FROM_EMAIL,
            subject=f"Message {n}",
            body_text=f"Message {n}",
            idempotency_key=f"{prefix}:{job.pk}:{n}",
            email_message_id=make_msgid(domain="reply.example.com"),
            attempts=attempts,
        )
        for n in range(start, start + count)
    )
    return [row.pk for row in rows]
