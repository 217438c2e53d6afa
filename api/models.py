"""What the API keeps of its own: the answers to write calls made with an Idempotency-Key."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import ApiKey


class IdempotentRequest(models.Model):
    """A write call's first answer under its key: the same key and body again within
    API_IDEMPOTENCY_HOURS returns it and changes nothing; another body under the key is a 422.
    Stored in the transaction of the change itself, so it exists exactly when the change does."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+", verbose_name=_("API key"))
    key = models.CharField(_("Idempotency-Key"), max_length=255)
    # SHA-256 of the method, path and body the key was first used with.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("idempotent request")
        verbose_name_plural = _("idempotent requests")
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="idempotentrequest_unique_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code})"
