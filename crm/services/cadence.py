"""The frequency cap: how often a contact may hear from us about something other than their job.

Non-essential messages (check-ins, tips, campaigns — ``CAPPED_KINDS``) share one cap per contact:
at most one per ``NON_ESSENTIAL_CAP_DAYS`` (default 14), counted from the outbound Message rows of
those kinds that were queued or sent (a failed one never reached the person, so it does not count).
Contacts who opted out never get them. Survey invitations are not capped: they follow the job
the customer has just had done, like a stage change, though an opt-out still stops them.

Read-only. Callers check the cap in the same transaction that queues the message; to be strict
under concurrency (a campaign and the check-in schedule at the same moment), lock the contact
rows first (``Contact.objects.select_for_update()``) so the second caller sees the first's row.

The signatures of ``allowed`` and ``filter_capped`` are shared with the campaigns feature:
keep them stable.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings

from crm.models import Contact, Message

# Kinds that count against the cap and are held back by it.
CAPPED_KINDS = frozenset({Message.Kind.CHECK_IN, Message.Kind.TIP})

# A message in any other state was queued or went out: it counts.
_NOT_COUNTED_STATUSES = (Message.Status.FAILED,)


def cap_window() -> timedelta:
    return timedelta(days=settings.NON_ESSENTIAL_CAP_DAYS)


def _recent(at: datetime):  # type: ignore[no-untyped-def]
    """Capped messages that fall inside the window ending at ``at``."""
    return Message.objects.filter(
        direction=Message.Direction.OUT,
        kind__in=CAPPED_KINDS,
        created_at__gt=at - cap_window(),
        created_at__lte=at,
    ).exclude(status__in=_NOT_COUNTED_STATUSES)


def allowed(contact: Contact, *, at: datetime) -> bool:
    """May ``contact`` be sent one more non-essential message at ``at``?"""
    if contact.opted_out_at is not None:
        return False
    return not _recent(at).filter(contact=contact).exists()


def filter_capped(contacts: Iterable[Contact], *, at: datetime) -> list[Contact]:
    """The contacts (in the given order) who may be sent a non-essential message at ``at``:
    not opted out and nothing capped within the window. One query, whatever the number."""
    candidates = [c for c in contacts if c.opted_out_at is None]
    if not candidates:
        return []
    capped = set(
        _recent(at).filter(contact_id__in={c.pk for c in candidates}).values_list("contact_id", flat=True).distinct()
    )
    return [c for c in candidates if c.pk not in capped]


def next_allowed_at(contact: Contact, *, at: datetime) -> datetime | None:
    """When ``contact`` may next get a non-essential message: ``at`` if now, None if never
    (opted out). For staff pages that explain why a message was held back."""
    if contact.opted_out_at is not None:
        return None
    last = _recent(at).filter(contact=contact).order_by("-created_at").values_list("created_at", flat=True).first()
    return at if last is None else last + cap_window()
