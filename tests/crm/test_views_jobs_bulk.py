"""Moving several jobs to a stage from the jobs list: the list's tick boxes, the review page (the
real service, rolled back) and the go-ahead."""

from __future__ import annotations

import uuid
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Contact, Customer, Job, JobEvent, Message, Pipeline, StageTemplate
from crm.services import outbox
from crm.services.jobs import job_advance, job_create, job_hold, jobs_advance

pytestmark = pytest.mark.django_db

REVIEW = reverse("crm:jobs_bulk_review")
MOVE = reverse("crm:jobs_bulk_move")


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)


def make_jobs(pipeline: Pipeline, owner: User, n: int, *, start: int = 0) -> list[Job]:
    """``n`` jobs, each for its own customer with one English contact."""
    jobs = []
    for i in range(start, start + n):
        customer = Customer.objects.create(name=f"Customer {i}")
        Contact.objects.create(customer=customer, name=f"Contact {i}", email=f"c{i}@example.com", language="en")
        jobs.append(
            job_create(
                customer=customer,
                pipeline=pipeline,
                owner=owner,
                title=f"Job {i}",
                actor=owner,
                notify_customer=False,
                not_told_reason="Opened before the test.",
            )
        )
    return jobs


@pytest.fixture
def jobs(installation: Pipeline, bob: User) -> list[Job]:
    return make_jobs(installation, bob, 3)


def stage(pipeline: Pipeline, position: int) -> StageTemplate:
    return pipeline.stages.get(position=position)


def review_data(selected: list[Job], to_stage: StageTemplate, **extra: object) -> dict[str, object]:
    return {
        "jobs": [str(job.public_id) for job in selected],
        "on_page": [str(job.public_id) for job in selected],
        "to_stage": to_stage.pk,
        "note": "",
        "notify_customer": "on",
        "back": f"pipeline={to_stage.pipeline_id}&owner=all",
        **extra,
    }


