"""Delivery that no single bad answer can break: each message's fate is recorded on its own, right
after its own provider call; an odd answer or a database error while recording one message is that
message's alone; no row is ever sent more than OUTBOX_MAX_ATTEMPTS times, whether it comes back
through a retry, the sweep or a restarted worker; a row out of attempts is failed and alerted.

The email provider is Django's locmem backend (and, for the shapes of answers anymail reports, a
backend that sets ``anymail_status`` the way anymail's do). Time is frozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from anymail.message import AnymailRecipientStatus, AnymailStatus
from django.conf import settings
from django.core import mail
from django.core.mail import EmailMessage
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import OperationalError
from django.utils import timezone

import crm.services.delivery as delivery
from crm.models import Contact, Job, JobEvent, Message
from crm.services.delivery import HandedOver, claim_many, deliver_many, sweep
from tests.crm.outbox_rows import queued_emails

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(time_machine) -> None:
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)


def rows(ids: list[int]) -> list[Message]:
    return list(Message.objects.filter(pk__in=ids).order_by("pk"))


def sends_to(address: str) -> int:
    return sum(1 for email in mail.outbox if email.to == [address])


# --- What anymail reports, read defensively -------------------------------------------------------


class AnsweringBackend(LocmemBackend):
    """Takes every message, and reports for each the ``anymail_status`` that ``answers`` says for
    its address (as anymail's backends do after parsing the provider's answer)."""

    answers: ClassVar[dict[str, dict[str, AnymailRecipientStatus]]] = {}

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = super().send_messages(email_messages)
        for email in email_messages:
            status = AnymailStatus()
            default = {email.to[0]: AnymailRecipientStatus(message_id=f"id-{email.to[0]}", status="sent")}
            status.set_recipient_status(self.answers.get(email.to[0], default))
            email.anymail_status = status  # type: ignore[attr-defined]
        return sent


@pytest.fixture
def answering(settings) -> type[AnsweringBackend]:
    settings.EMAIL_BACKEND = f"{__name__}.AnsweringBackend"
    AnsweringBackend.answers = {}
    return AnsweringBackend


def test_it_sends_a_batch_once_when_one_answer_names_another_recipient(
    job: Job, contact: Contact, answering: type[AnsweringBackend]
) -> None:
    ids = queued_emails(job, contact, 20)
    # The provider took customer7's message but named someone else: anymail's message_id is a set.
    answering.answers["customer7@example.com"] = {
        "customer7@example.com": AnymailRecipientStatus(message_id=None, status="unknown"),
        "someone-else@example.com": AnymailRecipientStatus(message_id="b7bc2f4a", status="sent"),
    }

    outcomes = deliver_many(message_ids=ids)

    assert outcomes == dict.fromkeys(ids, "sent")
    assert [sends_to(f"customer{n}@example.com") for n in range(20)] == [1] * 20
    odd = rows(ids)[7]
    assert (odd.status, odd.provider_message_id, odd.attempts) == ("sent", "", 1)
    assert "someone-else@example.com" in odd.last_error
    assert "outbox id" in odd.last_error
    others = [m for m in rows(ids) if m.pk != odd.pk]
    assert [m.provider_message_id for m in others] == [f"id-{m.to_address}" for m in others]
    assert JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_SENT).count() == 20
    # Nothing is left for a sweep to send again.
    assert sweep(now=timezone.now() + timedelta(days=1)) == {"requeued": 0, "enqueued": 0, "failed": 0}
    assert len(mail.outbox) == 20


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"x@example.com": AnymailRecipientStatus(message_id="a", status="sent")}, id="only-someone-else"),
        pytest.param({}, id="no-recipient-at-all"),
    ],
)
def test_it_stores_no_id_and_says_why_when_the_answer_has_none_for_the_recipient(
    job: Job, contact: Contact, answering: type[AnsweringBackend], answer: dict[str, Any]
) -> None:
    [pk] = queued_emails(job, contact, 1)
    answering.answers["customer0@example.com"] = answer

    assert deliver_many(message_ids=[pk]) == {pk: "sent"}

    [message] = rows([pk])
    assert (message.status, message.provider_message_id) == ("sent", "")
    assert "gave no message id for customer0@example.com" in message.last_error


def test_it_takes_the_recipients_own_id_among_several(
    job: Job, contact: Contact, answering: type[AnsweringBackend]
) -> None:
    [pk] = queued_emails(job, contact, 1)
    answering.answers["customer0@example.com"] = {
        "Customer0@Example.com": AnymailRecipientStatus(message_id="mine", status="queued"),
        "cc@example.com": AnymailRecipientStatus(message_id="theirs", status="sent"),
    }

    deliver_many(message_ids=[pk])

    [message] = rows([pk])
    assert (message.status, message.provider_message_id, message.last_error) == ("sent", "mine", "")


def test_it_fails_a_message_whose_recipient_the_answer_says_was_rejected(
    job: Job, contact: Contact, answering: type[AnsweringBackend]
) -> None:
    [pk] = queued_emails(job, contact, 1)
    answering.answers["customer0@example.com"] = {
        "customer0@example.com": AnymailRecipientStatus(message_id=None, status="rejected"),
        "cc@example.com": AnymailRecipientStatus(message_id="theirs", status="sent"),
    }

    assert deliver_many(message_ids=[pk]) == {pk: "failed"}
    [message] = rows([pk])
    assert message.status == "failed" and "refused customer0@example.com" in message.last_error


# --- One message's trouble is its own -------------------------------------------------------------


def test_it_retries_only_the_message_whose_record_failed_and_sends_the_rest(
    job: Job, contact: Contact, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = queued_emails(job, contact, 5)
    record_sent = delivery._record_sent

    def failing_for_the_third(message: Message, handed: HandedOver) -> None:
        if message.pk == ids[2]:
            raise OperationalError("deadlock detected")
        record_sent(message, handed)

    monkeypatch.setattr(delivery, "_record_sent", failing_for_the_third)
    monkeypatch.setattr(delivery.time, "sleep", lambda seconds: None)

    outcomes = deliver_many(message_ids=ids)

    assert outcomes == {**dict.fromkeys(ids, "sent"), ids[2]: "retry"}
    third = rows(ids)[2]
    assert (third.status, third.attempts) == ("queued", 1)
    assert third.last_error == "OperationalError: deadlock detected"
    assert third.next_attempt_at is not None
    assert [m.status for m in rows(ids)] == ["sent", "sent", "queued", "sent", "sent"]


def test_it_stops_the_batch_when_nothing_can_be_recorded_and_leaves_no_row_unbounded(
    job: Job, contact: Contact, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = queued_emails(job, contact, 4)

    def down(*args: Any) -> None:
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(delivery, "_record_sent", down)
    monkeypatch.setattr(delivery, "_record_failure", down)
    monkeypatch.setattr(delivery.time, "sleep", lambda seconds: None)

    outcomes = deliver_many(message_ids=ids)

    # The first was handed over; the rest were not tried (put back when the database allows).
    assert outcomes == dict.fromkeys(ids, "unrecorded")
    assert len(mail.outbox) == 1
    assert [(m.status, m.attempts) for m in rows(ids)] == [("sending", 1)] + [("queued", 0)] * 3


# --- Attempts are bounded everywhere ------------------------------------------------------------


def test_it_never_claims_a_row_that_has_used_its_attempts(job: Job, contact: Contact) -> None:
    [pk] = queued_emails(job, contact, 1)
    Message.objects.filter(pk=pk).update(attempts=settings.OUTBOX_MAX_ATTEMPTS)

    assert claim_many([pk]) == []
    assert deliver_many(message_ids=[pk]) == {pk: "skipped"}
    assert mail.outbox == []


def test_it_fails_a_stuck_send_that_has_used_its_attempts_instead_of_sending_it_again(
    job: Job, contact: Contact, time_machine, run_schedules
) -> None:
    [pk] = queued_emails(job, contact, 1)
    Message.objects.filter(pk=pk).update(
        status=Message.Status.SENDING, attempts=settings.OUTBOX_MAX_ATTEMPTS, claimed_at=timezone.now()
    )
    time_machine.shift(settings.OUTBOX_STUCK_AFTER_SECONDS + 1)

    assert sweep() == {"requeued": 0, "enqueued": 0, "failed": 1}

    [message] = rows([pk])
    assert (message.status, message.attempts, message.failed_at) == ("failed", 5, timezone.now())
    assert "did not finish" in message.last_error
    [failed] = JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_FAILED)
    assert failed.data["message_id"] == pk
    assert message.alerted_in is not None and message.alerted_in.staff == job.owner
    assert mail.outbox == []
    assert sweep() == {"requeued": 0, "enqueued": 0, "failed": 0}


def test_a_worker_dying_at_every_attempt_sends_at_most_the_maximum(
    job: Job, contact: Contact, time_machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider takes the message each time, and the worker dies before recording it: the
    sweep requeues it until its attempts are used, then fails it. Never more sends than that."""
    [pk] = queued_emails(job, contact, 1)

    def worker_dies(*args: Any) -> None:
        raise SystemExit("killed")

    monkeypatch.setattr(delivery, "_record_sent", worker_dies)
    for _ in range(settings.OUTBOX_MAX_ATTEMPTS + 3):
        with pytest.raises(SystemExit):
            deliver_many(message_ids=[pk])
        time_machine.shift(settings.OUTBOX_STUCK_AFTER_SECONDS + 1)
        monkeypatch.setattr(delivery, "enqueue_now", lambda ids, **kwargs: None)
        sweep()
        if rows([pk])[0].status == "failed":
            break
        Message.objects.filter(pk=pk).update(next_attempt_at=None)

    [message] = rows([pk])
    assert (message.status, message.attempts) == ("failed", settings.OUTBOX_MAX_ATTEMPTS)
    assert sends_to("customer0@example.com") == settings.OUTBOX_MAX_ATTEMPTS
    assert deliver_many(message_ids=[pk]) == {pk: "skipped"}


def test_it_fails_a_queued_row_left_out_of_attempts(job: Job, contact: Contact) -> None:
    """Rows an older version requeued past the maximum are settled, not left queued forever."""
    [pk] = queued_emails(job, contact, 1)
    Message.objects.filter(pk=pk).update(attempts=settings.OUTBOX_MAX_ATTEMPTS + 2)

    assert sweep()["failed"] == 1
    assert rows([pk])[0].status == "failed"
