"""Writes to contacts' preferences: language, time zone, channel, SMS consent, opt-out.

Each function locks the contact row, changes the locked copy, validates the whole row (the model's
constraints: SMS only with a recorded consent, a consent always says how it was given) and saves
only the fields it changed. A preference the contact cannot have raises a DomainError whose
message is shown to them as it is.

SMS consent and an SMS preference need a number texts can reach (a mobile: ``crm.phones.can_text``).

A fresh sign-in link (``contact_send_portal_links``) is found by email address or by mobile
number; a number is compared in E.164, as numbers are stored (``crm.phones``: typed without a
country code, a number of PHONE_DEFAULT_REGION).

Links can be taken back (``contact_links_reset``): the contact's link version goes up, and every
sign-in link, short link, calendar address and portal session bound to the old one ends
(crm.links.contact_fingerprint). Each use of a link is noted (``contact_link_use_record``) with
the kind of device it came from, for the contact's page in the CRM.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime

import phonenumbers
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm import phones
from crm.errors import DomainError
from crm.models import Contact, ContactLinkUse, Customer, Job, Message, known_time_zones, number_opted_out
from crm.notify import Draft, portal_link_drafts
from crm.services.outbox import messages_queue
from crm.workdays import business_zone

logger = logging.getLogger(__name__)


def _lock(contact: Contact) -> Contact:
    return Contact.objects.select_for_update().get(pk=contact.pk)


def customers_touch(contact_ids: Iterable[int]) -> None:
    """A customer is shown with its contacts (the API, whose syncs read updated_at): a change of
    one of them moves the customer's updated_at too."""
    ids = [pk for pk in contact_ids if pk]
    if ids:
        Customer.objects.filter(contacts__pk__in=ids).update(updated_at=timezone.now())


def _save(contact: Contact, fields: set[str]) -> Contact:
    if not fields:
        return contact
    try:
        contact.full_clean(exclude=["customer"])
    except ValidationError as error:
        raise DomainError(" ".join(error.messages)) from error
    contact.save(update_fields=sorted(fields | {"updated_at"}))
    customers_touch([contact.pk])
    return contact


# Consent to texts is the customer's word, and so is STOP: only their START lifts it.
OPTED_OUT_REFUSAL = gettext_lazy(
    "This number texted STOP: we may text it again only once they text START to our number."
)


def fallback_channel(contact: Contact) -> str:
    """Where messages go when SMS is no longer allowed: email, else a phone call from the owner."""
    return Contact.Channel.EMAIL if contact.email else Contact.Channel.PHONE


# --- Each preference on its own (used by the staff side and by the portal) ----------------------


def _give_sms_consent(contact: Contact, *, source: str, at: datetime | None) -> set[str]:
    if contact.sms_consent_at is not None:
        # The first consent is the one on record; saying yes again changes nothing.
        return set()
    if not contact.phone:
        raise DomainError(_("Add a mobile phone number before agreeing to text messages."))
    if not phones.can_text(contact.phone):
        raise DomainError(phones.cannot_text_error(contact.phone))
    if not source.strip():
        raise DomainError(_("Say how the SMS consent was given."))
    if number_opted_out(contact.phone):
        raise DomainError(str(OPTED_OUT_REFUSAL))
    contact.sms_consent_at = at or timezone.now()
    contact.sms_consent_source = source.strip()[:200]
    contact.sms_withdrawn_at = None
    logger.info("Contact %s consented to SMS (%s)", contact.pk, contact.sms_consent_source)
    return {"sms_consent_at", "sms_consent_source", "sms_withdrawn_at"}


def _withdraw_sms_consent(contact: Contact) -> set[str]:
    if contact.sms_consent_at is None:
        return set()
    contact.sms_consent_at = None
    contact.sms_consent_source = ""
    contact.sms_withdrawn_at = timezone.now()
    changed = {"sms_consent_at", "sms_consent_source", "sms_withdrawn_at"}
    if contact.preferred_channel == Contact.Channel.SMS:
        contact.preferred_channel = fallback_channel(contact)
        changed.add("preferred_channel")
    logger.info("Contact %s withdrew SMS consent", contact.pk)
    return changed


def _set_preferred_channel(contact: Contact, channel: str) -> set[str]:
    if channel not in Contact.Channel.values:
        raise DomainError(_("Choose email, text message or phone call."))
    if channel == contact.preferred_channel:
        return set()
    if channel == Contact.Channel.SMS and contact.sms_consent_at is None:
        raise DomainError(_("We can only send text messages once you have agreed to receive them."))
    if channel == Contact.Channel.EMAIL and not contact.email:
        raise DomainError(_("We have no email address for you: choose another way to reach you."))
    if channel in (Contact.Channel.SMS, Contact.Channel.PHONE) and not contact.phone:
        raise DomainError(_("We have no phone number for you: choose another way to reach you."))
    if channel == Contact.Channel.SMS and not phones.can_text(contact.phone):
        raise DomainError(phones.cannot_text_error(contact.phone))
    contact.preferred_channel = channel
    return {"preferred_channel"}


