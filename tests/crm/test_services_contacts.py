"""crm.services.contacts: contacts' preferences, each change checked against the model's rules."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction

from crm.errors import DomainError
from crm.models import Contact, Customer, Message
from crm.services.contacts import (
    contact_give_sms_consent,
    contact_opt_in,
    contact_opt_out,
    contact_send_portal_links,
    contact_set_language,
    contact_set_preferred_channel,
    contact_set_time_zone,
    contact_update_preferences,
    contact_withdraw_sms_consent,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.fixture(autouse=True)
def _frozen(time_machine) -> None:
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def sam(customer: Customer) -> Contact:
    return Contact.objects.create(customer=customer, name="Sam", email="sam@example.com", phone="+33612345601")


def test_it_records_sms_consent_with_time_and_source(sam: Contact) -> None:
    sam = contact_give_sms_consent(contact=sam, source="phone call")
    sam.refresh_from_db()
    assert (sam.sms_consent_at, sam.sms_consent_source) == (NOW, "phone call")


def test_it_keeps_the_first_consent(sam: Contact) -> None:
    contact_give_sms_consent(contact=sam, source="signed order form")
    contact_give_sms_consent(contact=sam, source="portal")
    sam.refresh_from_db()
    assert sam.sms_consent_source == "signed order form"


def test_it_needs_a_phone_and_a_source_for_consent(sam: Contact, contact: Contact) -> None:
    with pytest.raises(DomainError, match="mobile phone number"):
        contact_give_sms_consent(contact=contact, source="portal")
    with pytest.raises(DomainError, match="Say how"):
        contact_give_sms_consent(contact=sam, source=" ")


def test_it_refuses_texts_to_a_number_they_cannot_reach(customer: Customer) -> None:
    landline = Contact.objects.create(customer=customer, name="Office", email="o@example.com", phone="+33142685300")
    unparsed = Contact.objects.create(customer=customer, name="Old", email="old@example.com", phone="06 12 3")
    with pytest.raises(DomainError, match=r"01 42 68 53 00 cannot receive text messages: it is not a mobile number\."):
        contact_give_sms_consent(contact=landline, source="phone call")
    with pytest.raises(DomainError, match="06 12 3 cannot receive text messages"):
        contact_give_sms_consent(contact=unparsed, source="phone call")
    # A consent on record from before (a landline then): SMS still cannot be chosen.
    Contact.objects.filter(pk=landline.pk).update(sms_consent_at=NOW, sms_consent_source="order form")
    with pytest.raises(DomainError, match="cannot receive text messages"):
        contact_set_preferred_channel(contact=landline, channel="sms")
    assert contact_set_preferred_channel(contact=landline, channel="phone").preferred_channel == "phone"


def test_it_refuses_sms_without_consent(sam: Contact) -> None:
    with pytest.raises(DomainError, match="once you have agreed"):
        contact_set_preferred_channel(contact=sam, channel="sms")
    contact_give_sms_consent(contact=sam, source="portal")
    assert contact_set_preferred_channel(contact=sam, channel="sms").preferred_channel == "sms"


def test_it_falls_back_to_email_when_consent_is_withdrawn(sam: Contact) -> None:
    contact_give_sms_consent(contact=sam, source="portal")
    contact_set_preferred_channel(contact=sam, channel="sms")
    sam = contact_withdraw_sms_consent(contact=sam)
    assert (sam.preferred_channel, sam.sms_consent_at, sam.sms_consent_source) == ("email", None, "")


def test_it_falls_back_to_a_call_without_an_email_address(customer: Customer) -> None:
    texter = Contact.objects.create(
        customer=customer,
        name="T",
        phone="+33612345602",
        preferred_channel="sms",
        sms_consent_at=NOW,
        sms_consent_source="order form",
    )
    assert contact_withdraw_sms_consent(contact=texter).preferred_channel == "phone"


def test_it_refuses_a_channel_without_its_address(contact: Contact) -> None:
    with pytest.raises(DomainError, match="no phone number"):
        contact_set_preferred_channel(contact=contact, channel="phone")


def test_it_sets_language_and_time_zone(sam: Contact) -> None:
    assert contact_set_language(contact=sam, language="fr").language == "fr"
    assert contact_set_time_zone(contact=sam, time_zone="America/Montreal").time_zone == "America/Montreal"
    with pytest.raises(DomainError):
        contact_set_language(contact=sam, language="de")
    with pytest.raises(DomainError):
        contact_set_time_zone(contact=sam, time_zone="Nowhere/Town")


def test_it_opts_out_and_in(sam: Contact) -> None:
    assert contact_opt_out(contact=sam).opted_out_at == NOW
    assert contact_opt_in(contact=sam).opted_out_at is None


def test_it_updates_everything_at_once(sam: Contact) -> None:
    sam, changed = contact_update_preferences(
        contact=sam,
        language="fr",
        time_zone="Europe/London",
        preferred_channel="sms",
        sms_consent=True,
        non_essential=False,
        source="portal",
    )
    assert changed == {
        "language",
        "time_zone",
        "preferred_channel",
        "sms_consent_at",
        "sms_consent_source",
        "sms_withdrawn_at",
        "opted_out_at",
    }
    sam.refresh_from_db()
    assert (sam.language, sam.time_zone, sam.preferred_channel, sam.sms_consent_source) == (
        "fr",
        "Europe/London",
        "sms",
        "portal",
    )
    assert sam.opted_out_at == NOW


def test_it_changes_nothing_when_one_preference_is_refused(sam: Contact) -> None:
    with pytest.raises(DomainError), transaction.atomic():
        contact_update_preferences(
            contact=sam,
            language="fr",
            time_zone="Europe/London",
            preferred_channel="sms",
            sms_consent=False,
            non_essential=True,
            source="portal",
        )
    sam.refresh_from_db()
    assert (sam.language, sam.preferred_channel) == ("en", "email")


def test_it_queues_a_sign_in_link_per_contact_with_the_address(sam: Contact, other_customer: Customer) -> None:
    twin = Contact.objects.create(customer=other_customer, name="Sam at Acme", email="SAM@example.com")
    messages = contact_send_portal_links(email="sam@example.com")
    assert {m.contact for m in messages} == {sam, twin}
    assert all(m.kind == Message.Kind.PORTAL_LINK and m.job is None for m in messages)
    assert contact_send_portal_links(email="nobody@example.com") == []
