"""ESP tracking webhooks, over real HTTP: anymail's views check the basic-auth secret and normalise
Postmark's and SendGrid's payloads; crm.services.tracking moves the message forward only.

The payloads follow the providers' documented shapes (as in anymail's own webhook tests). Messages
are sent through the outbox to a stand-in for the ESP's API that answers with its own message id,
as Postmark and SendGrid (through anymail) do.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from anymail.message import AnymailRecipientStatus, AnymailStatus
from django.core import mail
from django.core.mail import EmailMessage
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.utils import timezone

from crm.models import Contact, Job, JobEvent, Message
from crm.services.jobs import job_advance

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

AUTH = ("hook", "test-secret")


class EspStandIn(LocmemBackend):
    """Takes each message like an ESP's API does: answers with the provider's id for it."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for email in email_messages:
            status = AnymailStatus()
            status.set_recipient_status(
                {to: AnymailRecipientStatus(message_id=str(uuid.uuid4()), status="queued") for to in email.to}
            )
            email.anymail_status = status  # type: ignore[attr-defined]
        return super().send_messages(email_messages)


@pytest.fixture(autouse=True)
def esp(settings) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.EspStandIn"


@pytest.fixture
def sent(job: Job) -> Message:
    """A stage-change email the ESP has taken (the commit ran the send)."""
    job_advance(job=job, to_stage=job.pipeline.stages.get(name="Proposal sent"), actor=job.owner)
    message = Message.objects.get(job=job)
    assert message.status == "sent"
    assert message.provider_message_id
    mail.outbox.clear()
    return message


# --- Payloads, in the providers' documented shapes ------------------------------------------------


def postmark_delivery(message: Message, *, at: str = "2026-03-02T09:00:04.2735393Z") -> dict[str, Any]:
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": message.provider_message_id,
        "Recipient": message.to_address,
        "Tag": message.kind,
        "DeliveredAt": at,
        "Details": "smtp;250 2.0.0 OK 1772442004 - gsmtp",
        "Metadata": {"outbox_id": str(message.pk)},
    }


def postmark_bounce(message: Message) -> dict[str, Any]:
    return {
        "RecordType": "Bounce",
        "ID": 4323372036,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": message.kind,
        "MessageID": message.provider_message_id,
        "Metadata": {"outbox_id": str(message.pk)},
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": message.to_address,
        "From": "care@localhost",
        "BouncedAt": "2026-03-02T09:00:05.3963933Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": message.subject,
    }


def sendgrid_event(message: Message, event: str, timestamp: int, **fields: Any) -> dict[str, Any]:
    return {
        "email": message.to_address,
        "timestamp": timestamp,
        "smtp-id": f"<{uuid.uuid4().hex}@ismtpd0006p1sjc2.sendgrid.net>",
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": "wrfRRvF7Q0GgwUo2CvDmEA.filter0425p1mdw1.13037.57168B4A1D.0",
        "event": event,
        "category": [message.kind],
        "anymail_id": message.provider_message_id,
        # SendGrid merges custom args (anymail's metadata) into each event.
        "outbox_id": str(message.pk),
        **fields,
    }


def post_json(url: str, payload: Any, *, auth: tuple[str, str] | None = AUTH) -> requests.Response:
    return requests.post(url, json=payload, auth=auth, timeout=10)


def snapshot(message: Message) -> dict[str, Any]:
    """Everything a tracking event could change."""
    return {
        "message": Message.objects.filter(pk=message.pk).values().get(),
        "contact": Contact.objects.filter(pk=message.contact_id).values().get(),
        "events": list(JobEvent.objects.filter(job=message.job_id).values_list("pk", flat=True)),
    }


# --- Postmark -------------------------------------------------------------------------------------


def test_it_marks_a_message_delivered(live_server, sent: Message) -> None:
    response = post_json(f"{live_server.url}/anymail/postmark/tracking/", postmark_delivery(sent))

    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == "delivered"
    assert sent.delivered_at == datetime(2026, 3, 2, 9, 0, 4, 273539, tzinfo=UTC)


def test_it_changes_a_message_once_when_the_same_event_comes_three_times(live_server, sent: Message) -> None:
    url = f"{live_server.url}/anymail/postmark/tracking/"
    post_json(url, postmark_delivery(sent))
    sent.refresh_from_db()
    after_first = snapshot(sent)

    responses = [post_json(url, postmark_delivery(sent)) for _ in range(2)]
    # The provider reporting a later delivery of the same message does not rewrite the first.
    responses.append(post_json(url, postmark_delivery(sent, at="2026-03-02T11:30:00Z")))

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert snapshot(sent) == after_first
    assert after_first["message"]["delivered_at"] == datetime(2026, 3, 2, 9, 0, 4, 273539, tzinfo=UTC)


