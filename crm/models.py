"""The job domain: customers and their contacts, pipelines of stages, jobs and their milestones,
and the append-only event log every report is computed from.

Models hold data and its invariants (constraints, ``clean``); every change of state goes through
``crm.services``, which also writes the JobEvent.
"""

from __future__ import annotations

import functools
import secrets
import uuid
import zoneinfo
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from crm.workdays import business_today


@functools.cache
def known_time_zones() -> frozenset[str]:
    # available_timezones() reads the tz database from disk on every call.
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in known_time_zones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


def default_contact_time_zone() -> str:
    return settings.DEFAULT_CONTACT_TIME_ZONE


def new_reply_token() -> str:
    return secrets.token_hex(8)


class Customer(models.Model):
    """An account: a household or a company we do work for."""

    class Kind(models.TextChoices):
        HOUSEHOLD = "household", _("Household")
        COMPANY = "company", _("Company")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.HOUSEHOLD)
    address = models.TextField(_("address"), blank=True)
    notes = models.TextField(_("internal notes"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        indexes = [
            # Customer list and search, ordered by name.
            models.Index(fields=["name"], name="customer_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    """A person at a customer who hears from us, in their language and on their channel."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        PHONE = "phone", _("Phone call")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="contacts", verbose_name=_("customer")
    )
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE)
    preferred_channel = models.CharField(
        _("preferred channel"), max_length=10, choices=Channel.choices, default=Channel.EMAIL
    )
    # SMS is never sent without a recorded consent: when, and how it was given.
    sms_consent_at = models.DateTimeField(_("SMS consent given at"), null=True, blank=True)
    sms_consent_source = models.CharField(
        _("SMS consent source"),
        max_length=200,
        blank=True,
        help_text=_("How the consent was given, e.g. 'signed order form', 'portal', 'phone call'."),
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default=default_contact_time_zone,
        validators=[validate_time_zone],
    )
    # Non-essential messages (check-ins, tips, campaigns) stop from this moment on.
    opted_out_at = models.DateTimeField(_("opted out of non-essential messages at"), null=True, blank=True)
    # Set by a bounce report from the email provider; shown on the job page until the address changes.
    email_bounced_at = models.DateTimeField(_("email bounced at"), null=True, blank=True)
    email_bounce_reason = models.CharField(_("bounce reason"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["customer__name", "name"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.CheckConstraint(
                condition=~Q(email="") | ~Q(phone=""),
                name="contact_has_email_or_phone",
                violation_error_message=_("A contact needs an email address or a phone number."),
            ),
            models.CheckConstraint(
                condition=~Q(preferred_channel="sms") | Q(sms_consent_at__isnull=False),
                name="contact_sms_needs_consent",
                violation_error_message=_("SMS can only be the preferred channel once the contact has consented."),
            ),
            models.CheckConstraint(
                condition=Q(sms_consent_at__isnull=True) | ~Q(sms_consent_source=""),
                name="contact_sms_consent_has_source",
                violation_error_message=_("Say how the SMS consent was given."),
            ),
        ]
        indexes = [
            # Finding a contact by address: inbound mail, portal "email me a link", search.
            models.Index(fields=["email"], name="contact_email_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.customer})"

    def clean(self) -> None:
        super().clean()
        if self.preferred_channel == self.Channel.EMAIL and not self.email:
            raise ValidationError({"email": _("Email is the preferred channel, so an address is needed.")})
        if self.preferred_channel in (self.Channel.SMS, self.Channel.PHONE) and not self.phone:
            raise ValidationError({"phone": _("This preferred channel needs a phone number.")})

    @property
    def has_sms_consent(self) -> bool:
        return self.sms_consent_at is not None


class StaffProfile(models.Model):
    """What a customer needs to reach a staff member directly (the owner card, every message)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile", verbose_name=_("user")
    )
    phone = models.CharField(_("direct phone"), max_length=32, blank=True)
    job_title = models.CharField(_("job title"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")

    def __str__(self) -> str:
        return str(self.user)


class Pipeline(models.Model):
    """A template of stages a kind of job goes through ("Installation", "Repair")."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    silence_days = models.PositiveSmallIntegerField(
        _("days without news before an alert"),
        default=7,
        help_text=_("An active job with no message to the customer for this many days needs attention."),
    )
    is_active = models.BooleanField(_("in use"), default=True)
    # After the job (crm.services.surveys, crm.services.checkins).
    survey_stage = models.ForeignKey(
        "StageTemplate",
        # Removing the stage stops the survey; it never removes the pipeline.
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("stage that triggers the satisfaction survey"),
        help_text=_("Empty: no survey for this pipeline."),
    )
    survey_delay_days = models.PositiveSmallIntegerField(
        _("days after that stage before the survey"),
        default=1,
        help_text=_("Sent in the morning of that day, in each contact's time zone."),
    )
    checkin_days = models.PositiveSmallIntegerField(
        _("days after completion for a check-in"),
        null=True,
        blank=True,
        help_text=_("“Has everything kept working?” this many days after the job is completed. Empty: no check-in."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        stage = self.survey_stage
        if stage is not None and (self.pk is None or stage.pipeline_id != self.pk):
            raise ValidationError({"survey_stage": _("Choose one of this pipeline's own stages.")})


class StageTemplate(models.Model):
    """One ordered stage of a pipeline."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages", verbose_name=_("pipeline"))
    position = models.PositiveSmallIntegerField(_("position"))
    name = models.CharField(_("name"), max_length=100)
    name_fr = models.CharField(_("name in French"), max_length=100, blank=True)
    customer_visible = models.BooleanField(
        _("shown to the customer"),
        default=True,
        help_text=_("Shown on the portal timeline, and reaching it sends the customer a message."),
    )
    default_duration_days = models.PositiveSmallIntegerField(
        _("default duration (business days)"),
        default=0,
        help_text=_("Business days from the previous stage to this one, used to plan a new job."),
    )
    message_key = models.SlugField(
        _("message template key"),
        max_length=64,
        blank=True,
        help_text=_("Which message the customer gets on reaching this stage; empty for the generic one."),
    )
    customer_instructions = models.TextField(
        _("what the customer should prepare"),
        blank=True,
        help_text=_("Shown to the customer while this is the next stage."),
    )
    customer_instructions_fr = models.TextField(_("what the customer should prepare, in French"), blank=True)

    class Meta:
        ordering = ["pipeline", "position"]
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "position"], name="stage_unique_position"),
            models.UniqueConstraint(fields=["pipeline", "name"], name="stage_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline}: {self.name}"

    @property
    def label(self) -> str:
        """The stage's name in the active language (customers read it in theirs)."""
        if translation.get_language() == "fr" and self.name_fr:
            return self.name_fr
        return self.name

    @property
    def instructions(self) -> str:
        if translation.get_language() == "fr" and self.customer_instructions_fr:
            return self.customer_instructions_fr
        return self.customer_instructions


class JobReferenceCounter(models.Model):
    """The last number handed out per year for job references (J-2026-0042)."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("job reference counter")

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class Job(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        ON_HOLD = "on_hold", _("On hold")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    reference = models.CharField(_("reference"), max_length=32, editable=False)
    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, editable=False)
    # The customer's email replies come back to reply+<token>@INBOUND_DOMAIN and land on this job.
    reply_token = models.CharField(_("reply token"), max_length=32, default=new_reply_token, editable=False)
    title = models.CharField(_("title"), max_length=200)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="jobs", verbose_name=_("customer"))
    contacts = models.ManyToManyField(
        Contact,
        related_name="jobs",
        blank=True,
        verbose_name=_("contacts"),
        help_text=_("The people who hear about this job."),
    )
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="jobs", verbose_name=_("pipeline"))
    current_stage = models.ForeignKey(
        StageTemplate, on_delete=models.PROTECT, related_name="+", verbose_name=_("current stage")
    )
    # The one person responsible for talking to the customer about this job.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_jobs", verbose_name=_("owner")
    )
    installers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="installed_jobs", blank=True, verbose_name=_("installers")
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, editable=False)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, editable=False)
    # The owner was told the customer has heard nothing for too long (once per silence).
    silence_nudged_at = models.DateTimeField(_("silence alarm sent at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        constraints = [
            models.UniqueConstraint(fields=["reference"], name="job_unique_reference"),
            models.UniqueConstraint(fields=["public_id"], name="job_unique_public_id"),
            models.UniqueConstraint(fields=["reply_token"], name="job_unique_reply_token"),
            models.CheckConstraint(
                condition=(
                    Q(status__in=["done", "cancelled"], closed_at__isnull=False)
                    | Q(status__in=["active", "on_hold"], closed_at__isnull=True)
                ),
                name="job_closed_at_matches_status",
            ),
        ]
        indexes = [
            # Dashboard and jobs list: "my open jobs", filtered by owner and status.
            models.Index(fields=["owner", "status"], name="job_owner_status_idx"),
            # Portal "my jobs": a customer's jobs by status.
            models.Index(fields=["customer", "status"], name="job_customer_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("crm:job", args=[self.public_id])

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.ACTIVE, self.Status.ON_HOLD)


class Milestone(models.Model):
    """Reaching one stage of one job: the first promise, the current expectation, the fact."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="milestones", verbose_name=_("job"))
    stage = models.ForeignKey(StageTemplate, on_delete=models.PROTECT, related_name="+", verbose_name=_("stage"))
    # The date first promised; never changes once the job is planned.
    planned_date = models.DateField(_("planned date"), null=True, blank=True)
    # The date we currently expect; moved with a reason through crm.services.milestone_move.
    forecast_date = models.DateField(_("forecast date"), null=True, blank=True)
    completed_at = models.DateTimeField(_("reached at"), null=True, blank=True)

    class Meta:
        ordering = ["job", "stage__position"]
        verbose_name = _("milestone")
        verbose_name_plural = _("milestones")
        constraints = [
            models.UniqueConstraint(fields=["job", "stage"], name="milestone_one_per_job_stage"),
            models.CheckConstraint(
                condition=Q(planned_date__isnull=True, forecast_date__isnull=True)
                | Q(planned_date__isnull=False, forecast_date__isnull=False),
                name="milestone_planned_and_forecast_together",
                violation_error_message=_("A milestone has both a planned and a forecast date, or neither."),
            ),
        ]
        indexes = [
            # Dashboard "due soon / running late": open milestones by forecast date.
            models.Index(
                fields=["forecast_date"],
                condition=Q(completed_at__isnull=True),
                name="milestone_open_forecast_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job.reference}: {self.stage.name}"

    @property
    def is_done(self) -> bool:
        return self.completed_at is not None

    @property
    def is_late(self) -> bool:
        """Expected later than first promised, or past its date without being reached."""
        if self.planned_date is None or self.forecast_date is None or self.is_done:
            return False
        return self.forecast_date > self.planned_date or self.forecast_date < business_today()


class JobEvent(models.Model):
    """Something that happened to a job. Rows are only ever added: reports read this log."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Job created")
        STAGE_ADVANCED = "stage_advanced", _("Stage reached")
        STAGE_REVERTED = "stage_reverted", _("Stage moved back")
        DATE_MOVED = "date_moved", _("Date moved")
        OWNER_CHANGED = "owner_changed", _("Owner changed")
        DETAILS_CHANGED = "details_changed", _("Details changed")
        MESSAGE_SENT = "message_sent", _("Message sent")
        MESSAGE_FAILED = "message_failed", _("Message failed")
        MESSAGE_BOUNCED = "message_bounced", _("Message bounced")
        MESSAGE_RECEIVED = "message_received", _("Message received")
        REQUEST_RECEIVED = "request_received", _("Request received")
        REQUEST_ANSWERED = "request_answered", _("Request answered")
        CALL_LOGGED = "call_logged", _("Call logged")
        PROMISE_MADE = "promise_made", _("Promise made")
        PROMISE_KEPT = "promise_kept", _("Promise kept")
        PROMISE_MOVED = "promise_moved", _("Promise moved")
        PROMISE_BROKEN = "promise_broken", _("Promise broken")
        MESSAGE_RETRIED = "message_retried", _("Message sent again")
        MESSAGE_ASSIGNED = "message_assigned", _("Email filed on the job")
        HELD = "held", _("Put on hold")
        RESUMED = "resumed", _("Resumed")
        CANCELLED = "cancelled", _("Cancelled")
        COMPLETED = "completed", _("Completed")
        SURVEY_ANSWERED = "survey_answered", _("Survey answered")
        CHECK_IN_ANSWERED = "check_in_answered", _("Check-in answered")

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events", verbose_name=_("job"))
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
        help_text=_("Empty when the system did it (a schedule, a webhook)."),
    )
    created_at = models.DateTimeField(_("at"), default=timezone.now, editable=False)
    data = models.JSONField(_("details"), default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("job event")
        verbose_name_plural = _("job events")
        indexes = [
            # Job page event log, newest first.
            models.Index(fields=["job", "-created_at"], name="jobevent_job_created_idx"),
            # Reports: events of one kind over a period.
            models.Index(fields=["kind", "created_at"], name="jobevent_kind_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M})"

    @property
    def summary(self) -> str:
        """One line for people: what happened, from the structured data."""
        d: dict[str, Any] = self.data
        match self.kind:
            case self.Kind.STAGE_ADVANCED | self.Kind.STAGE_REVERTED:
                return _("%(from)s → %(to)s") % {"from": d.get("from_stage", "?"), "to": d.get("to_stage", "?")}
            case self.Kind.DATE_MOVED:
                return _("%(stage)s: %(old)s → %(new)s (%(reason)s)") % {
                    "stage": d.get("stage", "?"),
                    "old": d.get("old_date", "?"),
                    "new": d.get("new_date", "?"),
                    "reason": d.get("reason", ""),
                }
            case self.Kind.PROMISE_MOVED:
                return _("%(promise)s: %(old)s → %(new)s (%(reason)s)") % {
                    "promise": d.get("promise", "?"),
                    "old": str(d.get("old_due_at", "?"))[:10],
                    "new": str(d.get("new_due_at", "?"))[:10],
                    "reason": d.get("reason", ""),
                }
            case self.Kind.PROMISE_MADE | self.Kind.PROMISE_KEPT | self.Kind.PROMISE_BROKEN:
                return str(d.get("promise", ""))
            case self.Kind.OWNER_CHANGED:
                return _("%(old)s → %(new)s") % {"old": d.get("old_owner", "?"), "new": d.get("new_owner", "?")}
            case self.Kind.SURVEY_ANSWERED:
                scores = [
                    f"{label} {d[key]}/{top}"
                    for key, label, top in (
                        ("product_quality", _("product"), 5),
                        ("workmanship", _("workmanship"), 5),
                        ("installer_conduct", _("installer"), 5),
                        ("recommend", _("recommend"), 10),
                    )
                    if d.get(key) is not None
                ]
                return f"{d.get('contact', '')}: {', '.join(scores)}"
            case self.Kind.CHECK_IN_ANSWERED:
                answer = _("all good") if d.get("answer") == "all_good" else _("there is a problem")
                return f"{d.get('contact', '')}: {answer}"
            case _:
                return str(d.get("reason") or d.get("title") or "")


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

    # Kinds a contact can opt out of; every other kind is part of doing the job.
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
    in_reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies", verbose_name=_("in reply to")
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
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.to_address or self.from_address} ({self.get_status_display()})"

    @property
    def is_essential(self) -> bool:
        return self.kind not in self.NON_ESSENTIAL_KINDS


class Request(models.Model):
    """Something a customer asked. Acknowledged at once with the date they will have an answer by
    (a date we can beat); answered when staff reply."""

    class Source(models.TextChoices):
        PORTAL = "portal", _("Portal question")
        EMAIL = "email", _("Email")
        PHONE = "phone", _("Phone call")
        STAFF = "staff", _("Entered by staff")

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="requests", verbose_name=_("job"))
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="requests", verbose_name=_("contact")
    )
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    body = models.TextField(_("question"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    # Our own target (internal); the date promised to the customer adds a buffer to it.
    target_at = models.DateTimeField(_("internal target"), null=True, blank=True)
    # The date promised to the customer in the acknowledgement.
    answer_due_on = models.DateField(_("answer promised by"))
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    # The inbound email this request came from, if any.
    message = models.OneToOneField(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="request", verbose_name=_("message")
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("request")
        verbose_name_plural = _("requests")
        indexes = [
            # Dashboard "questions waiting for an answer", oldest promise first.
            models.Index(fields=["answer_due_on"], condition=Q(answered_at__isnull=True), name="request_open_due_idx"),
            # The health report: requests received in a period.
            models.Index(fields=["received_at"], name="request_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job.reference}: {self.body[:60]}"

    @property
    def is_open(self) -> bool:
        return self.answered_at is None


class ImportRun(models.Model):
    """One CSV import of customers and contacts (crm.services.imports): the file's rows, how its
    columns map onto ours, what the check found, and how far the import has got."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Columns to match")
        VALIDATED = "validated", _("Checked, waiting to start")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Imported")
        FAILED = "failed", _("Failed")

    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, editable=False)
    file_name = models.CharField(_("file name"), max_length=255)
    encoding = models.CharField(_("encoding"), max_length=20)
    delimiter = models.CharField(_("delimiter"), max_length=1)
    headers = models.JSONField(_("column headers"), default=list)
    # [[row number as a spreadsheet shows it, [cell, ...]], ...], blank rows left out. Emptied once
    # the import is done: the team's data then lives in customers and contacts, not in a second copy.
    rows = models.JSONField(_("rows"), default=list, blank=True)
    # Our field name -> index of the file's column that holds it (crm.imports.FIELDS).
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.UPLOADED)

    # What the check found (crm.services.imports.import_validate).
    total_rows = models.PositiveIntegerField(_("rows in the file"), default=0)
    valid_rows = models.PositiveIntegerField(_("rows ready to import"), default=0)
    invalid_rows = models.PositiveIntegerField(_("rows with errors"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    # [{"row": 12, "field": "email", "column": "E-mail", "message": "..."}, ...]: the first
    # crm.imports.MAX_STORED_ERRORS of them; error_count says how many there were in all.
    errors = models.JSONField(_("errors by row"), default=list, blank=True)
    customers_to_create = models.PositiveIntegerField(_("customers to create"), default=0)
    customers_to_join = models.PositiveIntegerField(_("existing customers to add contacts to"), default=0)
    contacts_to_create = models.PositiveIntegerField(_("contacts to create"), default=0)
    # The person ticked "import the valid rows only" (needed when some rows have errors).
    valid_only = models.BooleanField(_("valid rows only"), default=False)

    # How far the import has got, and what it did.
    processed_rows = models.PositiveIntegerField(_("rows processed"), default=0)
    customers_created = models.PositiveIntegerField(_("customers created"), default=0)
    customers_joined = models.PositiveIntegerField(_("existing customers added to"), default=0)
    contacts_created = models.PositiveIntegerField(_("contacts created"), default=0)
    contacts_existing = models.PositiveIntegerField(_("contacts already on file"), default=0)
    failure = models.TextField(_("why it failed"), blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        # The record of who imported what outlives the person's account.
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now, editable=False)
    validated_at = models.DateTimeField(_("checked at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    # Moved by every progress step: a running import whose clock stands still is waiting for a worker.
    updated_at = models.DateTimeField(_("last progress at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("CSV import")
        verbose_name_plural = _("CSV imports")
        constraints = [
            models.UniqueConstraint(fields=["public_id"], name="importrun_unique_public_id"),
            models.CheckConstraint(
                condition=Q(processed_rows__lte=F("total_rows")), name="importrun_processed_within_total"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["done", "failed"], finished_at__isnull=False)
                | Q(status__in=["uploaded", "validated", "running"], finished_at__isnull=True),
                name="importrun_finished_at_matches_status",
            ),
        ]
        indexes = [
            # The import page lists the latest imports, newest first.
            models.Index(fields=["-created_at"], name="importrun_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def percent(self) -> int:
        """How much of the file has been worked through, 0-100, for the progress bar."""
        if self.status == self.Status.DONE:
            return 100
        if not self.total_rows:
            return 0
        return min(100, self.processed_rows * 100 // self.total_rows)


class Commitment(models.Model):
    """A date given to a customer: a stage by a date, an answer by a date, a call back, a document.

    Its history is never overwritten: the first promised time stays, every move is a
    Renegotiation saying whether the customer was told before the old time passed.
    """

    class Kind(models.TextChoices):
        MILESTONE = "milestone", _("Stage date")
        ANSWER = "answer", _("Answer to a question")
        CALLBACK = "callback", _("Call back")
        DOCUMENT = "document", _("Quote or document")
        # A low survey score: the owner calls the customer within one business day.
        RECOVERY = "recovery", _("Call an unhappy customer")

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        RENEGOTIATED = "renegotiated", _("Moved")
        KEPT = "kept", _("Kept")
        BROKEN = "broken", _("Broken")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    OPEN_STATES = (State.OPEN, State.RENEGOTIATED)

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="commitments", verbose_name=_("job"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    title = models.CharField(_("what was promised"), max_length=200)
    # Whoever must keep it: the job's owner (it follows a reassignment while open).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="commitments", verbose_name=_("owner")
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="commitments", verbose_name=_("to")
    )
    state = models.CharField(_("state"), max_length=20, choices=State.choices, default=State.OPEN)
    first_due_at = models.DateTimeField(_("first promised for"))
    due_at = models.DateTimeField(_("due"))
    created_at = models.DateTimeField(_("promised at"), default=timezone.now)
    kept_at = models.DateTimeField(_("kept at"), null=True, blank=True)
    broken_at = models.DateTimeField(_("broken at"), null=True, blank=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    # The owner was warned it is about to slip (once), and a manager told when it broke (once).
    nudged_at = models.DateTimeField(_("owner nudged at"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("manager alerted at"), null=True, blank=True)
    milestone = models.ForeignKey(
        Milestone, on_delete=models.CASCADE, null=True, blank=True, related_name="commitments", verbose_name=_("stage")
    )
    request = models.ForeignKey(
        Request, on_delete=models.CASCADE, null=True, blank=True, related_name="commitments", verbose_name=_("question")
    )
    call = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="commitments", verbose_name=_("call")
    )

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("promise")
        verbose_name_plural = _("promises")
        constraints = [
            models.UniqueConstraint(
                fields=["milestone"],
                condition=Q(state__in=["open", "renegotiated"]),
                name="commitment_one_open_per_milestone",
            ),
            models.UniqueConstraint(fields=["request"], name="commitment_one_per_request"),
            models.CheckConstraint(
                condition=Q(state="kept", kept_at__isnull=False)
                | Q(state="broken", broken_at__isnull=False)
                | Q(state="withdrawn", withdrawn_at__isnull=False)
                | Q(state__in=["open", "renegotiated"]),
                name="commitment_state_has_its_time",
            ),
        ]
        indexes = [
            # The at-risk scan (every few minutes): open promises by due time.
            models.Index(
                fields=["due_at"], condition=Q(state__in=["open", "renegotiated"]), name="commitment_open_due_idx"
            ),
            # The health report: promises by owner first due in a period, and the team's.
            models.Index(fields=["owner", "first_due_at"], name="commitment_owner_due_idx"),
            models.Index(fields=["first_due_at"], name="commitment_first_due_idx"),
            # The health report: promises broken in a period.
            models.Index(fields=["broken_at"], condition=Q(broken_at__isnull=False), name="commitment_broken_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_state_display()})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def label(self) -> str:
        """What was promised, in the active language (customers read it in theirs)."""
        if self.kind == self.Kind.MILESTONE and self.milestone is not None:
            return self.milestone.stage.label
        if self.kind == self.Kind.ANSWER:
            return str(_("An answer to your question"))
        if self.kind == self.Kind.CALLBACK:
            return str(_("A call back"))
        if self.kind == self.Kind.RECOVERY:
            return str(_("A call from us"))
        return self.title

    @property
    def kept_on_time(self) -> bool:
        return self.state == self.State.KEPT and self.kept_at is not None and self.kept_at <= self.first_due_at


class Renegotiation(models.Model):
    """One move of a promise's date. Proactive when the customer was told before the old time."""

    commitment = models.ForeignKey(
        Commitment, on_delete=models.CASCADE, related_name="renegotiations", verbose_name=_("promise")
    )
    old_due_at = models.DateTimeField(_("was due"))
    new_due_at = models.DateTimeField(_("now due"))
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    told_customer_at = models.DateTimeField(_("customer told at"), null=True, blank=True)
    proactive = models.BooleanField(_("told before the old date"), default=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("date change")
        verbose_name_plural = _("date changes")
        indexes = [
            # The health report: renegotiations over a period.
            models.Index(fields=["created_at"], name="renegotiation_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.old_due_at:%Y-%m-%d} → {self.new_due_at:%Y-%m-%d}"


# --- After the job: surveys and check-ins ---


class Survey(models.Model):
    """The satisfaction survey of one contact about one job: created when the invitation is
    queued (one per job and contact), answered — and answered again — from the survey link.

    Every question is optional on its own (a one-click score from the email is an answer); an
    answer has at least one score. The installers are copied from the job when the contact
    answers, so a report per installer keeps who did the work even if the job changes later.
    """

    # A product, workmanship or conduct score at or below this, or a recommendation at or below
    # LOW_RECOMMEND, is an unhappy customer: the owner is alerted and calls them.
    LOW_SCORE = 2
    LOW_RECOMMEND = 6
    SCORE_QUESTIONS = ("product_quality", "workmanship", "installer_conduct")

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="surveys", verbose_name=_("job"))
    contact = models.ForeignKey(
        Contact,
        # The answers outlive the contact: reports keep counting them.
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="surveys",
        verbose_name=_("contact"),
    )
    invited_at = models.DateTimeField(_("invited at"), default=timezone.now)
    product_quality = models.PositiveSmallIntegerField(_("product quality (1–5)"), null=True, blank=True)
    workmanship = models.PositiveSmallIntegerField(_("workmanship (1–5)"), null=True, blank=True)
    installer_conduct = models.PositiveSmallIntegerField(_("installer conduct (1–5)"), null=True, blank=True)
    recommend = models.PositiveSmallIntegerField(_("likelihood to recommend (0–10)"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    # First answer; updated_at moves with every change of answer.
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), null=True, blank=True)
    installers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="+", blank=True, verbose_name=_("installers")
    )
    # The call the owner owes the contact after a low score (crm.services.surveys.recovery_open).
    recovery = models.ForeignKey(
        "Commitment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recovery call"),
    )

    class Meta:
        ordering = ["-invited_at", "-id"]
        verbose_name = _("satisfaction survey")
        verbose_name_plural = _("satisfaction surveys")
        constraints = [
            models.UniqueConstraint(fields=["job", "contact"], name="survey_one_per_job_contact"),
            models.CheckConstraint(
                condition=Q(product_quality__isnull=True) | Q(product_quality__gte=1, product_quality__lte=5),
                name="survey_product_quality_1_5",
            ),
            models.CheckConstraint(
                condition=Q(workmanship__isnull=True) | Q(workmanship__gte=1, workmanship__lte=5),
                name="survey_workmanship_1_5",
            ),
            models.CheckConstraint(
                condition=Q(installer_conduct__isnull=True) | Q(installer_conduct__gte=1, installer_conduct__lte=5),
                name="survey_installer_conduct_1_5",
            ),
            models.CheckConstraint(
                condition=Q(recommend__isnull=True) | Q(recommend__lte=10), name="survey_recommend_0_10"
            ),
            models.CheckConstraint(
                condition=Q(answered_at__isnull=True) | Q(updated_at__isnull=False),
                name="survey_answered_has_updated_at",
            ),
        ]
        indexes = [
            # Reports: answers over a period (satisfaction, NPS); response rate from invited_at.
            models.Index(fields=["answered_at"], condition=Q(answered_at__isnull=False), name="survey_answered_idx"),
            models.Index(fields=["invited_at"], name="survey_invited_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job.reference}: {self.contact or '—'}"

    @property
    def is_answered(self) -> bool:
        return self.answered_at is not None

    @property
    def is_low(self) -> bool:
        """An unhappy answer: a 1–5 score at or below LOW_SCORE, or a recommendation at or below
        LOW_RECOMMEND."""
        scores = [getattr(self, name) for name in self.SCORE_QUESTIONS]
        if any(score is not None and score <= self.LOW_SCORE for score in scores):
            return True
        return self.recommend is not None and self.recommend <= self.LOW_RECOMMEND


class CheckIn(models.Model):
    """A "has everything kept working?" to one contact, some weeks after a job was completed:
    created when the message is queued (one per job and contact), answered with one click."""

    class Answer(models.TextChoices):
        ALL_GOOD = "all_good", _("All good")
        PROBLEM = "problem", _("There is a problem")

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="check_ins", verbose_name=_("job"))
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="check_ins", verbose_name=_("contact")
    )
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)
    answer = models.CharField(_("answer"), max_length=20, choices=Answer.choices, blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    # "There is a problem" opens a question on the job, acknowledged like any other.
    request = models.ForeignKey(
        Request, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("question opened")
    )

    class Meta:
        ordering = ["-sent_at", "-id"]
        verbose_name = _("check-in")
        verbose_name_plural = _("check-ins")
        constraints = [
            models.UniqueConstraint(fields=["job", "contact"], name="checkin_one_per_job_contact"),
            models.CheckConstraint(
                condition=Q(answer="", answered_at__isnull=True) | (~Q(answer="") & Q(answered_at__isnull=False)),
                name="checkin_answer_has_its_time",
            ),
        ]
        indexes = [
            # Reports: check-ins sent and answered over a period.
            models.Index(fields=["sent_at"], name="checkin_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job.reference}: {self.contact or '—'} ({self.get_answer_display() or _('no answer yet')})"


# --- Positive contact: campaigns ---


class Campaign(models.Model):
    """A positive message to a segment of contacts (a tip, a training invitation, an event),
    written in English and in French, sent once by a django-q2 task (crm.services.campaigns).

    Every message links to the campaign's durable page (``/portal/c/<public_id>/``): while the
    campaign runs it shows the content; once ``ends_on`` has passed it says the offer has ended and
    shows what is current instead. The link therefore never dies, whatever happens to the offer.
    """

    class Kind(models.TextChoices):
        TIP = "tip", _("Tip")
        TRAINING = "training", _("Training invitation")
        EVENT = "event", _("Event")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")

    # Customers may read it once the sending has started (crm.services.campaigns.PUBLIC_STATUSES).
    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, editable=False)
    title = models.CharField(_("title"), max_length=200, help_text=_("For the team only; customers read the subject."))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.TIP)
    subject_en = models.CharField(_("subject in English"), max_length=200, blank=True)
    body_en = models.TextField(_("text in English"), blank=True)
    subject_fr = models.CharField(_("subject in French"), max_length=200, blank=True)
    body_fr = models.TextField(_("text in French"), blank=True)
    link_url = models.URLField(
        _("link"),
        max_length=500,
        blank=True,
        help_text=_("Optional: a page with more, e.g. a booking form. Shown on the campaign's page while it runs."),
    )
    link_label_en = models.CharField(_("link label in English"), max_length=80, blank=True)
    link_label_fr = models.CharField(_("link label in French"), max_length=80, blank=True)
    # The offer's or the event's period; after ends_on the campaign's link says it has ended.
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"))

    # The segment: every contact of the customers these filters select.
    pipeline = models.ForeignKey(
        Pipeline,
        # Who a campaign went to is part of its record: a pipeline in use cannot be deleted.
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("customers with a job in this pipeline"),
    )
    completed_jobs_only = models.BooleanField(_("only customers with a completed job"), default=False)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, blank=True, help_text=_("Empty: every language.")
    )

    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.DRAFT)
    # Progress of the sending. total is the audience when the sending started; every contact of it
    # ends up in exactly one of the other counters.
    total = models.PositiveIntegerField(_("contacts in the audience"), default=0)
    queued = models.PositiveIntegerField(_("messages queued"), default=0)
    skipped_capped = models.PositiveIntegerField(_("held back by the frequency cap"), default=0)
    skipped_opted_out = models.PositiveIntegerField(_("opted out"), default=0)
    skipped_unreachable = models.PositiveIntegerField(_("no email address or SMS consent"), default=0)
    # The audience is the segment's contacts up to last_contact_id (the newest when the sending
    # started), worked through in id order; cursor is the last one done.
    last_contact_id = models.PositiveBigIntegerField(_("last contact of the audience"), default=0, editable=False)
    cursor = models.PositiveBigIntegerField(_("last contact done"), default=0, editable=False)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sent by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    # Moved by every edit and every batch sent: a sending whose clock stands still has lost its worker.
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, editable=False)
    send_started_at = models.DateTimeField(_("sending started at"), null=True, blank=True, editable=False)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.UniqueConstraint(fields=["public_id"], name="campaign_unique_public_id"),
            models.CheckConstraint(
                condition=Q(ends_on__gte=F("starts_on")),
                name="campaign_ends_after_starts",
                violation_error_message=_("The end date cannot be before the start date."),
            ),
            models.CheckConstraint(
                condition=Q(status="sent", sent_at__isnull=False) | Q(status__in=["draft", "sending"], sent_at=None),
                name="campaign_sent_at_matches_status",
            ),
        ]
        indexes = [
            # The campaign page's "what is on now": campaigns customers can read that have not ended.
            models.Index(fields=["ends_on"], condition=~Q(status="draft"), name="campaign_public_ends_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("crm:campaign", args=[self.public_id])

    def clean(self) -> None:
        super().clean()
        errors: dict[str, list[Any]] = {}

        def add(field: str, message: Any) -> None:
            errors.setdefault(field, []).append(message)

        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            add("ends_on", _("The end date cannot be before the start date."))
        names = dict(settings.LANGUAGES)
        written = []
        for code in names:
            subject = getattr(self, f"subject_{code}", "").strip()
            body = getattr(self, f"body_{code}", "").strip()
            if subject and body:
                written.append(code)
            elif subject:
                add(f"body_{code}", _("Write the text as well, or leave this language empty."))
            elif body:
                add(f"subject_{code}", _("Write the subject as well, or leave this language empty."))
        if self.language and self.language not in written:
            message = _("This campaign goes to contacts who read %(language)s: write it in %(language)s.") % {
                "language": names[self.language]
            }
            for field in (f"subject_{self.language}", f"body_{self.language}"):
                if not getattr(self, field, "").strip():
                    add(field, message)
        elif not self.language and not written and not errors:
            add("__all__", _("Write the subject and text in English, in French, or both."))
        if self.link_url == "" and (self.link_label_en.strip() or self.link_label_fr.strip()):
            add("link_url", _("Add the link this label is for."))
        if errors:
            raise ValidationError(errors)

    @property
    def languages_written(self) -> list[str]:
        return [code for code, _name in settings.LANGUAGES if self.subject_in(code) and self.body_in(code)]

    def subject_in(self, language: str) -> str:
        return str(getattr(self, f"subject_{language}", "") or "").strip()

    def body_in(self, language: str) -> str:
        return str(getattr(self, f"body_{language}", "") or "").strip()

    def language_for(self, language: str) -> str:
        """The language a reader of ``language`` gets: their own when it is written, else the
        campaign's first written language (a whole message in one language, never a mix)."""
        written = self.languages_written
        if language in written or not written:
            return language
        return written[0]

    @property
    def processed(self) -> int:
        return self.queued + self.skipped_capped + self.skipped_opted_out + self.skipped_unreachable

    @property
    def percent(self) -> int:
        """How much of the audience has been worked through, 0-100, for the progress bar."""
        if self.status == self.Status.SENT:
            return 100
        if not self.total:
            return 0
        return min(100, self.processed * 100 // self.total)

    def has_ended(self, today: Any = None) -> bool:
        return self.ends_on < (today or business_today())