def _set_language(contact: Contact, language: str) -> set[str]:
    if language not in {code for code, _name in settings.LANGUAGES}:
        raise DomainError(_("Choose one of the languages offered."))
    if language == contact.language:
        return set()
    contact.language = language
    return {"language"}


def _set_time_zone(contact: Contact, time_zone: str) -> set[str]:
    if time_zone not in known_time_zones():
        raise DomainError(_("%(value)s is not a known time zone.") % {"value": time_zone})
    if time_zone == contact.time_zone:
        return set()
    contact.time_zone = time_zone
    return {"time_zone"}


def _set_opted_out(contact: Contact, opted_out: bool) -> set[str]:
    if opted_out == (contact.opted_out_at is not None):
        return set()
    # An opt-out on record keeps its time; opting back in clears it.
    contact.opted_out_at = timezone.now() if opted_out else None
    return {"opted_out_at"}


@transaction.atomic
def contact_give_sms_consent(*, contact: Contact, source: str, at: datetime | None = None) -> Contact:
    """Record that the contact agreed to text messages: when, and how (``source``: "portal",
    "signed order form", "phone call"...). An earlier consent on record is kept as it is."""
    contact = _lock(contact)
    return _save(contact, _give_sms_consent(contact, source=source, at=at))


@transaction.atomic
def contact_withdraw_sms_consent(*, contact: Contact) -> Contact:
    """No more text messages; a contact who preferred them gets email (or a call) instead."""
    contact = _lock(contact)
    return _save(contact, _withdraw_sms_consent(contact))


@transaction.atomic
def contact_set_preferred_channel(*, contact: Contact, channel: str) -> Contact:
    """The channel the contact wants; SMS only once consent is on record."""
    contact = _lock(contact)
    return _save(contact, _set_preferred_channel(contact, channel))


@transaction.atomic
def contact_set_language(*, contact: Contact, language: str) -> Contact:
    contact = _lock(contact)
    return _save(contact, _set_language(contact, language))


@transaction.atomic
def contact_set_time_zone(*, contact: Contact, time_zone: str) -> Contact:
    contact = _lock(contact)
    return _save(contact, _set_time_zone(contact, time_zone))


@transaction.atomic
def contact_opt_out(*, contact: Contact) -> Contact:
    """Stop non-essential messages (check-ins, tips, surveys) to this contact. Idempotent: the
    first opt-out's time is kept."""
    Contact.objects.filter(pk=contact.pk, opted_out_at__isnull=True).update(
        opted_out_at=timezone.now(), updated_at=timezone.now()
    )
    customers_touch([contact.pk])
    contact.refresh_from_db(fields=["opted_out_at"])
    return contact


@transaction.atomic
def contact_opt_in(*, contact: Contact) -> Contact:
    """Non-essential messages are welcome again."""
    Contact.objects.filter(pk=contact.pk, opted_out_at__isnull=False).update(
        opted_out_at=None, updated_at=timezone.now()
    )
    customers_touch([contact.pk])
    contact.refresh_from_db(fields=["opted_out_at"])
    return contact


# --- Everything the portal's preferences page sets, at once --------------------------------------


@transaction.atomic
def contact_update_preferences(
    *,
    contact: Contact,
    language: str,
    time_zone: str,
    preferred_channel: str,
    sms_consent: bool,
    non_essential: bool,
    source: str,
) -> tuple[Contact, set[str]]:
    """Apply the preferences page in one transaction; the saved contact and the fields changed.

    Consent is settled first, so "yes to SMS, and text me" works in one go, and withdrawing it
    moves an SMS preference back to email before the channel is checked.
    """
    contact = _lock(contact)
    changed: set[str] = set()
    if sms_consent:
        changed |= _give_sms_consent(contact, source=source, at=None)
    else:
        changed |= _withdraw_sms_consent(contact)
        if preferred_channel == Contact.Channel.SMS:
            raise DomainError(_("We can only send text messages once you have agreed to receive them."))
    changed |= _set_preferred_channel(contact, preferred_channel)
    changed |= _set_language(contact, language)
    changed |= _set_time_zone(contact, time_zone)
    changed |= _set_opted_out(contact, not non_essential)
    return _save(contact, changed), changed


# --- A fresh sign-in link ------------------------------------------------------------------------


def _link_key(draft: Draft, *, prefix: str, minute: str) -> str:
    return f"{prefix}:{draft.channel}:{minute}"


