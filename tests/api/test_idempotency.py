"""Idempotency-Key: a retried write changes nothing and gets the first answer; a key reused for
another request is a 422; a refused call keeps nothing (a retry may succeed)."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.utils import timezone

from api.models import IdempotentRequest
from crm.models import Customer, Job, Message, Pipeline
from tests.api.conftest import Api, problem


def job_body(customer: Customer, pipeline: Pipeline) -> dict:
    return {"customer_id": customer.pk, "pipeline_id": pipeline.pk, "title": "Heat pump"}


def test_the_same_key_and_body_replay_the_first_answer_and_change_nothing(
    api: Api, customer: Customer, contact, installation: Pipeline, django_capture_on_commit_callbacks
) -> None:
    headers = {"Idempotency-Key": "order-1234"}
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post("/jobs/", job_body(customer, installation), headers=headers)
        again = api.post("/jobs/", job_body(customer, installation), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert Job.objects.count() == 1
    assert Message.objects.filter(kind=Message.Kind.WELCOME).count() == 1 and len(mail.outbox) == 1


def test_the_same_key_with_another_body_is_a_422(api: Api, customer: Customer, installation: Pipeline) -> None:
    headers = {"Idempotency-Key": "order-1234"}
    assert api.post("/jobs/", job_body(customer, installation), headers=headers).status_code == 201
    other = api.post("/jobs/", {**job_body(customer, installation), "title": "Boiler"}, headers=headers)
    assert other.status_code == 422
    assert problem(other)["errors"][0]["field"] == "Idempotency-Key"
    assert Job.objects.count() == 1


def test_keys_are_per_api_key(client, make_key, customer: Customer, installation: Pipeline) -> None:
    headers = {"Idempotency-Key": "same"}
    for name in ("ERP", "Shop"):
        assert (
            Api(client, make_key(name=name))
            .post("/jobs/", job_body(customer, installation), headers=headers)
            .status_code
            == 201
        )
    assert Job.objects.count() == 2


def test_a_refused_call_keeps_nothing_so_a_retry_can_succeed(
    api: Api, customer: Customer, installation: Pipeline
) -> None:
    headers = {"Idempotency-Key": "k-1"}
    refused = api.post("/jobs/", {**job_body(customer, installation), "title": "  "}, headers=headers)
    assert refused.status_code == 422
    assert not IdempotentRequest.objects.exists()
    assert api.post("/jobs/", {**job_body(customer, installation), "title": "  "}, headers=headers).status_code == 422


def test_after_a_day_the_key_is_new_again(api: Api, customer: Customer, installation: Pipeline, time_machine) -> None:
    headers = {"Idempotency-Key": "k-2"}
    assert api.post("/jobs/", job_body(customer, installation), headers=headers).status_code == 201
    time_machine.move_to(timezone.now() + timedelta(hours=25))
    again = api.post("/jobs/", job_body(customer, installation), headers=headers)
    assert again.status_code == 201 and not again.has_header("Idempotent-Replayed")
    assert Job.objects.count() == 2
    assert IdempotentRequest.objects.count() == 1


def test_a_key_that_is_too_long_is_a_400(api: Api, customer: Customer, installation: Pipeline) -> None:
    response = api.post("/jobs/", job_body(customer, installation), headers={"Idempotency-Key": "x" * 300})
    assert response.status_code == 400
    assert Job.objects.count() == 0


def test_answers_past_their_day_are_pruned(api: Api, customer: Customer, installation: Pipeline, time_machine) -> None:
    from api.tasks import prune_idempotent_requests

    assert api.post("/jobs/", job_body(customer, installation), headers={"Idempotency-Key": "k-3"}).status_code == 201
    assert prune_idempotent_requests() == 0
    time_machine.move_to(timezone.now() + timedelta(hours=25))
    assert prune_idempotent_requests() == 1
    assert not IdempotentRequest.objects.exists()
