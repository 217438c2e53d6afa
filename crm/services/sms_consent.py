"""Who may be texted, as the customers themselves said it by text: STOP (or the provider refusing
a number that unsubscribed) takes a number off — every contact with that number loses their SMS
consent, and no text is handed to the provider for it again (crm.services.delivery checks) —
START puts it back, and a customer who texts us first has agreed to texts ("texted us"), unless
that number opted out.

Each change is on the record where the team looks: the contact's consent (time and source), an
event on their most recently active job, and an alert to its owner when texts stop."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from crm import phones
from crm.models import Contact, Job, JobEvent, SmsOptOut, number_opted_out
from crm.services.alerts import alert_owner
from crm.services.contacts import contact_give_sms_consent, contacts_with_phone, customers_touch, fallback_channel
from crm.services.events import record_event

logger = logging.getLogger(__name__)


def _e164(number: str) -> str:
    return phones.e164_or_none(number) or number.strip()


def contacts_with_number(number: str) -> list[Contact]:
    """The contacts whose number is ``number``, however it was stored (indexed: contacts_with_phone)."""
    return sorted(contacts_with_phone(number), key=lambda contact: contact.pk)


def latest_job(contacts: list[Contact]) -> Job | None:
    """The most recently active job of these contacts: an open one first, then the last changed."""
    if not contacts:
        return None
    jobs = Job.objects.filter(contacts__in=contacts).select_related("owner", "customer").distinct()
    open_job = jobs.filter(status__in=Job.OPEN_STATUSES).order_by("-updated_at", "-pk").first()
    return open_job or jobs.order_by("-updated_at", "-pk").first()


# How a consent came, as the team reads it on the contact (in the site's language).
TEXTED_US = gettext_noop("texted us")
TEXTED_START = gettext_noop("texted START")


def _source(text: str) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _(text)


def sms_opt_out(*, number: str, source: str, said: str = "", at: datetime | None = None) -> SmsOptOut:
    """No more texts to ``number``, from now: recorded once (a second STOP changes nothing), every
    contact with the number without SMS consent (a contact who preferred texts falls back to email
    or a call), the owner of their latest job told.

    The record and the consent come first, in their own transaction, by plain UPDATEs that no
    odd contact data can refuse; telling the team comes after and cannot undo them."""
    number = _e164(number)
    at = at or timezone.now()
    with transaction.atomic():
        contacts = contacts_with_number(number)
        row, created = SmsOptOut.objects.get_or_create(
            number=number,
            defaults={"contact": contacts[0] if contacts else None, "at": at, "source": source, "said": said[:160]},
        )
        if not created:
            return row
        for contact in contacts:
            Contact.objects.filter(pk=contact.pk).update(
                sms_consent_at=None,
                sms_consent_source="",
                sms_withdrawn_at=at,
                updated_at=timezone.now(),
                preferred_channel=Case(
                    When(preferred_channel=Contact.Channel.SMS, then=Value(fallback_channel(contact))),
                    default=F("preferred_channel"),
                ),
            )
            contact.refresh_from_db(fields=["sms_consent_at", "sms_consent_source", "preferred_channel"])
        customers_touch([c.pk for c in contacts])
    logger.info("SMS opt-out of %s (%s: %s)", number, source, said)
    try:
        with transaction.atomic():
            _tell_opted_out(row, contacts, number=number, said=said, source=source)
    except Exception:
        logger.exception("SMS opt-out of %s recorded, but telling the owner failed", number)
    return row


def _tell_opted_out(row: SmsOptOut, contacts: list[Contact], *, number: str, said: str, source: str) -> None:
    job = latest_job(contacts)
    if job is None:
        return
    who = ", ".join(contact.name for contact in contacts)
    record_event(job=job, kind=JobEvent.Kind.SMS_OPTED_OUT, actor=None, contact=who, number=number, said=said)
    alert_owner(
        job,
        name="sms-stopped",
        context={"contacts": contacts, "number": number, "said": said, "by_provider": source != "keyword"},
        key=f"sms-stopped:{row.pk}",
    )


@transaction.atomic
def sms_opt_in(*, number: str, said: str, at: datetime | None = None) -> list[Contact]:
    """Texts welcome again on ``number`` (START): the opt-out lifted and each contact with the
    number consenting anew, "texted START" at this time."""
    number = _e164(number)
    at = at or timezone.now()
    SmsOptOut.objects.filter(number=number).delete()
    textable = phones.can_text(number)
    contacts = [
        contact_give_sms_consent(contact=contact, source=_source(TEXTED_START), at=at)
        for contact in (contacts_with_number(number) if textable else [])
    ]
    job = latest_job(contacts)
    if job is not None:
        who = ", ".join(contact.name for contact in contacts)
        record_event(job=job, kind=JobEvent.Kind.SMS_OPTED_IN, actor=None, contact=who, number=number, said=said)
    return contacts


def consent_by_texting(*, contact: Contact, job: Job | None, at: datetime) -> bool:
    """A contact who texts us first has agreed to texts — unless they said no to texts before
    (STOP, or consent withdrawn), or their number does not take texts. True when recorded now."""
    if contact.sms_consent_at is not None or contact.sms_withdrawn_at is not None:
        return False  # on record already, or they said no to texts: texting us is not a yes
    if number_opted_out(contact.phone) or not phones.can_text(contact.phone):
        return False
    contact_give_sms_consent(contact=contact, source=_source(TEXTED_US), at=at)
    if job is not None:
        record_event(job=job, kind=JobEvent.Kind.SMS_CONSENT_GIVEN, actor=None, contact=contact.name)
    return True
