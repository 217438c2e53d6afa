"""The access log (crm.models.AccessRecord): one INSERT for each page that shows a customer's
data, and the daily pruning of what is older than ACCESS_LOG_RETENTION_DAYS — of the access log
and of the log of a contact's link uses (crm.models.ContactLinkUse) alike."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone

from crm.models import AccessRecord, ContactLinkUse

# Rows deleted per statement when pruning: short statements, however long the log.
PRUNE_BATCH = 5000


def access_record(
    *,
    user: AbstractBaseUser | AnonymousUser,
    kind: str,
    customer_id: int | None = None,
    subject: str = "",
    path: str = "",
) -> None:
    """Note that ``user`` has just seen ``kind`` (of ``customer_id``'s data): one INSERT."""
    AccessRecord.objects.create(
        user_id=user.pk,
        username=user.get_username()[:150],
        kind=kind,
        customer_id=customer_id,
        subject=subject[:200],
        path=path[:300],
    )


def access_records_prune(*, now: datetime | None = None) -> int:
    """Delete the access records and link uses older than ACCESS_LOG_RETENTION_DAYS; how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.ACCESS_LOG_RETENTION_DAYS)
    removed = 0
    for model in (AccessRecord, ContactLinkUse):
        while ids := list(model.objects.filter(at__lt=cutoff).values_list("pk", flat=True)[:PRUNE_BATCH]):
            removed += model.objects.filter(pk__in=ids).delete()[0]
    return removed
