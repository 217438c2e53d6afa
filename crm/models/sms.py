"""Numbers that asked for no more text messages (STOP, or the provider's own "unsubscribed"
refusal). Kept per number, not per contact: a carrier blocks the number, and two contacts may
share one. While a number is here no text is handed to the provider for it (crm.services.delivery);
START takes it off. Written by crm.services.sms_consent (a STOP texted, the provider's refusal
or its status callback)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm import phones
from crm.models.customers import Contact


class SmsOptOut(models.Model):
    class Source(models.TextChoices):
        KEYWORD = "keyword", _("Texted a stop word")
        PROVIDER = "provider", _("The SMS provider refused: unsubscribed")

    # E.164, as the provider gives it (crm.phones).
    number = models.CharField(_("phone number"), max_length=32, unique=True)
    contact = models.ForeignKey(
        Contact,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sms_opt_outs",
        verbose_name=_("contact"),
        help_text=_("The contact the number was matched to when it opted out, if any."),
    )
    at = models.DateTimeField(_("opted out at"), default=timezone.now)
    source = models.CharField(_("how"), max_length=16, choices=Source.choices)
    # What they texted ("STOP", "Arrêt"), or the provider's error code.
    said = models.CharField(_("what was said"), max_length=160, blank=True)

    class Meta:
        verbose_name = _("SMS opt-out")
        verbose_name_plural = _("SMS opt-outs")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.number} ({self.get_source_display()})"


def number_opted_out(number: str) -> bool:
    """Whether ``number`` (as stored or typed: compared in E.164) asked for no more texts."""
    return bool(number) and SmsOptOut.objects.filter(number=phones.e164_or_none(number) or number).exists()
