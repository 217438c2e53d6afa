"""The odd reply, through anymail's real Postmark backend: a local fake Postmark (bench.fake_esp,
its own process, real HTTP) accepts each message but names another recipient in its answer, so
anymail reports the message id as a set. Each message is sent once, recorded once, and nothing is
left for a sweep to send again; the rest of the batch is untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from bench.fake_esp import FakeEsp
from crm.models import Contact, Job, JobEvent, Message
from crm.services.delivery import sweep
from crm.tasks import send_messages
from tests.crm.outbox_rows import queued_emails

pytestmark = pytest.mark.django_db

TOKEN = "test-token"  # the fake's Postmark server token, nothing real


@pytest.fixture(scope="module")
def postmark() -> Iterator[FakeEsp]:
    with FakeEsp(token=TOKEN) as esp:
        yield esp


@pytest.fixture
def esp(postmark: FakeEsp, settings) -> FakeEsp:
    postmark.reset()
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": TOKEN, "POSTMARK_API_URL": postmark.url}
    return postmark


def test_ten_odd_replies_are_ten_sends(esp: FakeEsp, job: Job, contact: Contact) -> None:
    esp.behave("other_recipient")
    ids = queued_emails(job, contact, 10)

    assert send_messages(ids) == dict.fromkeys(ids, "sent")
    # Long after: nothing stuck, nothing for the sweep to send again.
    assert sweep(now=timezone.now() + timedelta(hours=2)) == {"requeued": 0, "enqueued": 0, "failed": 0}

    stats = esp.stats()
    assert (stats.accepted, stats.other_recipient, stats.max_sends_per_outbox_id) == (10, 10, 1)
    rows = Message.objects.filter(pk__in=ids)
    assert {(m.status, m.attempts, m.provider_message_id) for m in rows} == {("sent", 1, "")}
    assert all("gave no message id" in m.last_error for m in rows)
    assert JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_SENT).count() == 10


def test_one_odd_reply_leaves_the_other_nineteen_of_its_batch_alone(esp: FakeEsp, job: Job, contact: Contact) -> None:
    esp.behave("other_recipient", recipients=["customer7@example.com"])
    ids = queued_emails(job, contact, 20)

    assert send_messages(ids) == dict.fromkeys(ids, "sent")

    stats = esp.stats()
    assert (stats.accepted, stats.max_sends_per_outbox_id) == (20, 1)
    rows = list(Message.objects.filter(pk__in=ids).order_by("pk"))
    assert [m.status for m in rows] == ["sent"] * 20
    assert [bool(m.provider_message_id) for m in rows] == [n != 7 for n in range(20)]
