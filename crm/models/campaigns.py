"""Positive-contact campaigns: a tip, a training invitation, an event, sent to a segment of contacts."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models.jobs import Pipeline
from crm.workdays import business_today


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
