"""The invariants the models keep by themselves: named database constraints, ``clean``, and the
few computed properties the pages read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from crm.models import (
    Contact,
    Customer,
    Job,
    JobEvent,
    Milestone,
    Pipeline,
    StageTemplate,
    default_contact_time_zone,
    validate_time_zone,
)
from crm.services.jobs import job_reassign, milestone_move

NOON_UTC = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    """Jobs built by the fixtures are created on Monday 2 March 2026, their start date."""
    time_machine.move_to(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False)


@contextmanager
def violates(constraint: str, *, sqlite_says: str | None = None) -> Iterator[None]:
    """The block fails on the database constraint named ``constraint``.

    PostgreSQL names the constraint in every message; SQLite names check constraints but reports
    a unique one by its columns, given here as ``sqlite_says``.
    """
    with pytest.raises(IntegrityError) as excinfo, transaction.atomic():
        yield
    expected = sqlite_says if (connection.vendor == "sqlite" and sqlite_says) else constraint
    assert expected in str(excinfo.value)


# --- Contact --------------------------------------------------------------------------------------


def test_it_requires_an_email_or_a_phone_in_the_database(customer: Customer) -> None:
    with violates("contact_has_email_or_phone"):
        Contact.objects.create(customer=customer, name="Nobody", email="", phone="")


def test_it_accepts_a_contact_with_only_a_phone(customer: Customer) -> None:
    contact = Contact.objects.create(
        customer=customer, name="Paul", phone="+33 6 12 34 56 78", preferred_channel=Contact.Channel.PHONE
    )

    assert contact.pk is not None


def test_it_refuses_sms_as_preferred_channel_without_consent(customer: Customer) -> None:
    with violates("contact_sms_needs_consent"):
        Contact.objects.create(
            customer=customer, name="Paul", phone="+33612345678", preferred_channel=Contact.Channel.SMS
        )


def test_it_refuses_an_sms_consent_without_its_source(customer: Customer) -> None:
    with violates("contact_sms_consent_has_source"):
        Contact.objects.create(
            customer=customer, name="Paul", phone="+33612345678", sms_consent_at=timezone.now(), sms_consent_source=""
        )


def test_it_accepts_sms_with_a_recorded_consent(customer: Customer) -> None:
    contact = Contact.objects.create(
        customer=customer,
        name="Paul",
        phone="+33612345678",
        preferred_channel=Contact.Channel.SMS,
        sms_consent_at=timezone.now(),
        sms_consent_source="signed order form",
    )

    assert contact.has_sms_consent


def test_it_says_a_contact_without_consent_has_none(contact: Contact) -> None:
    assert not contact.has_sms_consent


def test_it_needs_an_email_when_email_is_the_preferred_channel(customer: Customer) -> None:
    contact = Contact(customer=customer, name="Paul", phone="+33612345678", preferred_channel=Contact.Channel.EMAIL)

    with pytest.raises(ValidationError) as excinfo:
        contact.clean()

    assert set(excinfo.value.message_dict) == {"email"}


@pytest.mark.parametrize("channel", [Contact.Channel.SMS, Contact.Channel.PHONE])
def test_it_needs_a_phone_when_the_preferred_channel_uses_one(customer: Customer, channel: str) -> None:
    contact = Contact(
        customer=customer,
        name="Paul",
        email="paul@example.com",
        preferred_channel=channel,
        sms_consent_at=timezone.now(),
        sms_consent_source="portal",
    )

    with pytest.raises(ValidationError) as excinfo:
        contact.clean()

    assert set(excinfo.value.message_dict) == {"phone"}


def test_it_cleans_a_complete_contact(customer: Customer) -> None:
    contact = Contact(customer=customer, name="Paul", email="paul@example.com", phone="+33612345678")

    contact.full_clean()


def test_it_reports_the_constraint_message_when_validating_constraints(customer: Customer) -> None:
    contact = Contact(customer=customer, name="Nobody", preferred_channel=Contact.Channel.PHONE)

    with pytest.raises(ValidationError) as excinfo:
        contact.validate_constraints()

    messages = " ".join(excinfo.value.messages)
    assert "needs an email address or a phone number" in messages


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "UTC"])
def test_it_accepts_a_known_time_zone(zone: str) -> None:
    validate_time_zone(zone)


@pytest.mark.parametrize("zone", ["Paris", "Europe/Atlantis", "", "europe/paris"])
def test_it_refuses_an_unknown_time_zone(zone: str) -> None:
    with pytest.raises(ValidationError):
        validate_time_zone(zone)


def test_it_validates_the_contact_time_zone_on_full_clean(customer: Customer) -> None:
    contact = Contact(customer=customer, name="Paul", email="paul@example.com", time_zone="Mars/Olympus")

    with pytest.raises(ValidationError) as excinfo:
        contact.full_clean()

    assert "time_zone" in excinfo.value.message_dict


def test_it_defaults_the_contact_time_zone_to_the_setting(customer: Customer, settings) -> None:
    settings.DEFAULT_CONTACT_TIME_ZONE = "America/Montreal"

    contact = Contact(customer=customer, name="Paul", email="paul@example.com")

    assert default_contact_time_zone() == "America/Montreal"
    assert contact.time_zone == "America/Montreal"


# --- Pipeline, Job, Milestone constraints ---------------------------------------------------------


def test_it_keeps_stage_positions_unique_in_a_pipeline(installation: Pipeline) -> None:
    with violates("stage_unique_position", sqlite_says="crm_stagetemplate.pipeline_id, crm_stagetemplate.position"):
        StageTemplate.objects.create(pipeline=installation, position=1, name="Something else")


def test_it_allows_the_same_position_in_another_pipeline(installation: Pipeline, repair: Pipeline) -> None:
    StageTemplate.objects.create(pipeline=installation, position=99, name="Final check")

    StageTemplate.objects.create(pipeline=repair, position=99, name="Final check")

    assert StageTemplate.objects.filter(position=99, name="Final check").count() == 2


def test_it_keeps_stage_names_unique_in_a_pipeline(installation: Pipeline) -> None:
    with violates("stage_unique_name", sqlite_says="crm_stagetemplate.pipeline_id, crm_stagetemplate.name"):
        StageTemplate.objects.create(pipeline=installation, position=99, name="Installed")


def test_it_keeps_job_references_unique(job: Job) -> None:
    with violates("job_unique_reference", sqlite_says="crm_job.reference"):
        Job.objects.create(
            reference=job.reference,
            title="Copy",
            customer=job.customer,
            pipeline=job.pipeline,
            current_stage=job.current_stage,
            owner=job.owner,
        )


@pytest.mark.parametrize("status", [Job.Status.DONE, Job.Status.CANCELLED])
def test_it_refuses_a_closed_job_without_closed_at(job: Job, status: str) -> None:
    with violates("job_closed_at_matches_status"):
        Job.objects.filter(pk=job.pk).update(status=status)


@pytest.mark.parametrize("status", [Job.Status.ACTIVE, Job.Status.ON_HOLD])
def test_it_refuses_an_open_job_with_closed_at(job: Job, status: str) -> None:
    with violates("job_closed_at_matches_status"):
        Job.objects.filter(pk=job.pk).update(status=status, closed_at=timezone.now())


def test_it_refuses_a_second_milestone_for_the_same_stage(job: Job) -> None:
    with violates("milestone_one_per_job_stage", sqlite_says="crm_milestone.job_id, crm_milestone.stage_id"):
        Milestone.objects.create(job=job, stage=job.current_stage)


@pytest.mark.parametrize(
    ("planned", "forecast"),
    [(date(2026, 3, 2), None), (None, date(2026, 3, 2))],
)
def test_it_keeps_planned_and_forecast_dates_together(job: Job, planned: date | None, forecast: date | None) -> None:
    extra_stage = StageTemplate.objects.create(pipeline=job.pipeline, position=7, name="Extra")

    with violates("milestone_planned_and_forecast_together"):
        Milestone.objects.create(job=job, stage=extra_stage, planned_date=planned, forecast_date=forecast)


def test_it_allows_a_milestone_without_any_date(job: Job) -> None:
    extra_stage = StageTemplate.objects.create(pipeline=job.pipeline, position=7, name="Extra")

    milestone = Milestone.objects.create(job=job, stage=extra_stage)

    assert milestone.planned_date is None
    assert milestone.forecast_date is None


def test_it_says_which_jobs_are_open(job: Job) -> None:
    assert job.is_open
    job.status = Job.Status.ON_HOLD
    assert job.is_open
    job.status = Job.Status.DONE
    assert not job.is_open
    job.status = Job.Status.CANCELLED
    assert not job.is_open


# --- Milestone.is_late ------------------------------------------------------------------------------


def _milestone(planned: date | None, forecast: date | None, *, done: bool = False) -> Milestone:
    return Milestone(planned_date=planned, forecast_date=forecast, completed_at=NOON_UTC if done else None)


@pytest.mark.parametrize(
    ("planned", "forecast", "done", "late"),
    [
        # On plan, still ahead.
        (date(2026, 3, 12), date(2026, 3, 12), False, False),
        # Due today is not late yet.
        (date(2026, 3, 10), date(2026, 3, 10), False, False),
        # Expected later than first promised.
        (date(2026, 3, 12), date(2026, 3, 13), False, True),
        # Expected sooner than promised: good news, not late.
        (date(2026, 3, 12), date(2026, 3, 11), False, False),
        # The date passed without the stage being reached.
        (date(2026, 3, 9), date(2026, 3, 9), False, True),
        # Reached: never late, whatever the dates say.
        (date(2026, 3, 9), date(2026, 3, 9), True, False),
        (date(2026, 3, 12), date(2026, 3, 20), True, False),
        # Not planned at all.
        (None, None, False, False),
    ],
)
def test_it_says_whether_a_milestone_is_late(
    time_machine, planned: date | None, forecast: date | None, done: bool, late: bool
) -> None:
    time_machine.move_to(NOON_UTC, tick=False)

    assert _milestone(planned, forecast, done=done).is_late is late


def test_it_counts_a_milestone_late_from_the_business_day(time_machine) -> None:
    # 23:30 UTC on 10 March is 00:30 on 11 March in Paris: the business day is the 11th, the day
    # milestone_move already refuses the 10th as "in the past".
    time_machine.move_to(datetime(2026, 3, 10, 23, 30, tzinfo=UTC), tick=False)

    assert _milestone(date(2026, 3, 10), date(2026, 3, 10)).is_late is True


def test_it_counts_a_milestone_late_from_the_business_day_whatever_zone_is_active(time_machine) -> None:
    # A page rendered for a contact in New York activates their zone; "late" stays a business fact.
    time_machine.move_to(datetime(2026, 3, 11, 3, 0, tzinfo=UTC), tick=False)

    with timezone.override("America/New_York"):
        assert _milestone(date(2026, 3, 10), date(2026, 3, 10)).is_late is True


# --- JobEvent.summary -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "data", "summary"),
    [
        (
            JobEvent.Kind.STAGE_ADVANCED,
            {"from_stage": "Proposal sent", "to_stage": "Installed"},
            "Proposal sent → Installed",
        ),
        (
            JobEvent.Kind.STAGE_REVERTED,
            {"from_stage": "Installed", "to_stage": "Order confirmed"},
            "Installed → Order confirmed",
        ),
        (JobEvent.Kind.STAGE_ADVANCED, {}, "? → ?"),
        (
            JobEvent.Kind.DATE_MOVED,
            {"stage": "Installed", "old_date": "2026-03-30", "new_date": "2026-04-02", "reason": "Supplier late"},
            "Installed: Mon 30 Mar → Thu 2 Apr (Supplier late)",
        ),
        (JobEvent.Kind.OWNER_CHANGED, {"old_owner": "Bob Durand", "new_owner": "charlie"}, "Bob Durand → charlie"),
        (JobEvent.Kind.HELD, {"reason": "Customer abroad"}, "Customer abroad"),
        (JobEvent.Kind.CREATED, {"title": "Heat pump installation", "reason": ""}, "Heat pump installation"),
        (JobEvent.Kind.DETAILS_CHANGED, {"changed": {"title": {}}}, "title “?” → “?”"),
        (
            JobEvent.Kind.DETAILS_CHANGED,
            {"changed": {"title": {"old": "Boiler", "new": "Heat pump"}, "installers": {"names": []}}},
            "title “Boiler” → “Heat pump”; installers: none",
        ),
        (
            JobEvent.Kind.ROLE_CHANGED,
            {"changed": [{"role": "Installation coordinator", "old": "Bob Durand", "new": "Chloé Bernard"}]},
            "Installation coordinator: Bob Durand → Chloé Bernard",
        ),
        (
            JobEvent.Kind.DATES_TOLD,
            {
                "changes": [
                    {"stage": "Installation scheduled", "old_date": "2026-03-16", "new_date": "2026-03-23"},
                    {"stage": "Installed", "old_date": "2026-03-30", "new_date": "2026-04-06"},
                ]
            },
            "Installation scheduled: Mon 16 Mar → Mon 23 Mar; Installed: Mon 30 Mar → Mon 6 Apr",
        ),
    ],
)
def test_it_summarises_an_event_in_one_line(kind: str, data: dict, summary: str) -> None:
    assert JobEvent(kind=kind, data=data).summary == summary


def test_it_summarises_events_written_by_the_services(job: Job, bob: User, charlie: User) -> None:
    proposal = job.milestones.get(stage__name="Proposal sent")

    milestone_move(milestone=proposal, new_date=date(2026, 3, 9), reason="Supplier late", actor=bob)
    job_reassign(job=job, owner=charlie, actor=bob)

    summaries = [event.summary for event in JobEvent.objects.filter(job=job).order_by("id")]
    assert summaries == [
        "Heat pump installation",
        "Proposal sent: Thu 5 Mar → Mon 9 Mar (Supplier late)",
        "Bob Durand → charlie",
    ]


def test_it_lists_events_newest_first(time_machine, job: Job, bob: User, charlie: User) -> None:
    time_machine.move_to(datetime(2026, 3, 3, 9, 0, tzinfo=UTC), tick=False)
    job_reassign(job=job, owner=charlie, actor=bob)

    kinds = list(JobEvent.objects.filter(job=job).values_list("kind", flat=True))

    assert kinds == [JobEvent.Kind.OWNER_CHANGED, JobEvent.Kind.CREATED]


def test_a_promise_reads_in_the_staff_members_language_whatever_language_it_was_made_in() -> None:
    from django.utils import translation

    from crm.models import Commitment, Contact

    made_in_english = [
        Commitment(kind=Commitment.Kind.CALLBACK, title="A call back"),
        Commitment(kind=Commitment.Kind.ANSWER, title="An answer to your question"),
        Commitment(kind=Commitment.Kind.RECOVERY, title="Call Marie: low survey score", contact=Contact(name="Marie")),
        Commitment(kind=Commitment.Kind.DOCUMENT, title="The quote, signed"),
    ]
    with translation.override("fr"):
        assert [c.staff_title for c in made_in_english] == [
            "Rappeler",
            "Répondre à la question du client",
            "Appeler Marie : note basse à l’enquête",
            "The quote, signed",  # typed by staff: as typed
        ]
