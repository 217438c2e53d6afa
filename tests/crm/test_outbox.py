"""crm.services.outbox through its task entry points (crm.tasks): every message is sent exactly once
through duplicate tasks, crashes, provider errors and the sweep; a message that finally fails is
visible to its owner.

The ESP is the only thing replaced: by a backend that refuses customer messages the way an ESP API
does (anymail errors), while staff alerts (outbox rows too, tagged ``staff_alert``) still reach the
locmem outbox. Time is frozen on Monday
2 March 2026, 10:00 in Paris and moved by hand.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.core import mail
from django.core.mail import EmailMessage
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import OperationalError
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule

import crm.services.delivery as delivery
from crm.models import Contact, Job, JobEvent, Message
from crm.notify import stage_change_drafts
from crm.services.delivery import HandedOver, retry_delay, sweep
from crm.services.jobs import job_advance
from crm.services.outbox import messages_queue, messages_store
from crm.sms import MemorySmsBackend, SentSms, SmsError
from crm.tasks import send_message, sweep_outbox

PARIS = ZoneInfo("Europe/Paris")
MONDAY_MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)
WEBHOOK_AUTH = "Basic " + base64.b64encode(b"hook:test-secret").decode()


# --- The edge: an ESP whose API refuses, an SMS provider that fails ------------------------------


class EspDown(LocmemBackend):
    """The ESP's API answers with an error for every customer message; staff alerts still arrive."""

    error: ClassVar[Exception] = AnymailAPIError("Postmark API response 503: Service Unavailable")

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if any(getattr(m, "tags", None) != [Message.Kind.STAFF_ALERT] for m in email_messages):
            raise self.error
        return super().send_messages(email_messages)


class EspRefusesRecipient(EspDown):
    error = AnymailRecipientsRefused("Postmark refused marie@example.com: inactive recipient (hard bounce)")


class SmsProviderDown:
    def send(self, to: str, text: str, *, reference: str = "") -> str:
        raise SmsError("provider timeout")


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(MONDAY_MORNING, tick=False)


@pytest.fixture(autouse=True)
def sms_outbox() -> Iterator[list[SentSms]]:
    MemorySmsBackend.outbox.clear()
    yield MemorySmsBackend.outbox
    MemorySmsBackend.outbox.clear()


@pytest.fixture
def esp_down(settings) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.EspDown"


@pytest.fixture
def queued(job: Job) -> Message:
    """A stage-change email whose enqueue has not run (the test's transaction never commits)."""
    job_advance(job=job, to_stage=job.pipeline.stages.get(name="Proposal sent"), actor=job.owner)
    return Message.objects.get(job=job)


def fresh(message: Message) -> Message:
    return Message.objects.get(pk=message.pk)


def events(job: Job, kind: str) -> list[JobEvent]:
    return list(JobEvent.objects.filter(job=job, kind=kind))


def customer_emails() -> list[EmailMessage]:
    return [e for e in mail.outbox if e.to != ["bob@example.com"]]


def postmark_delivery(message_id: str, outbox_id: int) -> dict[str, Any]:
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": "marie@example.com",
        "Tag": "stage_change",
        "DeliveredAt": "2026-03-02T09:00:04.1234567Z",
        "Details": "smtp;250 2.0.0 OK",
        "Metadata": {"outbox_id": str(outbox_id)},
    }


# --- (a) A duplicate task sends nothing more -------------------------------------------------------


def test_it_sends_a_message_once_when_its_task_runs_twice(queued: Message, job: Job) -> None:
    assert send_message(queued.pk) == "sent"
    assert send_message(queued.pk) == "skipped"

    [email] = mail.outbox
    assert email.to == ["marie@example.com"]
    assert email.message()["Message-ID"] == queued.email_message_id
    assert email.reply_to == [f"reply+{job.reply_token}@reply.example.com"]
    message = fresh(queued)
    assert (message.status, message.attempts, message.sent_at) == ("sent", 1, timezone.now())
    assert len(events(job, JobEvent.Kind.MESSAGE_SENT)) == 1


