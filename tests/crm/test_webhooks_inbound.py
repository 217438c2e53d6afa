"""ESP inbound webhooks, over real HTTP: a customer's email reply lands on its job (by the
reply+<token> address, else by In-Reply-To), stripped of the quoted history, and its owner hears
of it; mail that matches no job is kept unassigned, never dropped; a repeated delivery is stored once.

The payloads follow the providers' documented shapes (as in anymail's own inbound tests): Postmark's
JSON with a Headers list, SendGrid's multipart form, with the full MIME message in "email" when
"send raw" is on, or parsed fields otherwise.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from anymail.inbound import AnymailInboundMessage
from django.core import mail
from django.urls import reverse

from crm.models import Contact, Job, JobEvent, Message, Question
from crm.services.inbound import inbound_receive
from crm.services.jobs import job_advance

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

AUTH = ("hook", "test-secret")
QUOTED_FR = (
    "\n\nLe lun. 2 mars 2026 à 10:00, Brightside Installations <care@localhost> a écrit :\n"
    "> Bonjour Marie Dupont,\n"
    "> Votre dossier avance : Proposal sent.\n"
)


@pytest.fixture
def sent(job: Job) -> Message:
    """The stage-change email the customer is answering (the commit ran the send)."""
    job_advance(job=job, to_stage=job.pipeline.stages.get(name="Proposal sent"), actor=job.owner)
    message = Message.objects.get(job=job, direction=Message.Direction.OUT)
    assert message.status == "sent"
    mail.outbox.clear()
    return message


def reply_address(job: Job) -> str:
    return f"reply+{job.reply_token}@reply.example.com"


# --- Payloads, in the providers' documented shapes ------------------------------------------------


def postmark_inbound(
    *,
    to: str,
    text: str,
    message_id: str | None = "<CAEPk3R+4Zr.reply@mail.example.org>",
    sender: tuple[str, str] = ("Marie Dupont", "marie@example.com"),
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    name, address = sender
    header_list = [
        {"Name": "Return-Path", "Value": f"<{address}>"},
        {"Name": "Received", "Value": "by mail.example.org with SMTP; Mon, 2 Mar 2026 11:15:00 +0100"},
        {"Name": "X-Spam-Status", "Value": "No"},
        {"Name": "X-Spam-Score", "Value": "-0.1"},
        {"Name": "MIME-Version", "Value": "1.0"},
        *({"Name": k, "Value": v} for k, v in headers),
    ]
    if message_id:
        header_list.append({"Name": "Message-ID", "Value": message_id})
    return {
        "FromName": name,
        "From": address,
        "FromFull": {"Email": address, "Name": name, "MailboxHash": ""},
        "To": to,
        "ToFull": [{"Email": to, "Name": "", "MailboxHash": to.partition("+")[2].partition("@")[0]}],
        "Cc": "",
        "CcFull": [],
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": to,
        "Subject": "Re: Proposal sent — votre dossier J-2026-0001",
        "MessageID": "22c74902-a0c1-4511-804f-341342852c90",
        "ReplyTo": "",
        "MailboxHash": to.partition("+")[2].partition("@")[0],
        "Date": "Mon, 2 Mar 2026 11:15:00 +0100",
        "TextBody": text,
        "HtmlBody": "<div>" + text.split("\n")[0] + "</div>",
        "StrippedTextReply": text.split("\n")[0],
        "Tag": "",
        "Headers": header_list,
        "Attachments": [],
    }


def sendgrid_raw(*, mime: str, sender: str, to: str) -> dict[str, Any]:
    """SendGrid's Inbound Parse with "send raw": the whole message in the 'email' field."""
    return {
        "email": mime,
        "from": sender,
        "to": to,
        "subject": "Re: your job",
        "charsets": json.dumps({"to": "UTF-8", "subject": "UTF-8", "from": "UTF-8"}),
        "envelope": json.dumps({"to": [to], "from": sender}),
        "sender_ip": "10.10.1.71",
        "dkim": "{@example.com : pass}",
        "SPF": "pass",
        "spam_score": "0.1",
    }


