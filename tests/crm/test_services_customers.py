"""crm.services.customers: customers and contacts, SMS consent as evidence, bounces cleared."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.models import Contact, Customer
from crm.services.customers import contact_create, contact_update, customer_create, customer_update

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _details(contact: Contact, **changes):
    """Every field of contact_update, as the contact has them now, with ``changes``."""
    fields = {
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "language": contact.language,
        "preferred_channel": contact.preferred_channel,
        "time_zone": contact.time_zone,
        "sms_consent": contact.has_sms_consent,
        "sms_consent_source": contact.sms_consent_source,
    }
    return {**fields, **changes}


@pytest.fixture
def texter(customer: Customer) -> Contact:
    """A contact who consented to SMS and prefers it."""
    with time_machine.travel(NOON, tick=False):
        return contact_create(
            customer=customer,
            name="Paul Dupont",
            email="paul@example.com",
            phone="+33612345678",
            preferred_channel=Contact.Channel.SMS,
            sms_consent=True,
            sms_consent_source="signed order form",
        )


# --- Customers ----------------------------------------------------------------------------------


def test_it_creates_a_customer(db):
    customer = customer_create(name="  Martin SARL ", kind=Customer.Kind.COMPANY, address="1 rue X")
    customer.refresh_from_db()
    assert customer.name == "Martin SARL"
    assert customer.kind == "company"
    assert customer.address == "1 rue X"


def test_it_refuses_a_customer_without_a_name(db):
    with pytest.raises(ValidationError) as error:
        customer_create(name="  ")
    assert "name" in error.value.message_dict
    assert not Customer.objects.exists()


def test_it_refuses_an_unknown_kind(db):
    with pytest.raises(ValidationError) as error:
        customer_create(name="X", kind="alien")
    assert "kind" in error.value.message_dict


def test_it_updates_a_customer(customer):
    customer_update(customer=customer, name="Dupont family", kind=Customer.Kind.HOUSEHOLD, notes="Dog in garden")
    customer.refresh_from_db()
    assert customer.name == "Dupont family"
    assert customer.notes == "Dog in garden"


def test_it_decides_on_the_saved_customer_not_the_callers_copy(customer):
    stale = Customer.objects.get(pk=customer.pk)
    stale.created_at = datetime(2000, 1, 1, tzinfo=UTC)  # not a field the service writes
    customer_update(customer=stale, name="New", kind=Customer.Kind.HOUSEHOLD)
    customer.refresh_from_db()
    assert customer.name == "New"
    assert customer.created_at.year != 2000


# --- Contacts: creation -------------------------------------------------------------------------


def test_it_creates_a_contact_with_its_preferences(customer):
    contact = contact_create(
        customer=customer,
        name=" Jean ",
        email="jean@example.com",
        language="fr",
        time_zone="America/Montreal",
    )
    contact.refresh_from_db()
    assert contact.name == "Jean"
    assert contact.language == "fr"
    assert contact.time_zone == "America/Montreal"
    assert contact.preferred_channel == Contact.Channel.EMAIL
    assert contact.sms_consent_at is None
    assert contact.sms_consent_source == ""


def test_it_gives_a_new_contact_the_default_time_zone(customer, settings):
    contact = contact_create(customer=customer, name="Jean", email="jean@example.com")
    assert contact.time_zone == settings.DEFAULT_CONTACT_TIME_ZONE


def test_it_records_consent_with_the_time_and_source(texter):
    texter.refresh_from_db()
    assert texter.sms_consent_at == NOON
    assert texter.sms_consent_source == "signed order form"
    assert texter.preferred_channel == Contact.Channel.SMS


def test_it_refuses_consent_without_a_source(customer):
    with pytest.raises(ValidationError) as error:
        contact_create(customer=customer, name="Jean", phone="+33612345678", sms_consent=True, sms_consent_source=" ")
    assert "sms_consent_source" in error.value.message_dict
    assert not Contact.objects.exists()


def test_it_refuses_consent_without_a_phone_number(customer):
    with pytest.raises(ValidationError) as error:
        contact_create(
            customer=customer, name="Jean", email="jean@example.com", sms_consent=True, sms_consent_source="form"
        )
    assert "phone" in error.value.message_dict
    assert not Contact.objects.exists()


def test_it_refuses_sms_preferred_without_consent(customer):
    with pytest.raises(ValidationError) as error:
        contact_create(customer=customer, name="Jean", phone="+33612345678", preferred_channel=Contact.Channel.SMS)
    assert "preferred_channel" in error.value.message_dict


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "", "phone": "+33612345678", "preferred_channel": "email"}, "email"),
        ({"email": "jean@example.com", "preferred_channel": "phone"}, "phone"),
        ({"email": "jean@example.com", "time_zone": "Mars/Olympus"}, "time_zone"),
        ({"email": "jean@example.com", "language": "xx"}, "language"),
    ],
)
def test_it_refuses_bad_contact_details(customer, fields, error_field):
    with pytest.raises(ValidationError) as error:
        contact_create(customer=customer, name="Jean", **fields)
    assert error_field in error.value.message_dict
    assert not Contact.objects.exists()


INVALID = (
    "Enter a valid phone number, e.g. 06 12 34 56 78 or +33 6 12 34 56 78. "
    "A number without a country code is read as a number in France."
)


def test_it_refuses_a_new_contact_whose_phone_is_not_a_number(customer):
    with pytest.raises(ValidationError) as error:
        contact_create(
            customer=customer,
            name="Paul Dupont",
            phone="call me maybe",
            preferred_channel=Contact.Channel.SMS,
            sms_consent=True,
            sms_consent_source="phone call",
        )
    assert error.value.message_dict["phone"] == [INVALID]
    assert error.value.error_dict["phone"][0].code == "invalid_phone"
    assert not Contact.objects.exists()


def test_it_refuses_a_phone_that_is_not_a_number_on_update(contact):
    with pytest.raises(ValidationError) as error:
        contact_update(contact=contact, **_details(contact, phone="06 12 3"))
    assert error.value.message_dict["phone"] == [INVALID]
    contact.refresh_from_db()
    assert contact.phone == ""


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        (" +1 (514) 555-0199 ", "+15145550199"),
        ("06 12 34 56 78", "+33612345678"),
        ("0033 1 42 68 53 00", "+33142685300"),
        ("+44 7400 123456", "+447400123456"),
    ],
)
def test_it_stores_a_phone_in_e164(customer, typed, stored):
    contact = contact_create(customer=customer, name="Paul", phone=typed, preferred_channel="phone")
    contact.refresh_from_db()
    assert contact.phone == stored


def test_it_keeps_an_old_number_it_cannot_read_while_it_is_left_as_it_is(contact):
    # From before E.164: migration 0019 kept it as typed (phones_unparsed lists it).
    Contact.objects.filter(pk=contact.pk).update(phone="06 12 3")
    contact.refresh_from_db()
    contact_update(contact=contact, **_details(contact, name="Marie D."))
    contact.refresh_from_db()
    assert (contact.name, contact.phone) == ("Marie D.", "06 12 3")
    with pytest.raises(ValidationError) as error:
        contact_update(contact=contact, **_details(contact, phone="06 12 4"))
    assert error.value.message_dict["phone"] == [INVALID]


def test_it_refuses_texts_to_a_landline(customer):
    with pytest.raises(ValidationError) as error:
        contact_create(
            customer=customer, name="Jean", phone="01 42 68 53 00", sms_consent=True, sms_consent_source="form"
        )
    assert error.value.message_dict["phone"] == [
        "01 42 68 53 00 cannot receive text messages: it is not a mobile number."
    ]
    # Consent on record, then the number changed to a landline: texts can no longer be preferred.
    texter = contact_create(
        customer=customer,
        name="Paul",
        phone="06 12 34 56 78",
        preferred_channel=Contact.Channel.SMS,
        sms_consent=True,
        sms_consent_source="form",
    )
    with pytest.raises(ValidationError) as error:
        contact_update(contact=texter, **_details(texter, phone="01 42 68 53 00"))
    assert "cannot receive text messages" in error.value.message_dict["preferred_channel"][0]
    contact_update(contact=texter, **_details(texter, phone="01 42 68 53 00", preferred_channel="phone"))
    texter.refresh_from_db()
    assert (texter.phone, texter.preferred_channel) == ("+33142685300", "phone")


def test_it_refuses_a_contact_with_neither_email_nor_phone(customer):
    with pytest.raises(ValidationError):
        contact_create(customer=customer, name="Jean", preferred_channel=Contact.Channel.PHONE)
    assert not Contact.objects.exists()


# --- Contacts: changes --------------------------------------------------------------------------


def test_it_updates_a_contact(contact):
    contact_update(contact=contact, **_details(contact, name="Marie D.", language="en", time_zone="Europe/London"))
    contact.refresh_from_db()
    assert (contact.name, contact.language, contact.time_zone) == ("Marie D.", "en", "Europe/London")


def test_it_records_consent_given_later(contact):
    later = datetime(2026, 4, 1, 9, 30, tzinfo=UTC)
    with time_machine.travel(later, tick=False):
        contact_update(
            contact=contact,
            **_details(contact, phone="+33611111111", sms_consent=True, sms_consent_source="phone call"),
        )
    contact.refresh_from_db()
    assert contact.sms_consent_at == later
    assert contact.sms_consent_source == "phone call"


def test_it_keeps_the_original_consent_record(texter):
    with time_machine.travel(datetime(2026, 5, 1, tzinfo=UTC), tick=False):
        contact_update(contact=texter, **_details(texter, name="Paul D.", sms_consent_source="something else"))
    texter.refresh_from_db()
    assert texter.name == "Paul D."
    assert texter.sms_consent_at == NOON
    assert texter.sms_consent_source == "signed order form"


def test_it_falls_back_to_email_when_consent_is_withdrawn(texter):
    contact_update(contact=texter, **_details(texter, sms_consent=False))
    texter.refresh_from_db()
    assert texter.sms_consent_at is None
    assert texter.sms_consent_source == ""
    assert texter.preferred_channel == Contact.Channel.EMAIL


def test_it_falls_back_to_a_call_when_a_withdrawing_contact_has_no_email(texter):
    contact_update(contact=texter, **_details(texter, email="", sms_consent=False))
    texter.refresh_from_db()
    assert texter.sms_consent_at is None
    assert texter.preferred_channel == Contact.Channel.PHONE


def test_it_keeps_another_chosen_channel_when_consent_is_withdrawn(texter):
    contact_update(contact=texter, **_details(texter, preferred_channel="phone", sms_consent=False))
    texter.refresh_from_db()
    assert texter.preferred_channel == Contact.Channel.PHONE
    assert texter.sms_consent_at is None


def test_it_refuses_sms_for_a_contact_who_never_consented(contact):
    with pytest.raises(ValidationError) as error:
        contact_update(contact=contact, **_details(contact, phone="+33611111111", preferred_channel="sms"))
    assert "preferred_channel" in error.value.message_dict
    contact.refresh_from_db()
    assert contact.preferred_channel == Contact.Channel.EMAIL


def test_it_refuses_consent_given_later_without_a_source(contact):
    with pytest.raises(ValidationError) as error:
        contact_update(contact=contact, **_details(contact, phone="+33611111111", sms_consent=True))
    assert "sms_consent_source" in error.value.message_dict
    contact.refresh_from_db()
    assert contact.sms_consent_at is None


def test_it_clears_the_bounce_when_the_email_changes(contact):
    Contact.objects.filter(pk=contact.pk).update(email_bounced_at=timezone.now(), email_bounce_reason="Mailbox full")
    contact.refresh_from_db()
    contact_update(contact=contact, **_details(contact, email="marie.dupont@example.com"))
    contact.refresh_from_db()
    assert contact.email == "marie.dupont@example.com"
    assert contact.email_bounced_at is None
    assert contact.email_bounce_reason == ""


def test_it_keeps_the_bounce_when_the_email_stays(contact):
    Contact.objects.filter(pk=contact.pk).update(email_bounced_at=timezone.now(), email_bounce_reason="Mailbox full")
    contact.refresh_from_db()
    contact_update(contact=contact, **_details(contact, name="Marie"))
    contact.refresh_from_db()
    assert contact.email_bounced_at is not None
    assert contact.email_bounce_reason == "Mailbox full"


def test_it_compares_with_the_saved_email_not_the_callers_copy(contact):
    # A ModelForm has already put the new address on the instance it was given.
    Contact.objects.filter(pk=contact.pk).update(email_bounced_at=timezone.now(), email_bounce_reason="Unknown user")
    contact.refresh_from_db()
    contact.email = "new@example.com"
    contact_update(contact=contact, **_details(contact))
    contact.refresh_from_db()
    assert contact.email == "new@example.com"
    assert contact.email_bounced_at is None


def test_it_leaves_the_opt_out_alone(contact):
    opted_out = timezone.now()
    Contact.objects.filter(pk=contact.pk).update(opted_out_at=opted_out)
    contact.refresh_from_db()
    contact_update(contact=contact, **_details(contact, name="Marie"))
    contact.refresh_from_db()
    assert contact.opted_out_at == opted_out
