"""The outbox and inbox: every communication with a customer, on one channel, in or out."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models.customers import Contact
from crm.models.jobs import Job


class Message(models.Model):
    """One communication on one channel, in or out. The outbox: a row exists before anything is
    sent, and its status says where it is (crm.services.outbox moves it)."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        PHONE = "phone", _("Phone call")
        PORTAL = "portal", _("Portal note")

    class Direction(models.TextChoices):
        OUT = "out", _("To the customer")
        IN = "in", _("From the customer")

    class Kind(models.TextChoices):
        STAGE_CHANGE = "stage_change", _("Stage change")
        DATE_MOVED = "date_moved", _("Date moved")
        ACKNOWLEDGEMENT = "acknowledgement", _("Acknowledgement")
        PORTAL_LINK = "portal_link", _("Sign-in link")
        FREE = "free", _("Message from the team")
        CALL = "call", _("Phone call")
        REPLY = "reply", _("Customer message")
        SURVEY_INVITATION = "survey_invitation", _("Survey invitation")
        CHECK_IN = "check_in", _("Check-in")
        TIP = "tip", _("Tip or news")
        PROMISE_MOVED = "promise_moved", _("New date for a promise")
        STATUS_UPDATE = "status_update", _("Status update")
        STAFF_ALERT = "staff_alert", _("Alert to staff")
        WELCOME = "welcome", _("Welcome")
        CONTACT_CHANGED = "contact_changed", _("New contact person")
        VISIT_BOOKED = "visit_booked", _("Visit booked")
        VISIT_MOVED = "visit_moved", _("Visit moved")
        VISIT_ON_THE_WAY = "visit_on_the_way", _("On the way")
        VISIT_RUNNING_LATE = "visit_running_late", _("Running late")
        VISIT_CANCELLED = "visit_cancelled", _("Visit cancelled")
        VISIT_REMINDER = "visit_reminder", _("Visit reminder")
        VISIT_CHOSEN = "visit_chosen", _("Visit time chosen by the customer")
        DOCUMENT_SHARED = "document_shared", _("Document shared")
        AUTO_REPLY = "auto_reply", _("Automatic answer to a text")

    # Kinds a contact can opt out of; every other kind is part of doing the job (staff alerts go
    # to the team, not to a contact).
    NON_ESSENTIAL_KINDS = frozenset({Kind.SURVEY_INVITATION, Kind.CHECK_IN, Kind.TIP})

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        BOUNCED = "bounced", _("Bounced")
        FAILED = "failed", _("Failed")
        RECEIVED = "received", _("Received")
        CALL_PENDING = "call_pending", _("Call to make")

    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, null=True, blank=True, related_name="messages", verbose_name=_("job")
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages", verbose_name=_("contact")
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices, default=Direction.OUT)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.QUEUED)
    language = models.CharField(_("language"), max_length=8, blank=True)
    to_address = models.CharField(_("to"), max_length=254, blank=True)
    from_address = models.CharField(_("from"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    body_text = models.TextField(_("text"), blank=True)
    body_html = models.TextField(_("HTML"), blank=True)
    # One logical message, one row: a retried service or a repeated webhook finds the row it made.
    idempotency_key = models.CharField(_("idempotency key"), max_length=200)
    # Our own Message-ID header: the same on every attempt, so a resend can be deduplicated and a
    # reply's In-Reply-To finds its thread.
    email_message_id = models.CharField(_("Message-ID header"), max_length=255, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("written by"),
    )
    # A staff alert: the person it is for (job and contact stay empty, so no customer-facing list
    # ever shows it).
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="staff_alerts",
        verbose_name=_("staff member"),
    )
    # A message that did not reach its customer: the alert (a digest) that told its owner.
    alerted_in = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alerted_failures",
        verbose_name=_("failure told in"),
    )
    # A document shared with the customer: the message that tells them (its email may attach it).
    document = models.ForeignKey(
        "crm.JobFile",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="shared_in",
        verbose_name=_("document"),
    )
    in_reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies", verbose_name=_("in reply to")
    )
    # A stage change: the stage it announced (the staff read "Reached “Checked”", not the subject
    # the customer read in their language).
    stage = models.ForeignKey(
        "crm.StageTemplate", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("stage")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    opened_at = models.DateTimeField(_("first opened at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    # Inbound: when staff answered or dealt with it. Outbound failures: when the owner saw to it.
    handled_at = models.DateTimeField(_("handled at"), null=True, blank=True)
    # A logged call in which we promised to call back by this date.
    callback_due_on = models.DateField(_("call back by"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="message_unique_idempotency_key"),
            models.CheckConstraint(
                condition=Q(direction="in", status="received") | (Q(direction="out") & ~Q(status="received")),
                name="message_status_matches_direction",
            ),
        ]
        indexes = [
            # Outbox sweep: queued rows whose retry is due, rows stuck in "sending".
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=Q(status__in=["queued", "sending"]),
                name="message_outbox_idx",
            ),
            # Tracking webhooks find the message by the provider's id.
            models.Index(
                fields=["provider_message_id"], condition=~Q(provider_message_id=""), name="message_provider_id_idx"
            ),
            # Inbound replies find their thread by In-Reply-To / References.
            models.Index(
                fields=["email_message_id"], condition=~Q(email_message_id=""), name="message_email_message_id_idx"
            ),
            # Job page: the job's messages, newest first.
            models.Index(fields=["job", "-created_at"], name="message_job_created_idx"),
            # When a job last said something to its customer (selectors.last_outbound_at: the
            # dashboard's silent jobs, the silence scan), read from the index alone.
            models.Index(
                fields=["job", "-created_at"],
                condition=Q(direction="out", status__in=["sent", "delivered"]),
                name="message_job_went_out_idx",
            ),
            # The navigation's counts and the dashboard's lists (every staff page): a few rows of a
            # big table each, read from small partial indexes rather than the whole table.
            # Failed or bounced and not seen to (the customer's messages, the staff alerts).
            models.Index(
                fields=["job"],
                condition=Q(status__in=["failed", "bounced"], handled_at__isnull=True),
                name="message_unhandled_failed_idx",
            ),
            # Inbound not seen to: replies on a job, and the unassigned ones (job IS NULL).
            models.Index(
                fields=["job"], condition=Q(direction="in", handled_at__isnull=True), name="message_unhandled_in_idx"
            ),
            # Calls to make.
            models.Index(fields=["job"], condition=Q(status="call_pending"), name="message_call_pending_idx"),
            # Callbacks promised on a logged call.
            models.Index(
                fields=["callback_due_on"],
                condition=Q(callback_due_on__isnull=False),
                name="message_callback_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.to_address or self.from_address} ({self.get_status_display()})"

    @property
    def staff_label(self) -> str:
        """What the message is, as the team reads it in the active language — never the subject
        the customer read in theirs (select_related ``stage`` to save a query)."""
        if self.kind == self.Kind.STAGE_CHANGE and self.stage_id is not None and self.stage is not None:
            return _("Reached “%(stage)s”") % {"stage": self.stage.label}
        return str(self.get_kind_display())

    @property
    def is_essential(self) -> bool:
        return self.kind not in self.NON_ESSENTIAL_KINDS
