"""Pipelines of stages, jobs and their milestones, and the append-only event log every report is
computed from."""

from __future__ import annotations

import secrets
import uuid
from datetime import date, datetime, time
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from crm.dates import clock_text, day_text, window_text
from crm.models.customers import Contact, Customer
from crm.models.promise_kinds import promise_staff_title
from crm.workdays import business_today, business_zone


def new_reply_token() -> str:
    return secrets.token_hex(8)


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
    # Visits (crm.services.visits): the reminder before each visit, and when a visit is at risk.
    visit_reminder_business_days = models.PositiveSmallIntegerField(
        _("business days before a visit for its reminder"),
        default=1,
        help_text=_("0: no reminder. Sent in the contact's time zone, never at night."),
    )
    visit_reminder_at = models.TimeField(
        _("time of the visit reminder"), default=time(10, 0), help_text=_("In the contact's time zone.")
    )
    visit_self_booking = models.BooleanField(
        _("customers choose another time themselves"),
        default=False,
        help_text=_(
            "A customer who needs another time for a visit is offered its crew's next free times on their page "
            "and books one (else they ask, and the office proposes one)."
        ),
    )
    visit_self_booking_days = models.PositiveSmallIntegerField(
        _("working days of free times offered"),
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text=_("From the next working day."),
    )
    visit_at_risk_minutes = models.PositiveSmallIntegerField(
        _("minutes before a window to warn of a late crew"),
        default=30,
        help_text=_(
            "Nobody on the way, or the crew still at their previous visit, this close to the window: "
            "the installer and the owner are told once."
        ),
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


class PipelineRole(models.Model):
    """Who answers for the customer during some stages of a pipeline ("sales" for the quote,
    "installation coordinator" for fitting). Each job records who holds each role (JobRole); when
    a job enters a stage whose role is held by someone else, that person becomes the customer's
    contact (the job's owner) from then on."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="roles", verbose_name=_("pipeline"))
    name = models.CharField(_("name"), max_length=100)
    default_holder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("usually held by"),
        help_text=_("Who holds this role on a new job. Empty: the job's owner."),
    )

    class Meta:
        ordering = ["pipeline", "name"]
        verbose_name = _("stage role")
        verbose_name_plural = _("stage roles")
        constraints = [models.UniqueConstraint(fields=["pipeline", "name"], name="pipelinerole_unique_name")]

    def __str__(self) -> str:
        return self.name


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
    asks_for_files = models.BooleanField(
        _("asks for photos or documents"),
        default=False,
        help_text=_(
            "What to prepare includes sending photos or documents: the portal offers to send them right there, "
            "and says “received, thank you” with what came."
        ),
    )
    role = models.ForeignKey(
        PipelineRole,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="stages",
        verbose_name=_("who answers for the customer"),
        help_text=_(
            "The role that is the customer's contact from this stage on. Empty: whoever was the contact stays."
        ),
    )

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


def _local(value: Any) -> datetime | None:
    """A moment an event recorded (ISO text in its data) on the business clock; None if absent."""
    if not value:
        return None
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment.astimezone(business_zone())


def _window_said(data: dict[str, Any]) -> str:
    """A visit's window as an event recorded it: "Tue 3 Mar 14:00–16:00"."""
    start, end = _local(data.get("window_start")), _local(data.get("window_end"))
    if start is None or end is None:
        return "?"
    with timezone.override(business_zone()):
        return window_text(start, end)


def _clock_said(moment: datetime | None) -> str:
    if moment is None:
        return "?"
    with timezone.override(business_zone()):
        return clock_text(moment)


def _day_said(value: Any) -> str:
    """A day or moment an event recorded (ISO text) as the staff read days: "Thu 5 Mar"."""
    if not value:
        return "?"
    try:
        text = str(value)
        day = datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text[:10])
    except ValueError:
        return str(value)
    return day_text(day.astimezone(business_zone()) if isinstance(day, datetime) and day.tzinfo else day)


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

    # Still under way: the customer may hear from us about it (is_open, and every "open jobs" query).
    OPEN_STATUSES = (Status.ACTIVE, Status.ON_HOLD)

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
            # The API's job list: pages in (updated_at, id) order, `updated_since` syncs.
            models.Index(fields=["updated_at", "id"], name="job_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("crm:job", args=[self.public_id])

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class JobRole(models.Model):
    """Who holds one of the pipeline's roles on one job."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="roles", verbose_name=_("job"))
    role = models.ForeignKey(PipelineRole, on_delete=models.CASCADE, related_name="+", verbose_name=_("role"))
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="job_roles", verbose_name=_("held by")
    )

    class Meta:
        ordering = ["job", "role__name"]
        verbose_name = _("role on a job")
        verbose_name_plural = _("roles on jobs")
        constraints = [models.UniqueConstraint(fields=["job", "role"], name="jobrole_one_per_role")]

    def __str__(self) -> str:
        return f"{self.job.reference}: {self.role.name}"


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
            # "Running late" (the dashboard, the navigation's count): a job's open milestones
            # with their dates, read from the index alone.
            models.Index(
                fields=["job", "forecast_date", "planned_date"],
                condition=Q(completed_at__isnull=True, forecast_date__isnull=False),
                name="milestone_job_open_dates_idx",
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
        ROLE_CHANGED = "role_changed", _("Role holder changed")
        DATES_TOLD = "dates_told", _("New dates told")
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
        MESSAGE_ASSIGNED = "message_assigned", _("Message filed on the job")
        SMS_CONSENT_GIVEN = "sms_consent_given", _("Texted us: texts allowed")
        SMS_OPTED_OUT = "sms_opted_out", _("Asked for no more texts")
        SMS_OPTED_IN = "sms_opted_in", _("Texts allowed again")
        HELD = "held", _("Put on hold")
        RESUMED = "resumed", _("Resumed")
        CANCELLED = "cancelled", _("Cancelled")
        COMPLETED = "completed", _("Completed")
        SURVEY_ANSWERED = "survey_answered", _("Survey answered")
        CHECK_IN_ANSWERED = "check_in_answered", _("Check-in answered")
        VISIT_BOOKED = "visit_booked", _("Visit booked")
        VISIT_MOVED = "visit_moved", _("Visit moved")
        VISIT_CONFIRMED = "visit_confirmed", _("Visit confirmed by the customer")
        VISIT_MOVE_ASKED = "visit_move_asked", _("Customer asked to move a visit")
        VISIT_ON_THE_WAY = "visit_on_the_way", _("On the way")
        VISIT_RUNNING_LATE = "visit_running_late", _("Running late")
        VISIT_ARRIVED = "visit_arrived", _("Arrived")
        VISIT_DONE = "visit_done", _("Visit done")
        VISIT_CANCELLED = "visit_cancelled", _("Visit cancelled")
        VISIT_MISSED = "visit_missed", _("Couldn't get in")
        FILES_RECEIVED = "files_received", _("Files received")
        DOCUMENT_SHARED = "document_shared", _("Document shared")
        DOCUMENT_WITHDRAWN = "document_withdrawn", _("Document withdrawn")
        FILES_REMOVED = "files_removed", _("Files removed (retention)")

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

    def _promise(self) -> str:
        """The promise an event is about, in the team's words (not the customer's title)."""
        return promise_staff_title(str(self.data.get("promise_kind", "")), str(self.data.get("promise", "?")))

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
                    "old": _day_said(d.get("old_date")),
                    "new": _day_said(d.get("new_date")),
                    "reason": d.get("reason", ""),
                }
            case self.Kind.PROMISE_MOVED:
                return _("%(promise)s: %(old)s → %(new)s (%(reason)s)") % {
                    "promise": self._promise(),
                    "old": _day_said(d.get("old_due_at")),
                    "new": _day_said(d.get("new_due_at")),
                    "reason": d.get("reason", ""),
                }
            case self.Kind.PROMISE_MADE | self.Kind.PROMISE_KEPT | self.Kind.PROMISE_BROKEN:
                return self._promise()
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
            case self.Kind.DETAILS_CHANGED:
                changed = d.get("changed", {})
                parts = []
                if deleted := d.get("deleted_contacts"):
                    parts.append(_("%(names)s deleted from the customer's contacts") % {"names": ", ".join(deleted)})
                if "title" in changed:
                    title = changed["title"]
                    parts.append(_("title “%(old)s” → “%(new)s”") % {k: title.get(k, "?") for k in ("old", "new")})
                for key, label in (
                    ("contacts", _("contacts")),
                    ("installers", _("installers")),
                    ("crew", _("who goes on the visit")),
                ):
                    if key in changed:
                        names = ", ".join(changed[key].get("names", [])) or _("none")
                        parts.append(f"{label}: {names}")
                return "; ".join(parts)
            case self.Kind.ROLE_CHANGED:
                return "; ".join(
                    _("%(role)s: %(old)s → %(new)s")
                    % {"role": c.get("role", "?"), "old": c.get("old") or "—", "new": c.get("new", "?")}
                    for c in d.get("changed", [])
                )
            case self.Kind.DATES_TOLD:
                return "; ".join(
                    _("%(stage)s: %(old)s → %(new)s")
                    % {
                        "stage": c.get("stage", "?"),
                        "old": _day_said(c.get("old_date")),
                        "new": _day_said(c.get("new_date")),
                    }
                    for c in d.get("changes", [])
                )
            case self.Kind.CHECK_IN_ANSWERED:
                answer = _("all good") if d.get("answer") == "all_good" else _("there is a problem")
                return f"{d.get('contact', '')}: {answer}"
            case self.Kind.FILES_RECEIVED | self.Kind.FILES_REMOVED:
                names = ", ".join(d.get("names", []))
                return f"{d['contact']}: {names}" if d.get("contact") else names
            case self.Kind.DOCUMENT_WITHDRAWN:
                title = str(d.get("title", ""))
                return f"{title} ({d['reason']})" if d.get("reason") else title
            case self.Kind.VISIT_BOOKED | self.Kind.VISIT_MOVED:
                return _("%(visit)s: %(window)s") % {"visit": d.get("title", "?"), "window": _window_said(d)}
            case self.Kind.VISIT_ON_THE_WAY | self.Kind.VISIT_RUNNING_LATE:
                expected = _local(d.get("expected_at"))
                said = _("%(visit)s: expected %(at)s") % {
                    "visit": d.get("title", "?"),
                    "at": _clock_said(expected),
                }
                return f"{said} ({d['reason']})" if d.get("reason") else said
            case _:
                return str(d.get("reason") or d.get("title") or "")
