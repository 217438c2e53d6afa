"""What the email provider tells us after a send (anymail's normalized tracking events).

Idempotent and order-proof: a status only ever moves forward (a late "sent" after "delivered"
changes nothing), so the same event three times changes the message once.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from crm.models import Contact, JobEvent, Message
from crm.services.alerts import alert_message_failed
from crm.services.contacts import customers_touch
from crm.services.events import record_event
from crm.services.outbox import record_message_sent, statuses_below
from crm.services.versions import jobs_touch

logger = logging.getLogger(__name__)

# Our outbox ids, as a provider hands them back: ASCII digits within a 64-bit key.
OUTBOX_ID_RE = re.compile(r"[0-9]{1,18}")

# anymail event type → the status it proves, and the timestamp field it sets.
STATUS_EVENTS: dict[str, tuple[str, str | None]] = {
    "queued": (Message.Status.SENT, "sent_at"),
    "sent": (Message.Status.SENT, "sent_at"),
    "delivered": (Message.Status.DELIVERED, "delivered_at"),
    "bounced": (Message.Status.BOUNCED, "failed_at"),
    "rejected": (Message.Status.FAILED, "failed_at"),
    "failed": (Message.Status.FAILED, "failed_at"),
}
ENGAGEMENT_EVENTS = {"opened", "clicked"}
# Twilio's message statuses (its status callbacks' MessageStatus) → the event each proves.
SMS_STATUS_EVENTS = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
OPT_OUT_EVENTS = {"unsubscribed", "complained"}


def find_message(*, provider_message_id: str | None, outbox_id: str | None) -> Message | None:
    """By the provider's id; else by the outbox id we put in the metadata (for a message whose
    status save was lost after the provider took it) — but not a row the provider knows under
    another id: it was sent again (a retry after a timeout), and the earlier attempt's fate is
    not this row's."""
    if provider_message_id:
        message = Message.objects.filter(provider_message_id=provider_message_id).first()
        if message is not None:
            return message
    if not (outbox_id and OUTBOX_ID_RE.fullmatch(str(outbox_id))):
        return None
    message = Message.objects.filter(pk=int(outbox_id), direction=Message.Direction.OUT).first()
    if message is not None and provider_message_id and message.provider_message_id not in ("", provider_message_id):
        logger.info(
            "Status for %s: outbox %s was sent again as %s", provider_message_id, outbox_id, message.provider_message_id
        )
        return None
    return message


@transaction.atomic
def message_track(
    *,
    event_type: str,
    provider_message_id: str | None,
    outbox_id: str | None = None,
    timestamp: datetime | None = None,
    description: str = "",
) -> Message | None:
    """Apply one tracking event; returns the message it concerned (None if not ours)."""
    found = find_message(provider_message_id=provider_message_id, outbox_id=outbox_id)
    if found is None:
        logger.info("Tracking event %s for unknown message %s", event_type, provider_message_id)
        return None
    # Locked, so the worker recording its own send waits and then sees this event's result.
    message = Message.objects.select_for_update(of=("self",)).select_related("job__owner").get(pk=found.pk)
    at = timestamp or timezone.now()
    updates: dict[str, object] = {}
    if provider_message_id and not message.provider_message_id:
        updates["provider_message_id"] = provider_message_id

    if event_type in STATUS_EVENTS:
        status, field = STATUS_EVENTS[event_type]
        if message.status in statuses_below(status):
            was_unsent = message.status in (Message.Status.QUEUED, Message.Status.SENDING)
            updates["status"] = status
            if field:
                updates[field] = at
            if was_unsent and status in (Message.Status.SENT, Message.Status.DELIVERED):
                # The provider confirms a send whose own status save never happened (the worker
                # died): it counts as sent, once.
                updates["sent_at"] = message.sent_at or at
                record_message_sent(message)
            if status in (Message.Status.BOUNCED, Message.Status.FAILED):
                updates["last_error"] = (description or event_type)[:2000]
            Message.objects.filter(pk=message.pk).update(**updates)
            # The customer's page shows where each message stands.
            jobs_touch([message.job_id])
            message.refresh_from_db()
            if status in (Message.Status.BOUNCED, Message.Status.FAILED):
                _record_bounce(message, event_type=event_type, description=description, at=at)
            return message
    elif event_type in ENGAGEMENT_EVENTS and message.opened_at is None:
        updates["opened_at"] = at
    elif event_type in OPT_OUT_EVENTS and message.contact_id:
        Contact.objects.filter(pk=message.contact_id, opted_out_at__isnull=True).update(
            opted_out_at=at, updated_at=timezone.now()
        )
        customers_touch([message.contact_id])
    if updates:
        Message.objects.filter(pk=message.pk).update(**updates)
        message.refresh_from_db()
    return message


def _record_bounce(message: Message, *, event_type: str, description: str, at: datetime) -> None:
    if event_type == "bounced" and message.contact_id and message.channel == Message.Channel.EMAIL:
        Contact.objects.filter(pk=message.contact_id, email=message.to_address).update(
            email_bounced_at=at, email_bounce_reason=(description or "bounced")[:300], updated_at=timezone.now()
        )
        customers_touch([message.contact_id])
    if message.job is None:
        return
    record_event(
        job=message.job,
        kind=JobEvent.Kind.MESSAGE_BOUNCED if event_type == "bounced" else JobEvent.Kind.MESSAGE_FAILED,
        actor=None,
        message_id=message.pk,
        message_kind=message.kind,
        to=message.to_address,
        reason=description,
    )
    alert_message_failed(message)


def sms_status_track(
    *, provider_message_id: str, status: str, outbox_id: str | None = None, description: str = ""
) -> Message | None:
    """Apply one of the SMS provider's status reports, forward only, as an email's: an undelivered
    text fails (its owner alerted, on the job like a bounce). An unknown status changes nothing."""
    event_type = SMS_STATUS_EVENTS.get(status)
    if event_type is None:
        logger.info("SMS status %r for %s ignored", status, provider_message_id)
        return None
    return message_track(
        event_type=event_type, provider_message_id=provider_message_id, outbox_id=outbox_id, description=description
    )
