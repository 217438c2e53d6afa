"""Other systems in the loop: the API keys they call with, and the webhook endpoints they hear
from, with the outbox of webhook deliveries.

A key is shown once and stored as a SHA-256 digest (it is 32 random bytes: no slow hash is needed
to make guessing hopeless). A webhook delivery is a row before it is a request, written in the
transaction of the change it tells of (crm.services.webhooks), sent by a worker after commit and
signed per the Standard Webhooks specification (crm.services.webhook_delivery).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models.jobs import Job

KEY_PREFIX = "cpk"


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        JOBS_READ = "jobs:read", _("Read jobs, pipelines and stages")
        JOBS_WRITE = "jobs:write", _("Open, move and change jobs")
        CUSTOMERS_READ = "customers:read", _("Read customers and contacts")
        CUSTOMERS_WRITE = "customers:write", _("Add customers and contacts")
        MESSAGES_READ = "messages:read", _("Read messages, questions and surveys")
        MESSAGES_WRITE = "messages:write", _("Send messages, log calls, answer questions")
        REPORTS_READ = "reports:read", _("Read the health and satisfaction figures")

    name = models.CharField(_("name"), max_length=80, help_text=_("Which system uses it, e.g. “ERP”."))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_keys",
        verbose_name=_("acts as"),
        help_text=_("Everything done with the key is done as this person, “via API key”."),
    )
    # The key's public part (in the key itself, before its secret): found by it, shown in lists.
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    digest = models.CharField(_("digest"), max_length=64, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("created by")
    )
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("revoked by"),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @staticmethod
    def new_secret() -> tuple[str, str]:
        """A new key as (prefix, whole key): ``cpk_<8 hex>_<43 url-safe characters>``."""
        prefix = f"{KEY_PREFIX}_{secrets.token_hex(4)}"
        return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookEndpoint(models.Model):
    class EventType(models.TextChoices):
        JOB_CREATED = "job.created", _("A job was opened")
        JOB_STAGE_CHANGED = "job.stage_changed", _("A job reached another stage")
        MILESTONE_DATE_MOVED = "milestone.date_moved", _("A stage's date moved")
        COMMITMENT_AT_RISK = "commitment.at_risk", _("A promise is about to slip")
        COMMITMENT_BROKEN = "commitment.broken", _("A promise was broken")
        REQUEST_RECEIVED = "request.received", _("A customer asked something")
        MESSAGE_FAILED = "message.failed", _("A message could not be delivered")
        SURVEY_ANSWERED = "survey.answered", _("A survey was answered")
        SURVEY_LOW_SCORE = "survey.low_score", _("A survey came back low")
        VISIT_BOOKED = "visit.booked", _("A visit was booked")
        VISIT_MOVED = "visit.moved", _("A visit was moved")
        VISIT_CONFIRMED = "visit.confirmed", _("A customer confirmed a visit")
        VISIT_ON_THE_WAY = "visit.on_the_way", _("The crew is on the way")
        VISIT_RUNNING_LATE = "visit.running_late", _("The crew is running late")
        VISIT_ARRIVED = "visit.arrived", _("The crew arrived")
        VISIT_DONE = "visit.done", _("A visit was done")
        VISIT_CANCELLED = "visit.cancelled", _("A visit was cancelled")
        VISIT_MISSED = "visit.missed", _("The crew could not get in")

    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(_("events"), default=list)
    secret = models.CharField(_("signing secret"), max_length=80, default=new_webhook_secret, editable=False)
    # After a rotation the old secret signs too, until this time: receivers switch without a gap.
    previous_secret = models.CharField(max_length=80, blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    # When deliveries started failing without a success since; disabled after WEBHOOK_DISABLE_AFTER_DAYS.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    disabled_at = models.DateTimeField(_("disabled"), null=True, blank=True)
    disabled_reason = models.CharField(_("why disabled"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("created by")
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        indexes = [models.Index(fields=["is_active"], name="webhookendpoint_active_idx")]

    def __str__(self) -> str:
        return self.url

    def signing_secrets(self, *, now: datetime | None = None) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the previous one while
        its overlap lasts."""
        now = now or timezone.now()
        secrets_ = [self.secret]
        if self.previous_secret and self.previous_secret_until and self.previous_secret_until > now:
            secrets_.append(self.previous_secret)
        return secrets_


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class WebhookDelivery(models.Model):
    """One event for one endpoint: the outbox row, then its delivery's record."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENDING = "sending", _("Sending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    # The webhook-id header: the same for every attempt, so receivers can dedupe on it.
    webhook_id = models.CharField(_("webhook id"), max_length=40, unique=True, default=new_webhook_id, editable=False)
    event_type = models.CharField(_("event"), max_length=40, choices=WebhookEndpoint.EventType.choices)
    job = models.ForeignKey(
        Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("job")
    )
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("time (ms)"), null=True, blank=True)
    last_error = models.CharField(_("error"), max_length=500, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            # An endpoint's delivery log, newest first.
            models.Index(fields=["endpoint", "-created_at"], name="webhookdelivery_endpoint_idx"),
            # The sweep: what is waiting or stuck.
            models.Index(
                fields=["status", "next_attempt_at"],
                name="webhookdelivery_due_idx",
                condition=models.Q(status__in=["pending", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"
