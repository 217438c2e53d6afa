"""Who looked at which customer's data, and when: a customer's page, a job's page (its messages
and files), a file, the unassigned inbox, an export. A compact table of its own — not the job's
history, which tells the customer's story — written by crm.services.access_log, one row per page
view, kept ACCESS_LOG_RETENTION_DAYS and read by managers in the admin."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models.customers import Customer


class AccessRecord(models.Model):
    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("Customer page")
        JOB = "job", _("Job page")
        FILE = "file", _("File")
        INBOX = "inbox", _("Unassigned messages")
        EXPORT = "export", _("Export")

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    # The person, and their username as it was (kept if the account is deleted later).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("who")
    )
    username = models.CharField(_("username"), max_length=150)
    kind = models.CharField(_("what"), max_length=16, choices=Kind.choices)
    # The customer whose data it was (none for an export or the inbox, which span customers).
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("customer")
    )
    subject = models.CharField(_("which"), max_length=200, blank=True)
    path = models.CharField(_("address"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("access record")
        verbose_name_plural = _("access log")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["customer", "-at"], name="crm_access_customer_at")]

    def __str__(self) -> str:
        return f"{self.username} · {self.get_kind_display()} · {self.subject}"
