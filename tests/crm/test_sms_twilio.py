"""crm.sms_twilio with Twilio's real Python library pointed at the fake Twilio of
tests/fake_twilio.py (the ``fake_twilio`` fixture): what Twilio receives, what the backend returns,
how each answer reads for the outbox, and the outbox itself sending through it
(crm.services.delivery.deliver_many). Nothing inside the product is replaced."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from twilio.request_validator import RequestValidator

from crm.models import Contact, Job, JobEvent, Message
from crm.services.delivery import deliver_many
from crm.sms import SmsError, SmsRefused
from crm.sms_twilio import (
    CONFIGURATION_CODES,
    OPTED_OUT_CODE,
    PERMANENT_CODES,
    ApiHttpClient,
    TwilioSmsBackend,
    e164,
    error_description,
)
from tests.fake_twilio import TEST_ACCOUNT_SID, TEST_FROM, TEST_MESSAGING_SERVICE_SID, FakeTwilio

MARIE = "+33612345678"


def _status_placeholder(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=204)


class WithStatusRoute:
    """A URLconf with a ``twilio_status`` route, for when the project's own is not there."""

    urlpatterns = [path("sms/twilio/status/", _status_placeholder, name="twilio_status")]


class WithoutTwilioRoutes:
    urlpatterns: list[Any] = []


@pytest.fixture
def status_route(settings) -> str:
    """The status callback's address as the backend computes it: the project's view when it is
    installed, else a placeholder route of the same name."""
    try:
        reverse("twilio_status")
    except NoReverseMatch:
        settings.ROOT_URLCONF = WithStatusRoute
    return settings.SITE_URL + reverse("twilio_status")


# --- A send ---------------------------------------------------------------------------------------


def test_it_sends_through_twilio_and_returns_the_message_sid(fake_twilio: FakeTwilio, status_route: str) -> None:
    sid = TwilioSmsBackend().send(MARIE, "Your installation is booked for Monday.", reference="42")

    [message] = fake_twilio.messages
    assert sid == message.sid
    assert sid.startswith("SM") and len(sid) == 34
    assert (message.to, message.body, message.from_) == (MARIE, "Your installation is booked for Monday.", TEST_FROM)
    assert message.messaging_service_sid == ""
    # Twilio reports the status there; the outbox id rides along (Twilio has no client reference).
    assert message.status_callback == f"{status_route}?outbox=42"
    assert message.account_sid == TEST_ACCOUNT_SID
    assert set(message.form) == {"To", "From", "Body", "StatusCallback"}


def test_it_sends_numbers_as_typed_in_e164(fake_twilio: FakeTwilio, settings) -> None:
    settings.PHONE_DEFAULT_REGION = "FR"

    TwilioSmsBackend().send("06 12 34 56 78", "Hello")
    TwilioSmsBackend().send("+44 7911 123456", "Hello")

    assert [m.to for m in fake_twilio.messages] == [MARIE, "+447911123456"]
    assert e164("06.12.34.56.78") == MARIE
    assert e164("12") == "12"  # not a number libphonenumber can read: as typed, Twilio refuses it


def test_it_sends_without_a_status_callback_while_the_view_is_not_installed(fake_twilio: FakeTwilio, settings) -> None:
    settings.ROOT_URLCONF = WithoutTwilioRoutes

    TwilioSmsBackend().send(MARIE, "Hello", reference="7")

    [message] = fake_twilio.messages
    assert message.status_callback == ""
    assert "StatusCallback" not in message.form


def test_it_sends_through_the_messaging_service_when_one_is_set(fake_twilio: FakeTwilio, settings) -> None:
    settings.TWILIO_MESSAGING_SERVICE_SID = TEST_MESSAGING_SERVICE_SID  # TWILIO_FROM is set too: the service wins

    sid = TwilioSmsBackend().send(MARIE, "Hello")

    [message] = fake_twilio.messages
    assert sid == message.sid
    assert message.messaging_service_sid == TEST_MESSAGING_SERVICE_SID
    assert message.from_ == "" and "From" not in message.form
    assert message.status == "accepted"  # Twilio picks the sender from the service's pool later


def test_it_sends_from_an_alphanumeric_sender_id(fake_twilio: FakeTwilio, settings) -> None:
    settings.TWILIO_FROM = "Brightside"

    TwilioSmsBackend().send(MARIE, "Hello")

    [message] = fake_twilio.messages
    assert message.from_ == "Brightside"


