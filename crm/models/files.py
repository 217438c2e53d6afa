"""Files on a job, both ways: photos and documents a customer sends (from the portal, or attached
to an email) and documents the team shares with the customer (a quote, an order confirmation, a
certificate, photos of the finished work). Every change goes through crm.services.files.

The stored file's name is ours (``jobs/<job public id>/<file public id>.<ext>``), never the one
the sender gave: that one is kept as text, for people, and only ever sent back quoted in a
Content-Disposition header. Files are never served from a public path (crm.downloads)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models.customers import Contact
from crm.models.jobs import Job
from crm.models.messages import Message
from crm.models.promises import Commitment


def stored_name(instance: JobFile, filename: str) -> str:
    """Where a file's bytes are kept: the job's folder and the file's own id (``filename`` is the
    extension the content was found to have, chosen by crm.uploads, never the sender's name)."""
    return f"jobs/{instance.job.public_id}/{instance.public_id}{filename}"


def thumbnail_name(instance: JobFile, filename: str) -> str:
    return f"jobs/{instance.job.public_id}/{instance.public_id}-thumb{filename}"


class JobFile(models.Model):
    class Direction(models.TextChoices):
        IN = "in", _("From the customer")
        OUT = "out", _("Shared with the customer")

    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, editable=False, unique=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="files", verbose_name=_("job"))
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    # For people: the title staff gave a document, or the name the customer's file had.
    title = models.CharField(_("title"), max_length=200)
    original_name = models.CharField(_("original file name"), max_length=200, blank=True)
    content_type = models.CharField(_("content type"), max_length=100)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    width = models.PositiveIntegerField(_("width"), null=True, blank=True)
    height = models.PositiveIntegerField(_("height"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    file = models.FileField(_("file"), upload_to=stored_name, max_length=300, blank=True)
    thumbnail = models.FileField(_("thumbnail"), upload_to=thumbnail_name, max_length=300, blank=True)
    # From the customer: who sent it and the message it came with (a portal upload, an email).
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="files", verbose_name=_("from")
    )
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="files", verbose_name=_("message")
    )
    # Shared by the team: who shared it, and the promise its sharing kept.
    shared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("shared by"),
    )
    commitment = models.ForeignKey(
        Commitment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="documents",
        verbose_name=_("promise it keeps"),
    )
    created_at = models.DateTimeField(_("at"), default=timezone.now, editable=False)
    # Withdrawn: no longer on the portal (the file is kept for the record).
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("withdrawn by"),
    )
    withdrawn_reason = models.CharField(_("why it was withdrawn"), max_length=300, blank=True)
    # Removed by the retention schedule: the bytes are gone, this row says what was there.
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("file")
        verbose_name_plural = _("files")
        indexes = [
            # The job pages: the job's files, newest first.
            models.Index(fields=["job", "-created_at"], name="jobfile_job_created_idx"),
            # The retention schedule: files still stored.
            models.Index(fields=["job"], condition=Q(removed_at__isnull=True), name="jobfile_stored_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @property
    def is_stored(self) -> bool:
        return self.removed_at is None

    @property
    def on_portal(self) -> bool:
        return self.withdrawn_at is None and self.removed_at is None

    def download_name(self) -> str:
        """The name the file is downloaded under: what people called it, with the extension its
        content has."""
        return self.original_name or self.title

    def summary_data(self) -> dict[str, Any]:
        """What a JobEvent keeps of a file (the row may be withdrawn or removed later)."""
        return {"file_id": str(self.public_id), "title": self.title, "size": self.size}