class _Inputs(HTMLParser):
    """The named inputs of one form of a page, as a browser would send them."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.inside = values.get("id") == self.form_id
        elif tag == "input" and self.inside and values.get("name") and values.get("type") != "submit":
            self.data.setdefault(values["name"], []).append(values.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def form_inputs(html: str, form_id: str) -> dict[str, list[str]]:
    parser = _Inputs(form_id)
    parser.feed(html)
    assert parser.data, f"no form #{form_id} on the page"
    return parser.data


def flashed(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def snapshot(jobs: list[Job]) -> tuple[list[int], int, int]:
    """Where the jobs are, how many events and messages exist: to prove nothing changed."""
    stages = [Job.objects.get(pk=job.pk).current_stage_id for job in jobs]
    return stages, JobEvent.objects.count(), Message.objects.count()


# --- Access -------------------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_to_sign_in(client: Client, jobs: list[Job], installation: Pipeline) -> None:
    for target in [REVIEW, MOVE]:
        response = client.post(target, review_data(jobs, stage(installation, 2)))
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_it_refuses_a_signed_in_user_who_is_not_staff(
    client: Client, dana: User, jobs: list[Job], installation: Pipeline
) -> None:
    client.force_login(dana)
    before = snapshot(jobs)
    assert client.post(REVIEW, review_data(jobs, stage(installation, 2))).status_code == 403
    assert client.post(MOVE, {"seen": [f"{jobs[0].public_id}:{jobs[0].current_stage_id}"]}).status_code == 403
    assert snapshot(jobs) == before


def test_it_refuses_get_on_every_action(staff: Client, jobs: list[Job]) -> None:
    assert staff.get(REVIEW).status_code == 405
    assert staff.get(MOVE).status_code == 405


def test_it_needs_the_csrf_token(bob: User, jobs: list[Job], installation: Pipeline) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    before = snapshot(jobs)
    assert client.post(REVIEW, review_data(jobs, stage(installation, 2))).status_code == 403
    seen = [f"{job.public_id}:{job.current_stage_id}" for job in jobs]
    assert client.post(MOVE, {"seen": seen, "to_stage": stage(installation, 2).pk}).status_code == 403
    assert snapshot(jobs) == before


# --- The list -----------------------------------------------------------------------------------


def test_it_offers_tick_boxes_only_for_one_pipeline(
    staff: Client, jobs: list[Job], installation: Pipeline, repair: Pipeline
) -> None:
    body = staff.get(reverse("crm:jobs")).content.decode()
    assert "Filter by a pipeline to move several jobs at once." in body
    assert 'name="jobs"' not in body
    assert "Review move" not in body

    response = staff.get(reverse("crm:jobs"), {"pipeline": installation.pk})
    body = response.content.decode()
    assert "Filter by a pipeline to move several jobs at once." not in body
    for job in jobs:
        assert f'value="{job.public_id}" id="bulk-{job.public_id}"' in body
        assert f'<label class="visually-hidden" for="bulk-{job.public_id}">Select {job.reference}</label>' in body
    assert 'for="bulk-all">Select all on this page</label>' in body
    assert f'action="{REVIEW}"' in body and "csrfmiddlewaretoken" in body
    assert "Review move" in body and "Tell the customers" in body
    # The stages offered are this pipeline's only.
    offered = [str(label) for _value, label in response.context["bulk_form"].fields["to_stage"].choices]
    assert offered == ["Choose a stage", *[f"{s.position}. {s.name}" for s in installation.stages.order_by("position")]]


def test_it_keeps_the_tick_boxes_with_the_live_filters(staff: Client, jobs: list[Job], installation: Pipeline) -> None:
    response = staff.get(reverse("crm:jobs"), {"pipeline": installation.pk, "q": "Job"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "<html" not in body
    assert f'id="bulk-{jobs[0].public_id}"' in body
    assert "csrfmiddlewaretoken" in body
    # The list's filters travel with the form, to come back to the same list.
    assert response.context["bulk_form"].initial["back"] == f"pipeline={installation.pk}&q=Job"


def test_it_offers_the_stage_after_the_one_filtered(staff: Client, jobs: list[Job], installation: Pipeline) -> None:
    response = staff.get(reverse("crm:jobs"), {"pipeline": installation.pk, "stage": stage(installation, 1).pk})
    assert response.context["bulk_form"].initial["to_stage"] == stage(installation, 2).pk
    assert "to_stage" not in staff.get(reverse("crm:jobs"), {"pipeline": installation.pk}).context["bulk_form"].initial


def test_it_keeps_the_filtered_list_queries_constant(
    staff: Client, installation: Pipeline, bob: User, django_assert_max_num_queries
) -> None:
    make_jobs(installation, bob, 3)
    with django_assert_max_num_queries(13) as small:
        staff.get(reverse("crm:jobs"), {"pipeline": installation.pk})
    make_jobs(installation, bob, 27, start=3)
    with django_assert_max_num_queries(13) as large:
        staff.get(reverse("crm:jobs"), {"pipeline": installation.pk})
    assert len(large.captured_queries) == len(small.captured_queries)


# --- Review -------------------------------------------------------------------------------------


def test_it_reviews_the_move_with_the_real_message(
    staff: Client, jobs: list[Job], installation: Pipeline, bob: User
) -> None:
    to_stage = stage(installation, 2)
    response = staff.post(REVIEW, review_data(jobs, to_stage, note="Bring <b>the</b> keys"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Move 3 jobs to “Proposal sent”" in body
    for job in jobs:
        assert job.reference in body
        assert job.customer.name in body
    assert body.count('Request received <span aria-hidden="true">→</span>') == 3
    assert [count for _job, count in response.context["rows"]] == [1, 1, 1]
    assert len(response.context["drafts"]) == 3
    assert response.context["customers"] == 3
    # The exact message of the first job, as the service renders it (and escaped on the page).
    first = response.context["first_preview"]["drafts"]
    assert [d.contact.name for d in first] == ["Contact 0"]
    expected = outbox.preview(
        lambda: jobs_advance(jobs=jobs[:1], to_stage=to_stage, actor=bob, note="Bring <b>the</b> keys")
    )
    assert (first[0].subject, first[0].body_text) == (expected[0].subject, expected[0].body_text)
    assert "Bring &lt;b&gt;the&lt;/b&gt; keys" in body
    assert "Proposal sent" in first[0].body_text
    # Reviewing changes nothing.
    assert all(Job.objects.get(pk=job.pk).current_stage.position == 1 for job in jobs)
    assert not Message.objects.exists()
    assert not JobEvent.objects.filter(kind=JobEvent.Kind.STAGE_ADVANCED).exists()


def test_it_reviews_every_job_of_the_page_without_javascript(
    staff: Client, jobs: list[Job], installation: Pipeline
) -> None:
    data = review_data(jobs, stage(installation, 2), jobs=[], all_on_page="on")
    response = staff.post(REVIEW, data)
    assert response.status_code == 200
    assert [job for job, _count in response.context["rows"]] == jobs


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"jobs": [], "on_page": []}, "Select at least one job"),
        ({"jobs": ["not-a-job"]}, "a job this page does not know"),
        ({"to_stage": ""}, "This field is required."),
    ],
)
def test_it_explains_a_selection_it_cannot_review(
    staff: Client, jobs: list[Job], installation: Pipeline, data: dict[str, object], error: str
) -> None:
    response = staff.post(REVIEW, {**review_data(jobs, stage(installation, 2)), **data})
    assert response.status_code == 400
    body = response.content.decode()
    assert error in body
    assert "Nothing was changed." in body
    assert f'href="/jobs/?owner=all&amp;pipeline={installation.pk}"' in body


def test_it_explains_an_unknown_job(staff: Client, jobs: list[Job], installation: Pipeline) -> None:
    data = review_data(jobs, stage(installation, 2))
    data["jobs"] = [*data["jobs"], str(uuid.uuid4())]
    response = staff.post(REVIEW, data)
    assert response.status_code == 400
    assert "1 of the selected jobs no longer exists" in response.content.decode()


def test_it_moves_at_most_200_jobs_at_once(staff: Client, jobs: list[Job], installation: Pipeline) -> None:
    data = review_data(jobs, stage(installation, 2))
    data["jobs"] = [str(uuid.uuid4()) for _ in range(201)]
    response = staff.post(REVIEW, data)
    assert response.status_code == 400
    assert "You selected 201 jobs; at most 200 can be moved at once." in response.content.decode()
    seen = [f"{uuid.uuid4()}:1" for _ in range(201)]
    response = staff.post(MOVE, {"seen": seen, "to_stage": stage(installation, 2).pk})
    assert response.status_code == 400
    assert "at most 200 can be moved at once" in response.content.decode()


def test_it_shows_why_a_job_cannot_move_and_offers_the_others(
    staff: Client, jobs: list[Job], installation: Pipeline, bob: User
) -> None:
    job_hold(job=jobs[1], actor=bob, reason="Waiting for the landlord")
    response = staff.post(REVIEW, review_data(jobs, stage(installation, 2)))
    assert response.status_code == 200
    body = response.content.decode()
    assert f"Job {jobs[1].reference} is on hold" in body
    assert 'id="bulk-confirm"' not in body
    # The same move without the job on hold, one click away.
    again = form_inputs(body, "bulk-narrowed")
    assert again["jobs"] == [str(jobs[0].public_id), str(jobs[2].public_id)]
    response = staff.post(REVIEW, again)
    assert response.status_code == 200
    assert [job for job, _count in response.context["rows"]] == [jobs[0], jobs[2]]
    assert 'id="bulk-confirm"' in response.content.decode()


def test_the_review_page_queries_grow_only_with_the_service(
    staff: Client, installation: Pipeline, bob: User, django_assert_max_num_queries
) -> None:
    """Besides what the service itself needs, the review costs a fixed number of queries."""
    # The user, the stage, the jobs, the first job's contacts, the navigation's six counts.
    OWN_QUERIES = 10
    to_stage = stage(installation, 3)
    overhead = []
    for n, start in [(5, 0), (50, 5)]:
        batch = make_jobs(installation, bob, n, start=start)
        with CaptureQueriesContext(connection) as service:
            outbox.preview(lambda: jobs_advance(jobs=batch, to_stage=to_stage, actor=bob))  # noqa: B023
        with django_assert_max_num_queries(len(service) + OWN_QUERIES) as page:
            response = staff.post(REVIEW, review_data(batch, to_stage))
        assert response.status_code == 200
        assert len(response.context["drafts"]) == n
        overhead.append(len(page.captured_queries) - len(service))
    assert overhead[0] == overhead[1]


# --- The go-ahead -------------------------------------------------------------------------------


def confirm_data(staff: Client, jobs: list[Job], to_stage: StageTemplate, **extra: object) -> dict[str, list[str]]:
    """Review the move and return what the review page's go-ahead sends."""
    response = staff.post(REVIEW, review_data(jobs, to_stage, **extra))
    assert response.status_code == 200
    return form_inputs(response.content.decode(), "bulk-confirm")


