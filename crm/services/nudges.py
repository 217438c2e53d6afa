"""The morning digest of promises about to slip: at most one email an owner a business morning.

One email per promise entering its warning window flooded owners (31 in a month for 10 jobs, most
about promises then kept). Now the first scan of a business day from opening time sends each owner
one digest: their open promises in the window that no earlier digest listed, the soonest first,
each with its "new date, tell them now" link. A promise that enters the window later that day
(made or moved after opening) waits for the next business morning's digest; a promise that breaks
is still told at once (``crm.services.scan``).
"""

from __future__ import annotations

from datetime import date, datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse

from crm.models import Commitment, Message
from crm.services.alerts import alert_key, alert_row_key, alert_staff, staff_url
from crm.services.promises import about_to_slip, open_commitments, warning_threshold
from crm.services.webhooks import commitments_at_risk_emit
from crm.sql import update_returning_pks
from crm.workdays import business_zone, is_business_day, opening_hours

DIGEST_NAME = "promises-at-risk"
# How a digest's outbox row is keyed (alert_staff's key around digest_key): the health report
# counts nudges by it.
STORED_KEY_PREFIX = alert_key(DIGEST_NAME, "nudges:")


def digest_key(owner_id: int, day: date) -> str:
    """What the digest is about: one per owner and business day."""
    return f"nudges:{owner_id}:{day.isoformat()}"


def digest_morning(now: datetime) -> tuple[date, datetime] | None:
    """The business day whose digests a scan at ``now`` sends, and its opening time; None before
    opening and on days nobody works."""
    zone = business_zone()
    day = now.astimezone(zone).date()
    opens = datetime.combine(day, opening_hours()[0], tzinfo=zone)
    if not is_business_day(day) or now < opens:
        return None
    return day, opens


def commitment_move_url(commitment: Commitment) -> str:
    """The one-click "new date, tell them now" page of a promise, for an email."""
    return staff_url(reverse("crm:commitment_move", args=[commitment.job.public_id, commitment.pk]))


def _digest_sent(owner: User, day: date) -> bool:
    key = alert_row_key(DIGEST_NAME, digest_key(owner.pk, day), owner.pk)
    return Message.objects.filter(idempotency_key=key).exists()


def digests_send(*, now: datetime, batch: int) -> tuple[int, int]:
    """This morning's digests: (promises nudged, digests stored). Nothing before opening time, on a
    day nobody works, or for an owner who already has today's."""
    morning = digest_morning(now)
    if morning is None:
        return 0, 0
    day, opens = morning
    by_owner: dict[int, list[int]] = {}
    for commitment in about_to_slip(now=now, batch=batch, entered_before=opens):
        by_owner.setdefault(commitment.owner_id, []).append(commitment.pk)
    nudged = digests = 0
    for owner_id, pks in by_owner.items():
        with transaction.atomic():
            # The owner's row locked first: two scans at once take turns, and the second finds
            # today's digest stored and sends none.
            owner = User.objects.select_for_update(of=("self",)).select_related("staff_profile").get(pk=owner_id)
            if _digest_sent(owner, day):
                continue  # already had today's: these wait for the next business morning
            # Still open, still in the window, in no digest yet: the claim decides.
            claimed = update_returning_pks(
                open_commitments().filter(
                    pk__in=pks, nudged_at__isnull=True, due_at__gt=now, due_at__lte=warning_threshold()
                ),
                nudged_at=now,
            )
            if not claimed:
                continue
            listed = list(
                Commitment.objects.filter(pk__in=claimed)
                .select_related("job__customer", "contact", "milestone__stage")
                .order_by("due_at", "pk")
            )
            nudged += len(listed)
            commitments_at_risk_emit(listed, now=now)
            digests += len(
                alert_staff(
                    [owner],
                    name=DIGEST_NAME,
                    context={
                        "commitments": [(c, commitment_move_url(c)) for c in listed],
                        "count": len(listed),
                        "first": listed[0],
                        "dashboard_url": staff_url(reverse("crm:home")),
                    },
                    key=digest_key(owner.pk, day),
                )
            )
    return nudged, digests
