"""A date moved or promised onto a day nobody works (a weekend, a holiday) asks "keep it?" instead of
passing silently: the stage date move, the one-click "new date, tell them now" and the promise
recorded by hand, their previews too. The services still take such a date when it is confirmed.

Time is frozen on Monday 2 March 2026, 10:00 in Paris; bob owns the heat pump job.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client
from django.urls import reverse

from crm.forms.jobs import CommitmentMoveForm, MoveDateForm, PromiseForm
from crm.models import Commitment, Job, Milestone
from crm.services.jobs import milestone_move

pytestmark = pytest.mark.django_db

SATURDAY = date(2026, 4, 4)
THURSDAY = date(2026, 4, 2)
EASTER_MONDAY = date(2026, 4, 6)
QUESTION = "Saturday 4 April is not a working day — keep it?"


@pytest.fixture(autouse=True)
def frozen(time_machine) -> None:
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)


def url(name: str, job: Job, *args: object) -> str:
    return reverse(f"crm:{name}", args=[job.public_id, *args])


def installed(job: Job) -> Milestone:
    return job.milestones.get(stage__name="Installed")


def promised(job: Job) -> Commitment:
    return job.commitments.get(milestone__stage__name="Installed")


def move(job: Job, day: date, **extra: str) -> dict[str, object]:
    return {
        "move-milestone": installed(job).pk,
        "move-new_date": day.isoformat(),
        "move-reason": "The unit ships late",
        "move-tell_customer": "on",
        **{f"move-{name}": value for name, value in extra.items()},
    }


# --- The forms ----------------------------------------------------------------------------------


def test_a_saturday_is_asked_about_on_the_date_itself(live_job: Job) -> None:
    form = MoveDateForm(move(live_job, SATURDAY), job=live_job)

    assert not form.is_valid()
    assert form.errors["new_date"] == [QUESTION]
    assert form.errors["keep_non_working_day"] == ["Tick the box to keep it, or choose a working day."]


def test_a_confirmed_saturday_is_kept(live_job: Job) -> None:
    form = MoveDateForm(move(live_job, SATURDAY, keep_non_working_day="on"), job=live_job)

    assert form.is_valid(), form.errors
    assert form.cleaned_data["new_date"] == SATURDAY


def test_a_working_day_asks_nothing(live_job: Job) -> None:
    form = MoveDateForm(move(live_job, THURSDAY), job=live_job)

    assert form.is_valid(), form.errors
    assert form.cleaned_data["keep_non_working_day"] is False


def test_a_holiday_is_asked_about_too(live_job: Job, settings) -> None:
    settings.HOLIDAYS = [EASTER_MONDAY]

    form = CommitmentMoveForm({"new_date": EASTER_MONDAY.isoformat(), "reason": "Late"})

    assert not form.is_valid()
    assert form.errors["new_date"] == ["Monday 6 April is not a working day — keep it?"]


def test_a_day_of_another_year_is_said_with_its_year(live_job: Job) -> None:
    form = CommitmentMoveForm({"new_date": "2027-01-03", "reason": "Late"})

    assert not form.is_valid()
    assert form.errors["new_date"] == ["Sunday 3 January 2027 is not a working day — keep it?"]


def test_a_promise_due_on_a_sunday_is_asked_about(live_job: Job) -> None:
    data = {"promise-title": "The quote", "promise-due_on": "2026-04-05"}

    form = PromiseForm(data, job=live_job)

    assert not form.is_valid()
    assert form.errors["due_on"] == ["Sunday 5 April is not a working day — keep it?"]
    assert PromiseForm({**data, "promise-keep_non_working_day": "on"}, job=live_job).is_valid()


def test_the_question_comes_after_the_other_checks_of_the_date(live_job: Job) -> None:
    # A Saturday in the past is refused for being past, not asked about.
    form = CommitmentMoveForm({"new_date": "2026-02-28", "reason": "Late"})

    assert not form.is_valid()
    assert form.errors["new_date"] == ["The new date cannot be in the past."]
    assert "keep_non_working_day" not in form.errors


def test_the_box_sits_right_after_the_date(live_job: Job) -> None:
    assert list(MoveDateForm(job=live_job).fields)[:3] == ["milestone", "new_date", "keep_non_working_day"]
    assert list(PromiseForm(job=live_job).fields)[:3] == ["title", "due_on", "keep_non_working_day"]
    assert list(CommitmentMoveForm().fields)[:2] == ["new_date", "keep_non_working_day"]


# --- Move a date (the job page) -----------------------------------------------------------------


def test_moving_a_date_to_a_saturday_without_confirming_moves_nothing(staff: Client, live_job: Job) -> None:
    before = installed(live_job).forecast_date

    response = staff.post(url("job_move_date", live_job), move(live_job, SATURDAY))

    assert response.status_code == 400
    page = response.content.decode()
    assert QUESTION in page
    assert "Keep this date even though it is not a working day" in page
    assert installed(live_job).forecast_date == before


def test_moving_a_date_to_a_confirmed_saturday_moves_it(
    staff: Client, live_job: Job, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(url("job_move_date", live_job), move(live_job, SATURDAY, keep_non_working_day="on"))

    assert response.status_code == 302
    assert installed(live_job).forecast_date == SATURDAY


def test_moving_a_date_to_a_weekday_asks_nothing(staff: Client, live_job: Job) -> None:
    response = staff.post(url("job_move_date", live_job), move(live_job, THURSDAY), HTTP_HX_REQUEST="true")

    assert "not a working day — keep it?" not in response.content.decode()
    assert installed(live_job).forecast_date == THURSDAY


def test_moving_a_date_to_a_holiday_asks_too(staff: Client, live_job: Job, settings) -> None:
    settings.HOLIDAYS = [EASTER_MONDAY]
    before = installed(live_job).forecast_date

    response = staff.post(url("job_move_date", live_job), move(live_job, EASTER_MONDAY), HTTP_HX_REQUEST="true")

    assert "Monday 6 April is not a working day — keep it?" in response.content.decode()
    assert installed(live_job).forecast_date == before


def test_the_preview_of_a_saturday_asks_the_question(staff: Client, live_job: Job) -> None:
    response = staff.get(url("job_move_date_preview", live_job), move(live_job, SATURDAY), HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert f"{QUESTION} Tick the box to keep it, or choose a working day." in page
    assert "drafts" not in response.context["preview"]

    confirmed = staff.get(
        url("job_move_date_preview", live_job),
        move(live_job, SATURDAY, keep_non_working_day="on"),
        HTTP_HX_REQUEST="true",
    )
    assert confirmed.context["preview"]["drafts"]
    assert QUESTION not in confirmed.content.decode()


def test_the_service_still_takes_a_saturday(live_job: Job, bob) -> None:
    milestone_move(milestone=installed(live_job), new_date=SATURDAY, reason="Saturday suits them", actor=bob)

    assert installed(live_job).forecast_date == SATURDAY


# --- New date, tell them now --------------------------------------------------------------------


def test_a_new_date_on_a_saturday_is_asked_about_and_nothing_moves(staff: Client, live_job: Job) -> None:
    commitment = promised(live_job)

    response = staff.post(
        url("commitment_move", live_job, commitment.pk), {"new_date": SATURDAY.isoformat(), "reason": "Late"}
    )

    assert response.status_code == 400
    assert QUESTION in response.content.decode()
    assert promised(live_job).due_at == commitment.due_at


def test_a_confirmed_new_date_on_a_saturday_is_given(staff: Client, live_job: Job) -> None:
    data = {"new_date": SATURDAY.isoformat(), "reason": "Late", "keep_non_working_day": "on"}

    response = staff.post(url("commitment_move", live_job, promised(live_job).pk), data)

    assert response.status_code == 302
    assert installed(live_job).forecast_date == SATURDAY


def test_the_preview_of_a_new_date_on_a_saturday_asks_the_question(staff: Client, live_job: Job) -> None:
    response = staff.get(
        url("commitment_move", live_job, promised(live_job).pk),
        {"new_date": SATURDAY.isoformat(), "reason": "Late"},
        HTTP_HX_REQUEST="true",
    )

    assert QUESTION in response.content.decode()


# --- A promise recorded by hand -----------------------------------------------------------------


def test_a_promise_due_on_a_saturday_needs_confirming(staff: Client, live_job: Job) -> None:
    data = {"promise-title": "The quote", "promise-due_on": SATURDAY.isoformat()}

    response = staff.post(url("promise_new", live_job), data)

    assert response.status_code == 400
    assert QUESTION in response.content.decode()
    assert not live_job.commitments.filter(kind=Commitment.Kind.DOCUMENT).exists()

    response = staff.post(url("promise_new", live_job), {**data, "promise-keep_non_working_day": "on"})

    assert response.status_code == 302
    assert live_job.commitments.get(kind=Commitment.Kind.DOCUMENT).title == "The quote"