def test_the_library_reads_the_fakes_message_resource(fake_twilio: FakeTwilio) -> None:
    backend = TwilioSmsBackend()
    sid = backend.send(MARIE, "Héllo ✓")

    fetched = backend.client.messages(sid).fetch()

    assert (fetched.sid, fetched.to, fetched.from_, fetched.body) == (sid, MARIE, TEST_FROM, "Héllo ✓")
    assert (fetched.status, fetched.num_segments, fetched.direction) == ("queued", "1", "outbound-api")
    assert fetched.date_created is not None and fetched.date_created.tzinfo is not None


# --- Configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sender", ["Brightside", "Bright Side", "ACME 2026", "+33612345678", "+15005550006"])
def test_it_accepts_a_number_or_an_alphanumeric_sender(fake_twilio: FakeTwilio, settings, sender: str) -> None:
    settings.TWILIO_FROM = sender

    assert TwilioSmsBackend().sender == sender


@pytest.mark.parametrize(
    "sender",
    [
        "Brightside Installations",  # more than 11 characters
        "12345678",  # digits only: neither a number in E.164 nor a sender ID (a short code goes in a service)
        "+33 6 12 34 56 78",  # not E.164
        "0612345678",
        "Bright-Side",  # a character Twilio does not accept
        "Brightsidé",
    ],
)
def test_it_refuses_a_sender_twilio_would_not_take(fake_twilio: FakeTwilio, settings, sender: str) -> None:
    settings.TWILIO_FROM = sender

    with pytest.raises(ImproperlyConfigured, match="TWILIO_FROM must be"):
        TwilioSmsBackend()


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"TWILIO_ACCOUNT_SID": ""}, "needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"),
        ({"TWILIO_AUTH_TOKEN": ""}, "needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": "SK0123"}, "TWILIO_ACCOUNT_SID must be"),
        ({"TWILIO_FROM": "", "TWILIO_MESSAGING_SERVICE_SID": ""}, "needs a sender"),
        ({"TWILIO_MESSAGING_SERVICE_SID": "MG-not-a-sid"}, "TWILIO_MESSAGING_SERVICE_SID must be"),
        ({"TWILIO_API_URL": "api.twilio.com"}, "TWILIO_API_URL must be"),
        ({"TWILIO_TIMEOUT_SECONDS": 0}, "TWILIO_TIMEOUT_SECONDS must be"),
    ],
)
def test_it_says_what_is_misconfigured(fake_twilio: FakeTwilio, settings, changes: dict[str, Any], says: str) -> None:
    for name, value in changes.items():
        setattr(settings, name, value)

    with pytest.raises(ImproperlyConfigured, match=says):
        TwilioSmsBackend()


def test_a_messaging_service_alone_is_a_sender(fake_twilio: FakeTwilio, settings) -> None:
    settings.TWILIO_FROM = ""
    settings.TWILIO_MESSAGING_SERVICE_SID = TEST_MESSAGING_SERVICE_SID

    TwilioSmsBackend().send(MARIE, "Hello")

    assert fake_twilio.messages[0].messaging_service_sid == TEST_MESSAGING_SERVICE_SID


def test_it_sends_to_twilio_unless_told_otherwise() -> None:
    twilio = ApiHttpClient(timeout=10)
    fake = ApiHttpClient(api_url="http://127.0.0.1:8026", timeout=10)
    messages = f"https://api.twilio.com/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages.json"

    assert twilio.rewrite(messages) == messages
    assert twilio.timeout == 10
    assert fake.rewrite(messages) == f"http://127.0.0.1:8026/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages.json"
    # TWILIO_REGION / TWILIO_EDGE make the library call a regional host: sent to the fake too.
    assert fake.rewrite("https://api.dublin.ie1.twilio.com/2010-04-01/x.json?a=1") == (
        "http://127.0.0.1:8026/2010-04-01/x.json?a=1"
    )


# --- Refusals: for good, or this time ------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(PERMANENT_CODES))
def test_a_permanent_code_is_a_refusal(fake_twilio: FakeTwilio, code: int) -> None:
    fake_twilio.refuse(MARIE, code)

    with pytest.raises(SmsRefused) as refused:
        TwilioSmsBackend().send(MARIE, "Hello")

    assert refused.value.code == str(code)
    assert refused.value.opted_out is (code == 21610)
    assert f"error {code}: {PERMANENT_CODES[code]}" in refused.value.reason
    assert MARIE in refused.value.reason
    assert fake_twilio.messages == []


def test_an_unsubscribed_recipient_is_opted_out(fake_twilio: FakeTwilio) -> None:
    fake_twilio.refuse(
        MARIE, 21610, message="Attempt to send to unsubscribed recipient"
    )  # Twilio's text for a number that replied STOP

    with pytest.raises(SmsRefused) as refused:
        TwilioSmsBackend().send(MARIE, "Hello")

    assert (refused.value.opted_out, refused.value.code) == (True, OPTED_OUT_CODE)
    assert refused.value.reason.endswith(": Attempt to send to unsubscribed recipient")