def test_it_marks_a_bounce_flags_the_address_and_tells_the_owner(
    live_server, sent: Message, job: Job, time_machine, settings, run_schedules
) -> None:
    response = post_json(f"{live_server.url}/anymail/postmark/tracking/", postmark_bounce(sent))

    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == "bounced"
    assert "unable to deliver" in sent.last_error
    contact = Contact.objects.get(pk=sent.contact_id)
    assert contact.email_bounced_at == datetime(2026, 3, 2, 9, 0, 5, 396393, tzinfo=UTC)
    assert "unable to deliver" in contact.email_bounce_reason
    [bounced] = JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_BOUNCED)
    assert bounced.data["message_id"] == sent.pk
    assert bounced.data["to"] == "marie@example.com"
    # The owner hears of it in their digest of failures, sent once the burst's window has passed.
    assert Message.objects.get(pk=sent.pk).alerted_in.staff == job.owner
    assert mail.outbox == []
    time_machine.move_to(timezone.now() + timedelta(seconds=settings.STAFF_ALERT_DIGEST_SECONDS + 1))
    run_schedules()
    [alert] = mail.outbox
    assert alert.to == ["bob@example.com"]
    assert job.reference in alert.subject
    assert "marie@example.com" in alert.body


def test_it_moves_a_delivered_message_to_bounced_once(live_server, sent: Message, job: Job) -> None:
    """And alerts its owner once: one failure in one digest."""
    url = f"{live_server.url}/anymail/postmark/tracking/"
    post_json(url, postmark_delivery(sent))

    for _ in range(2):
        post_json(url, postmark_bounce(sent))
    post_json(url, postmark_delivery(sent))

    sent.refresh_from_db()
    assert sent.status == "bounced"
    assert JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_BOUNCED).count() == 1
    [digest] = Message.objects.filter(kind=Message.Kind.STAFF_ALERT)
    assert list(digest.alerted_failures.all()) == [sent]


def test_it_opts_out_a_contact_who_marks_a_message_as_spam(live_server, sent: Message) -> None:
    complaint = {
        **postmark_bounce(sent),
        "RecordType": "SpamComplaint",
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
    }

    response = post_json(f"{live_server.url}/anymail/postmark/tracking/", complaint)

    assert response.status_code == 200
    assert Contact.objects.get(pk=sent.contact_id).opted_out_at is not None
    assert Message.objects.get(pk=sent.pk).status == "sent"


# --- SendGrid -------------------------------------------------------------------------------------


def test_it_follows_a_sendgrid_batch_of_events(live_server, sent: Message) -> None:
    events = [
        sendgrid_event(sent, "processed", 1772442001),
        sendgrid_event(sent, "delivered", 1772442004, response="250 2.0.0 OK", tls=1, ip="167.89.17.173"),
        sendgrid_event(sent, "open", 1772442300, useragent="Mozilla/5.0", ip="66.102.6.229"),
    ]

    response = post_json(f"{live_server.url}/anymail/sendgrid/tracking/", events)

    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == "delivered"
    assert sent.delivered_at == datetime.fromtimestamp(1772442004, tz=UTC)
    assert sent.opened_at == datetime.fromtimestamp(1772442300, tz=UTC)


def test_it_keeps_delivered_when_a_late_processed_event_arrives(live_server, sent: Message) -> None:
    url = f"{live_server.url}/anymail/sendgrid/tracking/"
    post_json(url, [sendgrid_event(sent, "delivered", 1772442004, response="250 2.0.0 OK")])
    sent.refresh_from_db()
    after_delivery = snapshot(sent)

    response = post_json(url, [sendgrid_event(sent, "processed", 1772442001)])

    assert response.status_code == 200
    assert snapshot(sent) == after_delivery
    assert after_delivery["message"]["status"] == "delivered"


def test_it_marks_a_sendgrid_bounce(live_server, sent: Message, job: Job) -> None:
    bounce = sendgrid_event(
        sent,
        "bounce",
        1772442005,
        status="5.1.1",
        type="bounce",
        reason="550 5.1.1 The email account that you tried to reach does not exist.",
    )

    response = post_json(f"{live_server.url}/anymail/sendgrid/tracking/", [bounce])

    assert response.status_code == 200
    assert Message.objects.get(pk=sent.pk).status == "bounced"
    contact = Contact.objects.get(pk=sent.contact_id)
    assert contact.email_bounced_at == datetime.fromtimestamp(1772442005, tz=UTC)
    assert "does not exist" in contact.email_bounce_reason
    assert JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_BOUNCED).count() == 1


