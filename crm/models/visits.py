"""Visits: someone at the customer's door in a window of time (a survey, a delivery, an installation
day, a repair call, a check). The window is a promise (a Commitment of kind ``visit``); every
change goes through crm.services.visits, which writes the JobEvent."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from crm.models.jobs import Job, Pipeline, StageTemplate


class VisitKind(models.Model):
    """A kind of visit one pipeline books, with the window the customer is given by default."""

    pipeline = models.ForeignKey(
        Pipeline, on_delete=models.CASCADE, related_name="visit_kinds", verbose_name=_("pipeline")
    )
    name = models.CharField(_("name"), max_length=100)
    name_fr = models.CharField(_("name in French"), max_length=100, blank=True)
    window_minutes = models.PositiveSmallIntegerField(
        _("arrival window (minutes)"),
        default=120,
        help_text=_("How long the window the customer is given lasts: the crew arrives within it."),
    )
    duration_minutes = models.PositiveSmallIntegerField(
        _("expected duration (minutes)"), default=120, help_text=_("How long the crew expects to stay.")
    )
    stage = models.ForeignKey(
        StageTemplate,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("stage"),
        help_text=_("The stage this kind of visit belongs to, if any."),
    )
    completes_stage = models.BooleanField(
        _("done visit reaches the stage"),
        default=False,
        help_text=_("When the visit is marked done, the job reaches its stage (e.g. “Installed”)."),
    )

    class Meta:
        ordering = ["pipeline", "name"]
        verbose_name = _("visit kind")
        verbose_name_plural = _("visit kinds")
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "name"], name="visitkind_unique_name"),
            models.CheckConstraint(condition=Q(window_minutes__gte=15), name="visitkind_window_at_least_15"),
        ]

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        if self.stage_id and self.pipeline_id and self.stage and self.stage.pipeline_id != self.pipeline_id:
            raise ValidationError({"stage": _("Choose a stage of this visit kind's pipeline.")})
        if self.completes_stage and not self.stage_id:
            raise ValidationError({"completes_stage": _("Choose the stage the visit reaches.")})

    @property
    def label(self) -> str:
        """The name in the active language (the French name when there is one and French is on)."""
        if self.name_fr and (get_language() or "").startswith("fr"):
            return self.name_fr
        return self.name

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)


class Subcontractor(models.Model):
    """A firm the business sends on some visits (a roofer, an electrician): who they are and how
    to reach them. A visit names the one going."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    contact_name = models.CharField(_("contact person"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("email"), blank=True)
    is_active = models.BooleanField(_("works with us"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("subcontractor")
        verbose_name_plural = _("subcontractors")

    def __str__(self) -> str:
        return self.name


class Visit(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        CONFIRMED = "confirmed", _("Confirmed by the customer")
        ON_THE_WAY = "on_the_way", _("On the way")
        ARRIVED = "arrived", _("Arrived")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")
        MISSED = "missed", _("Couldn't get in")

    # Still to happen: it can be moved, confirmed, told late, started.
    UPCOMING_STATUSES = (Status.PLANNED, Status.CONFIRMED, Status.ON_THE_WAY)
    CLOSED_STATUSES = (Status.DONE, Status.CANCELLED, Status.MISSED)

    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, editable=False, unique=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="visits", verbose_name=_("job"))
    kind = models.ForeignKey(VisitKind, on_delete=models.PROTECT, related_name="visits", verbose_name=_("kind"))
    window_start = models.DateTimeField(_("window starts"))
    window_end = models.DateTimeField(_("window ends"))
    all_day = models.BooleanField(
        _("all day"), default=False, help_text=_("No narrower window can be given: the customer is told so.")
    )
    duration_minutes = models.PositiveSmallIntegerField(_("expected duration (minutes)"))
    installers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="visits", verbose_name=_("who is going")
    )
    subcontractor = models.CharField(_("subcontractor"), max_length=200, blank=True)
    address = models.TextField(_("address"))
    prepare = models.TextField(_("what the customer should prepare"), blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PLANNED)
    # The window as a promise: kept when the crew arrives in time, broken when it ends without them.
    commitment = models.OneToOneField(
        "crm.Commitment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="visit",
        verbose_name=_("promise"),
    )
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    move_asked_at = models.DateTimeField(_("customer asked to move it at"), null=True, blank=True)
    on_the_way_at = models.DateTimeField(_("on the way at"), null=True, blank=True)
    expected_at = models.DateTimeField(_("expected arrival"), null=True, blank=True)
    arrived_at = models.DateTimeField(_("arrived at"), null=True, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("cancelled or missed at"), null=True, blank=True)
    close_reason = models.CharField(_("why"), max_length=300, blank=True)
    # The reminder went out (once), and the installer and owner were warned it is at risk (once
    # per window: a move clears both).
    reminded_at = models.DateTimeField(_("reminder sent at"), null=True, blank=True)
    at_risk_nudged_at = models.DateTimeField(_("at-risk warning sent at"), null=True, blank=True)
    # Bumped by every change: two people moving it at once, the second is told who won.
    version = models.PositiveIntegerField(_("version"), default=1)
    last_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("last changed by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["window_start", "id"]
        verbose_name = _("visit")
        verbose_name_plural = _("visits")
        constraints = [
            models.CheckConstraint(condition=Q(window_end__gt=F("window_start")), name="visit_window_ends_after_start"),
            models.CheckConstraint(
                condition=Q(status__in=["cancelled", "missed"], closed_at__isnull=False)
                | ~Q(status__in=["cancelled", "missed"]),
                name="visit_closed_has_its_time",
            ),
        ]
        indexes = [
            # The API's visit list: pages in (updated_at, id) order, `updated_since` syncs.
            models.Index(fields=["updated_at", "id"], name="visit_updated_idx"),
            # Today's visits, the reminders and the at-risk scan: upcoming visits by window.
            models.Index(
                fields=["window_start"],
                condition=Q(status__in=["planned", "confirmed", "on_the_way"]),
                name="visit_upcoming_start_idx",
            ),
            models.Index(fields=["job", "window_start"], name="visit_job_start_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job.reference} {self.kind}: {self.window_start:%Y-%m-%d %H:%M}"

    @property
    def is_upcoming(self) -> bool:
        return self.status in self.UPCOMING_STATUSES

    def nobody_on_the_way(self, now: datetime) -> bool:
        """Nobody has set off this close to the window (the pipeline's at-risk threshold)."""
        threshold = timedelta(minutes=self.job.pipeline.visit_at_risk_minutes)
        return self.status in (self.Status.PLANNED, self.Status.CONFIRMED) and now >= self.window_start - threshold

    def at_risk(self, now: datetime) -> bool:
        """Live, for the dashboard: the window is still ahead or under way and the crew will miss it
        — told late past its end, nobody on the way yet this close to it, or so warned by the scan
        (a crew still at its previous visit). Select ``job__pipeline`` to save a query."""
        if self.status not in self.UPCOMING_STATUSES or self.window_end <= now:
            return False
        if self.expected_at is not None and self.expected_at > self.window_end:
            return True
        return self.status != self.Status.ON_THE_WAY and (
            self.nobody_on_the_way(now) or self.at_risk_nudged_at is not None
        )

    @property
    def what_to_prepare(self) -> str:
        """What the customer should get ready, in the active language: as typed for this visit,
        else what its stage asks (select_related ``kind__stage`` to save a query)."""
        if self.prepare:
            return self.prepare
        stage = self.kind.stage
        return stage.instructions if stage is not None else ""

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    @property
    def busy_until(self) -> datetime:
        """When the crew is free again: the latest they may arrive plus the time they stay."""
        return self.window_end + self.duration