def test_a_number_twilio_cannot_read_is_refused(fake_twilio: FakeTwilio) -> None:
    with pytest.raises(SmsRefused) as refused:
        TwilioSmsBackend().send("12", "Hello")

    assert refused.value.code == "21211"
    assert "The 'To' number 12 is not a valid phone number." in refused.value.reason


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_temporary(fake_twilio: FakeTwilio, status: int) -> None:
    fake_twilio.fail_next(status=status)
    backend = TwilioSmsBackend()

    with pytest.raises(SmsError) as failed:
        backend.send(MARIE, "Hello")

    assert not isinstance(failed.value, SmsRefused)
    assert f"HTTP {status}" in str(failed.value)
    assert backend.send(MARIE, "Hello") == fake_twilio.messages[0].sid  # behaves again


def test_a_rate_limit_is_temporary(fake_twilio: FakeTwilio) -> None:
    fake_twilio.fail_next(2, status=429, retry_after=30)

    for _ in range(2):
        with pytest.raises(SmsError) as failed:
            TwilioSmsBackend().send(MARIE, "Hello")
        assert not isinstance(failed.value, SmsRefused)
        assert "HTTP 429, error 20429" in str(failed.value)

    assert [r.status for r in fake_twilio.requests] == [429, 429]
    assert fake_twilio.messages == []


def test_a_timeout_is_temporary(fake_twilio: FakeTwilio, settings) -> None:
    settings.TWILIO_TIMEOUT_SECONDS = 0.3
    fake_twilio.hang_next(5)

    with pytest.raises(SmsError) as failed:
        TwilioSmsBackend().send(MARIE, "Hello")

    assert not isinstance(failed.value, SmsRefused)
    assert "Timeout" in str(failed.value)
    assert fake_twilio.messages == []


def test_an_unreachable_twilio_is_temporary(settings) -> None:
    with FakeTwilio() as gone:
        address = gone.url  # a port nobody listens on any more
    settings.SMS_BACKEND = "crm.sms_twilio.TwilioSmsBackend"
    settings.TWILIO_API_URL = address
    settings.TWILIO_ACCOUNT_SID = TEST_ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = "token"
    settings.TWILIO_FROM = TEST_FROM

    with pytest.raises(SmsError) as failed:
        TwilioSmsBackend().send(MARIE, "Hello")

    assert not isinstance(failed.value, SmsRefused)
    assert "ConnectionError" in str(failed.value)


def test_a_wrong_auth_token_is_a_configuration_error_retried(fake_twilio: FakeTwilio, settings, caplog) -> None:
    settings.TWILIO_AUTH_TOKEN = "not-the-token"

    with caplog.at_level(logging.ERROR, logger="crm.sms_twilio"), pytest.raises(SmsError) as failed:
        TwilioSmsBackend().send(MARIE, "Hello")

    assert not isinstance(failed.value, SmsRefused)
    assert "HTTP 401, error 20003" in str(failed.value)
    [record] = [r for r in caplog.records if r.name == "crm.sms_twilio"]
    assert record.levelno == logging.ERROR
    assert CONFIGURATION_CODES[20003] in record.getMessage()
    assert fake_twilio.messages == []


@pytest.mark.parametrize("code", [21606, 21659, 21999])
def test_another_4xx_is_a_configuration_error_retried(fake_twilio: FakeTwilio, caplog, code: int) -> None:
    fake_twilio.refuse(MARIE, code, message="The 'From' number +15005550006 is not a valid message-capable number.")

    with caplog.at_level(logging.ERROR, logger="crm.sms_twilio"), pytest.raises(SmsError) as failed:
        TwilioSmsBackend().send(MARIE, "Hello")

    assert not isinstance(failed.value, SmsRefused)
    assert f"HTTP 400, error {code}" in str(failed.value)
    assert [r.levelno for r in caplog.records if r.name == "crm.sms_twilio"] == [logging.ERROR]


def test_error_codes_read_for_staff() -> None:
    assert error_description("30006") == f"Twilio error 30006: {PERMANENT_CODES[30006]}"
    assert error_description(30003).startswith("Twilio error 30003: the handset is unreachable")
    assert error_description("12345") == "Twilio error 12345"


# --- The fake's requests to the product ------------------------------------------------------------


