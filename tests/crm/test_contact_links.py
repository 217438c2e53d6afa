"""A contact's links on the staff side: contact_links_reset and the log of uses
(crm.services.contacts), the fingerprint's version (crm.links), the device classifier, and the
contact's page in the CRM (the last uses in one query, "Reset links")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from crm.links import calendar_url, contact_fingerprint, email_fingerprint, portal_url
from crm.models import Contact, ContactLinkUse
from crm.services.contacts import contact_link_use_record, contact_links_reset, device_from_user_agent
from portal.access import SESSION_KEY

Device = ContactLinkUse.Device
Kind = ContactLinkUse.Kind


def reset_url(contact: Contact) -> str:
    return reverse("crm:contact_reset_links", args=[contact.pk])


def page_url(contact: Contact) -> str:
    return reverse("crm:contact_edit", args=[contact.pk])


def version(contact: Contact) -> int:
    return Contact.objects.values_list("link_version", flat=True).get(pk=contact.pk)


@pytest.fixture
def staff_client(client: Client, bob: User) -> Client:
    client.force_login(bob)
    return client


# --- The device classifier -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", Device.PHONE),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36", Device.PHONE),
        ("Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", Device.PHONE),
        ("Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) Mobile Safari/537.36", Device.PHONE),
        ("iOS/17.4 (21E219) dataaccessd/1.0", Device.PHONE),
        ("ICSx5/2.2 (ical4j/3.2.14 okhttp/4.12.0) Android/14", Device.PHONE),
        ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", Device.TABLET),
        ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 Chrome/124.0 Safari/537.36", Device.TABLET),
        ("Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0", Device.TABLET),
        ("Mozilla/5.0 (Linux; U; Android 4.0.3; KFTT) AppleWebKit/535.19 Silk/3.4 Safari/535.19", Device.TABLET),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36", Device.COMPUTER),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
            Device.COMPUTER,
        ),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", Device.COMPUTER),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 Chrome/124.0 Safari/537.36", Device.COMPUTER),
        ("macOS/14.4 (23E214) CalendarAgent/1000", Device.COMPUTER),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.10", Device.COMPUTER),
        ("Google-Calendar-Importer", Device.UNKNOWN),
        (
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X) Mobile Safari/537.36 (compatible; Googlebot/2.1)",
            Device.UNKNOWN,
        ),
        ("curl/8.5.0", Device.UNKNOWN),
        ("python-requests/2.31", Device.UNKNOWN),
        ("SomethingElse/1.0", Device.UNKNOWN),
        ("", Device.UNKNOWN),
        ("   ", Device.UNKNOWN),
    ],
)
def test_the_device_classifier(user_agent: str, device: str) -> None:
    assert device_from_user_agent(user_agent) == device


def test_the_device_classifier_reads_a_long_header_without_trouble() -> None:
    assert device_from_user_agent("x" * 100_000 + " iPhone") == Device.UNKNOWN  # only its start is read
    assert device_from_user_agent("Mozilla/5.0 (iPhone) " + "x" * 100_000) == Device.PHONE


# --- The fingerprint's version ----------------------------------------------------------------------


def test_version_0_is_the_fingerprint_links_had_before_versions(contact: Contact) -> None:
    before = salted_hmac("portal.link.email", "marie@example.com").hexdigest()[:16]
    assert email_fingerprint(" Marie@Example.com ") == before
    assert contact_fingerprint(contact) == before
    assert email_fingerprint("marie@example.com", 1) not in (before, email_fingerprint("marie@example.com", 2))


# --- The service ------------------------------------------------------------------------------------


def test_a_reset_bumps_the_version_and_logs_who_did_it(contact: Contact, bob: User) -> None:
    before = contact_fingerprint(contact)
    reset = contact_links_reset(contact=contact, actor=bob, user_agent="Mozilla/5.0 (Windows NT 10.0)")
    assert (reset.link_version, version(contact)) == (1, 1)
    assert contact_fingerprint(reset) != before
    (use,) = ContactLinkUse.objects.filter(contact=contact)
    assert (use.kind, use.actor, use.device) == (Kind.RESET, bob, Device.COMPUTER)
    contact_links_reset(contact=contact)
    assert version(contact) == 2
    assert ContactLinkUse.objects.filter(contact=contact, kind=Kind.RESET, actor=None).count() == 1


def test_uses_are_logged_each_time_but_calendar_fetches_once_a_day(contact: Contact, time_machine) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    for _use in range(2):
        contact_link_use_record(contact=contact, kind=Kind.SIGN_IN)
        contact_link_use_record(contact=contact, kind=Kind.CALENDAR)
    assert ContactLinkUse.objects.filter(kind=Kind.SIGN_IN).count() == 2
    assert ContactLinkUse.objects.filter(kind=Kind.CALENDAR).count() == 1
    time_machine.shift(timedelta(days=1))
    contact_link_use_record(contact=contact, kind=Kind.CALENDAR)
    assert ContactLinkUse.objects.filter(kind=Kind.CALENDAR).count() == 2


# --- "Reset links" on the contact's page ---------------------------------------------------------------


def test_staff_reset_the_links_from_the_contacts_page(staff_client: Client, contact: Contact, bob: User) -> None:
    page = staff_client.get(page_url(contact)).text
    assert f'action="{reset_url(contact)}"' in page
    old_link, old_feed = portal_url(contact), calendar_url(contact)
    portal = Client()
    portal.get(old_link)
    assert portal.session[SESSION_KEY] == contact.pk

    response = staff_client.post(reset_url(contact), follow=True)

    assert response.redirect_chain == [(page_url(contact) + "#links", 302)]
    assert "Links of Marie Dupont reset" in response.text
    assert version(contact) == 1
    assert Client().get(old_link)["Location"].startswith(reverse("portal:signed_out"))
    assert Client().get(old_feed).status_code == 404
    assert portal.get(reverse("portal:home"))["Location"] == reverse("portal:signed_out")
    assert ContactLinkUse.objects.get(contact=contact, kind=Kind.RESET).actor == bob
    assert "Links reset" in response.text
    assert "by Bob Durand" in response.text


def test_the_staff_reset_needs_the_csrf_token(contact: Contact, bob: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.post(reset_url(contact)).status_code == 403
    assert version(contact) == 0


def test_the_staff_reset_is_for_staff_only(client: Client, contact: Contact, dana: User) -> None:
    response = client.post(reset_url(contact))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    client.force_login(dana)
    assert client.post(reset_url(contact)).status_code in (302, 403)
    assert version(contact) == 0


def test_the_staff_reset_is_a_post(staff_client: Client, contact: Contact) -> None:
    assert staff_client.get(reset_url(contact)).status_code == 405
    assert version(contact) == 0


def test_the_staff_reset_of_an_unknown_contact_is_404(staff_client: Client) -> None:
    assert staff_client.post(reverse("crm:contact_reset_links", args=[999999])).status_code == 404


def test_the_staff_reset_leaves_other_contacts_alone(
    staff_client: Client, contact: Contact, other_customer, customer
) -> None:
    other = Contact.objects.create(customer=other_customer, name="Wile Coyote", email="wile@acme.example")
    sibling = Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com")
    staff_client.post(reset_url(contact))
    assert (version(other), version(sibling)) == (0, 0)


# --- The last uses on the contact's page -----------------------------------------------------------------


def test_the_contacts_page_lists_the_last_20_uses_newest_first(
    staff_client: Client, contact: Contact, time_machine
) -> None:
    start = timezone.now()
    ContactLinkUse.objects.bulk_create(
        ContactLinkUse(
            contact=contact, at=start + timedelta(minutes=n), day=start.date(), kind=Kind.SIGN_IN, device=Device.PHONE
        )
        for n in range(25)
    )
    latest = ContactLinkUse.objects.order_by("-at").first()
    assert latest is not None
    response = staff_client.get(page_url(contact))
    uses = response.context["link_uses"]
    assert len(uses) == 20
    assert uses[0] == latest
    assert [u.at for u in uses] == sorted((u.at for u in uses), reverse=True)
    assert response.text.count("Signed in with a link") == 20


def test_the_contacts_page_reads_its_uses_in_one_query(staff_client: Client, contact: Contact, bob: User) -> None:
    staff_client.get(page_url(contact))  # warm: the session, the sites, whatever a first request loads

    with CaptureQueriesContext(connection) as none:
        staff_client.get(page_url(contact))
    for n in range(5):
        contact_link_use_record(contact=contact, kind=Kind.SIGN_IN)
        contact_links_reset(contact=contact, actor=bob if n % 2 else None)
    with CaptureQueriesContext(connection) as some:
        response = staff_client.get(page_url(contact))

    assert len(response.context["link_uses"]) == 10
    assert len(some) == len(none)
    assert sum("crm_contactlinkuse" in q["sql"] for q in some.captured_queries) == 1


def test_the_contacts_page_says_when_no_link_was_used(staff_client: Client, contact: Contact) -> None:
    assert "No link used yet." in staff_client.get(page_url(contact)).text


def test_the_new_contact_page_has_no_links_section(staff_client: Client, customer) -> None:
    assert "Reset links" not in staff_client.get(reverse("crm:contact_new", args=[customer.pk])).text