def test_it_sends_once_when_the_commit_enqueues_it_and_a_duplicate_task_follows(
    job: Job, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        job_advance(job=job, to_stage=job.pipeline.stages.get(name="Proposal sent"), actor=job.owner)
    message = Message.objects.get(job=job)

    assert send_message(message.pk) == "skipped"
    assert len(mail.outbox) == 1
    assert fresh(message).status == "sent"


def test_it_stores_a_draft_once_per_idempotency_key(job: Job, django_capture_on_commit_callbacks) -> None:
    stage = job.pipeline.stages.get(name="Proposal sent")

    with django_capture_on_commit_callbacks(execute=True):
        first = messages_queue(drafts=stage_change_drafts(job, stage=stage), job=job, key=lambda d: "same-key")
        again = messages_queue(drafts=stage_change_drafts(job, stage=stage), job=job, key=lambda d: "same-key")

    assert [m.pk for m in first] == [m.pk for m in again]
    assert Message.objects.filter(job=job).count() == 1
    # Stored once, sent once: a second task for the same row finds nothing left to claim.
    assert len(mail.outbox) == 1
    assert fresh(first[0]).status == "sent"


# --- (b) A crash between the send and the status save ---------------------------------------------


def test_it_records_the_send_when_the_status_save_fails_once(
    queued: Message, job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_sent = delivery._record_sent
    calls = []

    def flaky(message: Message, handed: HandedOver) -> None:
        calls.append(message.pk)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        record_sent(message, handed)

    monkeypatch.setattr(delivery, "_record_sent", flaky)

    assert send_message(queued.pk) == "sent"

    assert len(calls) == 2
    assert len(mail.outbox) == 1
    assert fresh(queued).status == "sent"
    assert len(events(job, JobEvent.Kind.MESSAGE_SENT)) == 1


@pytest.fixture
def lost_status_save(queued: Message, monkeypatch: pytest.MonkeyPatch) -> Message:
    """The ESP took the message, then the database went away for good: neither the send nor the
    failure can be recorded, and the row stays "sending"."""

    def down(*args: Any) -> None:
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(delivery, "_record_sent", down)
    monkeypatch.setattr(delivery, "_record_failure", down)
    assert send_message(queued.pk) == "unrecorded"
    monkeypatch.undo()
    assert len(mail.outbox) == 1
    assert fresh(queued).status == "sending"
    return queued


def test_it_lets_the_delivery_webhook_settle_a_message_whose_status_save_was_lost(
    lost_status_save: Message, client: Client, time_machine, settings
) -> None:
    response = client.post(
        "/anymail/postmark/tracking/",
        json.dumps(postmark_delivery("b7bc2f4a-e38e-4336-af7d-e6c392c2f817", lost_status_save.pk)),
        content_type="application/json",
        HTTP_AUTHORIZATION=WEBHOOK_AUTH,
    )

    assert response.status_code == 200
    message = fresh(lost_status_save)
    assert (message.status, message.provider_message_id) == ("delivered", "b7bc2f4a-e38e-4336-af7d-e6c392c2f817")

    time_machine.shift(settings.OUTBOX_STUCK_AFTER_SECONDS + 60)
    assert sweep() == {"requeued": 0, "enqueued": 0, "failed": 0}

    assert len(mail.outbox) == 1
    assert fresh(lost_status_save).status == "delivered"


def test_it_counts_a_message_settled_by_the_webhook_as_sent(lost_status_save: Message, client: Client) -> None:
    client.post(
        "/anymail/postmark/tracking/",
        json.dumps(postmark_delivery("b7bc2f4a-e38e-4336-af7d-e6c392c2f817", lost_status_save.pk)),
        content_type="application/json",
        HTTP_AUTHORIZATION=WEBHOOK_AUTH,
    )

    message = fresh(lost_status_save)
    assert message.status == "delivered"
    assert message.sent_at is not None
    assert len(events(message.job, JobEvent.Kind.MESSAGE_SENT)) == 1


def test_it_waits_for_the_webhook_before_the_sweep_resends(lost_status_save: Message, time_machine, settings) -> None:
    time_machine.shift(settings.OUTBOX_STUCK_AFTER_SECONDS - 1)

    assert sweep() == {"requeued": 0, "enqueued": 0, "failed": 0}
    assert len(mail.outbox) == 1
    assert fresh(lost_status_save).status == "sending"


def test_it_resends_with_the_same_message_id_when_no_webhook_came(
    lost_status_save: Message, time_machine, settings
) -> None:
    time_machine.shift(settings.OUTBOX_STUCK_AFTER_SECONDS + 1)

    assert sweep() == {"requeued": 1, "enqueued": 1, "failed": 0}

    first, second = mail.outbox
    assert first.message()["Message-ID"] == second.message()["Message-ID"] == lost_status_save.email_message_id
    message = fresh(lost_status_save)
    assert (message.status, message.attempts) == ("sent", 2)
    assert sweep() == {"requeued": 0, "enqueued": 0, "failed": 0}
    assert len(mail.outbox) == 2


# --- (c) Provider errors: back off, then fail visibly ---------------------------------------------


@pytest.mark.parametrize("attempt", range(1, 13))
def test_it_backs_off_exponentially_with_jitter_up_to_an_hour(attempt: int, settings) -> None:
    ceiling = min(settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** (attempt - 1), 3600)

    delays = [retry_delay(attempt).total_seconds() for _ in range(200)]

    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


def test_it_requeues_a_message_the_provider_refused_for_later(
    queued: Message, esp_down: None, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        assert send_message(queued.pk) == "retry"

    message = fresh(queued)
    assert (message.status, message.attempts) == ("queued", 1)
    assert "AnymailAPIError" in message.last_error
    assert "503" in message.last_error
    assert timezone.now() + timedelta(seconds=30) <= message.next_attempt_at <= timezone.now() + timedelta(seconds=60)
    assert send_message(queued.pk) == "skipped"  # not due yet
    assert fresh(queued).attempts == 1
    assert mail.outbox == []


def test_it_fails_after_the_last_attempt_and_tells_the_owner(
    queued: Message, job: Job, esp_down: None, time_machine, settings, django_capture_on_commit_callbacks, run_schedules
) -> None:
    results = []
    for attempt in range(1, settings.OUTBOX_MAX_ATTEMPTS + 1):
        before = timezone.now()
        with django_capture_on_commit_callbacks(execute=True):
            results.append(send_message(queued.pk))
        message = fresh(queued)
        assert message.attempts == attempt
        if message.status == "queued":
            ceiling = min(settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** (attempt - 1), 3600)
            assert before + timedelta(seconds=ceiling / 2) <= message.next_attempt_at
            assert message.next_attempt_at <= before + timedelta(seconds=ceiling)
            time_machine.move_to(message.next_attempt_at - timedelta(seconds=1), tick=False)
            assert send_message(queued.pk) == "skipped"
            time_machine.move_to(message.next_attempt_at, tick=False)

    assert results == ["retry"] * (settings.OUTBOX_MAX_ATTEMPTS - 1) + ["failed"]
    message = fresh(queued)
    assert (message.status, message.next_attempt_at, message.failed_at) == ("failed", None, timezone.now())
    assert message.last_error.startswith("AnymailAPIError:")
    [failed] = events(job, JobEvent.Kind.MESSAGE_FAILED)
    assert failed.data["message_id"] == message.pk
    assert failed.data["attempts"] == settings.OUTBOX_MAX_ATTEMPTS
    # The owner's digest is an outbox row, sent once the burst's window has passed.
    [digest] = Message.objects.filter(kind=Message.Kind.STAFF_ALERT)
    assert (digest.staff, digest.status, digest.job, digest.contact) == (job.owner, "queued", None, None)
    assert digest.next_attempt_at == timezone.now() + timedelta(seconds=settings.STAFF_ALERT_DIGEST_SECONDS)
    assert fresh(queued).alerted_in == digest
    run_schedules()  # the retries' own schedules: nothing left to send
    assert mail.outbox == []
    time_machine.shift(settings.STAFF_ALERT_DIGEST_SECONDS + 1)
    run_schedules()
    [alert] = mail.outbox
    assert fresh(digest).status == "sent"
    assert alert.to == ["bob@example.com"]
    assert alert.subject == f"Message to marie@example.com not delivered — {job.reference}"
    assert job.reference in alert.body
    assert "marie@example.com" in alert.body
    assert f"Attempts: {settings.OUTBOX_MAX_ATTEMPTS}" in alert.body
    assert send_message(queued.pk) == "skipped"
    assert sweep() == {"requeued": 0, "enqueued": 0, "failed": 0}


def test_it_fails_at_once_when_the_provider_refuses_the_address(
    queued: Message, job: Job, settings, django_capture_on_commit_callbacks, time_machine, run_schedules
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.EspRefusesRecipient"

    with django_capture_on_commit_callbacks(execute=True):
        assert send_message(queued.pk) == "failed"

    message = fresh(queued)
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.last_error.startswith("AnymailRecipientsRefused:")
    assert len(events(job, JobEvent.Kind.MESSAGE_FAILED)) == 1
    time_machine.shift(settings.STAFF_ALERT_DIGEST_SECONDS + 1)
    run_schedules()
    assert [e.to for e in mail.outbox] == [["bob@example.com"]]


def test_it_retries_an_sms_the_provider_did_not_take(
    job: Job, settings, sms_outbox, time_machine, django_capture_on_commit_callbacks, run_schedules
) -> None:
    sam = Contact.objects.create(
        customer=job.customer,
        name="Sam",
        phone="+33 6 12 34 56 78",
        preferred_channel=Contact.Channel.SMS,
        sms_consent_at=timezone.now(),
        sms_consent_source="portal",
    )
    job.contacts.set([sam])
    settings.SMS_BACKEND = f"{__name__}.SmsProviderDown"
    with django_capture_on_commit_callbacks(execute=True):
        job_advance(job=job, to_stage=job.pipeline.stages.get(name="Proposal sent"), actor=job.owner)
    message = Message.objects.get(job=job)
    assert (message.status, message.attempts, message.last_error) == ("queued", 1, "SmsError: provider timeout")

    settings.SMS_BACKEND = "crm.sms.MemorySmsBackend"
    time_machine.move_to(message.next_attempt_at + timedelta(seconds=1), tick=False)
    run_schedules()

    [sms] = sms_outbox
    assert sms.to == "+33612345678"  # handed over in E.164, however it was stored
    assert sms.reference == str(message.pk)  # the provider's client reference: our outbox id
    assert (fresh(message).status, fresh(message).provider_message_id) == ("sent", sms.provider_id)


# --- (d) The sweep: stuck rows and lost enqueues ---------------------------------------------------


def test_it_sweeps_up_a_stuck_send_and_a_lost_enqueue(job: Job, contact: Contact, time_machine, settings) -> None:
    john = Contact.objects.create(customer=job.customer, name="John", email="john@example.com", language="en")
    job.contacts.add(john)
    job_advance(job=job, to_stage=job.pipeline.stages.get(name="Proposal sent"), actor=job.owner)
    stuck, lost = Message.objects.filter(job=job).order_by("contact__name")  # John, Marie
    Message.objects.filter(pk=stuck.pk).update(status="sending", claimed_at=timezone.now(), attempts=1)

    time_machine.shift(settings.OUTBOX_STUCK_AFTER_SECONDS + 1)
    assert sweep_outbox() == {"requeued": 1, "enqueued": 2, "failed": 0}

    assert sorted(e.to[0] for e in mail.outbox) == ["john@example.com", "marie@example.com"]
    assert {m.status for m in Message.objects.filter(job=job)} == {"sent"}
    assert (fresh(stuck).attempts, fresh(lost).attempts) == (2, 1)
    assert sweep_outbox() == {"requeued": 0, "enqueued": 0, "failed": 0}
    assert len(mail.outbox) == 2


def test_it_leaves_a_fresh_row_to_its_own_enqueue(queued: Message, time_machine) -> None:
    time_machine.shift(59)

    assert sweep() == {"requeued": 0, "enqueued": 0, "failed": 0}

    time_machine.shift(2)
    assert sweep() == {"requeued": 0, "enqueued": 1, "failed": 0}
    assert fresh(queued).status == "sent"


def test_it_sends_a_retry_at_its_own_time(
    queued: Message, esp_down: None, settings, time_machine, django_capture_on_commit_callbacks, run_schedules
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        send_message(queued.pk)
    due = fresh(queued).next_attempt_at
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    time_machine.move_to(due - timedelta(seconds=1), tick=False)
    run_schedules()
    assert customer_emails() == []
    time_machine.move_to(due + timedelta(seconds=1), tick=False)
    run_schedules()

    assert len(customer_emails()) == 1
    assert (fresh(queued).status, fresh(queued).attempts, fresh(queued).last_error) == ("sent", 2, "")


def test_it_spreads_the_retries_of_a_burst_over_their_jitter(job: Job, esp_down: None, settings) -> None:
    """A hundred messages failing at once are each retried at their own time (one schedule each, at
    a random point of the upper half of the first backoff), not all at the sweep's next minute."""
    [draft] = stage_change_drafts(job, stage=job.pipeline.stages.get(name="Proposal sent"))
    rows = messages_store((draft, job, f"burst:{n}") for n in range(100))

    assert [send_message(row.pk) for row in rows] == ["retry"] * 100

    due = sorted(Message.objects.filter(pk__in=[r.pk for r in rows]).values_list("next_attempt_at", flat=True))
    runs = sorted(Schedule.objects.filter(func="crm.tasks.send_messages").values_list("next_run", flat=True))
    assert runs == due
    base = settings.OUTBOX_RETRY_BASE_SECONDS
    offsets = [(at - timezone.now()).total_seconds() for at in due]
    assert base / 2 <= offsets[0] and offsets[-1] <= base
    assert len({round(offset) for offset in offsets}) >= base / 4  # spread over the window, not in lockstep


def test_it_sweeps_up_a_retry_whose_schedule_was_lost(
    queued: Message, esp_down: None, settings, time_machine, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        send_message(queued.pk)
    due = fresh(queued).next_attempt_at
    Schedule.objects.all().delete()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    # Left to its schedule while the scheduler may still be on its way to it.
    time_machine.move_to(due + delivery.SCHEDULE_GRACE - timedelta(seconds=1), tick=False)
    assert sweep() == {"requeued": 0, "enqueued": 0, "failed": 0}
    time_machine.move_to(due + delivery.SCHEDULE_GRACE, tick=False)
    assert sweep() == {"requeued": 0, "enqueued": 1, "failed": 0}

    assert len(customer_emails()) == 1
    assert (fresh(queued).status, fresh(queued).attempts, fresh(queued).last_error) == ("sent", 2, "")
