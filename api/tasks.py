"""django-q2 entry points of the API (load nothing, call one function)."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from api.models import IdempotentRequest


def prune_idempotent_requests() -> int:
    """Answers kept for Idempotency-Keys past API_IDEMPOTENCY_HOURS: no replay can use them, and
    they hold customers' data. The daily `api-idempotency-prune` schedule."""
    cutoff = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