def sendgrid_parsed(*, headers: str, text: str, sender: str, to: str) -> dict[str, Any]:
    """SendGrid's Inbound Parse default: headers as one field, bodies as others."""
    return {
        "headers": headers,
        "from": sender,
        "to": to,
        "subject": "Quote for a heat pump?",
        "text": text,
        "charsets": json.dumps({"to": "UTF-8", "subject": "UTF-8", "from": "UTF-8", "text": "UTF-8"}),
        "envelope": json.dumps({"to": [to], "from": sender}),
        "attachments": "0",
        "sender_ip": "10.10.1.71",
        "SPF": "pass",
        "spam_score": "0.1",
    }


def post_postmark(live_server, payload: dict[str, Any], *, auth: tuple[str, str] | None = AUTH) -> requests.Response:
    return requests.post(f"{live_server.url}/anymail/postmark/inbound/", json=payload, auth=auth, timeout=10)


def post_sendgrid(live_server, fields: dict[str, str]) -> requests.Response:
    # SendGrid posts multipart/form-data.
    multipart = {name: (None, value) for name, value in fields.items()}
    return requests.post(f"{live_server.url}/anymail/sendgrid/inbound/", files=multipart, auth=AUTH, timeout=10)


def inbound() -> list[Message]:
    return list(Message.objects.filter(direction=Message.Direction.IN).order_by("id"))


# --- Threading a reply onto its job ---------------------------------------------------------------


def test_it_puts_a_reply_to_the_job_address_on_the_job(live_server, job: Job, contact: Contact) -> None:
    payload = postmark_inbound(to=reply_address(job), text="Jeudi nous convient, merci." + QUOTED_FR)

    response = post_postmark(live_server, payload)

    assert response.status_code == 200
    [reply] = inbound()
    assert (reply.job, reply.contact, reply.direction, reply.status, reply.kind) == (
        job,
        contact,
        "in",
        "received",
        "reply",
    )
    assert reply.body_text == "Jeudi nous convient, merci."
    assert (reply.from_address, reply.to_address) == ("marie@example.com", reply_address(job))
    assert reply.subject == "Re: Proposal sent — votre dossier J-2026-0001"
    assert reply.email_message_id == "<CAEPk3R+4Zr.reply@mail.example.org>"
    assert reply.language == "fr"
    [event] = JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_RECEIVED)
    assert (event.data["message_id"], event.data["sender"], event.actor) == (reply.pk, "marie@example.com", None)
    # A new request by email: acknowledged at once, in French, and its owner alerted.
    [question] = Question.objects.filter(job=job)
    assert (question.source, question.message, question.contact) == (Question.Source.EMAIL, reply, contact)
    [ack] = [m for m in mail.outbox if m.to == [contact.email]]
    assert "Bonjour Marie Dupont" in ack.body
    [alert] = [m for m in mail.outbox if m.to == ["bob@example.com"]]
    assert job.reference in alert.subject
    assert "Marie Dupont" in alert.subject
    assert "Jeudi nous convient, merci." in alert.body
    assert "Bonjour Marie Dupont" not in alert.body


def test_it_threads_a_reply_by_in_reply_to_alone(live_server, job: Job, sent: Message) -> None:
    mime = (
        "From: Marie Dupont <marie@example.com>\n"
        "To: Brightside Installations <care@localhost>\n"
        "Subject: Re: Proposal sent\n"
        "Date: Mon, 2 Mar 2026 11:15:00 +0100\n"
        "Message-ID: <CAEPk3RKEx.raw@mail.example.org>\n"
        f"In-Reply-To: {sent.email_message_id}\n"
        f"References: {sent.email_message_id}\n"
        "MIME-Version: 1.0\n"
        'Content-Type: text/plain; charset="UTF-8"\n'
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Thursday works for us.\n"
        "\n"
        "On Mon, 2 Mar 2026 at 10:00, Brightside Installations <care@localhost> wrote:\n"
        "> Hello Marie,\n"
    )

    response = post_sendgrid(live_server, sendgrid_raw(mime=mime, sender="marie@example.com", to="care@localhost"))

    assert response.status_code == 200
    [reply] = inbound()
    assert (reply.job, reply.in_reply_to, reply.contact_id) == (job, sent, sent.contact_id)
    assert reply.body_text == "Thursday works for us."
    assert JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_RECEIVED).count() == 1
    assert sorted(e.to for e in mail.outbox) == [["bob@example.com"], ["marie@example.com"]]


