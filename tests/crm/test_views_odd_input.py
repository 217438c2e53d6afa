"""Staff pages given odd values in the query string or a form: ids too big for the database or
written in other digits ("²"), dates in the year 1 or 9999. Each is "no such filter", "no such
customer" or a form error that says what to do — never a 500.

The ids beyond SQLite's 64 bits made it raise OverflowError; those beyond 32 bits name no user on
PostgreSQL (Django's own tables use ``integer``), and are refused the same way here.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.models import Commitment, Contact, Customer, Job, JobEvent, Message, Pipeline
from crm.services.jobs import job_create
from crm.views import customers as customer_views

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999999"  # beyond 64 bits
BIG = "99999999999"  # beyond 32 bits (a user id), within 64
SUPERSCRIPT = "²"  # "²".isdigit() is True, int("²") fails


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)


@pytest.fixture
def staff(client: Client, bob: User) -> Client:
    # A 500 is a response here, not an exception, so the status is what the person would get.
    client.raise_request_exception = False
    client.force_login(bob)
    return client


@pytest.fixture
def manager(client: Client, alice: User) -> Client:
    client.raise_request_exception = False
    client.force_login(alice)
    return client


@pytest.fixture
def mine(customer: Customer, contact: Contact, installation: Pipeline, bob: User) -> Job:
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Heat pump",
        actor=bob,
        notify_customer=False,
        not_told_reason="Opened before the test.",
    )


@pytest.fixture
def theirs(customer: Customer, contact: Contact, installation: Pipeline, charlie: User) -> Job:
    return job_create(customer=customer, pipeline=installation, owner=charlie, title="Boiler", actor=charlie)


def url(name: str, job: Job) -> str:
    return reverse(f"crm:{name}", args=[job.public_id])


def listed(response) -> set[str]:
    return {job.reference for job in response.context["page"].object_list}


# --- Ids in the jobs list and the board ---------------------------------------------------------


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT, "³", "-1", "0", "1.5"])
@pytest.mark.parametrize("name", ["pipeline", "stage"])
def test_the_jobs_list_ignores_a_pipeline_or_stage_that_cannot_be_one(
    staff: Client, mine: Job, name: str, value: str
) -> None:
    response = staff.get(reverse("crm:jobs"), {name: value})

    assert response.status_code == 200
    assert listed(response) == {mine.reference}  # as without the filter
    assert response.context["filters"].pipeline is None
    assert response.context["filters"].stage is None
    assert response.context["bulk_form"] is None  # no pipeline chosen: no bulk move


@pytest.mark.parametrize("value", [HUGE, BIG, SUPERSCRIPT, "abc"])
def test_the_jobs_list_shows_everyones_jobs_for_an_owner_that_cannot_be_one(
    staff: Client, mine: Job, theirs: Job, value: str
) -> None:
    response = staff.get(reverse("crm:jobs"), {"owner": value})

    assert response.status_code == 200
    assert listed(response) == {mine.reference, theirs.reference}  # as for "all"


def test_the_jobs_list_still_filters_by_a_real_id(
    staff: Client, mine: Job, theirs: Job, charlie: User, installation: Pipeline, repair: Pipeline
) -> None:
    assert listed(staff.get(reverse("crm:jobs"), {"owner": charlie.pk})) == {theirs.reference}
    assert listed(staff.get(reverse("crm:jobs"), {"pipeline": repair.pk})) == set()
    stage = installation.stages.get(position=1)
    assert listed(staff.get(reverse("crm:jobs"), {"owner": "all", "stage": stage.pk})) == {
        mine.reference,
        theirs.reference,
    }


@pytest.mark.parametrize("value", [HUGE, BIG, SUPERSCRIPT])
def test_the_board_shows_everyones_jobs_for_an_owner_that_cannot_be_one(
    staff: Client, mine: Job, theirs: Job, value: str
) -> None:
    response = staff.get(reverse("crm:job_board"), {"owner": value})

    assert response.status_code == 200
    on_board = {job.reference for _stage, jobs in response.context["columns"] for job in jobs}
    assert on_board == {mine.reference, theirs.reference}


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT])
def test_the_board_shows_the_first_pipeline_for_one_that_cannot_be_one(
    staff: Client, mine: Job, installation: Pipeline, value: str
) -> None:
    response = staff.get(reverse("crm:job_board"), {"pipeline": value})

    assert response.status_code == 200
    assert response.context["pipeline"] == installation


# --- Ids on the new-job page --------------------------------------------------------------------


@pytest.mark.parametrize("value", [HUGE, BIG, SUPERSCRIPT])
def test_the_new_job_page_has_no_customer_for_one_that_cannot_be_one(
    staff: Client, contact: Contact, value: str
) -> None:
    response = staff.get(reverse("crm:job_new"), {"customer": value, "owner": HUGE, "pipeline": HUGE})

    assert response.status_code == 200
    assert response.context["chosen"] is None
    assert list(response.context["form"].contacts_offered()) == []
    assert "Marie Dupont" not in response.content.decode()


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT])
def test_the_new_job_search_page_has_no_customer_for_one_that_cannot_be_one(
    staff: Client, contact: Contact, monkeypatch, value: str
) -> None:
    monkeypatch.setattr(customer_views, "CUSTOMER_SELECT_MAX", 0)  # the customer is found by search

    response = staff.get(reverse("crm:job_new"), {"customer": value})

    assert response.status_code == 200
    assert response.context["by_search"] is True
    assert response.context["chosen"] is None
    assert 'id="customer-q"' in response.content.decode()  # asks for the search again


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"customer": HUGE}, "customer"),
        ({"customer": SUPERSCRIPT}, "customer"),
        ({"pipeline": HUGE}, "pipeline"),
        ({"owner": BIG}, "owner"),
        ({"contacts": [HUGE]}, "contacts"),
        ({"contacts": [SUPERSCRIPT]}, "contacts"),
    ],
)
def test_a_new_job_with_an_id_that_cannot_be_one_is_a_form_error(
    staff: Client, bob: User, customer: Customer, contact: Contact, installation: Pipeline, changes: dict, field: str
) -> None:
    data = {"customer": customer.pk, "pipeline": installation.pk, "owner": bob.pk, "title": "Heat pump"}

    response = staff.post(reverse("crm:job_new"), {**data, **changes})

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Job.objects.exists()


# --- Ids posted to the job page's actions -------------------------------------------------------


@pytest.mark.parametrize("value", [HUGE, SUPERSCRIPT, "-3"])
def test_a_message_to_a_contact_that_cannot_be_one_is_a_form_error(
    staff: Client, mine: Job, contact: Contact, value: str
) -> None:
    data = {"message-contacts": [contact.pk, value], "message-body": "Parts arrived"}

    sent = staff.post(url("job_send_message", mine), data)
    preview = staff.get(url("job_message_preview", mine), data, HTTP_HX_REQUEST="true")

    assert sent.status_code == 400
    assert f"“{value}” is not a valid value." in sent.content.decode()
    assert not Message.objects.exists()
    assert preview.status_code == 200
    assert "Fill in the form to see what the customer will receive." in preview.content.decode()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("job_log_call", {"call-contact": HUGE, "call-outcome": "reached"}),
        ("job_advance", {"advance-to_stage": HUGE, "advance-expected_stage": "1"}),
        ("job_advance", {"advance-to_stage": "2", "advance-expected_stage": HUGE}),
        ("job_move_date", {"move-milestone": HUGE, "move-new_date": "2026-04-02", "move-reason": "x"}),
        ("promise_new", {"promise-title": "The quote", "promise-due_on": "2026-03-06", "promise-contact": HUGE}),
    ],
)
def test_an_action_naming_a_row_that_cannot_be_one_is_a_form_error(
    staff: Client, mine: Job, name: str, data: dict
) -> None:
    events = mine.events.count()

    response = staff.post(url(name, mine), data)

    assert response.status_code == 400
    assert mine.events.count() == events


def test_a_manager_handing_a_job_to_an_owner_that_cannot_be_one_gets_a_form_error(manager: Client, mine: Job) -> None:
    response = manager.post(url("job_reassign", mine), {"owner-owner": BIG})

    assert response.status_code == 400
    assert "Select a valid choice." in response.content.decode()


# --- Ids on the report pages --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "params"),
    [
        ("crm:health", {"owner": HUGE}),
        ("crm:health", {"owner": BIG}),
        ("crm:satisfaction", {"installer": BIG}),
        ("crm:satisfaction", {"pipeline": HUGE}),
        ("crm:satisfaction", {"owner": SUPERSCRIPT}),
    ],
)
def test_a_report_for_someone_who_cannot_be_one_is_a_form_error(manager: Client, page: str, params: dict) -> None:
    assert manager.get(reverse(page), params).status_code == 400
    assert manager.get(reverse(page), {**params, "format": "csv"}).status_code == 400


# --- Dates on the report pages ------------------------------------------------------------------


@pytest.mark.parametrize("page", ["crm:health", "crm:satisfaction"])
@pytest.mark.parametrize(
    ("params", "field", "error"),
    [
        ({"from": "0001-01-01", "to": "0001-01-02"}, "from", "Choose a date on or after Sat 1 Jan 2000."),
        ({"to": "0001-03-01"}, "to", "Choose a date on or after Sat 1 Jan 2000."),
        ({"from": "1999-12-31"}, "from", "Choose a date on or after Sat 1 Jan 2000."),
        ({"from": "9999-12-30"}, "from", "Choose a date no later than Sun 2 Mar 2031."),
        ({"from": "2031-03-01", "to": "9999-12-31"}, "to", "Choose a date no later than Sun 2 Mar 2031."),
    ],
)
def test_a_report_period_off_the_calendar_is_explained(
    manager: Client, page: str, params: dict, field: str, error: str
) -> None:
    response = manager.get(reverse(page), params)

    assert response.status_code == 400
    assert response.context["form"].errors[field] == [error]
    assert error in response.content.decode()
    assert manager.get(reverse(page), {**params, "format": "csv"}).status_code == 400


@pytest.mark.parametrize("page", ["crm:health", "crm:satisfaction"])
def test_a_report_period_at_the_limits_is_shown(manager: Client, page: str) -> None:
    assert manager.get(reverse(page), {"from": "2000-01-01", "to": "2000-02-01"}).status_code == 200
    assert manager.get(reverse(page), {"from": "2031-01-01", "to": "2031-03-02"}).status_code == 200


# --- Dates typed on the job page and the promise pages ------------------------------------------


def test_moving_a_date_to_9999_is_a_form_error(staff: Client, mine: Job) -> None:
    milestone = mine.milestones.get(stage__position=5)
    data = {
        "move-milestone": milestone.pk,
        "move-new_date": "9999-12-31",
        "move-reason": "The engineer is ill",
        "move-tell_customer": "on",
    }

    preview = staff.get(url("job_move_date_preview", mine), data, HTTP_HX_REQUEST="true")
    page_preview = staff.get(url("job_move_date_preview", mine), data)
    moved = staff.post(url("job_move_date", mine), data)

    assert preview.status_code == 200
    assert "Fill in the form to see what the customer will receive." in preview.content.decode()
    assert page_preview.status_code == 200
    assert "Choose a date no later than Sun 2 Mar 2031." in page_preview.content.decode()
    assert moved.status_code == 400
    assert "Choose a date no later than Sun 2 Mar 2031." in moved.content.decode()
    milestone.refresh_from_db()
    assert milestone.forecast_date == milestone.planned_date
    assert not mine.events.filter(kind=JobEvent.Kind.DATE_MOVED).exists()


def test_moving_a_date_up_to_five_years_ahead_is_accepted(staff: Client, mine: Job) -> None:
    milestone = mine.milestones.get(stage__position=6)
    # The furthest day is a Sunday: kept on purpose.
    data = {
        "move-milestone": milestone.pk,
        "move-new_date": "2031-03-02",
        "move-reason": "Far",
        "move-keep_non_working_day": "on",
    }

    assert staff.post(url("job_move_date", mine), data).status_code == 302
    milestone.refresh_from_db()
    assert milestone.forecast_date == date(2031, 3, 2)


@pytest.mark.parametrize(("due_on", "accepted"), [("2031-03-02", True), ("2031-03-03", False), ("9999-12-31", False)])
def test_a_staff_promise_is_due_within_five_years(staff: Client, mine: Job, due_on: str, accepted: bool) -> None:
    # 2 March 2031 is a Sunday: kept on purpose.
    data = {"promise-title": "The quote", "promise-due_on": due_on, "promise-keep_non_working_day": "on"}
    response = staff.post(url("promise_new", mine), data)

    made = Commitment.objects.filter(job=mine, kind=Commitment.Kind.DOCUMENT).exists()
    assert made is accepted
    if not accepted:
        assert response.status_code == 400
        assert "Choose a date no later than Sun 2 Mar 2031." in response.content.decode()


@pytest.mark.parametrize(("callback_on", "accepted"), [("2031-03-02", True), ("9999-12-31", False)])
def test_a_callback_is_promised_within_five_years(
    staff: Client, mine: Job, contact: Contact, callback_on: str, accepted: bool
) -> None:
    response = staff.post(
        url("job_log_call", mine),
        {"call-contact": contact.pk, "call-outcome": "reached", "call-callback_on": callback_on},
    )

    assert Message.objects.filter(job=mine, kind=Message.Kind.CALL).exists() is accepted
    if not accepted:
        assert response.status_code == 400
        assert "Choose a date no later than Sun 2 Mar 2031." in response.content.decode()


def test_a_promise_moved_to_9999_is_a_form_error(staff: Client, mine: Job) -> None:
    promise = mine.commitments.get(milestone__stage__name="Installed")
    move = reverse("crm:commitment_move", args=[mine.public_id, promise.pk])
    data = {"new_date": "9999-12-31", "reason": "Parts are late"}

    preview = staff.get(move, data)
    moved = staff.post(move, data)

    assert preview.status_code == 200
    assert "Choose a date no later than Sun 2 Mar 2031." in preview.content.decode()
    assert moved.status_code == 400
    promise.refresh_from_db()
    assert promise.due_at == promise.first_due_at


# --- Dates typed for a new job and a campaign ---------------------------------------------------


@pytest.mark.parametrize(
    ("start_date", "error"),
    [
        ("9999-12-31", "Choose a date no later than Sun 2 Mar 2031."),
        ("0001-01-01", "Choose a date on or after Sun 2 Mar 2025."),
        ("2025-03-01", "Choose a date on or after Sun 2 Mar 2025."),
    ],
)
def test_a_new_job_starts_within_reach(
    staff: Client, bob: User, customer: Customer, contact: Contact, installation: Pipeline, start_date: str, error: str
) -> None:
    data = {"customer": customer.pk, "pipeline": installation.pk, "owner": bob.pk, "title": "Heat pump"}

    response = staff.post(reverse("crm:job_new"), {**data, "start_date": start_date})

    assert response.context["form"].errors["start_date"] == [error]
    assert not Job.objects.exists()


def test_a_new_job_may_start_a_while_ago(
    staff: Client, bob: User, customer: Customer, contact: Contact, installation: Pipeline
) -> None:
    data = {"customer": customer.pk, "pipeline": installation.pk, "owner": bob.pk, "title": "Heat pump"}

    response = staff.post(reverse("crm:job_new"), {**data, "start_date": "2025-03-02", "notify_customer": "on"})

    assert response.status_code == 302
    assert Job.objects.get().milestones.get(stage__position=1).planned_date == date(2025, 3, 2)


@pytest.mark.parametrize(
    ("dates", "field"),
    [
        ({"starts_on": "2026-03-21", "ends_on": "9999-12-31"}, "ends_on"),
        ({"starts_on": "0001-01-01", "ends_on": "2026-03-21"}, "starts_on"),
    ],
)
def test_a_campaign_runs_within_reach(staff: Client, dates: dict, field: str) -> None:
    data = {
        "title": "Open day",
        "kind": "event",
        "link_url": "https://example.com/open-day",
        "subject_en": "Come to our open day",
        "body_en": "See a heat pump running.",
        "subject_fr": "Venez à nos portes ouvertes",
        "body_fr": "Voyez une pompe à chaleur en marche.",
        "pipeline": "",
        "language": "",
        **dates,
    }

    response = staff.post(reverse("crm:campaign_new"), data)

    assert response.status_code != 302
    assert field in response.context["form"].errors
