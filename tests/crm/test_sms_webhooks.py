"""Twilio's webhooks over real HTTP (the live server), with the payloads Twilio documents and the
signature it computes (X-Twilio-Signature, twilio's own RequestValidator with the auth token):
inbound texts threaded to the job, stored once, STOP / START / HELP, "texted us" consent, the
status callbacks moving a text forward only, and no text ever handed over to a number that
opted out."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests
from django.contrib.auth.models import User
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from twilio.request_validator import RequestValidator

from crm.models import Contact, Customer, Job, JobEvent, Message, Pipeline, Question, SmsOptOut
from crm.selectors import unassigned_inbound
from crm.services.delivery import deliver_many
from crm.services.jobs import job_create
from crm.sms import MemorySmsBackend

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "0" * 32
OUR_NUMBER = "+33757000000"
MOBILE = "+33612345678"


@pytest.fixture(autouse=True)
def twilio_settings(settings, live_server) -> None:
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.SITE_URL = live_server.url
    MemorySmsBackend.outbox.clear()


def sid() -> str:
    return "SM" + uuid.uuid4().hex


def post(live_server, name: str, params: dict[str, str], *, token: str = TOKEN, signature: str | None = None):
    url = live_server.url + reverse(name)
    signed = RequestValidator(token).compute_signature(url, params)
    headers = {} if signature == "" else {"X-Twilio-Signature": signature or signed}
    return requests.post(url, data=params, headers=headers, timeout=10)


def inbound(live_server, body: str, *, sender: str = MOBILE, message_sid: str | None = None, **kwargs):
    """What Twilio posts when a text comes in (its documented fields)."""
    message_sid = message_sid or sid()
    params = {
        "ToCountry": "FR",
        "SmsMessageSid": message_sid,
        "NumMedia": "0",
        "SmsSid": message_sid,
        "SmsStatus": "received",
        "Body": body,
        "FromCountry": "FR",
        "To": OUR_NUMBER,
        "NumSegments": "1",
        "MessageSid": message_sid,
        "AccountSid": ACCOUNT,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
    return post(live_server, "twilio_inbound", params, **kwargs)


def status(live_server, message_sid: str, value: str, *, error_code: str = "", **kwargs):
    params = {
        "SmsSid": message_sid,
        "SmsStatus": value,
        "MessageStatus": value,
        "To": MOBILE,
        "MessageSid": message_sid,
        "AccountSid": ACCOUNT,
        "From": OUR_NUMBER,
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        params["ErrorCode"] = error_code
    return post(live_server, "twilio_status", params, **kwargs)


@pytest.fixture
def texter(customer: Customer) -> Contact:
    """A contact with a mobile number who never agreed to texts."""
    return Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com", phone=MOBILE)


@pytest.fixture
def texted_job(customer: Customer, texter: Contact, installation: Pipeline, bob: User) -> Job:
    return job_create(
        customer=customer, pipeline=installation, owner=bob, title="Heat pump", actor=bob, contacts=[texter]
    )


def received(**filters) -> list[Message]:
    return list(Message.objects.filter(direction=Message.Direction.IN, channel=Message.Channel.SMS, **filters))


def test_a_text_from_a_contact_is_threaded_onto_their_job_acknowledged_and_counts_as_consent(
    live_server, texted_job: Job, texter: Contact
) -> None:
    before = timezone.now()
    response = inbound(live_server, "Bonjour, pouvez-vous venir mardi plutôt que lundi ?")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/xml")
    assert "<Response></Response>" in response.text
    [message] = received()
    assert (message.job, message.contact, message.from_address) == (texted_job, texter, MOBILE)
    assert message.body_text == "Bonjour, pouvez-vous venir mardi plutôt que lundi ?"
    # A new request: acknowledged like an email, with the date of our answer.
    [question] = Question.objects.filter(job=texted_job)
    assert (question.source, question.message) == (Question.Source.SMS, message)
    assert Message.objects.filter(job=texted_job, kind=Message.Kind.ACKNOWLEDGEMENT).count() == 1
    # They texted first: that is their consent to texts, with its source and time.
    texter.refresh_from_db()
    assert texter.sms_consent_source == "texted us"
    assert before <= texter.sms_consent_at <= timezone.now()
    assert texted_job.events.filter(kind=JobEvent.Kind.SMS_CONSENT_GIVEN).count() == 1


def test_the_same_webhook_three_times_is_one_message(live_server, texted_job: Job) -> None:
    message_sid = sid()
    for _ in range(3):
        assert inbound(live_server, "Une question", message_sid=message_sid).status_code == 200
    assert len(received()) == 1
    assert Question.objects.filter(job=texted_job).count() == 1


def test_a_follow_up_while_a_question_is_open_alerts_the_owner_as_a_reply(
    live_server, texted_job: Job, bob: User
) -> None:
    inbound(live_server, "Première question ?")
    mail.outbox.clear()
    inbound(live_server, "Et aussi : faut-il vider le garage ?")
    follow_up = received().pop()
    assert (follow_up.job, follow_up.handled_at) == (texted_job, None)  # "Replies not yet answered"
    assert Question.objects.filter(job=texted_job).count() == 1
    alerts = Message.objects.filter(
        kind=Message.Kind.STAFF_ALERT, staff=bob, idempotency_key__contains="reply-received"
    )
    assert alerts.count() == 1
    assert "faut-il vider le garage" in alerts.get().body_text


def test_a_text_from_an_unknown_number_waits_in_the_unassigned_inbox(
    live_server, client, texted_job: Job, bob: User
) -> None:
    inbound(live_server, "Hello, is this the heat pump company?", sender="+447911123456")
    [message] = received()
    assert (message.job, message.contact, message.from_address) == (None, None, "+447911123456")
    assert list(unassigned_inbound()) == [message]
    client.force_login(bob)
    page = client.get(reverse("crm:inbox")).content.decode()
    assert "Text message" in page and "+44 7911 123456" in page and "is this the heat pump company?" in page


def test_a_contact_with_several_jobs_gets_the_text_on_the_most_recently_active_one(
    live_server, customer: Customer, texter: Contact, installation: Pipeline, bob: User
) -> None:
    older = job_create(customer=customer, pipeline=installation, owner=bob, title="Old", actor=bob, contacts=[texter])
    newer = job_create(customer=customer, pipeline=installation, owner=bob, title="New", actor=bob, contacts=[texter])
    Job.objects.filter(pk=older.pk).update(updated_at=timezone.now() - timedelta(days=3))
    Job.objects.filter(pk=newer.pk).update(updated_at=timezone.now() - timedelta(days=1))
    inbound(live_server, "Quand venez-vous ?")
    [message] = received()
    assert message.job == newer


@pytest.mark.parametrize(
    ("header", "token"),
    [("", TOKEN), ("bm90LWEtc2lnbmF0dXJl", TOKEN), (None, "another-token")],
    ids=["missing", "wrong", "other-token"],
)
def test_a_bad_or_missing_signature_is_refused_and_changes_nothing(live_server, texted_job: Job, header, token) -> None:
    assert inbound(live_server, "Hello", signature=header, token=token).status_code == 403
    assert received() == []
    sent = Message.objects.create(
        job=texted_job,
        channel="sms",
        kind="free",
        status="sent",
        to_address=MOBILE,
        idempotency_key="x",
        provider_message_id=sid(),
    )
    assert status(live_server, sent.provider_message_id, "delivered", signature=header, token=token).status_code == 403
    sent.refresh_from_db()
    assert sent.status == "sent"


def test_without_an_auth_token_the_webhooks_do_not_exist(live_server, settings) -> None:
    settings.TWILIO_AUTH_TOKEN = ""
    assert inbound(live_server, "Hello").status_code == 404
    assert status(live_server, sid(), "delivered").status_code == 404


def test_a_signed_request_without_a_message_sid_is_a_400(live_server) -> None:
    assert post(live_server, "twilio_inbound", {"From": MOBILE, "Body": "hi"}).status_code == 400
    assert post(live_server, "twilio_status", {"MessageStatus": "delivered"}).status_code == 400


@pytest.mark.parametrize(
    "word", ["STOP", "stop", "Stop.", "  STOP  ", "Arrêt", "ARRET", "arret", "Stop SMS", "STOPALL"]
)
def test_stop_in_any_form_withdraws_sms_consent_at_once_and_tells_the_owner(
    live_server, word: str, texted_job: Job, texter: Contact, bob: User
) -> None:
    Contact.objects.filter(pk=texter.pk).update(
        sms_consent_at=timezone.now() - timedelta(days=30), sms_consent_source="order form", preferred_channel="sms"
    )
    inbound(live_server, word)
    texter.refresh_from_db()
    assert (texter.sms_consent_at, texter.preferred_channel) == (None, Contact.Channel.EMAIL)
    opt_out = SmsOptOut.objects.get(number=MOBILE)
    assert (opt_out.source, opt_out.said, opt_out.contact) == ("keyword", word.strip(), texter)
    [message] = received()
    assert message.handled_at is not None  # an instruction, not a reply waiting for an answer
    assert Question.objects.filter(job=texted_job).count() == 0
    assert texted_job.events.filter(kind=JobEvent.Kind.SMS_OPTED_OUT).count() == 1
    alert = Message.objects.get(kind=Message.Kind.STAFF_ALERT, staff=bob, idempotency_key__contains="sms-stopped")
    assert MOBILE in alert.subject and "Paul Dupont" in alert.body_text


def test_a_sentence_with_stop_in_it_is_a_message(live_server, texted_job: Job) -> None:
    inbound(live_server, "Please stop by on Tuesday")
    assert not SmsOptOut.objects.exists()
    assert Question.objects.filter(job=texted_job).count() == 1


def test_start_after_stop_restores_texts_and_an_opted_out_number_gives_no_consent_by_texting(
    live_server, texted_job: Job, texter: Contact
) -> None:
    inbound(live_server, "STOP")
    inbound(live_server, "Bonjour, une question ?")
    texter.refresh_from_db()
    assert texter.sms_consent_at is None  # they opted out: texting us is not a yes
    inbound(live_server, "Start")
    texter.refresh_from_db()
    assert not SmsOptOut.objects.exists()
    assert texter.sms_consent_source == "texted START" and texter.sms_consent_at is not None
    assert texted_job.events.filter(kind=JobEvent.Kind.SMS_OPTED_IN).count() == 1


def test_yes_is_an_answer_unless_the_number_opted_out(live_server, texted_job: Job, texter: Contact) -> None:
    inbound(live_server, "Oui")
    assert Question.objects.filter(job=texted_job).count() == 1
    inbound(live_server, "STOP")
    inbound(live_server, "Yes")
    assert not SmsOptOut.objects.exists()


@pytest.mark.parametrize("word", ["HELP", "help", "Aide", "INFO"])
def test_help_is_answered_at_once_with_the_company_and_the_owner(
    live_server, settings, word: str, texted_job: Job, texter: Contact
) -> None:
    settings.COMPANY_NAME = "Brightside"
    inbound(live_server, word)
    [answer] = Message.objects.filter(kind=Message.Kind.AUTO_REPLY)
    assert (answer.channel, answer.to_address, answer.job) == ("sms", MOBILE, texted_job)
    assert answer.status == Message.Status.SENT
    [sms] = MemorySmsBackend.outbox
    assert sms.to == MOBILE and sms.text.startswith("Brightside") and "Bob Durand" in sms.text
    assert "STOP" in sms.text
    assert Question.objects.filter(job=texted_job).count() == 0


def test_help_from_an_unknown_number_gives_the_company_phone(live_server, settings) -> None:
    settings.COMPANY_NAME, settings.COMPANY_PHONE = "Brightside", "01 42 00 00 00"
    inbound(live_server, "HELP", sender="+14165550123")
    [sms] = MemorySmsBackend.outbox
    assert sms.to == "+14165550123" and "+33 1 42 00 00 00" in sms.text


def outbound(job: Job | None, kind: str, **fields) -> Message:
    defaults = {
        "channel": Message.Channel.SMS,
        "direction": Message.Direction.OUT,
        "status": Message.Status.QUEUED,
        "to_address": MOBILE,
        "body_text": "Hello",
        "idempotency_key": f"t:{uuid.uuid4().hex}",
    }
    return Message.objects.create(job=job, kind=kind, **{**defaults, **fields})


def test_no_text_of_any_kind_goes_to_a_number_that_opted_out(live_server, texted_job: Job, texter: Contact) -> None:
    inbound(live_server, "STOP")
    MemorySmsBackend.outbox.clear()
    kinds = [k for k in Message.Kind.values if k not in (Message.Kind.REPLY, Message.Kind.STAFF_ALERT)]
    rows = [outbound(texted_job, kind) for kind in kinds]
    deliver_many(message_ids=[m.pk for m in rows])
    assert MemorySmsBackend.outbox == []
    for row in rows:
        row.refresh_from_db()
        assert (row.kind, row.status) == (row.kind, Message.Status.FAILED)
        assert "STOP" in row.last_error
    assert SmsOptOut.objects.count() == 1


def test_status_callbacks_move_a_text_forward_only_and_an_undelivered_one_alerts_the_owner(
    live_server, texted_job: Job, bob: User
) -> None:
    message_sid = sid()
    sent = outbound(texted_job, Message.Kind.FREE, status=Message.Status.SENT, provider_message_id=message_sid)
    assert status(live_server, message_sid, "delivered").status_code == 204
    assert status(live_server, message_sid, "sent").status_code == 204  # late: changes nothing
    sent.refresh_from_db()
    assert sent.status == Message.Status.DELIVERED and sent.delivered_at is not None

    other_sid = sid()
    lost = outbound(texted_job, Message.Kind.FREE, status=Message.Status.SENT, provider_message_id=other_sid)
    status(live_server, other_sid, "undelivered", error_code="30003")
    lost.refresh_from_db()
    assert lost.status == Message.Status.FAILED and "30003" in lost.last_error
    assert texted_job.events.filter(kind=JobEvent.Kind.MESSAGE_FAILED, data__message_id=lost.pk).exists()
    assert Message.objects.filter(kind=Message.Kind.STAFF_ALERT, staff=bob).exists()


def test_a_status_for_a_text_we_do_not_know_or_an_odd_status_changes_nothing(live_server, texted_job: Job) -> None:
    assert status(live_server, sid(), "delivered").status_code == 204
    message_sid = sid()
    sent = outbound(texted_job, Message.Kind.FREE, status=Message.Status.SENT, provider_message_id=message_sid)
    assert status(live_server, message_sid, "teleported").status_code == 204
    sent.refresh_from_db()
    assert sent.status == Message.Status.SENT


def test_the_providers_unsubscribed_error_opts_the_number_out(live_server, texted_job: Job, texter: Contact) -> None:
    message_sid = sid()
    outbound(texted_job, Message.Kind.FREE, status=Message.Status.SENT, provider_message_id=message_sid)
    status(live_server, message_sid, "failed", error_code="21610")
    opt_out = SmsOptOut.objects.get(number=MOBILE)
    assert (opt_out.source, opt_out.said) == ("provider", "21610")


def test_the_contact_page_says_their_texts_stopped_and_how(live_server, client, texted_job: Job, bob: User) -> None:
    inbound(live_server, "Arrêt")
    client.force_login(bob)
    page = client.get(reverse("crm:customer", args=[texted_job.customer_id])).content.decode()
    assert "Texts stopped" in page and "Texted STOP on" in page and "Arrêt" in page


def test_the_status_callback_twilio_is_given_finds_its_row_and_its_signature_covers_the_outbox_id(
    live_server, texted_job: Job
) -> None:
    """The address a text is sent with (crm.sms_twilio.status_callback_url: ?outbox=<id>), posted
    to as Twilio does; the same signature on another outbox id is refused."""
    from crm.sms_twilio import status_callback_url

    queued = outbound(texted_job, Message.Kind.FREE, status=Message.Status.SENDING)
    url = status_callback_url(str(queued.pk))
    assert url == f"{live_server.url}{reverse('twilio_status')}?outbox={queued.pk}"
    message_sid = sid()
    form = {"MessageSid": message_sid, "SmsSid": message_sid, "MessageStatus": "delivered", "To": MOBILE}
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    tampered = url.replace(f"outbox={queued.pk}", f"outbox={queued.pk + 1}")
    assert requests.post(tampered, data=form, headers={"X-Twilio-Signature": signature}, timeout=10).status_code == 403
    assert requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10).status_code == 204
    queued.refresh_from_db()
    # Its status save was lost (still "sending"): the provider's word settles it, with its id.
    assert (queued.status, queued.provider_message_id) == (Message.Status.DELIVERED, message_sid)


def test_a_late_status_of_an_earlier_attempt_does_not_touch_the_row_sent_again(live_server, texted_job: Job) -> None:
    from crm.sms_twilio import status_callback_url

    resent = outbound(texted_job, Message.Kind.FREE, status=Message.Status.DELIVERED, provider_message_id=sid())
    url = status_callback_url(str(resent.pk))
    first_attempt = sid()
    form = {"MessageSid": first_attempt, "MessageStatus": "failed", "ErrorCode": "30008", "To": MOBILE}
    headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, form)}
    assert requests.post(url, data=form, headers=headers, timeout=10).status_code == 204
    resent.refresh_from_db()
    assert resent.status == Message.Status.DELIVERED


def test_stop_is_recorded_even_when_filing_the_text_fails(live_server, texted_job: Job, texter: Contact) -> None:
    # A contact the model's checks refuse (a time zone that no longer exists): filing fails.
    Contact.objects.filter(pk=texter.pk).update(
        time_zone="Mars/Olympus_Mons", sms_consent_at=timezone.now(), sms_consent_source="form"
    )
    assert inbound(live_server, "STOP").status_code == 200
    assert SmsOptOut.objects.filter(number=MOBILE).exists()
    texter.refresh_from_db()
    assert texter.sms_consent_at is None
    assert len(received()) == 1  # filed, or kept as it arrived: never lost


def test_after_stop_consent_cannot_be_given_again_by_anyone_but_the_customer(
    live_server, texted_job: Job, texter: Contact
) -> None:
    from crm.errors import DomainError
    from crm.services.contacts import contact_give_sms_consent

    inbound(live_server, "STOP")
    with pytest.raises(DomainError, match="texted STOP"):
        contact_give_sms_consent(contact=texter, source="portal")
    inbound(live_server, "START")
    texter.refresh_from_db()
    assert texter.sms_consent_at is not None


def test_a_contact_who_said_no_to_texts_does_not_say_yes_by_texting(
    live_server, texted_job: Job, texter: Contact
) -> None:
    from crm.services.contacts import contact_give_sms_consent, contact_withdraw_sms_consent

    contact_withdraw_sms_consent(contact=contact_give_sms_consent(contact=texter, source="portal"))
    inbound(live_server, "Quand venez-vous ?")
    texter.refresh_from_db()
    assert (texter.sms_consent_at, texter.sms_withdrawn_at is not None) == (None, True)


def test_a_text_of_spaces_is_still_filed_on_the_job(live_server, texted_job: Job) -> None:
    inbound(live_server, "   ")
    [message] = received()
    assert message.job == texted_job and message.last_error == ""
    assert Question.objects.get(job=texted_job).body == "(no text)"
