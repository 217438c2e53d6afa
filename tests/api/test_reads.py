"""Reads: what each list and detail shows, the filters, cursor pages that skip nothing while rows
are added or changed, and query counts that do not grow with the data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from crm.models import Contact, Customer, Job, Message, Pipeline
from crm.services.jobs import job_advance, job_create
from crm.services.questions import question_create
from tests.api.conftest import Api, problem


def open_jobs(customer: Customer, pipeline: Pipeline, owner: User, count: int) -> list[Job]:
    return [
        job_create(
            customer=customer,
            pipeline=pipeline,
            owner=owner,
            title=f"Job {n}",
            actor=owner,
            notify_customer=False,
            not_told_reason="Test data.",
        )
        for n in range(count)
    ]


def all_pages(api: Api, path: str, **params) -> list[dict]:
    rows, cursor = [], None
    while True:
        answer = api.get(path, **params, **({"cursor": cursor} if cursor else {})).json()
        rows += answer["results"]
        if not (cursor := answer["next_cursor"]):
            return rows


def test_a_job_in_the_list_and_in_detail(api: Api, job: Job, contact: Contact, bob: User) -> None:
    question_create(job=job, body="When do you come?", source="portal", contact=contact, actor=None)
    [row] = api.get("/jobs/").json()["results"]
    assert row["id"] == str(job.public_id) and row["reference"] == job.reference
    assert row["stage"] == {"id": job.current_stage_id, "name": "Request received", "position": 1}
    assert row["owner"] == {"id": bob.pk, "name": "Bob Durand", "email": "bob@example.com"}
    assert row["staff_url"].endswith(f"/jobs/{job.public_id}/")

    detail = api.get(f"/jobs/{job.public_id}/").json()
    assert [m["stage"]["name"] for m in detail["milestones"]][:2] == ["Request received", "Proposal sent"]
    assert detail["milestones"][0]["reached_at"] is not None
    assert {p["title"] for p in detail["promises"]} >= {"Proposal sent", "Installed"}
    [asked] = detail["open_questions"]
    assert asked["body"] == "When do you come?" and asked["job_id"] == str(job.public_id)
    assert detail["contact_ids"] == [contact.pk]
    # The acknowledgement was sent: its sign-in link never leaves through the API.
    [ack] = [m for m in detail["recent_messages"] if m["kind"] == "acknowledgement"]
    assert "/portal/" not in ack["body"] and "[customer link]" in ack["body"]


def test_another_id_is_a_404_problem(api: Api, db) -> None:
    response = api.get("/jobs/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    problem(response)
    assert api.get("/customers/999999/").status_code == 404


def test_the_job_filters(api: Api, customer: Customer, installation: Pipeline, repair: Pipeline, bob, charlie) -> None:
    [first, second] = open_jobs(customer, installation, bob, 2)
    [other] = open_jobs(customer, repair, charlie, 1)
    job_advance(job=second, to_stage=installation.stages.get(position=2), actor=bob)

    def refs(**params) -> list[str]:
        return [r["reference"] for r in api.get("/jobs/", **params).json()["results"]]

    assert refs(owner_id=charlie.pk) == [other.reference]
    assert refs(pipeline_id=installation.pk) == [first.reference, second.reference]
    assert refs(stage_id=installation.stages.get(position=2).pk) == [second.reference]
    assert refs(status="done") == []
    assert api.get("/jobs/", status="finished").status_code == 400
    second.refresh_from_db()
    assert refs(updated_since=second.updated_at.isoformat()) == [second.reference]


def test_pages_skip_nothing_while_jobs_are_added_and_changed(
    api: Api, customer: Customer, installation: Pipeline, bob: User
) -> None:
    jobs = open_jobs(customer, installation, bob, 7)
    first = api.get("/jobs/", limit=3).json()
    assert len(first["results"]) == 3 and first["next_cursor"]
    # Meanwhile: a job already read changes (it moves to the end), a new one is opened.
    job_advance(job=jobs[0], to_stage=installation.stages.get(position=2), actor=bob)
    [late] = open_jobs(customer, installation, bob, 1)

    seen = [r["reference"] for r in first["results"]]
    cursor = first["next_cursor"]
    while cursor:
        answer = api.get("/jobs/", limit=3, cursor=cursor).json()
        seen += [r["reference"] for r in answer["results"]]
        cursor = answer["next_cursor"]
    assert set(seen) == {j.reference for j in [*jobs, late]}
    assert seen[-2:] == [jobs[0].reference, late.reference]  # the changed one is seen again, at the end


def test_a_cursor_not_made_here_is_a_400(api: Api, db) -> None:
    # …, a list of one, an object, a well-formed but impossible time.
    for cursor in ["nonsense", "WzEsMl0", "eyJhIjoxfQ", "WyIyMDI2LTEzLTQ1VDAwOjAwOjAwIiwgMV0"]:
        response = api.get("/jobs/", cursor=cursor)
        assert response.status_code == 400, cursor
        assert problem(response)["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("limit", ["0", "201", "many"])
def test_a_limit_out_of_range_is_a_400(api: Api, db, limit: str) -> None:
    assert api.get("/jobs/", limit=limit).status_code == 400


def test_list_query_counts_do_not_grow_with_the_data(
    api: Api, customer: Customer, contact: Contact, installation: Pipeline, bob: User, django_assert_num_queries
) -> None:
    api.get("/pipelines/")  # the key's last use noted (once a minute): not counted below

    def counted(path: str, queries: int) -> int:
        with django_assert_num_queries(queries):
            response = api.get(path, limit=200)
        assert response.status_code == 200
        body = response.json()
        return len(body if isinstance(body, list) else body["results"])

    # The key (1), then the page's own queries.
    expected = {"/jobs/": 2, "/customers/": 3, "/contacts/": 2, "/messages/": 2, "/pipelines/": 3, "/questions/": 2}
    open_jobs(customer, installation, bob, 3)
    small = {path: counted(path, queries) for path, queries in expected.items()}
    for n in range(10):
        other = Customer.objects.create(name=f"Customer {n}")
        Contact.objects.create(customer=other, name=f"Contact {n}", email=f"c{n}@example.com")
        for job in open_jobs(other, installation, bob, 3):
            question_create(job=job, body="?", source="phone", contact=None, actor=bob)
    large = {path: counted(path, queries) for path, queries in expected.items()}
    assert large["/jobs/"] == 10 * small["/jobs/"] + small["/jobs/"]
    assert (small["/questions/"], large["/questions/"]) == (0, 30)
    assert (small["/customers/"], large["/customers/"]) == (1, 11)


def test_job_detail_query_count(api: Api, job: Job, django_assert_num_queries) -> None:
    api.get("/pipelines/")  # the key's last use noted (once a minute): not counted below
    # The key, the job, 6 prefetches (contacts, milestones and their stages, promises, open
    # questions, visits — with none, their crews are not read), the latest messages.
    with django_assert_num_queries(9):
        assert api.get(f"/jobs/{job.public_id}/").status_code == 200


def test_messages_show_their_status_and_sync_by_change(api: Api, job: Job, contact: Contact, bob: User) -> None:
    question_create(job=job, body="Hello?", source="portal", contact=contact, actor=None)
    [ack] = api.get("/messages/", job_id=str(job.public_id)).json()["results"]
    assert (ack["kind"], ack["status"], ack["channel"]) == ("acknowledgement", "queued", "email")
    later = timezone.now() + timedelta(minutes=5)
    assert api.get("/messages/", updated_since=later.isoformat()).json()["results"] == []
    Message.objects.filter(pk=ack["id"]).update(status="sent", sent_at=later)
    [changed] = api.get("/messages/", updated_since=later.isoformat()).json()["results"]
    assert changed["status"] == "sent"


def test_customers_with_their_contacts_and_updated_since(api: Api, customer: Customer, contact: Contact) -> None:
    [row] = api.get("/customers/").json()["results"]
    assert row["name"] == "Dupont household"
    assert [c["email"] for c in row["contacts"]] == ["marie@example.com"]
    since = timezone.now()
    assert api.get("/customers/", updated_since=since.isoformat()).json()["results"] == []
    customer.name = "Dupont family"
    customer.save()
    [row] = api.get("/customers/", updated_since=since.isoformat()).json()["results"]
    assert row["name"] == "Dupont family"


def test_reports_for_a_period(api: Api, job: Job) -> None:
    answer = api.get("/reports/health/", first_day="2026-01-05", last_day="2026-03-29").json()
    assert {f["name"] for f in answer["figures"]} >= {"kept_on_time_percent", "acknowledge_median_seconds"}
    satisfaction = api.get("/reports/satisfaction/", first_day="2026-01-05", last_day="2026-03-29").json()
    assert {f["name"] for f in satisfaction["figures"]} >= {"nps", "csat_percent"}
    backwards = api.get("/reports/health/", first_day="2026-03-01", last_day="2026-01-01")
    assert backwards.status_code == 422 and problem(backwards)["errors"][0]["field"] == "last_day"
    assert api.get("/reports/health/", first_day="2025-01-01", last_day="2026-06-01").status_code == 422
    assert api.get("/reports/health/", first_day="9999-12-31", last_day="9999-12-31").status_code == 422


def test_visits_in_the_job_and_their_list(api: Api, job: Job, bob: User, alice: User, installation: Pipeline) -> None:
    from crm.models import VisitKind
    from crm.services.visits import visit_book

    visit = visit_book(
        job=job,
        kind=VisitKind.objects.create(pipeline=installation, name="Site survey"),
        window_start=timezone.now() + timedelta(days=3),
        installers=[alice],
        address="12 rue des Lilas, Lyon",
        actor=bob,
        tell_customer=False,
    )
    [shown] = api.get(f"/jobs/{job.public_id}/").json()["visits"]
    assert (shown["id"], shown["kind"], shown["status"]) == (str(visit.public_id), "Site survey", "planned")
    assert shown["installers"] == ["Alice Martin"]
    [listed] = api.get("/visits/", job_id=str(job.public_id)).json()["results"]
    assert listed == shown
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert api.get("/visits/", updated_since=later).json()["results"] == []


def test_a_key_without_messages_read_sees_no_message_on_a_job(client, make_key, job: Job, contact: Contact) -> None:
    question_create(job=job, body="When do you come?", source="portal", contact=contact, actor=None)
    detail = Api(client, make_key(["jobs:read"])).get(f"/jobs/{job.public_id}/").json()
    assert (detail["recent_messages"], detail["open_questions"]) == ([], [])
    full = Api(client, make_key(["jobs:read", "messages:read"], name="Both")).get(f"/jobs/{job.public_id}/").json()
    assert full["recent_messages"] and full["open_questions"]