def test_it_moves_every_job_and_tells_each_contact(
    staff: Client,
    jobs: list[Job],
    installation: Pipeline,
    bob: User,
    contact: Contact,
    customer: Customer,
    django_capture_on_commit_callbacks,
) -> None:
    # One more job whose customer has two contacts: each is told.
    Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com", language="en")
    jobs = [*jobs, job_create(customer=customer, pipeline=installation, owner=bob, title="Boiler", actor=bob)]
    to_stage = stage(installation, 3)
    review = staff.post(REVIEW, review_data(jobs, to_stage, note="See you soon"))
    shown = review.context["first_preview"]["drafts"]
    data = form_inputs(review.content.decode(), "bulk-confirm")

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(MOVE, data)

    assert response.status_code == 302
    assert response["Location"] == f"/jobs/?owner=all&pipeline={installation.pk}"
    assert flashed(response) == ["Moved 4 jobs to “Order confirmed”; 4 customers will be told."]
    for job in jobs:
        job.refresh_from_db()
        assert job.current_stage == to_stage
        event = job.events.get(kind=JobEvent.Kind.STAGE_ADVANCED)
        assert (event.actor, event.data["to_stage_id"], event.data["note"]) == (bob, to_stage.pk, "See you soon")
        assert job.milestones.get(stage=to_stage).completed_at is not None
    sent = Message.objects.filter(kind=Message.Kind.STAGE_CHANGE)
    assert sorted(sent.values_list("contact__name", flat=True)) == [
        "Contact 0",
        "Contact 1",
        "Contact 2",
        "Marie Dupont",
        "Paul Dupont",
    ]
    assert len(mail.outbox) == 5
    # What was reviewed is what was sent.
    first = sent.get(job=jobs[0])
    assert (first.subject, first.body_text, first.body_html) == (
        shown[0].subject,
        shown[0].body_text,
        shown[0].body_html,
    )


