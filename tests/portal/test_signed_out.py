"""portal.views.signed_out: "send me a new link", to an email address or a mobile number. The same
answer whether the address or number is known or not, and whether a link could go to it;
rate-limited per address (or number) and per IP; the link goes by the contact's own reachable
channel (a text only with recorded consent) and opens the job the old one was about."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Contact, Customer, Job, Message
from crm.sms import MemorySmsBackend
from portal import tasks, views

SIGNED_OUT = reverse("portal:signed_out")


def ask_for_link(client: Client, address: str, job: Job | None = None, **extra: str) -> Any:
    data = {"address": address, "job": str(job.public_id) if job else ""}
    return client.post(SIGNED_OUT, data, **extra)


def without_csrf(page: str) -> str:
    return re.sub(r'(csrfmiddlewaretoken" value=|X-CSRFToken": )"[^"]+"', "", page)


def link_messages() -> list[Message]:
    return list(Message.objects.filter(kind=Message.Kind.PORTAL_LINK).order_by("pk"))


def test_it_offers_a_new_link(client: Client) -> None:
    page = client.get(SIGNED_OUT).text
    assert "Send me a new link" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert '<label class="form-label" for="id_address">Your email address or mobile number</label>' in page
    # A number must be typeable: not an email-only field.
    assert re.search(r'<input type="text" name="address"[^>]*autocomplete="username"', page)
    # Honest about texts: only with the contact's agreement.
    assert "by text message if you have agreed to receive them" in page


def test_it_queues_a_link_for_a_known_address(client: Client, john: Contact) -> None:
    response = ask_for_link(client, "John@Example.com")
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:link_sent")
    [message] = link_messages()
    assert (message.contact, message.channel, message.to_address, message.job) == (john, "email", john.email, None)
    assert message.status == Message.Status.QUEUED
    assert message.is_essential
    assert "http://testserver/portal/enter/" in message.body_text
    assert "http://testserver/portal/enter/" in message.body_html


def test_it_answers_the_same_for_an_unknown_address(client: Client, john: Contact) -> None:
    known = ask_for_link(client, "john@example.com")
    unknown = ask_for_link(client, "nobody@example.com")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert len(link_messages()) == 1
    page_known = without_csrf(client.get(known["Location"]).text)
    page_unknown = without_csrf(client.get(unknown["Location"]).text)
    assert page_known == page_unknown
    assert "If this address or number is one we know, a new link is on its way" in page_known


def test_it_sends_a_link_to_each_contact_with_the_address(
    client: Client, john: Contact, other_customer: Customer
) -> None:
    twin = Contact.objects.create(customer=other_customer, name="John at Acme", email="john@example.com")
    ask_for_link(client, "john@example.com")
    assert {m.contact for m in link_messages()} == {john, twin}


def test_it_texts_the_link_to_a_contact_who_chose_sms(client: Client, john: Contact) -> None:
    Contact.objects.filter(pk=john.pk).update(
        preferred_channel="sms", sms_consent_at=timezone.now(), sms_consent_source="portal"
    )
    ask_for_link(client, "john@example.com")
    [message] = link_messages()
    assert (message.channel, message.to_address) == ("sms", john.phone)
    assert len(message.body_text) <= 320
    assert "/portal/s/" in message.body_text  # the short link of text messages


def test_it_writes_in_the_contacts_language(client: Client, contact: Contact) -> None:
    ask_for_link(client, contact.email)
    [message] = link_messages()
    assert message.language == "fr"


def test_it_carries_the_job_of_the_expired_link(client: Client, john: Contact, job: Job) -> None:
    ask_for_link(client, "john@example.com", job)
    [message] = link_messages()
    link = re.search(r"http://testserver(/portal/enter/\S+)", message.body_text)[1]
    assert link.endswith(f"?job={job.public_id}")
    assert "Heat pump installation" in message.body_text
    fresh = Client()
    response = fresh.get(link)
    assert response["Location"] == reverse("portal:job", args=[job.public_id])
    assert fresh.get(response["Location"]).status_code == 200


def test_it_drops_a_job_of_another_customer(client: Client, john: Contact, stranger_job: Job) -> None:
    ask_for_link(client, "john@example.com", stranger_job)
    [message] = link_messages()
    assert str(stranger_job.public_id) not in message.body_text
    assert "Acme cabling" not in message.body_text


def test_it_sends_one_link_per_double_click(client: Client, john: Contact) -> None:
    ask_for_link(client, "john@example.com")
    ask_for_link(client, "john@example.com")
    assert len(link_messages()) == 1


def test_it_limits_requests_per_address(client: Client, john: Contact, time_machine) -> None:
    for _ in range(3):
        ask_for_link(client, "john@example.com")
        time_machine.shift(61)
    assert len(link_messages()) == 3
    response = ask_for_link(client, "john@example.com")
    assert response["Location"] == reverse("portal:link_sent")
    assert len(link_messages()) == 3
    time_machine.shift(3600)
    ask_for_link(client, "john@example.com")
    assert len(link_messages()) == 4


def test_it_limits_requests_per_ip(client: Client, john: Contact, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "LINK_REQUESTS_PER_IP", (5, 3600))
    for i in range(5):
        ask_for_link(client, f"someone{i}@example.com")
    response = ask_for_link(client, "john@example.com")
    assert response["Location"] == reverse("portal:link_sent")
    assert link_messages() == []
    # Another client address is not held back.
    ask_for_link(client, "john@example.com", REMOTE_ADDR="10.0.0.9")
    assert len(link_messages()) == 1


def test_it_counts_the_client_behind_a_trusted_proxy(
    client: Client, john: Contact, monkeypatch: pytest.MonkeyPatch, settings
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    monkeypatch.setattr(views, "LINK_REQUESTS_PER_IP", (1, 3600))
    ask_for_link(client, "a@example.com", HTTP_X_FORWARDED_FOR="203.0.113.5")
    ask_for_link(client, "john@example.com", HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert len(link_messages()) == 1


def test_it_explains_a_malformed_address(client: Client, db) -> None:
    response = ask_for_link(client, "not@an address")
    assert response.status_code == 200
    assert "Enter a full email address, like name@example.com." in response.text
    assert 'aria-invalid="true"' in response.text
    assert link_messages() == []


@pytest.mark.parametrize("typed", ["not an address", "06 12 3", "+33 6 12 34 56 78 ext 9", "+999 1234", "123"])
def test_it_explains_what_is_neither_an_address_nor_a_number(client: Client, db, typed: str) -> None:
    response = ask_for_link(client, typed)
    assert response.status_code == 200
    assert (
        "Enter a full email address, like name@example.com, or a mobile number, like +33 6 12 34 56 78."
        in response.text
    )
    assert link_messages() == []


def test_it_asks_for_an_address_or_a_number(client: Client) -> None:
    response = ask_for_link(client, "  ")
    assert "Enter the email address or mobile number our messages reach you at." in response.text


def test_it_needs_the_csrf_token(john: Contact) -> None:
    client = Client(enforce_csrf_checks=True)
    assert ask_for_link(client, "john@example.com").status_code == 403
    assert link_messages() == []


def test_it_sends_the_queued_link_after_commit(
    client: Client, john: Contact, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    MemorySmsBackend.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ask_for_link(client, "john@example.com")
    [email] = mailoutbox
    assert email.to == ["john@example.com"]
    assert email.subject == "Your link to follow your jobs with Brightside Installations"
    assert "/portal/enter/" in email.body
    [message] = link_messages()
    assert message.status == Message.Status.SENT


def test_it_explains_an_expired_link(client: Client, job: Job) -> None:
    page = client.get(SIGNED_OUT, {"reason": "expired", "job": str(job.public_id)}).text
    assert "This link has expired or is no longer valid" in page
    assert f'name="job" value="{job.public_id}"' in page


def test_it_ignores_a_malformed_job(client: Client) -> None:
    page = client.get(SIGNED_OUT, {"job": "<script>"}).text
    assert "<script>" not in page


def test_it_writes_a_link_for_a_contact_without_any_job(client: Client, contact: Contact) -> None:
    ask_for_link(client, contact.email)
    [message] = link_messages()
    assert "/portal/enter/" in message.body_text
    assert "Your point of contact" not in message.body_text


def test_it_still_sends_a_link_when_the_job_was_mangled(client: Client, john: Contact) -> None:
    response = client.post(SIGNED_OUT, {"address": "john@example.com", "job": "not-a-uuid"})
    assert response["Location"] == reverse("portal:link_sent")
    [message] = link_messages()
    assert "?job=" not in message.body_text


# --- A mobile number instead of an address ------------------------------------------------------


@pytest.fixture
def paul(customer: Customer) -> Contact:
    """Phone only, and agreed to text messages: a link can only reach him by text."""
    return Contact.objects.create(
        customer=customer,
        name="Paul Martin",
        phone="+33612345678",  # as numbers are stored: E.164
        preferred_channel="sms",
        sms_consent_at=timezone.now(),
        sms_consent_source="signed order form",
        language="fr",
    )


def test_it_texts_a_link_to_a_phone_only_contact_who_agreed(
    client: Client, paul: Contact, job: Job, django_capture_on_commit_callbacks
) -> None:
    MemorySmsBackend.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = ask_for_link(client, "+33612345678", job)
    assert response["Location"] == reverse("portal:link_sent")
    [message] = link_messages()
    assert (message.contact, message.channel, message.to_address) == (paul, "sms", "+33612345678")
    assert message.status == Message.Status.SENT
    [sms] = MemorySmsBackend.outbox
    assert sms.to == "+33612345678"
    # The texted (short) link signs Paul in and opens the job.
    link = re.search(r"http://testserver(/portal/s/\S+)", sms.text)[1]
    fresh = Client()
    assert fresh.get(link)["Location"] == reverse("portal:job", args=[job.public_id])
    assert fresh.get(reverse("portal:job", args=[job.public_id])).status_code == 200


@pytest.mark.parametrize(
    "typed",
    [
        "+33 6 12 34 56 78",
        "+33 6.12.34.56.78",
        "+33 (6) 12-34-56-78",
        "33612345678",
        "0033 6 12 34 56 78",
        # Without its country code: a number of PHONE_DEFAULT_REGION (France), as it is written there.
        "06 12 34 56 78",
        "06.12.34.56.78",
        "0612345678",
    ],
)
def test_it_matches_the_number_however_it_is_written(client: Client, paul: Contact, typed: str) -> None:
    ask_for_link(client, typed)
    assert [m.contact for m in link_messages()] == [paul]


def test_a_number_without_its_country_code_is_read_in_the_default_region(
    client: Client, paul: Contact, settings
) -> None:
    # Read as a Belgian number, "06 12 34 56 78" is no number at all: Paul's needs its +33 there.
    settings.PHONE_DEFAULT_REGION = "BE"
    ask_for_link(client, "06 12 34 56 78")
    assert link_messages() == []
    ask_for_link(client, "+33 6 12 34 56 78", REMOTE_ADDR="10.0.0.9")
    assert [m.contact for m in link_messages()] == [paul]


def test_a_number_stored_before_e164_is_found_too(client: Client, customer: Customer) -> None:
    # Written by something other than the services (the demo, a script): the national form.
    local = Contact.objects.create(
        customer=customer,
        name="Léa Local",
        phone="06 98 76 54 32",
        sms_consent_at=timezone.now(),
        sms_consent_source="phone call",
    )
    ask_for_link(client, "+33 6 98 76 54 32")
    assert [m.contact for m in link_messages()] == [local]


def test_it_answers_the_same_for_an_unknown_number(client: Client, paul: Contact) -> None:
    known = ask_for_link(client, "+33 6 12 34 56 78")
    unknown = ask_for_link(client, "+33 6 00 00 00 00")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert [m.contact for m in link_messages()] == [paul]
    page_known = without_csrf(client.get(known["Location"]).text)
    page_unknown = without_csrf(client.get(unknown["Location"]).text)
    assert page_known == page_unknown


def test_it_sends_nothing_by_text_without_consent_and_says_the_same(
    client: Client, customer: Customer, paul: Contact, django_capture_on_commit_callbacks
) -> None:
    Contact.objects.create(customer=customer, name="No Consent", phone="+33781223344", preferred_channel="phone")
    MemorySmsBackend.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        without_consent = ask_for_link(client, "+33 7 81 22 33 44")
    assert link_messages() == []
    assert MemorySmsBackend.outbox == []
    assert not Message.objects.exists()  # not even a call task for the owner
    with_consent = ask_for_link(client, "+33 6 12 34 56 78")
    assert without_consent["Location"] == with_consent["Location"]
    page = without_csrf(client.get(without_consent["Location"]).text)
    assert page == without_csrf(client.get(with_consent["Location"]).text)
    # The page promises a text only to those who agreed to them.
    assert "by text message if you have agreed to receive them" in page


def test_a_number_of_a_contact_reached_by_email_brings_an_email(client: Client, john: Contact) -> None:
    # John has a mobile on file but never agreed to texts: the link goes where we reach him.
    ask_for_link(client, "+44 7400 123456")
    [message] = link_messages()
    assert (message.contact, message.channel, message.to_address) == (john, "email", "john@example.com")


def test_it_looks_the_number_up_in_the_background_the_same_way_known_or_not(
    client: Client, paul: Contact, monkeypatch: pytest.MonkeyPatch
) -> None:
    enqueued: list[tuple[object, ...]] = []
    monkeypatch.setattr(views, "async_task", lambda *args: enqueued.append(args))
    with CaptureQueriesContext(connection) as known:
        ask_for_link(client, "+33 6 12 34 56 78")
    with CaptureQueriesContext(connection) as unknown:
        ask_for_link(client, "+33 6 00 00 00 00")
    # The request itself never looks anyone up: the same work, however the lookup will end.
    assert len(known) == len(unknown)
    assert not [q for q in known.captured_queries + unknown.captured_queries if "crm_contact" in q["sql"]]
    assert enqueued == [
        ("portal.tasks.send_portal_links", "+33612345678", None),
        ("portal.tasks.send_portal_links", "+33600000000", None),
    ]


def test_it_limits_requests_per_number_however_it_is_written(client: Client, paul: Contact, time_machine) -> None:
    for typed in ("+33 6 12 34 56 78", "+33612345678", "33 6 12 34 56 78"):
        ask_for_link(client, typed)
        time_machine.shift(61)
    assert len(link_messages()) == 3
    response = ask_for_link(client, "+33 6-12-34-56-78")
    assert response["Location"] == reverse("portal:link_sent")
    assert len(link_messages()) == 3
    time_machine.shift(3600)
    ask_for_link(client, "+33612345678")
    assert len(link_messages()) == 4


def test_it_limits_numbers_per_ip_too(client: Client, paul: Contact, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "LINK_REQUESTS_PER_IP", (5, 3600))
    for i in range(5):
        ask_for_link(client, f"+33 6 00 00 00 0{i}")
    response = ask_for_link(client, "+33 6 12 34 56 78")
    assert response["Location"] == reverse("portal:link_sent")
    assert link_messages() == []
    ask_for_link(client, "+33 6 12 34 56 78", REMOTE_ADDR="10.0.0.9")
    assert len(link_messages()) == 1


def test_a_queued_request_from_before_numbers_were_accepted_still_works(john: Contact) -> None:
    # Tasks already in the queue carry an email address where the typed address now goes.
    assert tasks.send_portal_links("john@example.com") == 1
    assert [m.contact for m in link_messages()] == [john]