# --- What is refused or ignored -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/anymail/postmark/tracking/", lambda m: postmark_bounce(m)),
        ("/anymail/sendgrid/tracking/", lambda m: [sendgrid_event(m, "bounce", 1772442005, type="bounce")]),
    ],
    ids=["postmark", "sendgrid"],
)
def test_it_refuses_a_webhook_without_the_secret(live_server, sent: Message, path: str, payload) -> None:
    before = snapshot(sent)

    responses = [
        post_json(f"{live_server.url}{path}", payload(sent), auth=auth)
        for auth in (("hook", "wrong"), ("someone", "test-secret"), None)
    ]

    assert all(r.status_code in (400, 401, 403) for r in responses), [r.status_code for r in responses]
    assert snapshot(sent) == before
    assert mail.outbox == []


def test_it_ignores_an_event_for_a_message_it_does_not_know(live_server, sent: Message) -> None:
    before = snapshot(sent)
    responses = []
    for metadata in ({}, {"outbox_id": "999999"}, {"outbox_id": "not-a-number"}):
        event = {**postmark_bounce(sent), "MessageID": str(uuid.uuid4()), "Metadata": metadata}
        responses.append(post_json(f"{live_server.url}/anymail/postmark/tracking/", event))

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert snapshot(sent) == before
    assert mail.outbox == []


# --- Odd values ---------------------------------------------------------------------------------


def post_json_as_sent(url: str, payload: Any) -> requests.Response:
    """The payload with its JSON escapes (``\\u0000``, ``\\ud800``) as the provider writes them."""
    body = json.dumps(payload, ensure_ascii=True)
    return requests.post(url, data=body, headers={"Content-Type": "application/json"}, auth=AUTH, timeout=10)


def test_it_takes_a_bounce_with_nul_lone_surrogates_and_a_10000_character_description(
    live_server, sent: Message, job: Job
) -> None:
    bounce = {
        **postmark_bounce(sent),
        "Description": "Mailbox\x00 full \ud800 " + "x" * 10_000,
        "Details": "smtp;552\x00 \udfff",
    }
    assert "\\u0000" in json.dumps(bounce, ensure_ascii=True)

    response = post_json_as_sent(f"{live_server.url}/anymail/postmark/tracking/", bounce)

    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == "bounced"
    assert sent.last_error.startswith("Mailbox full \ufffd xxx")
    assert len(sent.last_error) == 2000
    contact = Contact.objects.get(pk=sent.contact_id)
    assert contact.email_bounce_reason.startswith("Mailbox full \ufffd xxx")
    [bounced] = JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_BOUNCED)
    assert bounced.data["reason"].startswith("Mailbox full \ufffd xxx")


def test_it_finds_a_message_by_its_outbox_id_when_the_provider_id_is_odd(live_server, sent: Message) -> None:
    provider_id = sent.provider_message_id
    delivery = {**postmark_delivery(sent), "MessageID": "\x00\ud800" + "x" * 10_000}

    response = post_json_as_sent(f"{live_server.url}/anymail/postmark/tracking/", delivery)

    assert response.status_code == 200
    sent.refresh_from_db()
    assert (sent.status, sent.provider_message_id) == ("delivered", provider_id)


@pytest.mark.parametrize(
    ("message_id", "outbox_id"),
    [
        ("\x00", "\x00"),
        ("\ud800", "\ud800"),
        ("x" * 10_000, "²"),
        ("", "9" * 40),
        ("", "-1"),
        ("", ["1"]),
        ("", {"id": 1}),
    ],
    ids=["nul", "lone-surrogate", "long-id-and-superscript-digit", "huge-number", "negative", "list", "object"],
)
def test_it_ignores_a_tracking_event_with_odd_ids(live_server, sent: Message, message_id: str, outbox_id: Any) -> None:
    before = snapshot(sent)
    bounce = {**postmark_bounce(sent), "MessageID": message_id, "Metadata": {"outbox_id": outbox_id}}

    response = post_json_as_sent(f"{live_server.url}/anymail/postmark/tracking/", bounce)

    assert response.status_code == 200
    assert snapshot(sent) == before
    assert mail.outbox == []
