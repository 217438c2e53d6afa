"""CSV imports: the uploaded rows, their check, and the run's progress."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ImportRun(models.Model):
    """One CSV import of customers and contacts (crm.services.csv_import): the file's rows, how its
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
    # Our field name -> index of the file's column that holds it (crm.csv_import.FIELDS).
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.UPLOADED)

    # What the check found (crm.services.csv_import.import_validate).
    total_rows = models.PositiveIntegerField(_("rows in the file"), default=0)
    valid_rows = models.PositiveIntegerField(_("rows ready to import"), default=0)
    invalid_rows = models.PositiveIntegerField(_("rows with errors"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    # [{"row": 12, "field": "email", "column": "E-mail", "message": "..."}, ...]: the first
    # crm.csv_import.MAX_STORED_ERRORS of them; error_count says how many there were in all.
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
    # Jobs (optional job columns): what the check says it would do, then what it did.
    jobs_to_create = models.PositiveIntegerField(_("jobs to open"), default=0)
    welcomes_to_send = models.PositiveIntegerField(_("welcome messages to send"), default=0)
    jobs_to_find = models.PositiveIntegerField(_("jobs already there"), default=0)
    jobs_created = models.PositiveIntegerField(_("jobs opened"), default=0)
    welcomes_queued = models.PositiveIntegerField(_("welcome messages queued"), default=0)
    jobs_existing = models.PositiveIntegerField(_("jobs found already there"), default=0)
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
