"""Staff alerts are outbox rows: kind ``staff_alert``, the staff member as recipient, in their
language, stored once per thing they are about, retried like any message, and visible on the
dashboard when they cannot be sent. Failures are digested: a burst of messages that did not reach
their customers is one email per owner, listing them; the dashboard keeps the complete list.

The provider is Django's locmem backend, or one that refuses everything (an outage). Time is frozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import ClassVar

import pytest
from anymail.exceptions import AnymailAPIError
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.core.mail import EmailMessage
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import Contact, Customer, Job, Message, Pipeline, StaffProfile
from crm.selectors import attention, attention_counts
from crm.services.alerts import alert_owner
from crm.services.delivery import _record_failure, claim_many, deliver_many
from crm.services.jobs import job_create
from crm.tasks import send_staff_email
from tests.crm.outbox_rows import queued_emails

pytestmark = pytest.mark.django_db


class ProviderDown(LocmemBackend):
    """Every send is refused, staff alerts included (an outage of the one provider we have)."""

    down: ClassVar[bool] = True

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if self.down:
            raise AnymailAPIError("Postmark API response 500: Internal Server Error")
        return super().send_messages(email_messages)


@pytest.fixture(autouse=True)
def frozen(time_machine) -> None:
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)


@pytest.fixture
def outage(settings) -> type[ProviderDown]:
    settings.EMAIL_BACKEND = f"{__name__}.ProviderDown"
    ProviderDown.down = True
    return ProviderDown


def customer_messages(job: Job, contact: Contact, count: int, *, start: int = 0) -> list[int]:
    """Stage-change emails whose last attempt comes now."""
    return queued_emails(
        job,
        contact,
        count,
        prefix="alerts",
        start=start,
        kind=Message.Kind.STAGE_CHANGE,
        attempts=settings.OUTBOX_MAX_ATTEMPTS - 1,
    )


def alerts_to(person: User) -> list[Message]:
    return list(Message.objects.filter(kind=Message.Kind.STAFF_ALERT, staff=person).order_by("pk"))


def emails_to(person: User) -> list[EmailMessage]:
    return [email for email in mail.outbox if email.to == [person.email]]


def later(time_machine, seconds: float) -> None:
    time_machine.shift(timedelta(seconds=seconds))


# --- Alerts are rows ----------------------------------------------------------------------------


def test_an_alert_is_an_outbox_row_in_the_persons_language_stored_once(
    job: Job, bob: User, django_capture_on_commit_callbacks
) -> None:
    StaffProfile.objects.create(user=bob, language="fr")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            alert_owner(job, name="silence", context={"last": timezone.now(), "days": 12}, key="job:1:test")

    [alert] = alerts_to(bob)
    assert (alert.status, alert.language, alert.to_address, alert.job, alert.contact) == (
        "sent",
        "fr",
        "bob@example.com",
        None,
        None,
    )
    [email] = emails_to(bob)
    assert email.subject == alert.subject
    assert job.reference in email.body
    assert email.message()["Message-ID"] == alert.email_message_id


def test_an_alert_during_an_outage_is_retried_not_lost(
    job: Job, bob: User, outage: type[ProviderDown], time_machine, run_schedules, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        alert_owner(job, name="silence", context={"last": timezone.now(), "days": 12}, key="job:1:outage")
    [alert] = alerts_to(bob)
    assert (alert.status, alert.attempts) == ("queued", 1)

    outage.down = False
    later(time_machine, settings.OUTBOX_RETRY_BASE_SECONDS + 1)
    run_schedules()

    assert alerts_to(bob)[0].status == "sent"
    assert len(emails_to(bob)) == 1


# --- Failures are digested -------------------------------------------------------------------------


@pytest.fixture
def chloes_job(customer: Customer, contact: Contact, installation: Pipeline) -> Job:
    chloe = User.objects.create_user("chloe", email="chloe@example.com", is_staff=True)
    return job_create(customer=customer, pipeline=installation, owner=chloe, title="Charger", actor=chloe)


def test_a_burst_of_failures_is_one_digest_per_owner(
    job: Job,
    chloes_job: Job,
    contact: Contact,
    bob: User,
    outage: type[ProviderDown],
    time_machine,
    run_schedules,
) -> None:
    bobs = customer_messages(job, contact, 30)
    chloes = customer_messages(chloes_job, contact, 3, start=100)

    # The last attempts fail over two minutes, in several batches.
    for chunk in (bobs[:10], chloes, bobs[10:20], bobs[20:]):
        assert set(deliver_many(message_ids=chunk).values()) == {"failed"}
        later(time_machine, 40)
    [digest] = alerts_to(bob)
    assert digest.alerted_failures.count() == 30
    assert [m.alerted_in_id for m in Message.objects.filter(pk__in=bobs)] == [digest.pk] * 30
    assert len(alerts_to(chloes_job.owner)) == 1

    outage.down = False
    later(time_machine, settings.STAFF_ALERT_DIGEST_SECONDS)
    run_schedules()

    [email] = emails_to(bob)
    assert email.subject == "30 messages to your customers not delivered"
    assert all(f"customer{n}@example.com" in email.body for n in range(30))
    assert email.body.count(job.reference) == 30
    assert reverse("crm:home") in email.body
    [chloes_email] = emails_to(chloes_job.owner)
    assert chloes_email.subject == "3 messages to your customers not delivered"
    # The dashboard names the job once, by its latest failure, with all 30 behind it.
    [failed] = [s for s in attention(bob) if s.key == "failed"]
    [row] = failed.rows
    assert (row.job_id, row.job_rows, failed.extra["more"]) == (job.pk, 30, False)
    assert row.failed_at == max(m.failed_at for m in Message.objects.filter(pk__in=bobs))
    assert attention_counts(bob)["failed"] == 30


def test_a_digest_that_cannot_be_sent_keeps_gathering_and_is_sent_once_after_recovery(
    job: Job, contact: Contact, bob: User, outage: type[ProviderDown], time_machine, run_schedules
) -> None:
    first = customer_messages(job, contact, 2)
    deliver_many(message_ids=first)
    later(time_machine, settings.STAFF_ALERT_DIGEST_SECONDS + 1)
    run_schedules()  # the digest's own first attempt fails: the outage goes on
    [digest] = alerts_to(bob)
    assert (digest.status, digest.attempts) == ("queued", 1)

    more = customer_messages(job, contact, 3, start=10)
    deliver_many(message_ids=more)
    assert alerts_to(bob) == [digest]
    assert digest.alerted_failures.count() == 5

    outage.down = False
    later(time_machine, settings.OUTBOX_RETRY_BASE_SECONDS + 1)
    run_schedules()

    [email] = emails_to(bob)
    assert email.subject == "5 messages to your customers not delivered"
    # A failure after the digest went out opens the next one.
    ProviderDown.down = True
    deliver_many(message_ids=customer_messages(job, contact, 1, start=50))
    assert len(alerts_to(bob)) == 2


def test_one_failure_reads_as_before(
    job: Job, contact: Contact, bob: User, outage, time_machine, run_schedules
) -> None:
    [pk] = customer_messages(job, contact, 1)
    deliver_many(message_ids=[pk])
    outage.down = False
    later(time_machine, settings.STAFF_ALERT_DIGEST_SECONDS + 1)
    run_schedules()

    [email] = emails_to(bob)
    assert email.subject == f"Message to customer0@example.com not delivered — {job.reference}"
    assert "Attempts: 5" in email.body
    assert "Error: AnymailAPIError: Postmark API response 500" in email.body


# --- An alert that could not be sent is on the dashboard ------------------------------------------


@pytest.fixture
def failed_alert(job: Job, bob: User) -> Message:
    [alert] = alert_owner(job, name="silence", context={"last": timezone.now(), "days": 12}, key="job:1:failed")
    Message.objects.filter(pk=alert.pk).update(
        status=Message.Status.FAILED, failed_at=timezone.now(), attempts=5, last_error="AnymailAPIError: 500"
    )
    return alert


def test_the_dashboard_shows_an_alert_that_could_not_be_sent_and_sends_it_again(
    failed_alert: Message, bob: User, client: Client, django_capture_on_commit_callbacks
) -> None:
    client.force_login(bob)
    page = client.get(reverse("crm:home")).content.decode()
    assert "Alerts that did not reach the team" in page
    assert failed_alert.subject in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("crm:alert_send_again", args=[failed_alert.pk]))

    assert response.status_code == 302
    assert Message.objects.get(pk=failed_alert.pk).status == "sent"
    assert len(emails_to(bob)) == 1
    assert "Alerts that did not reach the team" not in client.get(reverse("crm:home")).content.decode()


def test_an_alert_marked_dealt_with_leaves_the_dashboard(failed_alert: Message, bob: User, client: Client) -> None:
    client.force_login(bob)

    client.post(reverse("crm:alert_handled", args=[failed_alert.pk]))

    assert Message.objects.get(pk=failed_alert.pk).handled_at == timezone.now()
    assert "Alerts that did not reach the team" not in client.get(reverse("crm:home")).content.decode()


def test_someone_elses_alert_is_a_404_but_a_manager_sees_the_teams(
    failed_alert: Message, charlie: User, alice: User, client: Client
) -> None:
    client.force_login(charlie)
    assert client.post(reverse("crm:alert_send_again", args=[failed_alert.pk])).status_code == 404
    assert client.post(reverse("crm:alert_handled", args=[failed_alert.pk])).status_code == 404
    assert client.post(reverse("crm:alert_handled", args=[10**30])).status_code == 404

    client.force_login(alice)
    assert failed_alert.subject in client.get(reverse("crm:home") + "?scope=team").content.decode()
    assert client.post(reverse("crm:alert_handled", args=[failed_alert.pk])).status_code == 302


def test_an_alert_that_was_sent_cannot_be_sent_again(job: Job, bob: User, client: Client) -> None:
    [alert] = alert_owner(job, name="silence", context={"last": timezone.now(), "days": 12}, key="job:1:sent")
    client.force_login(bob)

    client.post(reverse("crm:alert_send_again", args=[alert.pk]), follow=True)

    assert Message.objects.get(pk=alert.pk).attempts == 0
    assert len(emails_to(bob)) == 0


# --- Alerts already waiting in a broker at an upgrade ----------------------------------------------


def test_an_alert_task_from_before_becomes_a_row_once(bob: User, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        send_staff_email("bob@example.com", "A reply on J-2026-0001", "Marie wrote back.")
        send_staff_email("bob@example.com", "A reply on J-2026-0001", "Marie wrote back.")

    [alert] = alerts_to(bob)
    assert (alert.status, alert.subject) == ("sent", "A reply on J-2026-0001")
    assert [e.body for e in emails_to(bob)] == ["Marie wrote back."]


def test_a_failure_while_the_digest_is_being_sent_joins_it_when_that_send_fails(
    job: Job, contact: Contact, bob: User, outage: type[ProviderDown], time_machine, run_schedules
) -> None:
    """The digest's own attempt is under way (``sending``) when another message fails: it cannot
    join a digest being sent and opens a newer one; the attempt fails, and the newer one is folded
    into it, so the owner still gets one email after the outage."""
    deliver_many(message_ids=customer_messages(job, contact, 2))
    [digest] = alerts_to(bob)
    later(time_machine, settings.STAFF_ALERT_DIGEST_SECONDS + 1)
    [claimed] = claim_many([digest.pk])

    deliver_many(message_ids=customer_messages(job, contact, 1, start=10))
    assert len(alerts_to(bob)) == 2
    assert _record_failure(claimed, AnymailAPIError("Postmark API response 500")) == "retry"

    assert alerts_to(bob) == [digest]
    assert digest.alerted_failures.count() == 3
    outage.down = False
    later(time_machine, settings.OUTBOX_RETRY_BASE_SECONDS + 1)
    run_schedules()
    [email] = emails_to(bob)
    assert email.subject == "3 messages to your customers not delivered"
