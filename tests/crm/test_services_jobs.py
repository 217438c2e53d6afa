"""crm.services.jobs: every write to a job, its milestones, owner and status.

Time is frozen on Monday 2 March 2026, 10:00 in Paris (the conftest job's start date) unless a
test moves it. Every successful call writes exactly one JobEvent; every refused call writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from crm.errors import ConflictError, DomainError, ForbiddenTransition
from crm.models import (
    Contact,
    Customer,
    Job,
    JobEvent,
    JobReferenceCounter,
    Milestone,
    Pipeline,
    StageTemplate,
)
from crm.services.jobs import (
    job_advance,
    job_cancel,
    job_complete,
    job_create,
    job_hold,
    job_reassign,
    job_resume,
    job_update_details,
    milestone_move,
)
from crm.text import person_name

PARIS = ZoneInfo("Europe/Paris")
MONDAY = date(2026, 3, 2)

# The conftest Installation pipeline started on Monday 2 March 2026: 0, 3, 5, 2, 10, 5 business days.
PLAN_FROM_MONDAY = {
    "Request received": date(2026, 3, 2),
    "Proposal sent": date(2026, 3, 5),
    "Order confirmed": date(2026, 3, 12),
    "Installation scheduled": date(2026, 3, 16),
    "Installed": date(2026, 3, 30),
    "Follow-up": date(2026, 4, 6),
}


def paris(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(paris(MONDAY), tick=False)


# --- Helpers ------------------------------------------------------------------------------------


def stage(pipeline: Pipeline, name: str) -> StageTemplate:
    return pipeline.stages.get(name=name)


def milestone(job: Job, name: str) -> Milestone:
    return Milestone.objects.select_related("job", "stage").get(job=job, stage__name=name)


def forecasts(job: Job) -> dict[str, date | None]:
    return {m.stage.name: m.forecast_date for m in job.milestones.select_related("stage").order_by("stage__position")}


def planned(job: Job) -> dict[str, date | None]:
    return {m.stage.name: m.planned_date for m in job.milestones.select_related("stage").order_by("stage__position")}


def reached(job: Job) -> list[str]:
    return list(
        job.milestones.filter(completed_at__isnull=False)
        .order_by("stage__position")
        .values_list("stage__name", flat=True)
    )


def fresh(job: Job) -> Job:
    return Job.objects.select_related("current_stage", "owner").get(pk=job.pk)


def events(job: Job) -> list[JobEvent]:
    return list(JobEvent.objects.filter(job=job).order_by("id"))


def last_event(job: Job) -> JobEvent:
    return JobEvent.objects.filter(job=job).latest("id")


def snapshot(job: Job) -> dict[str, Any]:
    """Everything a job service could write, to prove a refused call wrote nothing."""
    job = fresh(job)
    return {
        "job": {
            field: getattr(job, field)
            for field in ("title", "status", "current_stage_id", "owner_id", "closed_at", "updated_at")
        },
        "milestones": list(
            job.milestones.order_by("stage__position").values_list(
                "stage_id", "planned_date", "forecast_date", "completed_at"
            )
        ),
        "contacts": sorted(job.contacts.values_list("pk", flat=True)),
        "installers": sorted(job.installers.values_list("pk", flat=True)),
        "events": list(JobEvent.objects.filter(job=job).values_list("pk", flat=True)),
    }


def table_counts() -> dict[str, Any]:
    return {
        "jobs": Job.objects.count(),
        "milestones": Milestone.objects.count(),
        "events": JobEvent.objects.count(),
        "counters": list(JobReferenceCounter.objects.order_by("year").values_list("year", "last_number")),
    }


def put_in_status(job: Job, status: str, actor: User) -> Job:
    if status == Job.Status.ON_HOLD:
        job_hold(job=job, actor=actor, reason="Customer abroad until May")
    elif status == Job.Status.DONE:
        job_complete(job=job, actor=actor)
    elif status == Job.Status.CANCELLED:
        job_cancel(job=job, actor=actor, reason="Customer chose another offer")
    job = fresh(job)
    assert job.status == status
    return job


@pytest.fixture
def create_job(customer: Customer, contact: Contact, installation: Pipeline, bob: User) -> Callable[..., Job]:
    def create(**overrides: Any) -> Job:
        params: dict[str, Any] = {
            "customer": customer,
            "pipeline": installation,
            "owner": bob,
            "title": "Heat pump installation",
            "actor": bob,
            "start_date": MONDAY,
        }
        params.update(overrides)
        return job_create(**params)

    return create


@pytest.fixture
def stranger(other_customer: Customer) -> Contact:
    return Contact.objects.create(customer=other_customer, name="Wile E. Coyote", email="wile@acme.example")


# --- job_create: references ---------------------------------------------------------------------


@pytest.mark.parametrize("start_date", [date(2031, 3, 3), date(9999, 12, 31)], ids=["a day too far", "year 9999"])
def test_it_refuses_to_start_a_job_more_than_five_years_ahead(create_job, start_date: date) -> None:
    before = table_counts()

    with pytest.raises(DomainError, match="no later than Sun 2 Mar 2031"):
        create_job(start_date=start_date)

    assert table_counts() == before


def test_it_numbers_references_in_sequence(create_job) -> None:
    references = [create_job().reference for _ in range(3)]

    assert references == ["J-2026-0001", "J-2026-0002", "J-2026-0003"]
    assert JobReferenceCounter.objects.get(year=2026).last_number == 3


def test_it_takes_the_reference_year_from_the_business_time_zone(time_machine, create_job) -> None:
    # 23:30 in Paris on New Year's Eve is still 2026.
    time_machine.move_to(datetime(2026, 12, 31, 22, 30, tzinfo=UTC), tick=False)
    assert create_job().reference == "J-2026-0001"

    # Half an hour later it is 2027 in Paris, though not yet in UTC: a new year, a new sequence.
    time_machine.move_to(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), tick=False)
    assert create_job().reference == "J-2027-0001"


def test_it_grows_the_number_past_four_digits(create_job) -> None:
    JobReferenceCounter.objects.create(year=2026, last_number=9999)

    assert create_job().reference == "J-2026-10000"


def test_it_accepts_an_explicit_reference_and_keeps_the_counter_past_it(create_job) -> None:
    imported = create_job(reference="J-2026-0042")

    assert imported.reference == "J-2026-0042"
    assert JobReferenceCounter.objects.get(year=2026).last_number == 42
    assert create_job().reference == "J-2026-0043"


def test_it_never_moves_the_counter_back_for_an_older_explicit_reference(create_job) -> None:
    create_job(reference="J-2026-0042")

    assert create_job(reference="J-2026-0007").reference == "J-2026-0007"
    assert create_job().reference == "J-2026-0043"


def test_it_keeps_a_counter_per_year_for_explicit_references(create_job) -> None:
    create_job(reference="J-2025-0100")

    assert create_job().reference == "J-2026-0001"
    assert JobReferenceCounter.objects.get(year=2025).last_number == 100


@pytest.mark.parametrize(
    "reference",
    [
        "J-26-0001",
        "J-2026-42",
        "j-2026-0042",
        "X-2026-0042",
        "J-2026-0042 ",
        " J-2026-0042",
        "J2026-0042",
        "J-2026-00a1",
    ],
)
def test_it_refuses_a_malformed_explicit_reference(create_job, reference: str) -> None:
    before = table_counts()

    with pytest.raises(DomainError, match="looks like J-2026-0042"):
        create_job(reference=reference)

    assert table_counts() == before


def test_it_refuses_an_explicit_reference_already_used(create_job, job: Job) -> None:
    before = table_counts()

    with pytest.raises(DomainError, match="already used"):
        create_job(reference=job.reference)

    assert table_counts() == before


def test_it_refuses_an_explicit_reference_that_only_differs_by_leading_zeros(create_job, job: Job) -> None:
    assert job.reference == "J-2026-0001"

    with pytest.raises(DomainError):
        create_job(reference="J-2026-00001")


# --- job_create: plan, first stage, event ---------------------------------------------------------


def test_it_plans_every_milestone_from_the_stage_durations_in_business_days(job: Job) -> None:
    assert planned(job) == PLAN_FROM_MONDAY
    assert forecasts(job) == PLAN_FROM_MONDAY


def test_it_plans_from_the_next_business_day_when_starting_on_a_weekend(create_job) -> None:
    job = create_job(start_date=date(2026, 3, 7))  # a Saturday

    later = {name: day for name, day in planned(job).items() if name != "Request received"}
    assert later == {
        "Proposal sent": date(2026, 3, 12),
        "Order confirmed": date(2026, 3, 19),
        "Installation scheduled": date(2026, 3, 23),
        "Installed": date(2026, 4, 6),
        "Follow-up": date(2026, 4, 13),
    }


def test_it_starts_on_the_business_day_when_no_start_date_is_given(time_machine, create_job) -> None:
    # 23:30 UTC on Sunday 1 March is already Monday 2 March in Paris.
    time_machine.move_to(datetime(2026, 3, 1, 23, 30, tzinfo=UTC), tick=False)

    job = create_job(start_date=None)

    assert planned(job) == PLAN_FROM_MONDAY
    assert last_event(job).data["start_date"] == "2026-03-02"


def test_it_opens_the_job_at_the_first_stage_reached_at_creation(create_job, installation: Pipeline) -> None:
    job = fresh(create_job(title="  Heat pump installation  "))

    now = timezone.now()
    assert job.current_stage == stage(installation, "Request received")
    assert job.status == Job.Status.ACTIVE
    assert job.closed_at is None
    assert job.title == "Heat pump installation"
    # Its version: now, or a few microseconds on when the clock stands still (crm.services.versions).
    assert job.created_at == now <= job.updated_at < now + timedelta(milliseconds=1)
    assert reached(job) == ["Request received"]
    assert milestone(job, "Request received").completed_at == now


def test_it_records_the_creation_with_its_actor(create_job, alice: User) -> None:
    job = create_job(actor=alice)

    [event] = events(job)
    assert event.kind == JobEvent.Kind.CREATED
    assert event.actor == alice
    assert event.created_at == timezone.now()
    assert event.data == {
        "title": "Heat pump installation",
        "pipeline": "Installation",
        "stage": "Request received",
        "owner": "Bob Durand",
        "start_date": "2026-03-02",
        "welcomed": 1,
        "not_told_reason": "",
    }


def test_it_records_a_creation_by_the_system_without_actor(create_job) -> None:
    job = create_job(actor=None)

    [event] = events(job)
    assert event.actor is None


def test_it_adds_every_contact_of_the_customer_by_default(create_job, customer: Customer, contact: Contact) -> None:
    second = Contact.objects.create(
        customer=customer, name="Jean Dupont", phone="+33612345678", preferred_channel="phone"
    )

    job = create_job()

    assert set(job.contacts.all()) == {contact, second}


def test_it_adds_only_the_contacts_given(create_job, customer: Customer, contact: Contact) -> None:
    Contact.objects.create(customer=customer, name="Jean Dupont", phone="+33612345678", preferred_channel="phone")

    job = create_job(contacts=[contact])

    assert list(job.contacts.all()) == [contact]


def test_it_refuses_a_pipeline_without_stages(create_job) -> None:
    before = table_counts()

    with pytest.raises(DomainError, match="has no stages"):
        create_job(pipeline=Pipeline.objects.create(name="Empty"))

    assert table_counts() == before


def test_it_refuses_a_pipeline_no_longer_in_use(create_job, installation: Pipeline) -> None:
    installation.is_active = False
    installation.save()
    before = table_counts()

    with pytest.raises(DomainError, match="no longer in use"):
        create_job()

    assert table_counts() == before


def test_it_refuses_an_owner_who_is_not_staff(create_job, dana: User) -> None:
    before = table_counts()

    with pytest.raises(DomainError, match="not an active staff member"):
        create_job(owner=dana)

    assert table_counts() == before


def test_it_refuses_an_owner_who_left(create_job, charlie: User) -> None:
    charlie.is_active = False
    charlie.save()
    before = table_counts()

    with pytest.raises(DomainError, match="not an active staff member"):
        create_job(owner=charlie)

    assert table_counts() == before


def test_it_refuses_a_contact_of_another_customer(create_job, contact: Contact, stranger: Contact) -> None:
    before = table_counts()

    with pytest.raises(DomainError, match=r"Wile E\. Coyote is not a contact of Dupont household"):
        create_job(contacts=[contact, stranger])

    assert table_counts() == before


@pytest.mark.parametrize("title", ["", "   "], ids=["empty", "spaces"])
def test_it_refuses_a_blank_title(create_job, title: str) -> None:
    before = table_counts()

    with pytest.raises(DomainError, match="needs a title"):
        create_job(title=title)

    assert table_counts() == before


# --- job_advance --------------------------------------------------------------------------------


def test_it_reaches_the_target_and_every_skipped_milestone(time_machine, job: Job, bob: User) -> None:
    created_at = timezone.now()
    time_machine.move_to(paris(date(2026, 3, 3)), tick=False)

    result = job_advance(job=job, to_stage=stage(job.pipeline, "Order confirmed"), actor=bob)

    now = timezone.now()
    job = fresh(job)
    assert result.current_stage == job.current_stage == stage(job.pipeline, "Order confirmed")
    assert now <= job.updated_at < now + timedelta(milliseconds=1)
    assert reached(job) == ["Request received", "Proposal sent", "Order confirmed"]
    assert milestone(job, "Request received").completed_at == created_at
    assert milestone(job, "Proposal sent").completed_at == now
    assert milestone(job, "Order confirmed").completed_at == now


def test_it_records_the_stage_change(job: Job, alice: User) -> None:
    first, target = stage(job.pipeline, "Request received"), stage(job.pipeline, "Proposal sent")

    job_advance(job=job, to_stage=target, actor=alice, note="  Sent by email  ")

    assert [e.kind for e in events(job)] == [JobEvent.Kind.CREATED, JobEvent.Kind.STAGE_ADVANCED]
    event = last_event(job)
    assert event.actor == alice
    assert event.data == {
        "from_stage": "Request received",
        "from_stage_id": first.pk,
        "to_stage": "Proposal sent",
        "to_stage_id": target.pk,
        "customer_visible": True,
        "reason": "",
        "note": "Sent by email",
        "rolled": [],
        "told_customer": True,
    }


def test_it_says_when_the_stage_reached_is_internal(job: Job, bob: User) -> None:
    job_advance(job=job, to_stage=stage(job.pipeline, "Follow-up"), actor=bob)

    assert last_event(job).data["customer_visible"] is False


def test_it_keeps_later_forecasts_when_the_plan_still_fits(job: Job, bob: User) -> None:
    job_advance(job=job, to_stage=stage(job.pipeline, "Proposal sent"), actor=bob)

    assert forecasts(job) == PLAN_FROM_MONDAY
    assert last_event(job).data["rolled"] == []


def test_it_never_pulls_later_forecasts_earlier(time_machine, job: Job, bob: User) -> None:
    # Order confirmed on Tuesday, nine days early: the later dates already given stay.
    time_machine.move_to(paris(date(2026, 3, 3)), tick=False)

    job_advance(job=job, to_stage=stage(job.pipeline, "Order confirmed"), actor=bob)

    assert forecasts(job) == PLAN_FROM_MONDAY
    assert last_event(job).data["rolled"] == []


def test_it_rolls_later_forecasts_out_when_the_plan_no_longer_fits(time_machine, job: Job, bob: User) -> None:
    # The proposal goes out on Wednesday 11 March instead of Thursday 5 March.
    time_machine.move_to(paris(date(2026, 3, 11)), tick=False)

    job_advance(job=job, to_stage=stage(job.pipeline, "Proposal sent"), actor=bob)

    assert forecasts(job) == {
        "Request received": date(2026, 3, 2),
        "Proposal sent": date(2026, 3, 5),
        "Order confirmed": date(2026, 3, 18),
        "Installation scheduled": date(2026, 3, 20),
        "Installed": date(2026, 4, 3),
        "Follow-up": date(2026, 4, 10),
    }
    assert planned(job) == PLAN_FROM_MONDAY
    assert last_event(job).data["rolled"] == [
        {"stage": "Order confirmed", "old_date": "2026-03-12", "new_date": "2026-03-18"},
        {"stage": "Installation scheduled", "old_date": "2026-03-16", "new_date": "2026-03-20"},
        {"stage": "Installed", "old_date": "2026-03-30", "new_date": "2026-04-03"},
        {"stage": "Follow-up", "old_date": "2026-04-06", "new_date": "2026-04-10"},
    ]


def test_it_rolls_only_the_forecasts_that_no_longer_fit(time_machine, job: Job, bob: User) -> None:
    # The installation was already pushed out to 20 April: it still fits, and so does the follow-up.
    Milestone.objects.filter(job=job, stage__name="Installed").update(forecast_date=date(2026, 4, 20))
    Milestone.objects.filter(job=job, stage__name="Follow-up").update(forecast_date=date(2026, 4, 27))
    time_machine.move_to(paris(date(2026, 3, 11)), tick=False)

    job_advance(job=job, to_stage=stage(job.pipeline, "Proposal sent"), actor=bob)

    assert forecasts(job)["Installed"] == date(2026, 4, 20)
    assert forecasts(job)["Follow-up"] == date(2026, 4, 27)
    assert [change["stage"] for change in last_event(job).data["rolled"]] == [
        "Order confirmed",
        "Installation scheduled",
    ]


@pytest.mark.parametrize("status", [Job.Status.CANCELLED, Job.Status.DONE, Job.Status.ON_HOLD])
def test_it_refuses_to_change_the_stage_of_a_job_that_is_not_active(job: Job, bob: User, status: str) -> None:
    job = put_in_status(job, status, bob)
    before = snapshot(job)

    with pytest.raises(ForbiddenTransition):
        job_advance(job=job, to_stage=stage(job.pipeline, "Proposal sent"), actor=bob)

    assert snapshot(job) == before


def test_it_refuses_a_stage_of_another_pipeline(job: Job, bob: User, repair: Pipeline) -> None:
    before = snapshot(job)

    with pytest.raises(ForbiddenTransition, match="belongs to the Repair pipeline"):
        job_advance(job=job, to_stage=stage(repair, "Diagnosed"), actor=bob)

    assert snapshot(job) == before


def test_it_says_the_job_is_already_at_that_stage(job: Job, bob: User) -> None:
    before = snapshot(job)

    with pytest.raises(ConflictError, match="already at “Request received”"):
        job_advance(job=job, to_stage=stage(job.pipeline, "Request received"), actor=bob)

    assert snapshot(job) == before


@pytest.mark.parametrize("reason", ["", "   "], ids=["empty", "spaces"])
def test_it_refuses_to_go_back_without_a_reason(job: Job, bob: User, reason: str) -> None:
    job_advance(job=job, to_stage=stage(job.pipeline, "Order confirmed"), actor=bob)
    before = snapshot(job)

    with pytest.raises(ForbiddenTransition, match="needs a reason") as excinfo:
        job_advance(job=job, to_stage=stage(job.pipeline, "Proposal sent"), actor=bob, backwards_reason=reason)

    assert type(excinfo.value) is ForbiddenTransition
    assert snapshot(job) == before


def test_it_goes_back_with_a_reason_and_reopens_the_later_milestones(time_machine, job: Job, bob: User) -> None:
    time_machine.move_to(paris(date(2026, 3, 3)), tick=False)
    job_advance(job=job, to_stage=stage(job.pipeline, "Installed"), actor=bob)
    reached_at = milestone(job, "Order confirmed").completed_at
    time_machine.move_to(paris(date(2026, 3, 4)), tick=False)

    job_advance(
        job=job,
        to_stage=stage(job.pipeline, "Order confirmed"),
        actor=bob,
        backwards_reason="  Wrong model delivered  ",
    )

    job = fresh(job)
    assert job.current_stage.name == "Order confirmed"
    assert reached(job) == ["Request received", "Proposal sent", "Order confirmed"]
    assert milestone(job, "Order confirmed").completed_at == reached_at
    assert forecasts(job) == PLAN_FROM_MONDAY
    event = last_event(job)
    assert event.kind == JobEvent.Kind.STAGE_REVERTED
    assert event.data["from_stage"] == "Installed"
    assert event.data["to_stage"] == "Order confirmed"
    assert event.data["reason"] == "Wrong model delivered"
    assert event.data["rolled"] == []


def test_it_refuses_a_change_when_the_job_moved_since_the_person_looked(job: Job, alice: User, bob: User) -> None:
    seen = stage(job.pipeline, "Request received")
    job_advance(job=job, to_stage=stage(job.pipeline, "Proposal sent"), actor=alice)
    before = snapshot(job)

    with pytest.raises(ConflictError, match="Alice Martin moved job J-2026-0001 to “Proposal sent” in the meantime"):
        job_advance(job=job, to_stage=stage(job.pipeline, "Order confirmed"), actor=bob, expected_stage=seen)

    assert snapshot(job) == before


def test_it_advances_when_the_job_is_where_the_person_saw_it(job: Job, bob: User) -> None:
    job_advance(
        job=job,
        to_stage=stage(job.pipeline, "Proposal sent"),
        actor=bob,
        expected_stage=stage(job.pipeline, "Request received"),
    )

    assert fresh(job).current_stage.name == "Proposal sent"


def test_it_decides_on_the_stored_job_not_the_callers_copy(job: Job, alice: User, bob: User) -> None:
    stale = Job.objects.get(pk=job.pk)
    job_advance(job=job, to_stage=stage(job.pipeline, "Proposal sent"), actor=alice)

    with pytest.raises(ConflictError):
        job_advance(job=stale, to_stage=stage(job.pipeline, "Proposal sent"), actor=bob)


# --- milestone_move -----------------------------------------------------------------------------


def test_it_moves_the_forecast_and_keeps_the_first_promise(job: Job, bob: User) -> None:
    moved = milestone_move(
        milestone=milestone(job, "Proposal sent"), new_date=date(2026, 3, 4), reason="Ready early", actor=bob
    )

    assert moved.forecast_date == date(2026, 3, 4)
    stored = milestone(job, "Proposal sent")
    assert stored.forecast_date == date(2026, 3, 4)
    assert stored.planned_date == date(2026, 3, 5)
    assert timezone.now() <= fresh(job).updated_at < timezone.now() + timedelta(milliseconds=1)


def test_it_records_the_date_move(job: Job, alice: User) -> None:
    proposal = milestone(job, "Proposal sent")

    milestone_move(
        milestone=proposal, new_date=date(2026, 3, 4), reason="  Ready early  ", actor=alice, tell_customer=True
    )

    event = last_event(job)
    assert event.kind == JobEvent.Kind.DATE_MOVED
    assert event.actor == alice
    assert event.data == {
        "milestone_id": proposal.pk,
        "stage": "Proposal sent",
        "planned_date": "2026-03-05",
        "old_date": "2026-03-05",
        "new_date": "2026-03-04",
        "reason": "Ready early",
        "tell_customer": True,
        "before_old_date": True,
        "rolled": [],
        "rolled_told": True,
    }


def test_it_does_not_pull_later_milestones_in_when_a_date_moves_earlier(job: Job, bob: User) -> None:
    milestone_move(milestone=milestone(job, "Proposal sent"), new_date=date(2026, 3, 3), reason="Early", actor=bob)

    assert {k: v for k, v in forecasts(job).items() if k != "Proposal sent"} == {
        k: v for k, v in PLAN_FROM_MONDAY.items() if k != "Proposal sent"
    }


def test_it_rolls_later_milestones_out_when_a_date_moves_later(job: Job, bob: User) -> None:
    milestone_move(
        milestone=milestone(job, "Proposal sent"), new_date=date(2026, 3, 20), reason="Survey delayed", actor=bob
    )

    assert forecasts(job) == {
        "Request received": date(2026, 3, 2),
        "Proposal sent": date(2026, 3, 20),
        "Order confirmed": date(2026, 3, 27),
        "Installation scheduled": date(2026, 3, 31),
        "Installed": date(2026, 4, 14),
        "Follow-up": date(2026, 4, 21),
    }
    assert planned(job) == PLAN_FROM_MONDAY
    assert last_event(job).data["rolled"] == [
        {"stage": "Order confirmed", "old_date": "2026-03-12", "new_date": "2026-03-27"},
        {"stage": "Installation scheduled", "old_date": "2026-03-16", "new_date": "2026-03-31"},
        {"stage": "Installed", "old_date": "2026-03-30", "new_date": "2026-04-14"},
        {"stage": "Follow-up", "old_date": "2026-04-06", "new_date": "2026-04-21"},
    ]


def test_it_rolls_only_the_later_milestones_that_no_longer_fit(job: Job, bob: User) -> None:
    milestone_move(
        milestone=milestone(job, "Installed"), new_date=date(2026, 4, 20), reason="Heat pump backordered", actor=bob
    )
    assert forecasts(job)["Follow-up"] == date(2026, 4, 27)

    milestone_move(
        milestone=milestone(job, "Proposal sent"), new_date=date(2026, 3, 9), reason="Survey delayed", actor=bob
    )

    assert forecasts(job)["Order confirmed"] == date(2026, 3, 16)
    assert forecasts(job)["Installation scheduled"] == date(2026, 3, 18)
    assert forecasts(job)["Installed"] == date(2026, 4, 20)
    assert forecasts(job)["Follow-up"] == date(2026, 4, 27)
    assert [change["stage"] for change in last_event(job).data["rolled"]] == [
        "Order confirmed",
        "Installation scheduled",
    ]


@pytest.mark.parametrize(
    ("now", "before_old_date"),
    [
        # Told on Monday, three days before the promised Thursday: proactive.
        (paris(date(2026, 3, 2)), True),
        # Told on the promised day itself, still proactive.
        (paris(date(2026, 3, 5), 18), True),
        # Told the day after the promise passed: reactive.
        (paris(date(2026, 3, 6), 9), False),
        # Just after midnight in Paris, which is still the promised day in UTC: reactive already.
        (datetime(2026, 3, 5, 23, 30, tzinfo=UTC), False),
    ],
)
def test_it_says_whether_the_date_moved_before_the_old_one_passed(
    time_machine, job: Job, bob: User, now: datetime, before_old_date: bool
) -> None:
    time_machine.move_to(now, tick=False)

    milestone_move(milestone=milestone(job, "Proposal sent"), new_date=date(2026, 3, 9), reason="Late", actor=bob)

    assert last_event(job).data["before_old_date"] is before_old_date


def test_it_gives_a_date_to_a_milestone_that_had_none(job: Job, bob: User) -> None:
    Milestone.objects.filter(job=job, stage__name="Follow-up").update(planned_date=None, forecast_date=None)

    milestone_move(milestone=milestone(job, "Follow-up"), new_date=date(2026, 4, 8), reason="Booked", actor=bob)

    follow_up = milestone(job, "Follow-up")
    assert follow_up.planned_date == follow_up.forecast_date == date(2026, 4, 8)
    assert last_event(job).data["old_date"] is None
    assert last_event(job).data["before_old_date"] is True


@pytest.mark.parametrize("reason", ["", "   "], ids=["empty", "spaces"])
def test_it_refuses_to_move_a_date_without_a_reason(job: Job, bob: User, reason: str) -> None:
    before = snapshot(job)

    with pytest.raises(DomainError, match="Say why"):
        milestone_move(milestone=milestone(job, "Proposal sent"), new_date=date(2026, 3, 9), reason=reason, actor=bob)

    assert snapshot(job) == before


def test_it_refuses_a_date_in_the_past(job: Job, bob: User) -> None:
    before = snapshot(job)

    with pytest.raises(DomainError, match="in the past"):
        milestone_move(milestone=milestone(job, "Proposal sent"), new_date=date(2026, 2, 27), reason="Oops", actor=bob)

    assert snapshot(job) == before


@pytest.mark.parametrize("new_date", [date(2031, 3, 3), date(9999, 12, 31)], ids=["a day too far", "year 9999"])
def test_it_refuses_a_date_more_than_five_years_ahead(job: Job, bob: User, new_date: date) -> None:
    before = snapshot(job)

    with pytest.raises(DomainError, match="no later than Sun 2 Mar 2031"):
        milestone_move(milestone=milestone(job, "Installed"), new_date=new_date, reason="Far", actor=bob)

    assert snapshot(job) == before


def test_it_accepts_a_date_five_years_ahead_and_rolls_the_later_ones(job: Job, bob: User) -> None:
    milestone_move(milestone=milestone(job, "Installed"), new_date=date(2031, 3, 2), reason="Far", actor=bob)

    assert forecasts(job)["Installed"] == date(2031, 3, 2)
    # Rolled by the stage's five business days (2 March 2031 is a Sunday): past the limit, which
    # binds the dates people choose, not the plan that follows from them.
    assert forecasts(job)["Follow-up"] == date(2031, 3, 10)


def test_it_takes_the_past_from_the_business_day(time_machine, job: Job, bob: User) -> None:
    # 23:30 UTC on Tuesday is Wednesday in Paris: Tuesday is past.
    time_machine.move_to(datetime(2026, 3, 3, 23, 30, tzinfo=UTC), tick=False)
    before = snapshot(job)

    with pytest.raises(DomainError, match="in the past"):
        milestone_move(milestone=milestone(job, "Proposal sent"), new_date=date(2026, 3, 3), reason="Soon", actor=bob)

    assert snapshot(job) == before


def test_it_accepts_today(time_machine, job: Job, bob: User) -> None:
    time_machine.move_to(paris(date(2026, 3, 4)), tick=False)

    milestone_move(milestone=milestone(job, "Proposal sent"), new_date=date(2026, 3, 4), reason="Ready", actor=bob)

    assert forecasts(job)["Proposal sent"] == date(2026, 3, 4)


def test_it_refuses_the_date_already_expected(job: Job, bob: User) -> None:
    before = snapshot(job)

    with pytest.raises(DomainError, match="already the expected date"):
        milestone_move(milestone=milestone(job, "Proposal sent"), new_date=date(2026, 3, 5), reason="Same", actor=bob)

    assert snapshot(job) == before


def test_it_refuses_to_move_a_milestone_already_reached(job: Job, bob: User) -> None:
    before = snapshot(job)

    with pytest.raises(DomainError, match="already reached"):
        milestone_move(
            milestone=milestone(job, "Request received"), new_date=date(2026, 3, 9), reason="Late", actor=bob
        )

    assert snapshot(job) == before


@pytest.mark.parametrize("status", [Job.Status.DONE, Job.Status.CANCELLED])
def test_it_refuses_to_move_a_date_of_a_closed_job(job: Job, bob: User, status: str) -> None:
    job = put_in_status(job, status, bob)
    before = snapshot(job)

    with pytest.raises(ForbiddenTransition):
        milestone_move(milestone=milestone(job, "Proposal sent"), new_date=date(2026, 3, 9), reason="Late", actor=bob)

    assert snapshot(job) == before


def test_it_moves_a_date_of_a_job_on_hold(job: Job, bob: User) -> None:
    put_in_status(job, Job.Status.ON_HOLD, bob)

    milestone_move(
        milestone=milestone(job, "Proposal sent"), new_date=date(2026, 3, 9), reason="Customer away", actor=bob
    )

    assert forecasts(job)["Proposal sent"] == date(2026, 3, 9)


# --- job_reassign -------------------------------------------------------------------------------


def test_it_hands_the_job_to_another_staff_member(job: Job, alice: User, charlie: User, bob: User) -> None:
    result = job_reassign(job=job, owner=charlie, actor=alice, reason="  Bob is on leave  ")

    assert result.owner == charlie
    assert fresh(job).owner == charlie
    assert timezone.now() <= fresh(job).updated_at < timezone.now() + timedelta(milliseconds=1)
    event = last_event(job)
    assert event.kind == JobEvent.Kind.OWNER_CHANGED
    assert event.actor == alice
    assert event.data == {
        "old_owner": "Bob Durand",
        "old_owner_id": bob.pk,
        "new_owner": "charlie",
        "new_owner_id": charlie.pk,
        "reason": "Bob is on leave",
        "stage": "",
        "role": "",
        "told_customer": True,
    }


def test_it_hands_over_a_job_on_hold(job: Job, alice: User, bob: User, charlie: User) -> None:
    put_in_status(job, Job.Status.ON_HOLD, bob)

    job_reassign(job=job, owner=charlie, actor=alice)

    assert fresh(job).owner == charlie


def test_it_refuses_an_owner_who_is_not_staff_on_reassign(job: Job, alice: User, dana: User) -> None:
    before = snapshot(job)

    with pytest.raises(DomainError, match="dana is not an active staff member"):
        job_reassign(job=job, owner=dana, actor=alice)

    assert snapshot(job) == before


def test_it_refuses_an_owner_who_left_on_reassign(job: Job, alice: User, charlie: User) -> None:
    charlie.is_active = False
    charlie.save()
    before = snapshot(job)

    with pytest.raises(DomainError, match="not an active staff member"):
        job_reassign(job=job, owner=charlie, actor=alice)

    assert snapshot(job) == before


def test_it_refuses_to_hand_the_job_to_its_owner(job: Job, alice: User, bob: User) -> None:
    before = snapshot(job)

    with pytest.raises(DomainError, match="Bob Durand already owns job J-2026-0001"):
        job_reassign(job=job, owner=bob, actor=alice)

    assert snapshot(job) == before


@pytest.mark.parametrize("status", [Job.Status.DONE, Job.Status.CANCELLED])
def test_it_refuses_to_hand_over_a_closed_job(job: Job, alice: User, bob: User, charlie: User, status: str) -> None:
    job = put_in_status(job, status, bob)
    before = snapshot(job)

    with pytest.raises(ForbiddenTransition):
        job_reassign(job=job, owner=charlie, actor=alice)

    assert snapshot(job) == before


# --- job_update_details -------------------------------------------------------------------------


@pytest.fixture
def second_contact(customer: Customer) -> Contact:
    return Contact.objects.create(customer=customer, name="Jean Dupont", email="jean@example.com")


def test_it_renames_the_job_and_records_the_old_and_new_title(job: Job, bob: User) -> None:
    job_update_details(job=job, actor=bob, title="  Heat pump and boiler  ")

    assert fresh(job).title == "Heat pump and boiler"
    assert timezone.now() <= fresh(job).updated_at < timezone.now() + timedelta(milliseconds=1)
    event = last_event(job)
    assert event.kind == JobEvent.Kind.DETAILS_CHANGED
    assert event.actor == bob
    assert event.data == {"changed": {"title": {"old": "Heat pump installation", "new": "Heat pump and boiler"}}}
    assert event.summary == "title “Heat pump installation” → “Heat pump and boiler”"


def test_it_changes_the_contacts_and_records_them(
    job: Job, bob: User, contact: Contact, second_contact: Contact
) -> None:
    job_update_details(job=job, actor=bob, contacts=[second_contact, contact])

    assert set(job.contacts.all()) == {contact, second_contact}
    event = last_event(job)
    assert event.data == {
        "changed": {
            "contacts": {
                "old": [contact.pk],
                "new": sorted([contact.pk, second_contact.pk]),
                "names": ["Jean Dupont", "Marie Dupont"],
            }
        }
    }
    assert event.summary == "contacts: Jean Dupont, Marie Dupont"


def test_it_changes_the_installers_and_records_them(job: Job, bob: User, charlie: User) -> None:
    job_update_details(job=job, actor=bob, installers=[charlie])

    assert list(job.installers.all()) == [charlie]
    event = last_event(job)
    assert event.data == {"changed": {"installers": {"old": [], "new": [charlie.pk], "names": [person_name(charlie)]}}}
    assert event.summary == f"installers: {person_name(charlie)}"


def test_it_takes_only_active_staff_onto_a_job_and_keeps_one_who_has_left(
    job: Job, bob: User, charlie: User, dana: User
) -> None:
    with pytest.raises(DomainError, match="is not an active staff member and cannot be an installer"):
        job_update_details(job=job, actor=bob, installers=[dana])
    job_update_details(job=job, actor=bob, installers=[charlie])
    User.objects.filter(pk=charlie.pk).update(is_active=False)
    charlie.refresh_from_db()

    job_update_details(job=job, actor=bob, title="Heat pump, phase 2", installers=[charlie])

    assert list(job.installers.all()) == [charlie]
    assert fresh(job).title == "Heat pump, phase 2"


def test_it_lists_only_the_fields_that_changed(
    job: Job, bob: User, charlie: User, contact: Contact, second_contact: Contact
) -> None:
    job_update_details(
        job=job, actor=bob, title="Heat pump installation", contacts=[contact, second_contact], installers=[charlie]
    )

    [event] = [e for e in events(job) if e.kind == JobEvent.Kind.DETAILS_CHANGED]
    assert set(event.data["changed"]) == {"contacts", "installers"}


def test_it_records_nothing_when_nothing_changed(time_machine, job: Job, bob: User, contact: Contact) -> None:
    before = snapshot(job)
    time_machine.move_to(paris(date(2026, 3, 3)), tick=False)

    job_update_details(job=job, actor=bob, title="  Heat pump installation ", contacts=[contact], installers=[])
    job_update_details(job=job, actor=bob)

    assert snapshot(job) == before


def test_it_refuses_contacts_of_another_customer_on_update(job: Job, bob: User, stranger: Contact) -> None:
    before = snapshot(job)

    with pytest.raises(DomainError, match="not a contact of Dupont household"):
        job_update_details(job=job, actor=bob, title="New title", contacts=[stranger])

    assert snapshot(job) == before


@pytest.mark.parametrize("title", ["", "   "], ids=["empty", "spaces"])
def test_it_refuses_a_blank_title_on_update(job: Job, bob: User, title: str) -> None:
    before = snapshot(job)

    with pytest.raises(DomainError, match="needs a title"):
        job_update_details(job=job, actor=bob, title=title)

    assert snapshot(job) == before


def test_it_records_nothing_when_the_same_contact_is_given_twice(job: Job, bob: User, contact: Contact) -> None:
    before = snapshot(job)

    job_update_details(job=job, actor=bob, contacts=[contact, contact])

    assert snapshot(job) == before


# --- Status: hold, resume, cancel, complete -----------------------------------------------------

ACTIONS: dict[str, Callable[[Job, User], Job]] = {
    "hold": lambda job, actor: job_hold(job=job, actor=actor, reason="  Customer abroad until May  "),
    "resume": lambda job, actor: job_resume(job=job, actor=actor, reason="  Customer is back  "),
    "cancel": lambda job, actor: job_cancel(job=job, actor=actor, reason="  Customer chose another offer  "),
    "complete": lambda job, actor: job_complete(job=job, actor=actor),
}
REASONS = {
    "hold": "Customer abroad until May",
    "resume": "Customer is back",
    "cancel": "Customer chose another offer",
    "complete": "",
}
ALLOWED = [
    (Job.Status.ACTIVE, "hold", Job.Status.ON_HOLD, JobEvent.Kind.HELD),
    (Job.Status.ON_HOLD, "resume", Job.Status.ACTIVE, JobEvent.Kind.RESUMED),
    (Job.Status.ACTIVE, "cancel", Job.Status.CANCELLED, JobEvent.Kind.CANCELLED),
    (Job.Status.ON_HOLD, "cancel", Job.Status.CANCELLED, JobEvent.Kind.CANCELLED),
    (Job.Status.ACTIVE, "complete", Job.Status.DONE, JobEvent.Kind.COMPLETED),
]
FORBIDDEN = [
    (status, action)
    for status in Job.Status.values
    for action in ACTIONS
    if not any(status == a[0] and action == a[1] for a in ALLOWED)
]


@pytest.mark.parametrize(("status", "action", "new_status", "kind"), ALLOWED)
def test_it_changes_the_status_where_the_rules_allow(
    time_machine, job: Job, bob: User, alice: User, status: str, action: str, new_status: str, kind: str
) -> None:
    job = put_in_status(job, status, bob)
    time_machine.move_to(paris(date(2026, 3, 4)), tick=False)
    events_before = len(events(job))

    result = ACTIONS[action](job, alice)

    now = timezone.now()
    job = fresh(job)
    assert result.status == job.status == new_status
    assert job.closed_at == (now if new_status in (Job.Status.DONE, Job.Status.CANCELLED) else None)
    assert now <= job.updated_at < now + timedelta(milliseconds=1)
    assert len(events(job)) == events_before + 1
    event = last_event(job)
    assert event.kind == kind
    assert event.actor == alice
    assert event.data == {
        "old_status": status,
        "new_status": new_status,
        "stage": "Request received",
        "reason": REASONS[action],
    }


@pytest.mark.parametrize(("status", "action"), FORBIDDEN)
def test_it_refuses_a_status_change_the_rules_forbid(job: Job, bob: User, status: str, action: str) -> None:
    job = put_in_status(job, status, bob)
    before = snapshot(job)

    with pytest.raises(ForbiddenTransition):
        ACTIONS[action](job, bob)

    assert snapshot(job) == before


def test_it_covers_every_status_and_action() -> None:
    assert len(ALLOWED) + len(FORBIDDEN) == len(Job.Status.values) * len(ACTIONS) == 16


@pytest.mark.parametrize(
    "call",
    [
        lambda job, actor: job_hold(job=job, actor=actor, reason="  "),
        lambda job, actor: job_cancel(job=job, actor=actor, reason=""),
    ],
    ids=["hold", "cancel"],
)
def test_it_needs_a_reason_to_hold_or_cancel(job: Job, bob: User, call: Callable[[Job, User], Job]) -> None:
    before = snapshot(job)

    with pytest.raises(DomainError, match="Say why"):
        call(job, bob)

    assert snapshot(job) == before


def test_it_clears_closed_at_through_hold_and_resume(job: Job, bob: User) -> None:
    job_hold(job=job, actor=bob, reason="Waiting for permit")
    assert fresh(job).closed_at is None

    job_resume(job=job, actor=bob)

    assert fresh(job).status == Job.Status.ACTIVE
    assert fresh(job).closed_at is None


# --- One event per successful call --------------------------------------------------------------


@pytest.fixture
def world(job: Job, alice: User, bob: User, charlie: User, second_contact: Contact) -> SimpleNamespace:
    return SimpleNamespace(job=job, alice=alice, bob=bob, charlie=charlie, second_contact=second_contact)


SUCCESSFUL_CALLS: dict[str, tuple[Callable[[SimpleNamespace], Any], str]] = {
    "job_advance": (
        lambda w: job_advance(job=w.job, to_stage=stage(w.job.pipeline, "Installed"), actor=w.bob),
        JobEvent.Kind.STAGE_ADVANCED,
    ),
    "milestone_move": (
        lambda w: milestone_move(
            milestone=milestone(w.job, "Proposal sent"),
            new_date=date(2026, 3, 20),
            reason="Late",
            actor=w.bob,
            tell_customer=True,
        ),
        JobEvent.Kind.DATE_MOVED,
    ),
    "job_reassign": (lambda w: job_reassign(job=w.job, owner=w.charlie, actor=w.alice), JobEvent.Kind.OWNER_CHANGED),
    "job_update_details": (
        lambda w: job_update_details(
            job=w.job, actor=w.bob, title="New", contacts=[w.second_contact], installers=[w.charlie]
        ),
        JobEvent.Kind.DETAILS_CHANGED,
    ),
    "job_hold": (lambda w: job_hold(job=w.job, actor=w.bob, reason="Permit"), JobEvent.Kind.HELD),
    "job_cancel": (lambda w: job_cancel(job=w.job, actor=w.bob, reason="Gone"), JobEvent.Kind.CANCELLED),
    "job_complete": (lambda w: job_complete(job=w.job, actor=w.bob), JobEvent.Kind.COMPLETED),
}


@pytest.mark.parametrize("name", list(SUCCESSFUL_CALLS))
def test_it_writes_exactly_one_event_per_successful_call(world: SimpleNamespace, name: str) -> None:
    call, kind = SUCCESSFUL_CALLS[name]
    before = JobEvent.objects.count()

    call(world)

    assert JobEvent.objects.count() == before + 1
    assert last_event(world.job).kind == kind


def test_it_writes_exactly_one_event_for_a_resume(job: Job, bob: User) -> None:
    job_hold(job=job, actor=bob, reason="Permit")
    before = JobEvent.objects.count()

    job_resume(job=job, actor=bob)

    assert JobEvent.objects.count() == before + 1
    assert last_event(job).kind == JobEvent.Kind.RESUMED
