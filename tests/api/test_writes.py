"""Writes call the staff pages' services: a job opened through the API is welcomed, a move names
who moved it first, every rule of the business is a 4xx problem naming the field, and each log
line says it came through the API key."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import mail

from crm.models import Contact, Customer, Job, JobEvent, Message, Pipeline, Question
from crm.services.jobs import job_advance
from crm.services.questions import question_create
from tests.api.conftest import Api, problem


def test_a_customer_and_a_contact_are_added(api: Api) -> None:
    created = api.post("/customers/", {"name": "  Martin SARL ", "kind": "company"})
    assert created.status_code == 201, created.content
    customer = Customer.objects.get(pk=created.json()["id"])
    assert (customer.name, customer.kind) == ("Martin SARL", "company")

    contact = api.post(
        f"/customers/{customer.pk}/contacts/",
        {"name": "Luc Martin", "email": "luc@example.com", "phone": "06 12 34 56 78", "sms_consent": True},
    )
    assert contact.status_code == 201, contact.content
    stored = Contact.objects.get(pk=contact.json()["id"])
    assert stored.phone == "+33612345678"
    assert stored.sms_consent_source == "API key “ERP”"


def test_a_contact_rule_names_its_field(api: Api, customer: Customer) -> None:
    response = api.post(f"/customers/{customer.pk}/contacts/", {"name": "Luc", "phone": "12", "sms_consent": True})
    assert response.status_code == 422
    assert problem(response)["errors"][0]["field"] == "phone"
    assert customer.contacts.count() == 0


def test_a_job_opened_through_the_api_is_welcomed_and_logged_via_the_key(
    api: Api,
    customer: Customer,
    contact: Contact,
    installation: Pipeline,
    bob: User,
    alice: User,
    django_capture_on_commit_callbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/jobs/",
            {"customer_id": customer.pk, "pipeline_id": installation.pk, "title": "Solar roof", "owner_id": bob.pk},
        )
    assert response.status_code == 201, response.content
    body = response.json()
    job = Job.objects.get(public_id=body["id"])
    assert (job.owner, job.title, body["stage"]["name"]) == (bob, "Solar roof", "Request received")
    welcome = Message.objects.get(job=job, kind=Message.Kind.WELCOME)
    assert welcome.status == Message.Status.SENT
    assert [m.to for m in mail.outbox] == [["marie@example.com"]]
    created = job.events.get(kind=JobEvent.Kind.CREATED)
    assert created.actor == alice and created.data["via"] == "API key “ERP”"
    # The job's history on the staff page says so, in the reader's language.
    api.client.force_login(alice)
    page = api.client.get(job.get_absolute_url()).content.decode()
    assert "via API key “ERP”" in page


def test_a_job_needs_a_customer_pipeline_and_contacts_that_exist(
    api: Api, customer: Customer, other_customer: Customer, installation: Pipeline
) -> None:
    stranger = Contact.objects.create(customer=other_customer, name="Someone", email="s@example.com")
    cases = [
        ({"customer_id": 999999, "pipeline_id": installation.pk, "title": "x"}, "customer_id"),
        ({"customer_id": customer.pk, "pipeline_id": 999999, "title": "x"}, "pipeline_id"),
        ({"customer_id": customer.pk, "pipeline_id": installation.pk, "title": "x", "owner_id": 999999}, "owner_id"),
        (
            {"customer_id": customer.pk, "pipeline_id": installation.pk, "title": "x", "contact_ids": [stranger.pk]},
            "contact_ids",
        ),
        ({"customer_id": customer.pk, "pipeline_id": installation.pk, "title": "   "}, "title"),
        (
            {"customer_id": customer.pk, "pipeline_id": installation.pk, "title": "x", "welcome": False},
            "not_welcomed_reason",
        ),
        (
            {"customer_id": customer.pk, "pipeline_id": installation.pk, "title": "x", "start_date": "2999-01-01"},
            "start_date",
        ),
    ]
    for body, field in cases:
        response = api.post("/jobs/", body)
        assert response.status_code == 422, (body, response.content)
        assert problem(response)["errors"][0]["field"] == field
    assert Job.objects.count() == 0


def test_advance_with_the_stage_seen_and_409_when_someone_moved_it(
    api: Api, job: Job, bob: User, installation: Pipeline
) -> None:
    stages = {s.position: s for s in installation.stages.all()}
    moved = api.post(
        f"/jobs/{job.public_id}/advance/", {"to_stage_id": stages[2].pk, "expected_stage_id": stages[1].pk}
    )
    assert moved.status_code == 200, moved.content
    assert moved.json()["stage"]["name"] == "Proposal sent"
    assert job.events.get(kind=JobEvent.Kind.STAGE_ADVANCED).data["via"] == "API key “ERP”"

    job_advance(job=job, to_stage=stages[3], actor=bob)  # a colleague, on the staff page
    stale = api.post(
        f"/jobs/{job.public_id}/advance/", {"to_stage_id": stages[4].pk, "expected_stage_id": stages[2].pk}
    )
    assert stale.status_code == 409
    assert "Bob Durand" in problem(stale)["detail"]
    job.refresh_from_db()
    assert job.current_stage == stages[3]


def test_advance_refusals_name_the_field(api: Api, job: Job, repair: Pipeline, installation: Pipeline) -> None:
    foreign = repair.stages.first()
    response = api.post(f"/jobs/{job.public_id}/advance/", {"to_stage_id": foreign.pk})
    assert response.status_code == 422 and problem(response)["errors"][0]["field"] == "to_stage_id"
    first, second = installation.stages.get(position=1), installation.stages.get(position=2)
    already = api.post(f"/jobs/{job.public_id}/advance/", {"to_stage_id": first.pk})
    assert already.status_code == 409 and "already at" in problem(already)["detail"]
    assert api.post(f"/jobs/{job.public_id}/advance/", {"to_stage_id": second.pk}).status_code == 200
    backwards = api.post(f"/jobs/{job.public_id}/advance/", {"to_stage_id": first.pk})
    assert backwards.status_code == 422 and "needs a reason" in problem(backwards)["detail"]
    with_reason = api.post(
        f"/jobs/{job.public_id}/advance/", {"to_stage_id": first.pk, "backwards_reason": "Quote redone"}
    )
    assert with_reason.status_code == 200
    assert api.post("/jobs/00000000-0000-0000-0000-000000000000/advance/", {"to_stage_id": 1}).status_code == 404


def test_a_closed_job_cannot_move(api: Api, job: Job, bob: User, installation: Pipeline) -> None:
    from crm.services.jobs import job_cancel

    job_cancel(job=job, actor=bob, reason="Customer moved away")
    response = api.post(f"/jobs/{job.public_id}/advance/", {"to_stage_id": installation.stages.get(position=2).pk})
    assert response.status_code == 422
    problem(response)


def test_a_milestone_date_moves_and_the_customer_is_told(
    api: Api, job: Job, installation: Pipeline, time_machine
) -> None:
    time_machine.move_to("2026-03-02 09:00+01:00", tick=False)
    stage = installation.stages.get(position=3)
    response = api.post(
        f"/jobs/{job.public_id}/milestones/{stage.pk}/move/",
        {"new_date": "2026-03-20", "reason": "Supplier delay", "tell_customer": True},
    )
    assert response.status_code == 200, response.content
    [milestone] = [m for m in response.json()["milestones"] if m["stage"]["id"] == stage.pk]
    assert milestone["forecast_date"] == "2026-03-20"
    assert Message.objects.filter(job=job, kind=Message.Kind.DATE_MOVED).count() == 1

    past = api.post(f"/jobs/{job.public_id}/milestones/{stage.pk}/move/", {"new_date": "2026-01-01", "reason": "Oops"})
    assert past.status_code == 422 and problem(past)["errors"][0]["field"] == "new_date"
    no_reason = api.post(f"/jobs/{job.public_id}/milestones/{stage.pk}/move/", {"new_date": "2026-03-25", "reason": ""})
    assert no_reason.status_code == 422 and problem(no_reason)["errors"][0]["field"] == "reason"


def test_a_call_is_logged_and_what_they_asked_becomes_a_request(api: Api, job: Job, contact: Contact) -> None:
    response = api.post(
        f"/jobs/{job.public_id}/calls/",
        {"contact_id": contact.pk, "outcome": "reached", "asked": "A copy of the quote"},
    )
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "call"
    assert Question.objects.get(job=job).body == "A copy of the quote"
    wrong = api.post(f"/jobs/{job.public_id}/calls/", {"contact_id": contact.pk, "outcome": "maybe"})
    assert wrong.status_code == 400 and problem(wrong)["errors"][0]["field"] == "outcome"


def test_a_message_is_sent_to_the_jobs_contacts(api: Api, job: Job, contact: Contact, other_customer) -> None:
    response = api.post(f"/jobs/{job.public_id}/messages/", {"body": "The truck comes at 8."})
    assert response.status_code == 201, response.content
    [sent] = response.json()
    assert (sent["kind"], sent["contact_id"]) == ("free", contact.pk)
    stranger = Contact.objects.create(customer=other_customer, name="Someone", email="s@example.com")
    refused = api.post(f"/jobs/{job.public_id}/messages/", {"body": "Hi", "contact_ids": [stranger.pk]})
    assert refused.status_code == 422 and problem(refused)["errors"][0]["field"] == "contact_ids"


def test_a_question_is_answered_once(api: Api, job: Job, contact: Contact) -> None:
    question = question_create(job=job, body="Which colour?", source="portal", contact=contact, actor=None)
    answered = api.post(f"/questions/{question.pk}/answer/", {"body": "White."})
    assert answered.status_code == 200, answered.content
    assert answered.json()["answered_at"] is not None
    again = api.post(f"/questions/{question.pk}/answer/", {"body": "Black."})
    assert again.status_code == 422
    assert "already answered" in problem(again)["detail"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"name": 12}', "name"),
        ('{"name": "A", "kind": "planet"}', "kind"),
        ('{"name": "A", "colour": "red"}', "colour"),
        ("{}", "name"),
    ],
)
def test_a_body_of_the_wrong_shape_is_a_400_naming_the_field(api: Api, db, raw: str, field: str) -> None:
    response = api.post("/customers/", raw=raw)
    assert response.status_code == 400, response.content
    assert field in [e["field"] for e in problem(response)["errors"]]


@pytest.mark.parametrize("raw", ["not json", '{"name": "A"', "[1, 2]", '"text"', "\xff\xfe", "null"])
def test_a_body_that_is_not_a_json_object_is_a_400(api: Api, db, raw: str) -> None:
    response = api.post("/customers/", raw=raw)
    assert response.status_code == 400, response.content
    problem(response)


@pytest.mark.parametrize("raw", ['{"name": "Dupont\\u0000"}', '{"name": "Dupont \\ud800"}'])
def test_text_no_database_stores_is_a_400_naming_the_field(api: Api, db, raw: str) -> None:
    response = api.post("/customers/", raw=raw)
    assert response.status_code == 400, response.content
    assert [e["field"] for e in problem(response)["errors"]] == ["name"]
    assert not Customer.objects.exists()
