"""Outbound webhooks: stored with the change that calls for them, delivered after commit to a
real local receiver, signed per Standard Webhooks (verified with the library's own verifier),
retried, failed, turned off, sent again."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from crm.errors import DomainError
from crm.models import Job, Message, WebhookDelivery, WebhookEndpoint
from crm.services import webhook_delivery, webhooks
from crm.services.jobs import job_advance
from crm.services.promises import document_promise
from crm.tasks import scan_commitments
from tests.webhook_receiver import Receiver, running_receiver


@pytest.fixture(autouse=True)
def _local_receivers(settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def receiver():
    with running_receiver() as running:
        yield running


def endpoint_for(receiver: Receiver, alice: User, *types: str) -> WebhookEndpoint:
    return webhooks.endpoint_create(
        url=receiver.url, event_types=types or ["job.stage_changed"], description="ERP", actor=alice
    )


def second_stage(job: Job):
    return job.pipeline.stages.get(position=2)


def test_a_stage_change_is_delivered_signed_and_verifies_with_the_library(
    job: Job, bob: User, alice: User, receiver: Receiver, django_capture_on_commit_callbacks
) -> None:
    endpoint = endpoint_for(receiver, alice)
    with django_capture_on_commit_callbacks(execute=True):
        job_advance(job=job, to_stage=second_stage(job), actor=bob)

    [delivery] = WebhookDelivery.objects.all()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert (delivery.response_code, delivery.attempts) == (204, 1)
    [request] = receiver.received
    event = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert request.headers["webhook-id"] == delivery.webhook_id
    assert event["type"] == "job.stage_changed"
    assert event["data"]["job"] == {
        "id": str(job.public_id),
        "reference": job.reference,
        "title": job.title,
        "status": "active",
    }
    assert event["data"]["details"]["to_stage"] == "Proposal sent"
    assert event["data"]["event"]["by"] == "Bob Durand"
    # Another secret does not verify it.
    with pytest.raises(WebhookVerificationError):
        Webhook(WebhookEndpoint().secret).verify(request.body, request.headers)


def test_nothing_is_stored_when_the_change_rolls_back(job: Job, bob: User, alice: User, receiver: Receiver) -> None:
    endpoint_for(receiver, alice)
    with pytest.raises(RuntimeError), transaction.atomic():
        job_advance(job=job, to_stage=second_stage(job), actor=bob)
        assert WebhookDelivery.objects.count() == 1  # in the change's own transaction
        raise RuntimeError("the request failed after the move")
    assert WebhookDelivery.objects.count() == 0


def test_only_active_endpoints_wanting_the_event_get_it(job: Job, bob: User, alice: User, receiver: Receiver) -> None:
    wants = endpoint_for(receiver, alice, "job.stage_changed")
    endpoint_for(receiver, alice, "job.created")
    paused = endpoint_for(receiver, alice, "job.stage_changed")
    webhooks.endpoint_set_active(endpoint=paused, active=False)

    job_advance(job=job, to_stage=second_stage(job), actor=bob)

    assert list(WebhookDelivery.objects.values_list("endpoint_id", "event_type")) == [(wants.pk, "job.stage_changed")]


def test_a_log_line_no_one_subscribes_to_costs_no_query(job: Job, bob: User, django_assert_num_queries) -> None:
    from crm.services.events import record_event

    with django_assert_num_queries(1):  # the INSERT of the log line alone
        record_event(job=job, kind="call_logged", actor=bob)


def test_a_receivers_500_is_retried_later_with_the_same_webhook_id(
    job: Job, bob: User, alice: User, receiver: Receiver, django_capture_on_commit_callbacks, time_machine
) -> None:
    endpoint_for(receiver, alice)
    receiver.answers = [500]
    with django_capture_on_commit_callbacks(execute=True):
        job_advance(job=job, to_stage=second_stage(job), actor=bob)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.response_code == 500 and delivery.attempts == 1
    assert timedelta(seconds=55) < delivery.next_attempt_at - timezone.now() <= timedelta(seconds=60)
    assert WebhookEndpoint.objects.get().failing_since is not None

    # Not due yet: the sweep leaves it.
    assert webhook_delivery.sweep()["enqueued"] == 0
    time_machine.move_to(timezone.now() + timedelta(seconds=61))
    assert webhook_delivery.sweep()["enqueued"] == 1  # the sync cluster sends it at once

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 2, 204)
    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.webhook_id] * 2
    assert WebhookEndpoint.objects.get().failing_since is None  # a success clears the count


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    job: Job, bob: User, alice: User, receiver: Receiver, settings, django_capture_on_commit_callbacks
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    endpoint_for(receiver, alice)
    receiver.delays = [5]
    with django_capture_on_commit_callbacks(execute=True):
        job_advance(job=job, to_stage=second_stage(job), actor=bob)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.response_code is None
    assert "No answer within 1 seconds" in delivery.last_error


def test_a_receivers_400_fails_at_once_and_can_be_sent_again(
    job: Job, bob: User, alice: User, receiver: Receiver, django_capture_on_commit_callbacks
) -> None:
    endpoint_for(receiver, alice)
    receiver.answers = [400]
    with django_capture_on_commit_callbacks(execute=True):
        job_advance(job=job, to_stage=second_stage(job), actor=bob)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_code) == ("failed", 400)
    assert delivery.last_error.startswith("HTTP 400")

    with django_capture_on_commit_callbacks(execute=True):
        webhooks.delivery_send_again(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # the same id: receivers dedupe


def test_the_last_retry_fails_the_delivery(job: Job, bob: User, alice: User, receiver: Receiver, settings) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    endpoint_for(receiver, alice)
    receiver.answers = [503, 503]
    job_advance(job=job, to_stage=second_stage(job), actor=bob)
    delivery = WebhookDelivery.objects.get()
    assert webhook_delivery.deliver_many(delivery_ids=[delivery.pk]) == {delivery.pk: "retry"}
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert webhook_delivery.deliver_many(delivery_ids=[delivery.pk]) == {delivery.pk: "failed"}


def test_an_endpoint_failing_for_days_is_turned_off_and_managers_told(
    job: Job, bob: User, alice: User, receiver: Receiver, settings
) -> None:
    endpoint = endpoint_for(receiver, alice)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=6))
    receiver.answers = [502]
    job_advance(job=job, to_stage=second_stage(job), actor=bob)
    delivery = WebhookDelivery.objects.get()
    webhook_delivery.deliver_many(delivery_ids=[delivery.pk])

    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at is not None
    assert "5 days" in endpoint.disabled_reason
    [alert] = Message.objects.filter(kind=Message.Kind.STAFF_ALERT, to_address=alice.email)
    assert endpoint.url in alert.subject
    assert f"/settings/webhooks/{endpoint.pk}/" in alert.body_text
    assert not Message.objects.filter(kind=Message.Kind.STAFF_ALERT, to_address=bob.email).exists()

    # Off: the next change stores nothing for it; back on, the failures count from zero.
    job_advance(job=job, to_stage=job.pipeline.stages.get(position=3), actor=bob)
    assert WebhookDelivery.objects.count() == 1
    webhooks.endpoint_set_active(endpoint=endpoint, active=True)
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.failing_since is None


def test_a_delivery_is_sent_once_however_many_tasks_carry_it(
    job: Job, bob: User, alice: User, receiver: Receiver
) -> None:
    endpoint_for(receiver, alice)
    job_advance(job=job, to_stage=second_stage(job), actor=bob)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="sending", claimed_at=timezone.now())
    assert webhook_delivery.deliver_many(delivery_ids=[delivery.pk]) == {delivery.pk: "skipped"}
    assert receiver.received == []


def test_a_send_whose_worker_stopped_is_put_back_by_the_sweep(
    job: Job, bob: User, alice: User, receiver: Receiver, time_machine
) -> None:
    endpoint_for(receiver, alice)
    job_advance(job=job, to_stage=second_stage(job), actor=bob)
    WebhookDelivery.objects.update(status="sending", claimed_at=timezone.now(), attempts=1)
    assert webhook_delivery.sweep() == {"requeued": 0, "enqueued": 0}
    time_machine.move_to(timezone.now() + timedelta(minutes=6))
    assert webhook_delivery.sweep() == {"requeued": 1, "enqueued": 1}
    assert WebhookDelivery.objects.get().status == "delivered"
    assert len(receiver.received) == 1


def test_after_a_rotation_both_secrets_verify_until_the_overlap_ends(
    job: Job, bob: User, alice: User, receiver: Receiver, django_capture_on_commit_callbacks, time_machine
) -> None:
    endpoint = endpoint_for(receiver, alice)
    old = endpoint.secret
    webhooks.endpoint_rotate_secret(endpoint=endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        job_advance(job=job, to_stage=second_stage(job), actor=bob)
    [request] = receiver.received
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, endpoint.secret):
        Webhook(secret).verify(request.body, request.headers)

    time_machine.move_to(timezone.now() + timedelta(hours=25))
    endpoint.refresh_from_db()
    assert endpoint.signing_secrets() == [endpoint.secret]


def test_survey_low_score_and_at_risk_events(job: Job, alice: User, receiver: Receiver) -> None:
    from crm.services.events import record_event

    endpoint_for(receiver, alice, "survey.answered", "survey.low_score")
    record_event(job=job, kind="survey_answered", actor=None, survey_id=1, low=True)
    record_event(job=job, kind="survey_answered", actor=None, survey_id=2, low=False)
    assert sorted(WebhookDelivery.objects.values_list("event_type", flat=True)) == [
        "survey.answered",
        "survey.answered",
        "survey.low_score",
    ]
    low = WebhookDelivery.objects.get(event_type="survey.low_score")
    assert low.payload["data"]["details"]["survey_id"] == 1
    assert json.loads(webhook_delivery.body_of(low)) == low.payload


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hooks",
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",
        "https://10.1.2.3/hooks",
        "https://[::1]/hooks",
        "https://169.254.169.254/latest",
        "ftp://example.com/",
        "not a url",
    ],
)
def test_production_takes_public_https_addresses_only(url: str, alice: User, settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(DomainError):
        webhooks.endpoint_create(url=url, event_types=["job.created"], description="", actor=alice)


def test_an_address_that_turned_private_is_not_sent_to(
    job: Job, bob: User, alice: User, receiver: Receiver, settings
) -> None:
    endpoint_for(receiver, alice)
    job_advance(job=job, to_stage=second_stage(job), actor=bob)
    settings.WEBHOOK_ALLOW_PRIVATE = False
    delivery = WebhookDelivery.objects.get()
    webhook_delivery.deliver_many(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == "pending" and "private or local" in delivery.last_error
    assert receiver.received == []


PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def monday(time_machine) -> None:
    """Monday 2 March 2026, 10:00 in Paris: the day the heat pump job starts."""
    time_machine.move_to(datetime(2026, 3, 2, 10, 0, tzinfo=PARIS), tick=False)


def test_a_promise_in_the_morning_digest_is_a_commitment_at_risk_event(
    monday: None, job: Job, bob: User, alice: User, receiver: Receiver, time_machine
) -> None:
    endpoint_for(receiver, alice, "commitment.at_risk")
    promised = document_promise(job=job, title="The quote", due_on=date(2026, 3, 4), actor=bob)
    time_machine.move_to(datetime(2026, 3, 4, 9, 0, tzinfo=PARIS), tick=False)  # Wednesday, opening time

    scan_commitments()
    scan_commitments()  # once per promise, however often the scan runs

    at_risk = list(WebhookDelivery.objects.filter(event_type="commitment.at_risk"))
    ids = [d.payload["data"]["commitment"]["id"] for d in at_risk]
    assert promised.pk in ids and len(ids) == len(set(ids))
    quote = next(d for d in at_risk if d.payload["data"]["commitment"]["id"] == promised.pk)
    assert quote.payload["data"]["commitment"]["title"] == "The quote"
    assert quote.payload["data"]["job"]["reference"] == job.reference
    assert quote.payload["data"]["commitment"]["due_at"].endswith("Z")


def test_a_name_that_resolves_public_to_the_check_and_private_to_the_connection_is_not_sent(
    job: Job, bob: User, alice: User, receiver: Receiver, settings, monkeypatch
) -> None:
    endpoint_for(receiver, alice)
    job_advance(job=job, to_stage=second_stage(job), actor=bob)
    settings.WEBHOOK_ALLOW_PRIVATE = False
    # DNS rebinding: the check's lookup answers a public address, the connection's a private one.
    monkeypatch.setattr(webhook_delivery, "is_private_host", lambda host: False)
    delivery = WebhookDelivery.objects.get()
    webhook_delivery.deliver_many(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == "pending" and "private or local address" in delivery.last_error
    assert receiver.received == []


def test_a_slow_batch_puts_back_what_it_could_not_send_in_time(
    job: Job, bob: User, alice: User, receiver: Receiver, monkeypatch, installation
) -> None:
    endpoint_for(receiver, alice)
    job_advance(job=job, to_stage=second_stage(job), actor=bob)
    job_advance(job=job, to_stage=installation.stages.get(position=3), actor=bob)
    job_advance(job=job, to_stage=installation.stages.get(position=4), actor=bob)
    ids = sorted(WebhookDelivery.objects.values_list("pk", flat=True))
    # The batch starts at 0, its first send at 0, then 31 s have passed.
    ticks = iter([0.0, 0.0, 0.0, 31.0])
    monkeypatch.setattr(webhook_delivery.time, "monotonic", lambda: next(ticks, 100.0))

    outcomes = webhook_delivery.deliver_many(delivery_ids=ids)

    assert outcomes == {ids[0]: "delivered", ids[1]: "released", ids[2]: "released"}
    # Put back without an attempt counted, and enqueued again (the test cluster sends at once).
    rows = list(WebhookDelivery.objects.order_by("pk").values_list("status", "attempts"))
    assert rows == [("delivered", 1)] * 3
    assert len(receiver.received) == 3
