"""When a contact's links were used: a sign-in with a link, a calendar app fetching their feed
(once a day at most: apps poll), their links reset. Written by crm.services.contacts, shown on the
contact's page in the CRM (the last ones), so staff can answer "did they open it?" and notice a
link used where it should not be."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models.customers import Contact


class ContactLinkUse(models.Model):
    class Kind(models.TextChoices):
        SIGN_IN = "sign_in", _("Signed in with a link")
        CALENDAR = "calendar", _("Calendar fetched")
        RESET = "reset", _("Links reset")

    class Device(models.TextChoices):
        PHONE = "phone", _("Phone")
        TABLET = "tablet", _("Tablet")
        COMPUTER = "computer", _("Computer")
        UNKNOWN = "unknown", _("Unknown")

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="link_uses", verbose_name=_("contact"))
    at = models.DateTimeField(_("when"), default=timezone.now)
    # The day of ``at`` where the team works: what "once a day" counts calendar fetches by.
    day = models.DateField(_("day"))
    kind = models.CharField(_("what"), max_length=16, choices=Kind.choices)
    # From the browser's or calendar app's User-Agent (crm.services.contacts.device_from_user_agent).
    device = models.CharField(_("device"), max_length=16, choices=Device.choices, default=Device.UNKNOWN)
    # The staff member who reset the links; empty when the contact did (and for every other use).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )

    class Meta:
        verbose_name = _("link use")
        verbose_name_plural = _("link uses")
        ordering = ["-at", "-pk"]
        constraints = [
            # A calendar app fetches every few minutes: one row per contact and day says enough
            # (the INSERT of a fetch does nothing once the day has its row).
            models.UniqueConstraint(
                fields=["contact", "day"], condition=Q(kind="calendar"), name="contact_link_use_calendar_daily"
            ),
        ]
        indexes = [
            # The contact's page in the CRM: their last uses, newest first.
            models.Index(fields=["contact", "-at"], name="crm_link_use_contact_at"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} · {self.get_kind_display()} · {self.at:%Y-%m-%d %H:%M}"
