"""Customers (households and companies), their contacts, and the staff's own profiles."""

from __future__ import annotations

import functools
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.phones import stored_digits


@functools.cache
def known_time_zones() -> frozenset[str]:
    # available_timezones() reads the tz database from disk on every call.
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in known_time_zones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


def default_contact_time_zone() -> str:
    return settings.DEFAULT_CONTACT_TIME_ZONE


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
    # Moved by every save (the API's updated_since: an incremental sync).
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

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
    # The number's digits alone, kept by the database: found however it was typed (crm.phones).
    phone_digits = models.GeneratedField(
        expression=stored_digits("phone"),
        output_field=models.CharField(max_length=32),
        db_persist=True,
        verbose_name=_("phone digits"),
    )
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE)
    preferred_channel = models.CharField(
        _("preferred channel"), max_length=10, choices=Channel.choices, default=Channel.EMAIL
    )
    # SMS is never sent without a recorded consent: when, and how it was given.
    sms_consent_at = models.DateTimeField(_("SMS consent given at"), null=True, blank=True)
    # When they last said no to texts (unticked the box, or staff recorded it): texting us after
    # that is not a yes (crm.services.sms_consent.consent_by_texting). Cleared by a new consent.
    sms_withdrawn_at = models.DateTimeField(_("SMS consent withdrawn at"), null=True, blank=True)
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
    # Part of what every sign-in link, short link, calendar address and portal session is bound
    # to (crm.links.contact_fingerprint): bumped to take them all back at once ("reset my
    # links", a new email address). 0 binds exactly as links did before the version existed.
    link_version = models.PositiveIntegerField(_("link version"), default=0, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    # Moved by every save (the API's updated_since: an incremental sync).
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

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
            # A sign-in link asked for by mobile number.
            models.Index(fields=["phone_digits"], name="contact_phone_digits_idx"),
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
    """What a customer needs to reach a staff member directly (the owner card, every message), and
    the language we write to the staff member in."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile", verbose_name=_("user")
    )
    phone = models.CharField(_("direct phone"), max_length=32, blank=True)
    job_title = models.CharField(_("job title"), max_length=100, blank=True)
    language = models.CharField(
        _("language of their alerts"),
        max_length=8,
        choices=settings.LANGUAGES,
        blank=True,
        help_text=_(
            "For the emails we send this person: a failed message, a reply, a promise at risk. Empty: the site's."
        ),
    )
    goes_on_visits = models.BooleanField(
        _("goes on visits"),
        default=True,
        help_text=_("Offered as an installer when a visit is booked (untick for office staff)."),
    )
    # Part of every calendar link the person has been given (crm.links.staff_calendar_url): bumped
    # to make a new link, which stops every older one.
    calendar_version = models.PositiveIntegerField(_("calendar link version"), default=1)

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")

    def __str__(self) -> str:
        return str(self.user)