def test_it_moves_without_telling_the_customers(staff: Client, jobs: list[Job], installation: Pipeline) -> None:
    data = confirm_data(staff, jobs, stage(installation, 2), notify_customer="")
    response = staff.post(MOVE, data)
    assert response.status_code == 302
    assert flashed(response) == ["Moved 3 jobs to “Proposal sent”; no customer is told."]
    assert all(Job.objects.get(pk=job.pk).current_stage.position == 2 for job in jobs)
    assert not Message.objects.exists()


def test_it_changes_nothing_when_one_job_cannot_move(
    staff: Client, jobs: list[Job], installation: Pipeline, bob: User
) -> None:
    data = confirm_data(staff, jobs, stage(installation, 2))
    job_hold(job=jobs[2], actor=bob, reason="Waiting for the landlord")
    before = snapshot(jobs)
    response = staff.post(MOVE, data)
    assert response.status_code == 400
    body = response.content.decode()
    assert f"Job {jobs[2].reference} is on hold" in body
    assert 'id="bulk-confirm"' not in body
    assert snapshot(jobs) == before


def test_it_refuses_a_stale_review(staff: Client, jobs: list[Job], installation: Pipeline, alice: User) -> None:
    data = confirm_data(staff, jobs, stage(installation, 3))
    job_advance(job=jobs[1], to_stage=stage(installation, 2), actor=alice, notify_customer=False)
    before = snapshot(jobs)
    response = staff.post(MOVE, data)
    assert response.status_code == 409
    body = response.content.decode()
    assert f"{jobs[1].reference} was moved by someone else since your review, so nothing was changed." in body
    assert snapshot(jobs) == before
    # The review as things now are, ready to confirm again.
    assert 'Proposal sent <span aria-hidden="true">→</span>' in body
    again = form_inputs(body, "bulk-confirm")
    assert f"{jobs[1].public_id}:{stage(installation, 2).pk}" in again["seen"]
    assert staff.post(MOVE, again).status_code == 302
    assert all(Job.objects.get(pk=job.pk).current_stage.position == 3 for job in jobs)


def test_it_refuses_a_job_deleted_since_the_review(staff: Client, jobs: list[Job], installation: Pipeline) -> None:
    data = confirm_data(staff, jobs, stage(installation, 2))
    Job.objects.filter(pk=jobs[0].pk).delete()
    response = staff.post(MOVE, data)
    assert response.status_code == 400
    assert "1 of the selected jobs no longer exists" in response.content.decode()
    assert all(Job.objects.get(pk=job.pk).current_stage.position == 1 for job in jobs[1:])


def test_it_goes_back_to_the_jobs_list_only(staff: Client, jobs: list[Job], installation: Pipeline) -> None:
    data = confirm_data(staff, jobs, stage(installation, 2), back="next=https://evil.example&status=all&sort=//x")
    response = staff.post(MOVE, data)
    assert response["Location"] == "/jobs/?status=all&sort=%2F%2Fx"


# --- Language -----------------------------------------------------------------------------------


def test_it_speaks_french_to_french_staff(staff: Client, jobs: list[Job], installation: Pipeline) -> None:
    body = staff.get(reverse("crm:jobs"), {"pipeline": installation.pk}, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Vérifier le déplacement" in body
    assert f"Sélectionner {jobs[0].reference}" in body
    response = staff.post(REVIEW, review_data(jobs, stage(installation, 2)), HTTP_ACCEPT_LANGUAGE="fr")
    assert "Déplacer 3 dossiers vers « Proposal sent »" in response.content.decode()
    data = form_inputs(response.content.decode(), "bulk-confirm")
    response = staff.post(MOVE, data, HTTP_ACCEPT_LANGUAGE="fr")
    assert flashed(response) == ["3 dossiers déplacés vers « Proposal sent » ; 3 clients seront prévenus."]