def contacts_with_phone(phone: str) -> list[Contact]:
    """Every contact whose stored number is the number ``phone`` is, however either is written:
    compared in E.164, as numbers are stored (a number typed without a country code is one of
    PHONE_DEFAULT_REGION). Empty when ``phone`` is not a valid number.

    The rows are found by ``Contact.phone_digits`` (indexed): the digits of the E.164 form, and
    those of the national form, so that a number stored in it by something other than the
    services (the demo, a script) is found too. No digit-string fallback for the numbers the
    E.164 migration could not read: they are not valid numbers, so no valid number typed is
    them (phones_unparsed lists them, to be corrected)."""
    number = phones.parse(phone)
    if number is None:
        return []
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    national = phones.digits(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    candidates = Contact.objects.select_related("customer").filter(phone_digits__in={e164[1:], national})
    return [contact for contact in candidates if phones.e164_or_none(contact.phone) == e164]


@transaction.atomic
def contact_send_portal_links(
    *, email: str = "", phone: str = "", job_public_id: uuid.UUID | None = None
) -> list[Message]:
    """Queue a fresh portal sign-in link to every contact with this address or this mobile number
    (someone asked for one on the portal). Each link goes by the contact's own reachable channel:
    a text message only with recorded consent, so a contact reachable neither by email nor by text
    gets nothing (the person asking is told the same either way). With ``job_public_id``, each link
    opens that job if it is one of the contact's customer's. At most one message per contact, job
    and minute (a double click)."""
    if email.strip():
        contacts = list(Contact.objects.select_related("customer").filter(email__iexact=email.strip()))
    elif phone.strip():
        contacts = contacts_with_phone(phone)
    else:
        return []
    minute = timezone.now().strftime("%Y%m%d%H%M")
    queued: list[Message] = []
    for contact in contacts:
        job = (
            Job.objects.filter(customer_id=contact.customer_id, public_id=job_public_id).first()
            if job_public_id
            else None
        )
        prefix = f"link:{contact.pk}:{job.public_id if job else '-'}"
        queued += messages_queue(
            drafts=portal_link_drafts(contact, job=job),
            # Not about the job's progress: kept off the job, so it never counts as news.
            job=None,
            key=functools.partial(_link_key, prefix=prefix, minute=minute),
        )
    return queued


# --- Links taken back, and each use of one --------------------------------------------------------

# What a User-Agent says of the device, looked for in this order (lower case). Crawlers and
# servers first: a mail scanner or Google's calendar importer is nobody's phone.
_NOT_A_DEVICE = ("bot", "crawler", "spider", "google-calendar-importer", "curl/", "wget/", "python")
_TABLET = ("ipad", "tablet", "kindle", "silk/", "playbook")
_PHONE = ("iphone", "ipod", "windows phone", "iemobile", "blackberry", "opera mini", "mobile")
_COMPUTER = ("windows nt", "macintosh", "mac os x", "macos/", "x11", "cros", "linux")


def device_from_user_agent(user_agent: str) -> str:
    """The kind of device a User-Agent header names (a ``ContactLinkUse.Device``): a rough class
    for people reading a log, never a decision. Android browsers say "Mobile" on phones only; an
    Android app (a calendar sync) that says neither is most likely a phone; Apple's calendar
    fetcher names its system (iOS: a phone, an iPad being the rarer; macOS: a computer)."""
    agent = user_agent[:512].lower()
    if not agent.strip() or any(marker in agent for marker in _NOT_A_DEVICE):
        return ContactLinkUse.Device.UNKNOWN
    if any(marker in agent for marker in _TABLET):
        return ContactLinkUse.Device.TABLET
    if any(marker in agent for marker in _PHONE):
        return ContactLinkUse.Device.PHONE
    if "android" in agent:
        return ContactLinkUse.Device.TABLET if agent.startswith("mozilla/") else ContactLinkUse.Device.PHONE
    if agent.startswith("ios/"):
        return ContactLinkUse.Device.PHONE
    if any(marker in agent for marker in _COMPUTER):
        return ContactLinkUse.Device.COMPUTER
    return ContactLinkUse.Device.UNKNOWN


def contact_link_use_record(*, contact: Contact, kind: str, user_agent: str = "", actor: User | None = None) -> None:
    """Note that ``contact``'s link was just used (``kind``: a ``ContactLinkUse.Kind``) from the
    device ``user_agent`` names: one INSERT. A calendar fetch is noted once per contact and day
    (the INSERT does nothing once the day has its row: calendar apps poll)."""
    now = timezone.now()
    use = ContactLinkUse(
        contact=contact,
        at=now,
        day=timezone.localdate(now, business_zone()),
        kind=kind,
        device=device_from_user_agent(user_agent),
        actor=actor,
    )
    ContactLinkUse.objects.bulk_create([use], ignore_conflicts=kind == ContactLinkUse.Kind.CALENDAR)


@transaction.atomic
def contact_links_reset(*, contact: Contact, actor: User | None = None, user_agent: str = "") -> Contact:
    """Take back every link ``contact`` was given: their link version goes up, so every sign-in
    link (long and short), their calendar address and every portal session of theirs stop working
    (crm.links binds them all to the version). Unsubscribe links still work. ``actor``: the staff
    member who did it (none: the contact, on the portal). The contact as they now are (their new
    links are built from it)."""
    contact = _lock(contact)
    contact.link_version += 1
    contact.save(update_fields=["link_version"])
    contact_link_use_record(contact=contact, kind=ContactLinkUse.Kind.RESET, user_agent=user_agent, actor=actor)
    logger.info("Links of contact %s reset (%s)", contact.pk, f"staff {actor.pk}" if actor else "by the contact")
    return contact
