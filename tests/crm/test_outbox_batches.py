"""Sending in batches: one task per SEND_BATCH messages, claimed together with UPDATE … RETURNING,
handed over through one connection to the provider, recorded sent together; one message's error
does not hold back the others, and a batch that runs out of time puts the rest back in the queue.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from anymail.exceptions import AnymailAPIError
from django.core import mail
from django.core.mail import EmailMessage
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.utils import timezone

import crm.services.broker as broker
import crm.services.delivery as delivery
import crm.services.outbox as outbox
from crm.models import Contact, Job, JobEvent, Message
from crm.services.delivery import deliver_many, sweep
from crm.services.outbox import enqueue_on_commit
from crm.sql import update_returning_pks
from crm.tasks import send_messages
from tests.crm.outbox_rows import queued_emails


class CountingBackend(LocmemBackend):
    """The locmem outbox, counting the connections opened and refusing one address."""

    opened: ClassVar[int] = 0
    refused: ClassVar[str] = ""

    def open(self) -> bool:
        type(self).opened += 1
        return True

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            if self.refused in message.to:
                raise AnymailAPIError("Postmark API response 500: Internal Server Error")
        return super().send_messages(email_messages)


class UnreachableBackend(LocmemBackend):
    """An email provider that cannot be reached: opening a connection fails."""

    def open(self) -> bool:
        raise ConnectionError("Connection refused")

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        self.open()
        return super().send_messages(email_messages)


@pytest.fixture
def counting_backend(settings) -> Iterator[type[CountingBackend]]:
    settings.EMAIL_BACKEND = f"{__name__}.CountingBackend"
    CountingBackend.opened, CountingBackend.refused = 0, ""
    yield CountingBackend


def statuses(ids: list[int]) -> list[str]:
    return list(Message.objects.filter(pk__in=ids).order_by("pk").values_list("status", flat=True))


# --- update_returning_pks -----------------------------------------------------------------------


def test_it_returns_only_the_rows_the_update_changed(job: Job, contact: Contact) -> None:
    ids = queued_emails(job, contact, 3)
    Message.objects.filter(pk=ids[1]).update(status=Message.Status.SENT)

    moved = update_returning_pks(
        Message.objects.filter(pk__in=ids, status=Message.Status.QUEUED), status=Message.Status.SENDING
    )

    assert sorted(moved) == [ids[0], ids[2]]
    assert update_returning_pks(Message.objects.filter(pk__in=ids, status=Message.Status.QUEUED), subject="x") == []
    assert update_returning_pks(Message.objects.filter(pk__in=[]), subject="x") == []


def test_it_refuses_filters_that_need_a_join(job: Job, contact: Contact) -> None:
    queued_emails(job, contact, 1)
    with pytest.raises(ValueError, match="own columns"):
        update_returning_pks(Message.objects.filter(job__reference=job.reference), subject="x")


# --- deliver_many -------------------------------------------------------------------------------


def test_it_sends_a_batch_through_one_connection_and_records_each_once(
    job: Job, contact: Contact, counting_backend: type[CountingBackend]
) -> None:
    ids = queued_emails(job, contact, 5)

    outcomes = send_messages(ids)

    assert outcomes == dict.fromkeys(ids, "sent")
    assert counting_backend.opened == 1
    assert sorted(e.to[0] for e in mail.outbox) == [f"customer{n}@example.com" for n in range(5)]
    assert statuses(ids) == ["sent"] * 5
    logged = JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_SENT)
    assert sorted(e.data["message_id"] for e in logged) == ids
    # A second run of the same task finds nothing to claim.
    assert send_messages(ids) == dict.fromkeys(ids, "skipped")
    assert len(mail.outbox) == 5


def test_it_sends_the_rest_of_a_batch_when_one_message_fails(
    job: Job, contact: Contact, counting_backend: type[CountingBackend]
) -> None:
    ids = queued_emails(job, contact, 3)
    counting_backend.refused = "customer1@example.com"

    outcomes = deliver_many(message_ids=ids)

    assert outcomes == {ids[0]: "sent", ids[1]: "retry", ids[2]: "sent"}
    assert statuses(ids) == ["sent", "queued", "sent"]
    retry = Message.objects.get(pk=ids[1])
    assert retry.attempts == 1 and retry.next_attempt_at is not None
    assert "500" in retry.last_error


def test_it_retries_each_message_later_when_the_provider_cannot_be_reached(
    job: Job, contact: Contact, settings
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.UnreachableBackend"
    ids = queued_emails(job, contact, 2)

    outcomes = deliver_many(message_ids=ids)

    assert outcomes == dict.fromkeys(ids, "retry")
    rows = Message.objects.filter(pk__in=ids)
    assert {(m.status, m.attempts) for m in rows} == {("queued", 1)}
    assert all(m.next_attempt_at is not None and "Connection refused" in m.last_error for m in rows)


def test_it_skips_what_another_worker_has_and_sends_the_rest(job: Job, contact: Contact) -> None:
    ids = queued_emails(job, contact, 3)
    Message.objects.filter(pk=ids[0]).update(status=Message.Status.SENDING)

    outcomes = deliver_many(message_ids=[*ids, ids[2]])

    assert outcomes == {ids[0]: "skipped", ids[1]: "sent", ids[2]: "sent"}
    assert len(mail.outbox) == 2


def test_it_puts_back_what_a_slow_batch_could_not_try_in_time(
    job: Job, contact: Contact, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = queued_emails(job, contact, 3)
    # The clock: the batch starts at 0, the first send at 0, then 31 s have passed.
    ticks = iter([0.0, 0.0, 31.0])
    monkeypatch.setattr(delivery.time, "monotonic", lambda: next(ticks, 0.0))

    outcomes = deliver_many(message_ids=ids)

    assert outcomes == {ids[0]: "sent", ids[1]: "released", ids[2]: "released"}
    # Released rows went back to the queue, not counted as an attempt, and were enqueued again:
    # the test cluster runs tasks at once, so they are sent now, each once.
    assert statuses(ids) == ["sent"] * 3
    assert sorted(e.to[0] for e in mail.outbox) == [f"customer{n}@example.com" for n in range(3)]
    assert list(Message.objects.filter(pk__in=ids).order_by("pk").values_list("attempts", flat=True)) == [1, 1, 1]


def test_it_enqueues_one_task_per_batch(
    job: Job, contact: Contact, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    ids = queued_emails(job, contact, 2 * outbox.SEND_BATCH + 5)
    tasks: list[tuple[str, list[int]]] = []
    real = broker.async_task

    def recording(func: str, *args: Any, **kwargs: Any) -> Any:
        tasks.append((func, list(args[0])))
        return real(func, *args, **kwargs)

    monkeypatch.setattr(broker, "async_task", recording)
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit(ids)

    assert [(func, len(chunk)) for func, chunk in tasks] == [
        ("crm.tasks.send_messages", outbox.SEND_BATCH),
        ("crm.tasks.send_messages", outbox.SEND_BATCH),
        ("crm.tasks.send_messages", 5),
    ]
    assert [pk for _, chunk in tasks for pk in chunk] == ids
    assert statuses(ids) == ["sent"] * len(ids)


def test_it_enqueues_again_on_a_new_broker_connection_when_the_kept_one_was_cut(
    job: Job, contact: Contact, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    ids = queued_emails(job, contact, 2)
    brokers: list[Any] = []
    real = outbox.enqueue_now

    def cut_once(message_ids: list[int], *, broker: Any = None) -> None:
        brokers.append(broker)
        if len(brokers) == 1:
            raise ConnectionError("Connection reset by peer")
        real(message_ids, broker=broker)

    monkeypatch.setattr(outbox, "enqueue_now", cut_once)
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit(ids)

    assert brokers[0] is None and brokers[1] is not None  # the kept broker, then a new one
    assert statuses(ids) == ["sent", "sent"]
    assert len(mail.outbox) == 2


def test_it_leaves_the_rows_to_the_sweep_when_the_broker_is_down(
    job: Job, contact: Contact, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks, time_machine
) -> None:
    ids = queued_emails(job, contact, 2)

    def down(message_ids: list[int], *, broker: Any = None) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(outbox, "enqueue_now", down)
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit(ids)
    assert statuses(ids) == ["queued", "queued"]
    assert mail.outbox == []

    monkeypatch.undo()
    time_machine.move_to(timezone.now() + timedelta(minutes=2))
    assert sweep()["enqueued"] == 2
    assert statuses(ids) == ["sent", "sent"]