def test_the_fakes_webhook_requests_are_signed_as_twilio_signs_them(
    fake_twilio: FakeTwilio, status_route: str, settings
) -> None:
    sid = TwilioSmsBackend().send(MARIE, "Hello", reference="9")
    url = fake_twilio.message(sid).status_callback

    form = fake_twilio.status_callback(sid, "undelivered", error_code=30006)

    assert form["MessageSid"] == sid and form["MessageStatus"] == "undelivered" and form["ErrorCode"] == "30006"
    assert (form["From"], form["To"], form["AccountSid"]) == (TEST_FROM, MARIE, TEST_ACCOUNT_SID)
    assert RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(url, form, fake_twilio.sign(url, form))
    assert fake_twilio.message(sid).status == "undelivered"
    inbound = fake_twilio.inbound(from_=MARIE, body="STOP")
    assert (inbound["From"], inbound["To"], inbound["Body"], inbound["SmsStatus"]) == (
        MARIE,
        TEST_FROM,
        "STOP",
        "received",
    )


# --- Through the outbox ----------------------------------------------------------------------------


@pytest.fixture
def sam(job: Job) -> Contact:
    sam = Contact.objects.create(
        customer=job.customer,
        name="Sam",
        phone="06 12 34 56 78",
        preferred_channel=Contact.Channel.SMS,
        sms_consent_at=timezone.now(),
        sms_consent_source="portal",
    )
    job.contacts.add(sam)
    return sam


def queued_sms(job: Job, contact: Contact, text: str = "Your heat pump is installed.") -> Message:
    """A queued text, as the outbox stores one (crm.services.outbox)."""
    return Message.objects.create(
        job=job,
        contact=contact,
        channel=Message.Channel.SMS,
        kind=Message.Kind.FREE,
        to_address=contact.phone,
        body_text=text,
        idempotency_key=f"test-sms:{job.pk}:{Message.objects.count()}",
    )


def test_the_outbox_sends_a_text_through_twilio(
    fake_twilio: FakeTwilio, status_route: str, job: Job, sam: Contact, settings
) -> None:
    settings.PHONE_DEFAULT_REGION = "FR"
    message = queued_sms(job, sam)

    assert deliver_many(message_ids=[message.pk]) == {message.pk: "sent"}

    [received] = fake_twilio.messages
    assert (received.to, received.body) == (MARIE, "Your heat pump is installed.")
    assert received.status_callback == f"{status_route}?outbox={message.pk}"
    message.refresh_from_db()
    assert (message.status, message.provider_message_id, message.attempts) == ("sent", received.sid, 1)


def test_the_outbox_retries_a_text_twilio_did_not_take(
    fake_twilio: FakeTwilio, job: Job, sam: Contact, settings
) -> None:
    settings.PHONE_DEFAULT_REGION = "FR"
    message = queued_sms(job, sam)
    fake_twilio.fail_next(status=500)

    assert deliver_many(message_ids=[message.pk]) == {message.pk: "retry"}

    message.refresh_from_db()
    assert (message.status, message.attempts) == ("queued", 1)
    assert message.last_error.startswith("SmsError: Twilio did not take the SMS this time (HTTP 500, error 20500)")
    assert message.next_attempt_at is not None and message.next_attempt_at > timezone.now()  # the backoff
    assert fake_twilio.messages == []

    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)  # its retry is due
    assert deliver_many(message_ids=[message.pk]) == {message.pk: "sent"}
    message.refresh_from_db()
    assert (message.status, message.attempts, message.provider_message_id) == ("sent", 2, fake_twilio.messages[0].sid)


def test_the_outbox_retries_while_twilio_is_misconfigured(
    fake_twilio: FakeTwilio, job: Job, sam: Contact, settings
) -> None:
    settings.TWILIO_AUTH_TOKEN = ""
    message = queued_sms(job, sam)

    assert deliver_many(message_ids=[message.pk]) == {message.pk: "retry"}

    message.refresh_from_db()
    assert (message.status, message.attempts) == ("queued", 1)
    assert message.last_error.startswith("ImproperlyConfigured: The Twilio SMS backend needs TWILIO_ACCOUNT_SID")


@pytest.mark.parametrize("code", [21614, 21610])
def test_the_outbox_fails_a_text_twilio_refuses_for_good(
    fake_twilio: FakeTwilio, job: Job, sam: Contact, settings, code: int
) -> None:
    settings.PHONE_DEFAULT_REGION = "FR"
    message = queued_sms(job, sam)
    fake_twilio.refuse(MARIE, code)

    assert deliver_many(message_ids=[message.pk]) == {message.pk: "failed"}

    message.refresh_from_db()
    assert (message.status, message.attempts, message.next_attempt_at) == ("failed", 1, None)
    assert message.last_error.startswith(f"SmsRefused: Twilio refused the SMS to {MARIE} (error {code}: ")
    assert JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_FAILED).count() == 1
    assert fake_twilio.messages == []
    assert len(fake_twilio.requests) == 1  # tried once, never again
