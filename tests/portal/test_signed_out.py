"""portal.views.signed_out: "email me a new link". The same answer whether the address is known or
not; rate-limited per address and per IP; the new link opens the job the old one was about."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import Contact, Customer, Job, Message
from crm.sms import MemorySmsBackend
from portal import views

SIGNED_OUT = reverse("portal:signed_out")


def ask_for_link(client: Client, email: str, job: Job | None = None, **extra: str) -> object:
    data = {"email": email, "job": str(job.public_id) if job else ""}
    return client.post(SIGNED_OUT, data, **extra)


def without_csrf(page: str) -> str:
    return re.sub(r'(csrfmiddlewaretoken" value=|X-CSRFToken": )"[^"]+"', "", page)


def link_messages() -> list[Message]:
    return list(Message.objects.filter(kind=Message.Kind.PORTAL_LINK).order_by("pk"))


def test_it_offers_a_new_link(client: Client) -> None:
    page = client.get(SIGNED_OUT).text
    assert "Email me a new link" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert '<label class="form-label" for="id_email">Your email address</label>' in page


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
    assert "If this address is one we know, a new link is on its way" in page_known


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
    assert "/portal/enter/" in message.body_text


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
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    monkeypatch.setattr(views, "LINK_REQUESTS_PER_IP", (1, 3600))
    ask_for_link(client, "a@example.com", HTTP_X_FORWARDED_FOR="203.0.113.5")
    ask_for_link(client, "john@example.com", HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert len(link_messages()) == 1


def test_it_explains_a_malformed_address(client: Client) -> None:
    response = ask_for_link(client, "not an address")
    assert response.status_code == 200
    assert "Enter a full email address, like name@example.com." in response.text
    assert 'aria-invalid="true"' in response.text


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
    response = client.post(SIGNED_OUT, {"email": "john@example.com", "job": "not-a-uuid"})
    assert response["Location"] == reverse("portal:link_sent")
    [message] = link_messages()
    assert "?job=" not in message.body_text
