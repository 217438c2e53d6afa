"""Several workers sending from the same outbox at the same moment, on PostgreSQL.

The claim (a conditional UPDATE queued → sending) is what keeps a message from going out twice when
two workers get its task. SQLite serialises whole transactions, so this only says something on
PostgreSQL. Each thread has its own connection and closes it; the rows are committed so every
thread sees them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.db import connection

from crm.models import Contact, Job, JobEvent, Message
from crm.tasks import send_message, send_messages
from tests.crm.outbox_rows import queued_emails

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent claims need PostgreSQL"),
]


def run_together(*calls: Callable[[], Any], timeout: float = 20) -> list[Any]:
    """Start every call at the same moment, each in its own thread and connection."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[index] = call()
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a worker is stuck"
    return results


def test_it_sends_once_when_two_workers_get_the_same_task(job: Job, contact: Contact) -> None:
    [message_id] = queued_emails(job, contact, 1)

    results = run_together(lambda: send_message(message_id), lambda: send_message(message_id))

    assert sorted(results) == ["sent", "skipped"]
    assert len(mail.outbox) == 1
    message = Message.objects.get(pk=message_id)
    assert (message.status, message.attempts) == ("sent", 1)
    assert JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_SENT).count() == 1


def test_it_sends_each_of_fifty_messages_once_with_four_workers_on_all_of_them(job: Job, contact: Contact) -> None:
    ids = queued_emails(job, contact, 50)

    def worker() -> list[str]:
        return [send_message(message_id) for message_id in ids]

    results = run_together(worker, worker, worker, worker)

    assert not [r for r in results if isinstance(r, Exception)]
    outcomes = [outcome for worker_results in results for outcome in worker_results]
    assert outcomes.count("sent") == 50
    assert outcomes.count("skipped") == 150
    assert len(mail.outbox) == 50
    assert sorted(e.to[0] for e in mail.outbox) == sorted(f"customer{n}@example.com" for n in range(50))
    assert set(Message.objects.filter(pk__in=ids).values_list("status", "attempts")) == {("sent", 1)}


def test_it_sends_each_message_once_when_overlapping_batches_race(job: Job, contact: Contact) -> None:
    ids = queued_emails(job, contact, 60)
    # Three workers, each given batches that overlap the others' (as duplicate and sweep tasks do).
    batches = [ids[:40], ids[20:], ids[::2] + ids[1::2]]

    results = run_together(*(lambda batch=batch: send_messages(batch) for batch in batches))

    assert not [r for r in results if isinstance(r, Exception)]
    outcomes = [outcome for worker_results in results for outcome in worker_results.values()]
    assert outcomes.count("sent") == 60
    assert len(mail.outbox) == 60
    assert sorted(e.to[0] for e in mail.outbox) == sorted(f"customer{n}@example.com" for n in range(60))
    assert set(Message.objects.filter(pk__in=ids).values_list("status", "attempts")) == {("sent", 1)}
    assert JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_SENT).count() == 60