def test_it_links_the_answered_message_when_both_address_and_header_match(live_server, job: Job, sent: Message) -> None:
    payload = postmark_inbound(
        to=reply_address(job), text="Yes." + QUOTED_FR, headers=[("In-Reply-To", sent.email_message_id)]
    )

    post_postmark(live_server, payload)

    [reply] = inbound()
    assert (reply.job, reply.in_reply_to) == (job, sent)


# --- Mail that matches no job ---------------------------------------------------------------------


def test_it_keeps_mail_from_an_unknown_sender_unassigned(live_server, job: Job) -> None:
    headers = (
        "Received: by mx.sendgrid.net\n"
        "From: Stranger <stranger@elsewhere.example>\n"
        "To: care@localhost\n"
        "Subject: Quote for a heat pump?\n"
        "Date: Mon, 2 Mar 2026 11:15:00 +0100\n"
        "Message-ID: <stranger.1@elsewhere.example>\n"
        "MIME-Version: 1.0\n"
    )
    fields = sendgrid_parsed(
        headers=headers, text="Do you install in Lyon?", sender="stranger@elsewhere.example", to="care@localhost"
    )

    response = post_sendgrid(live_server, fields)

    assert response.status_code == 200
    [kept] = inbound()
    assert (kept.job, kept.contact, kept.status, kept.direction) == (None, None, "received", "in")
    assert (kept.from_address, kept.body_text) == ("stranger@elsewhere.example", "Do you install in Lyon?")
    assert not JobEvent.objects.filter(kind=JobEvent.Kind.MESSAGE_RECEIVED).exists()
    assert mail.outbox == []


def test_it_keeps_a_reply_to_an_unknown_token_unassigned(live_server, job: Job, contact: Contact) -> None:
    payload = postmark_inbound(to="reply+00000000deadbeef@reply.example.com", text="Hello?")

    response = post_postmark(live_server, payload)

    assert response.status_code == 200
    [kept] = inbound()
    assert kept.job is None
    # The sender is a known contact and the only one with this address: say who wrote.
    assert kept.contact == contact


# --- Repeated deliveries --------------------------------------------------------------------------


def test_it_stores_an_inbound_posted_twice_once(live_server, job: Job) -> None:
    payload = postmark_inbound(to=reply_address(job), text="Jeudi nous convient." + QUOTED_FR)

    responses = [post_postmark(live_server, payload) for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    assert len(inbound()) == 1
    assert JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_RECEIVED).count() == 1
    assert Question.objects.filter(job=job).count() == 1
    assert len(mail.outbox) == 2  # one acknowledgement, one alert to the owner


def test_it_stores_an_inbound_without_message_id_posted_twice_once(live_server, job: Job) -> None:
    payload = postmark_inbound(to=reply_address(job), text="Jeudi nous convient.", message_id=None)

    for _ in range(2):
        post_postmark(live_server, payload)

    assert len(inbound()) == 1


# Through the service: a webhook that fails with a server error would leave the live server's
# database session open.
@pytest.mark.django_db
def test_it_keeps_a_reply_with_a_very_long_message_id(job: Job) -> None:
    long_id = "<" + "x" * 230 + "@mail.example.org>"
    email = AnymailInboundMessage.construct(
        from_email="Marie Dupont <marie@example.com>",
        to=reply_address(job),
        subject="Re: Proposal sent",
        headers=[("Message-ID", long_id)],
        text="Jeudi nous convient.",
    )

    reply = inbound_receive(email=email)

    assert (reply.job, reply.email_message_id, reply.body_text) == (job, long_id, "Jeudi nous convient.")
    assert inbound_receive(email=email) == reply


def test_it_refuses_an_inbound_without_the_secret(live_server, job: Job) -> None:
    payload = postmark_inbound(to=reply_address(job), text="Jeudi nous convient.")

    response = post_postmark(live_server, payload, auth=("hook", "wrong"))

    assert response.status_code in (400, 401, 403)
    assert inbound() == []
    assert mail.outbox == []


