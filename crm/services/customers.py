"""Writes to customers and their contacts, as staff enter them in the CRM.

Customers and contacts are reference data, not job history: creating or changing one writes no
JobEvent. What is kept as evidence is kept on the contact itself: when SMS consent was given and
how. Deleting a contact is job history: each of their jobs records who it has left
(``contacts_delete``), and a contact who is the only one on an open job is not deleted at all.

The rules a contact's preferences follow:

- SMS consent is recorded when it is given: ``sms_consent_at`` is the moment the change is saved
  and ``sms_consent_source`` (how it was given) is required, as is a phone number. A consent already on record keeps its
  original time and source.
- Withdrawing consent clears both. A contact who preferred SMS then falls back to email (or to a
  phone call when they have no address): SMS is never chosen without consent.
- A new email address clears the bounce recorded against the old one.
- A phone number, when given, must be a valid number, and is stored in E.164 (crm.phones: the
  same reading as the forms and the CSV import; typed without a country code, a number of
  PHONE_DEFAULT_REGION). SMS consent and an SMS preference need a number texts can reach (a
  mobile: ``crm.phones.can_text``).

crm.services.contacts applies the same rules to the portal's preferences page.

Every function is keyword-only and atomic, and validates the model (``full_clean``) before it
saves, so a rule broken here is a ValidationError a form can show next to the field.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import phones
from crm.errors import ConflictError, DomainError
from crm.models import Contact, Customer, Job, JobEvent, number_opted_out
from crm.services.contacts import OPTED_OUT_REFUSAL, customers_touch, fallback_channel
from crm.services.events import event, record_events
from crm.services.versions import jobs_touch


@transaction.atomic
def customer_create(
    *,
    name: str,
    kind: str = Customer.Kind.HOUSEHOLD,
    address: str = "",
    notes: str = "",
) -> Customer:
    customer = Customer(name=name.strip(), kind=kind, address=address.strip(), notes=notes.strip())
    customer.full_clean()
    customer.save()
    return customer


@transaction.atomic
def customer_update(*, customer: Customer, name: str, kind: str, address: str = "", notes: str = "") -> Customer:
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    customer.name = name.strip()
    customer.kind = kind
    customer.address = address.strip()
    customer.notes = notes.strip()
    customer.full_clean()
    customer.save(update_fields=["name", "kind", "address", "notes", "updated_at"])
    return customer


def _apply_sms_consent(contact: Contact, *, consent: bool, source: str, had_consent: bool) -> None:
    """Record, keep or clear SMS consent on ``contact`` (not saved)."""
    source = source.strip()
    if consent and not had_consent:
        if not contact.phone:
            raise ValidationError({"phone": _("SMS consent needs a mobile phone number.")})
        if not phones.can_text(contact.phone):
            raise ValidationError({"phone": phones.cannot_text_error(contact.phone)})
        if not source:
            raise ValidationError({"sms_consent_source": _("Say how the contact gave their consent to SMS.")})
        if number_opted_out(contact.phone):
            raise ValidationError({"phone": str(OPTED_OUT_REFUSAL)})
        contact.sms_consent_at = timezone.now()
        contact.sms_consent_source = source
        contact.sms_withdrawn_at = None
    elif not consent:
        if had_consent:
            contact.sms_withdrawn_at = timezone.now()
        contact.sms_consent_at = None
        contact.sms_consent_source = ""
    # Consent already on record: its time and source are the evidence and stay as they were.


def _check_phone(contact: Contact, *, stored: str = "") -> None:
    """The number as it is stored: E.164 (a ValidationError on the phone when it is not a valid
    number). A number on record from before E.164 that cannot be read stays as it is while it is
    left unchanged: the rest of the contact can still be edited (phones_unparsed lists it)."""
    try:
        contact.phone = phones.to_e164(contact.phone)
    except ValidationError as error:
        if not (stored and contact.phone == stored):
            raise ValidationError({"phone": error}) from error


def _check_sms_preference(contact: Contact) -> None:
    # The check constraint says the same; this puts the message next to the field.
    if contact.preferred_channel == Contact.Channel.SMS and contact.sms_consent_at is None:
        raise ValidationError(
            {"preferred_channel": _("SMS can only be the preferred channel once the contact has consented to SMS.")}
        )
    if contact.preferred_channel == Contact.Channel.SMS and contact.phone and not phones.can_text(contact.phone):
        raise ValidationError({"preferred_channel": phones.cannot_text_error(contact.phone)})


@transaction.atomic
def contact_create(
    *,
    customer: Customer,
    name: str,
    email: str = "",
    phone: str = "",
    language: str = settings.LANGUAGE_CODE,
    preferred_channel: str = Contact.Channel.EMAIL,
    time_zone: str | None = None,
    sms_consent: bool = False,
    sms_consent_source: str = "",
) -> Contact:
    contact = Contact(
        customer=customer,
        name=name.strip(),
        email=email.strip(),
        phone=phone.strip(),
        language=language,
        preferred_channel=preferred_channel,
    )
    if time_zone is not None:
        contact.time_zone = time_zone
    _check_phone(contact)
    _apply_sms_consent(contact, consent=sms_consent, source=sms_consent_source, had_consent=False)
    _check_sms_preference(contact)
    contact.full_clean()
    contact.save()
    customers_touch([contact.pk])
    return contact


@transaction.atomic
def contact_update(
    *,
    contact: Contact,
    name: str,
    email: str,
    phone: str,
    language: str,
    preferred_channel: str,
    time_zone: str,
    sms_consent: bool,
    sms_consent_source: str = "",
) -> Contact:
    """Replace the contact's details and preferences; see the module's rules for consent and bounces.

    Decisions are made on the row as it is in the database (locked), not on the caller's copy,
    which a ModelForm may already have changed.
    """
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    had_consent = contact.sms_consent_at is not None
    was_sms = contact.preferred_channel == Contact.Channel.SMS
    email = email.strip()

    if email != contact.email:
        contact.email_bounced_at = None
        contact.email_bounce_reason = ""
    if email.lower() != contact.email.lower():
        # Every link bound to the old address ends: sign-in links and sessions through its
        # fingerprint, and the calendar addresses made before they carried one through the version.
        contact.link_version += 1
    stored_phone = contact.phone
    contact.name = name.strip()
    contact.email = email
    contact.phone = phone.strip()
    contact.language = language
    contact.time_zone = time_zone
    contact.preferred_channel = preferred_channel
    _check_phone(contact, stored=stored_phone)
    _apply_sms_consent(contact, consent=sms_consent, source=sms_consent_source, had_consent=had_consent)
    if had_consent and not sms_consent and was_sms and preferred_channel == Contact.Channel.SMS:
        # Consent withdrawn by a contact who preferred SMS: they still hear from us, by email if
        # they have an address, by phone otherwise (SMS preferred means a phone number is on file).
        contact.preferred_channel = fallback_channel(contact)
    _check_sms_preference(contact)
    contact.full_clean()
    contact.save()
    customers_touch([contact.pk])
    return contact


def _open_jobs_left_alone(contact_ids: set[int]) -> list[Job]:
    """The open jobs whose every contact is among ``contact_ids``: deleting them all would leave
    nobody to tell."""
    others = Job.contacts.through.objects.filter(job=OuterRef("pk")).exclude(contact_id__in=contact_ids)
    return list(
        Job.objects.filter(status__in=Job.OPEN_STATUSES, contacts__in=contact_ids)
        .exclude(Exists(others))
        .distinct()
        .order_by("reference")
    )


def contact_deletion_refusals(contacts: Iterable[Contact]) -> list[str]:
    """Why these contacts cannot be deleted (together) now: one line per open job that would have
    nobody left to tell. Empty when they can be."""
    return [
        _("%(job)s: nobody else to tell. Add another contact to the job, or close it, first.") % {"job": job}
        for job in _open_jobs_left_alone({contact.pk for contact in contacts})
    ]


def _job_ids_of(contact_ids: set[int]) -> set[int]:
    return set(Job.contacts.through.objects.filter(contact_id__in=contact_ids).values_list("job_id", flat=True))


@transaction.atomic
def contacts_delete(*, contacts: Iterable[Contact], actor: User | None) -> int:
    """Delete contacts; each job they were on records it (its contacts before and after, and who
    was deleted). Refused, with nothing deleted, while they are the only contacts of an open job.

    What they were sent and asked stays on the jobs (the messages, questions and promises lose
    their contact, not their history).

    Their jobs are locked first, then the contacts: the order of every job service (changing a
    job's contacts locks the job, then reads the contacts), so a deletion and a change of the same
    job's contacts wait for each other instead of deadlocking, and two deletions of a job's last
    two contacts cannot both pass the check."""
    ids = {contact.pk for contact in contacts}
    job_ids = _job_ids_of(ids)
    list(Job.objects.select_for_update().filter(pk__in=job_ids).order_by("pk").values_list("pk", flat=True))
    rows = list(Contact.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    if _job_ids_of(ids) != job_ids:
        raise ConflictError(_("A colleague has just changed these contacts' jobs; look again."))
    if refusals := contact_deletion_refusals(rows):
        raise DomainError(" ".join(refusals))
    jobs = Job.objects.filter(pk__in=job_ids).prefetch_related(
        Prefetch("contacts", queryset=Contact.objects.order_by("pk"))
    )
    events = []
    for job in jobs:
        before = list(job.contacts.all())
        after = [contact for contact in before if contact.pk not in ids]
        events.append(
            event(
                kind=JobEvent.Kind.DETAILS_CHANGED,
                actor=actor,
                job=job,
                changed={
                    "contacts": {
                        "old": [c.pk for c in before],
                        "new": [c.pk for c in after],
                        "names": sorted(c.name for c in after),
                    }
                },
                deleted_contacts=sorted(c.name for c in before if c.pk in ids),
            )
        )
    record_events(events)
    jobs_touch(job_ids)
    customers_touch([row.pk for row in rows])
    Contact.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)
