"""portal.views.preferences: language, channel, SMS consent (recorded with time and source),
non-essential messages, time zone."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from crm.models import Contact
from portal.access import SESSION_TIME_ZONE_KEY

from .conftest import MONDAY_MORNING, sign_in

URL = reverse("portal:preferences")


def form_data(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "language": "en",
        "preferred_channel": "email",
        "non_essential": "on",
        "time_zone": "Europe/London",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_it_shows_the_current_preferences(john_client: Client) -> None:
    page = john_client.get(URL).text
    assert "How should we reach you?" in page
    assert "By email, at john@example.com" in page
    # His British number in the international form: the portal reads numbers as French ones.
    assert "By text message, at +44 7400 123456" in page
    assert "I agree to receive text messages about my jobs at +44 7400 123456." in page
    assert '<option value="Europe/London" selected>Europe/London</option>' in page
    assert 'aria-current="page"' in page


def test_it_records_sms_consent_with_time_and_source(john_client: Client, john: Contact) -> None:
    response = john_client.post(URL, form_data(preferred_channel="sms", sms_consent="on"))
    assert response.status_code == 302
    john.refresh_from_db()
    assert john.preferred_channel == "sms"
    assert john.sms_consent_at == MONDAY_MORNING
    assert john.sms_consent_source == "portal"
    page = john_client.get(URL).text
    assert "Your preferences are saved." in page
    assert "On record since Monday 2 March (portal)." in page


def test_it_refuses_sms_without_consent(john_client: Client, john: Contact) -> None:
    response = john_client.post(URL, form_data(preferred_channel="sms"))
    assert response.status_code == 200
    assert "Tick this box to get text messages" in response.text
    john.refresh_from_db()
    assert (john.preferred_channel, john.sms_consent_at) == ("email", None)


def test_it_keeps_consent_without_switching_to_sms(john_client: Client, john: Contact) -> None:
    john_client.post(URL, form_data(sms_consent="on"))
    john.refresh_from_db()
    assert (john.preferred_channel, john.sms_consent_source) == ("email", "portal")


def test_it_keeps_an_earlier_consent_on_record(john_client: Client, john: Contact) -> None:
    earlier = MONDAY_MORNING.replace(month=1)
    Contact.objects.filter(pk=john.pk).update(sms_consent_at=earlier, sms_consent_source="signed order form")
    john_client.post(URL, form_data(preferred_channel="sms", sms_consent="on"))
    john.refresh_from_db()
    assert (john.sms_consent_at, john.sms_consent_source) == (earlier, "signed order form")


def test_it_switches_back_to_email_when_consent_is_withdrawn(john_client: Client, john: Contact) -> None:
    john_client.post(URL, form_data(preferred_channel="sms", sms_consent="on"))
    response = john_client.post(URL, form_data(preferred_channel="email"))
    assert response.status_code == 302
    john.refresh_from_db()
    assert (john.preferred_channel, john.sms_consent_at, john.sms_consent_source) == ("email", None, "")


def test_it_does_not_offer_sms_without_a_phone_number(client: Client, contact: Contact) -> None:
    page = sign_in(client, contact).get(URL).text
    assert "sms_consent" not in page
    assert 'value="sms"' not in page
    response = client.post(URL, form_data(preferred_channel="sms", sms_consent="on", language="fr"))
    assert response.status_code == 200
    contact.refresh_from_db()
    assert contact.preferred_channel == "email"


def test_it_offers_texts_only_to_a_mobile_number(client: Client, contact: Contact) -> None:
    # A landline: called, never texted. A consent on record from before stays as it is.
    earlier = MONDAY_MORNING.replace(month=1)
    Contact.objects.filter(pk=contact.pk).update(
        phone="+33142685300", sms_consent_at=earlier, sms_consent_source="signed order form"
    )
    page = sign_in(client, contact).get(URL).text
    assert 'value="sms"' not in page
    assert "sms_consent" not in page
    assert "01 42 68 53 00" in page  # offered a call, at a French number as it is read in France
    response = client.post(URL, form_data(preferred_channel="phone", language="fr"))
    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.preferred_channel, contact.sms_consent_at) == ("phone", earlier)
    response = client.post(URL, form_data(preferred_channel="sms", sms_consent="on", language="fr"))
    assert response.status_code == 200
    contact.refresh_from_db()
    assert contact.preferred_channel == "phone"


def test_it_opts_out_of_non_essential_messages_and_back_in(john_client: Client, john: Contact) -> None:
    john_client.post(URL, form_data(non_essential=None))
    john.refresh_from_db()
    assert john.opted_out_at == MONDAY_MORNING
    john_client.post(URL, form_data())
    john.refresh_from_db()
    assert john.opted_out_at is None


def test_it_changes_the_language_of_messages_and_of_the_portal(john_client: Client, john: Contact) -> None:
    response = john_client.post(URL, form_data(language="fr"), follow=True)
    john.refresh_from_db()
    assert john.language == "fr"
    assert '<html lang="fr">' in response.text


def test_it_changes_the_time_zone(john_client: Client, john: Contact) -> None:
    john_client.post(URL, form_data(time_zone="America/Montreal"))
    john.refresh_from_db()
    assert john.time_zone == "America/Montreal"
    assert john_client.session[SESSION_TIME_ZONE_KEY] == "America/Montreal"


def test_it_refuses_an_unknown_time_zone(john_client: Client, john: Contact) -> None:
    response = john_client.post(URL, form_data(time_zone="Mars/Olympus_Mons"))
    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.text
    john.refresh_from_db()
    assert john.time_zone == "Europe/London"


def test_it_changes_nothing_for_anyone_else(john_client: Client, contact: Contact, stranger: Contact) -> None:
    john_client.post(URL, form_data(language="fr", non_essential=None))
    for other in (contact, stranger):
        before = other.opted_out_at
        other.refresh_from_db()
        assert other.opted_out_at == before


def test_it_needs_the_csrf_token(john: Contact) -> None:
    client = sign_in(Client(enforce_csrf_checks=True), john)
    assert client.post(URL, form_data(non_essential=None)).status_code == 403
    john.refresh_from_db()
    assert john.opted_out_at is None


def test_it_needs_a_signed_in_contact(client: Client) -> None:
    assert client.post(URL, form_data())["Location"] == reverse("portal:signed_out")