# --- Whatever its length, its characters, its attachments -----------------------------------------


def post_postmark_json(live_server, body: str) -> requests.Response:
    """A body as the provider sends it, byte for byte (JSON escapes such as \\u0000 kept as sent)."""
    return requests.post(
        f"{live_server.url}/anymail/postmark/inbound/",
        data=body.encode("ascii"),
        headers={"Content-Type": "application/json"},
        auth=AUTH,
        timeout=10,
    )


def long_reply(length: int) -> str:
    """A customer's own words, no quoted history, ``length`` characters."""
    line = "La pompe fait un bruit regulier le soir, surtout quand il fait froid dehors."
    text = "\n".join(f"{i:05d} {line}" for i in range(length // (len(line) + 7) + 1))
    return text[:length].strip()


def test_it_keeps_a_100_kb_reply_whole_and_makes_a_question_of_it(
    live_server, client, job: Job, contact: Contact, bob
) -> None:
    text = long_reply(100_000)
    payload = postmark_inbound(to=reply_address(job), text=text)

    responses = [post_postmark(live_server, payload) for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    [reply] = inbound()
    assert (reply.job, reply.contact, reply.last_error) == (job, contact, "")
    assert reply.body_text == text
    [question] = Question.objects.filter(job=job)
    assert (question.body, question.message, question.source) == (text, reply, Question.Source.EMAIL)
    # Lists and emails show a preview; the job page shows it all.
    [alert] = [m for m in mail.outbox if m.to == ["bob@example.com"]]
    assert len(alert.body) < 3000
    assert "the whole text is on the job page" in alert.body
    [ack] = [m for m in mail.outbox if m.to == [contact.email]]
    assert text[:1000] in ack.body
    assert text[-1000:] not in ack.body
    client.force_login(bob)
    page = client.get(job.get_absolute_url()).content.decode()
    assert text[-1000:] in page


def test_it_makes_a_question_of_a_6000_character_reply(live_server, job: Job, contact: Contact) -> None:
    text = long_reply(6000)

    response = post_postmark(live_server, postmark_inbound(to=reply_address(job), text=text + QUOTED_FR))

    assert response.status_code == 200
    [reply] = inbound()
    assert reply.body_text == text
    [question] = Question.objects.filter(job=job)
    assert (question.body, question.message) == (text, reply)


def test_it_stores_a_reply_with_nul_and_lone_surrogates_cleaned(live_server, job: Job, contact: Contact) -> None:
    payload = postmark_inbound(to=reply_address(job), text="Jeudi\x00 nous \ud800convient 😀." + QUOTED_FR)
    payload["Subject"] = "Re: Proposal\x00 sent \udfff"
    payload["HtmlBody"] = "<div>Jeudi\x00 nous \ud800convient.</div>"
    payload["FromName"] = payload["FromFull"]["Name"] = "Marie\x00 \ud800Dupont"
    body = json.dumps(payload, ensure_ascii=True)
    assert "\\u0000" in body
    assert "\\ud800" in body
    assert "\\udfff" in body

    responses = [post_postmark_json(live_server, body) for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    [reply] = inbound()
    assert (reply.job, reply.contact, reply.last_error) == (job, contact, "")
    # NUL dropped, each lone half of a pair replaced, a real pair kept.
    assert reply.body_text == "Jeudi nous \ufffdconvient 😀."
    assert reply.subject == "Re: Proposal sent \ufffd"
    assert Question.objects.get(job=job).body == "Jeudi nous \ufffdconvient 😀."
    [event] = JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_RECEIVED)
    assert event.data["subject"] == "Re: Proposal sent \ufffd"


def test_it_stores_a_sendgrid_reply_with_nul_cleaned(live_server, job: Job, contact: Contact) -> None:
    headers = (
        "From: Marie Dupont <marie@example.com>\n"
        f"To: {reply_address(job)}\n"
        "Subject: Re: Proposal\x00 sent\n"
        "Date: Mon, 2 Mar 2026 11:15:00 +0100\n"
        "Message-ID: <nul.1@mail.example.org>\n"
        "MIME-Version: 1.0\n"
    )
    fields = sendgrid_parsed(
        headers=headers, text="Jeudi\x00 nous convient.", sender=contact.email, to=reply_address(job)
    )

    response = post_sendgrid(live_server, fields)

    assert response.status_code == 200
    [reply] = inbound()
    assert (reply.job, reply.body_text, reply.subject) == (job, "Jeudi nous convient.", "Re: Proposal sent")


def test_it_reads_a_reply_in_a_charset_it_has_no_codec_for(live_server, job: Job, contact: Contact) -> None:
    mime = (
        "From: Marie Dupont <marie@example.com>\n"
        f"To: {reply_address(job)}\n"
        "Subject: Re: Proposal sent\n"
        "Message-ID: <charset.1@mail.example.org>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: text/plain; charset="x-no-such-charset"\n'
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Jeudi nous convient.\n"
    )

    response = post_sendgrid(live_server, sendgrid_raw(mime=mime, sender=contact.email, to=reply_address(job)))

    assert response.status_code == 200
    [reply] = inbound()
    assert (reply.job, reply.body_text, reply.last_error) == (job, "Jeudi nous convient.", "")


# --- An email that cannot be filed ----------------------------------------------------------------


def refuse(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the database went away")


def test_it_keeps_an_email_it_cannot_file_unassigned_with_the_error(
    live_server, monkeypatch, client, job: Job, contact: Contact, bob
) -> None:
    """Filing fails after the message and its event were written (forced from inside the product:
    the only way to stand for "any reason"); that attempt is rolled back and the email is kept once,
    unassigned, as it arrived, for staff to file by hand."""
    monkeypatch.setattr("crm.services.inbound.question_create", refuse)
    payload = postmark_inbound(to=reply_address(job), text="Jeudi nous convient." + QUOTED_FR)

    responses = [post_postmark(live_server, payload) for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    [kept] = inbound()
    assert (kept.job, kept.contact, kept.status, kept.kind) == (None, None, "received", "reply")
    assert kept.idempotency_key.startswith("in-raw:")
    assert kept.last_error == "RuntimeError: the database went away"
    assert (kept.from_address, kept.to_address) == ("marie@example.com", reply_address(job))
    assert kept.subject == "Re: Proposal sent — votre dossier J-2026-0001"
    assert kept.email_message_id == "<CAEPk3R+4Zr.reply@mail.example.org>"
    # As it arrived: the headers and the whole text, quoted history included.
    assert "From: Marie Dupont <marie@example.com>" in kept.body_text
    assert "Jeudi nous convient.\n\nLe lun. 2 mars 2026" in kept.body_text
    assert not JobEvent.objects.filter(kind=JobEvent.Kind.MESSAGE_RECEIVED).exists()
    assert not Question.objects.exists()
    assert mail.outbox == []

    client.force_login(bob)
    page = client.get(reverse("crm:inbox")).content.decode()
    assert "Could not be filed automatically." in page
    assert "RuntimeError: the database went away" in page
    response = client.post(reverse("crm:inbox_assign", args=[kept.pk]), {"job": job.pk})
    assert response.status_code == 302
    kept.refresh_from_db()
    assert (kept.job, kept.contact) == (job, contact)


def test_it_answers_an_error_and_stores_nothing_when_even_keeping_it_fails(
    live_server, monkeypatch, job: Job, contact: Contact
) -> None:
    """Filing and keeping both fail (forced from inside the product, as above): nothing is half
    stored, and the error makes the provider deliver it again — which then files it."""
    monkeypatch.setattr("crm.services.inbound.question_create", refuse)
    monkeypatch.setattr("crm.services.inbound._raw_text", refuse)
    payload = postmark_inbound(to=reply_address(job), text="Jeudi nous convient." + QUOTED_FR)

    response = post_postmark(live_server, payload)

    assert response.status_code >= 500
    assert inbound() == []
    assert not JobEvent.objects.filter(kind=JobEvent.Kind.MESSAGE_RECEIVED).exists()
    assert not Question.objects.exists()
    assert mail.outbox == []

    monkeypatch.undo()
    assert post_postmark(live_server, payload).status_code == 200
    [reply] = inbound()
    assert (reply.job, reply.last_error) == (job, "")
    assert Question.objects.get(job=job).message == reply
