"""Staff reply by text from the job page: only to a contact who may receive texts, through the
outbox, never cut (too long is refused with by how much), its length and count of text messages
shown as it is typed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import Contact, Customer, Job, Message, Pipeline, SmsOptOut
from crm.services.jobs import job_create
from crm.sms import MemorySmsBackend

MOBILE = "+33612345678"


@pytest.fixture
def texter(customer: Customer) -> Contact:
    return Contact.objects.create(
        customer=customer,
        name="Paul Dupont",
        email="paul@example.com",
        phone=MOBILE,
        language="fr",
        sms_consent_at=timezone.now() - timedelta(days=3),
        sms_consent_source="order form",
    )


@pytest.fixture
def texted_job(customer: Customer, texter: Contact, contact: Contact, installation: Pipeline, bob: User) -> Job:
    return job_create(
        customer=customer, pipeline=installation, owner=bob, title="Heat pump", actor=bob, contacts=[texter, contact]
    )


@pytest.fixture(autouse=True)
def empty_sms_outbox() -> None:
    MemorySmsBackend.outbox.clear()


def text_form(response) -> object:
    return response.context["forms"]["text"]


def test_only_contacts_who_may_receive_texts_are_offered(
    staff: Client, texted_job: Job, texter: Contact, contact: Contact
) -> None:
    page = staff.get(texted_job.get_absolute_url())
    assert list(text_form(page).fields["contact"].queryset) == [texter]
    assert 'id="action-text"' in page.content.decode()
    SmsOptOut.objects.create(number=MOBILE, source=SmsOptOut.Source.KEYWORD, said="STOP")
    page = staff.get(texted_job.get_absolute_url())
    assert list(text_form(page).fields["contact"].queryset) == []
    assert 'id="action-text"' not in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_text_goes_through_the_outbox_and_answers_their_reply(
    staff: Client, texted_job: Job, texter: Contact
) -> None:
    reply = Message.objects.create(
        job=texted_job,
        contact=texter,
        channel="sms",
        direction="in",
        kind="reply",
        status="received",
        from_address=MOBILE,
        body_text="On peut décaler ?",
        idempotency_key="in:1",
    )
    response = staff.post(
        reverse("crm:job_send_text", args=[texted_job.public_id]),
        {"text-contact": texter.pk, "text-body": "Oui, jeudi 9 h vous convient ?"},
    )
    assert response.status_code == 302
    [text] = Message.objects.filter(job=texted_job, channel="sms", direction="out", kind="free")
    assert (text.contact, text.to_address, text.status) == (texter, MOBILE, Message.Status.SENT)
    [sms] = MemorySmsBackend.outbox
    assert "Oui, jeudi 9 h vous convient ?" in sms.text and sms.to == MOBILE
    reply.refresh_from_db()
    assert reply.handled_at is not None


def test_a_contact_without_consent_cannot_be_texted(staff: Client, texted_job: Job, contact: Contact) -> None:
    response = staff.post(
        reverse("crm:job_send_text", args=[texted_job.public_id]),
        {"text-contact": contact.pk, "text-body": "Hello"},
    )
    assert response.status_code == 400
    assert "contact" in text_form(response).errors
    assert not Message.objects.filter(channel="sms", kind="free").exists()


def test_a_text_too_long_is_refused_with_by_how_much_and_nothing_is_queued(
    staff: Client, texted_job: Job, texter: Contact, settings
) -> None:
    settings.SMS_MAX_SEGMENTS = 1
    response = staff.post(
        reverse("crm:job_send_text", args=[texted_job.public_id]),
        {"text-contact": texter.pk, "text-body": "Bonjour, " + "nous passerons demain matin comme prévu. " * 6},
    )
    assert response.status_code == 400
    [error] = text_form(response).non_field_errors()
    assert "Too long for a text: shorten it by about" in error
    assert not Message.objects.filter(channel="sms", kind="free").exists()


def test_the_preview_says_how_many_text_messages_it_takes(staff: Client, texted_job: Job, texter: Contact) -> None:
    response = staff.get(
        reverse("crm:job_text_preview", args=[texted_job.public_id]),
        {"text-contact": texter.pk, "text-body": "Nous arrivons à 9 h."},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert 'data-sms-segments="1"' in body and "Nous arrivons à 9 h." in body
    assert not Message.objects.filter(channel="sms", kind="free").exists()
