"""crm.services.jobs.jobs_advance: several jobs moved forward at once, each exactly as job_advance
would move it, in a fixed number of statements; a refusal names every job and changes none.

Time is frozen on Monday 2 March 2026, 10:00 in Paris (the jobs' start date).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.errors import DomainError
from crm.models import Commitment, Contact, Customer, Job, JobEvent, Message, Pipeline, StageTemplate
from crm.services.jobs import BULK_MOVE_MAX, job_advance, job_create, job_hold, jobs_advance

PARIS = ZoneInfo("Europe/Paris")
MONDAY = date(2026, 3, 2)


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(datetime(2026, 3, 2, 10, 0, tzinfo=PARIS), tick=False)


def stage(pipeline: Pipeline, name: str) -> StageTemplate:
    return pipeline.stages.get(name=name)


@pytest.fixture
def make_jobs(installation: Pipeline, bob: User) -> Callable[[int], list[Job]]:
    """``n`` jobs, each for its own household with one contact (alternately French and English)."""

    def make(n: int) -> list[Job]:
        jobs = []
        for i in range(n):
            customer = Customer.objects.create(name=f"Household {i}")
            contact = Contact.objects.create(
                customer=customer, name=f"Client {i}", email=f"client{i}@example.com", language="fr" if i % 2 else "en"
            )
            jobs.append(
                job_create(
                    customer=customer,
                    pipeline=installation,
                    owner=bob,
                    title=f"Heat pump {i}",
                    actor=bob,
                    contacts=[contact],
                    start_date=MONDAY,
                    notify_customer=False,
                    not_told_reason="Opened before the test.",
                )
            )
        return jobs

    return make


def state(jobs: list[Job]) -> dict[str, Any]:
    """Everything a stage change writes, per job."""
    ids = [j.pk for j in jobs]
    return {
        "stages": dict(Job.objects.filter(pk__in=ids).values_list("pk", "current_stage__name")),
        "reached": sorted(
            Job.objects.filter(pk__in=ids, milestones__completed_at__isnull=False).values_list(
                "pk", "milestones__stage__name"
            )
        ),
        "events": JobEvent.objects.filter(job__in=ids).count(),
        "messages": Message.objects.filter(job__in=ids).count(),
        "kept": Commitment.objects.filter(job__in=ids, state=Commitment.State.KEPT).count(),
    }


def comparable(job: Job) -> dict[str, Any]:
    """What a stage change leaves on one job, without ids and times."""
    event = JobEvent.objects.filter(job=job, kind=JobEvent.Kind.STAGE_ADVANCED).get()
    message = Message.objects.get(job=job)
    return {
        "stage": Job.objects.get(pk=job.pk).current_stage.name,
        "reached": sorted(job.milestones.filter(completed_at__isnull=False).values_list("stage__name", flat=True)),
        "kept": sorted(Commitment.objects.filter(job=job, state=Commitment.State.KEPT).values_list("title", flat=True)),
        "event": {k: v for k, v in event.data.items() if not k.endswith("_id")},
        "message": (message.kind, message.channel, message.status, message.language, message.to_address),
        "subject": message.subject,
    }


def test_it_moves_each_job_as_a_single_advance_would(make_jobs, installation: Pipeline, bob: User) -> None:
    one, *many = make_jobs(4)
    installed = stage(installation, "Order confirmed")

    job_advance(job=one, to_stage=installed, actor=bob, note="The parts are in")
    moved = jobs_advance(jobs=many, to_stage=installed, actor=bob, note="The parts are in")

    assert [j.pk for j in moved] == sorted(j.pk for j in many)
    reference = comparable(one)
    for job in many:
        got = comparable(job)
        # Each message is addressed to its own contact, in their language.
        assert got["message"][3:] == (job.contacts.get().language, job.contacts.get().email)
        assert {**got, "message": got["message"][:3], "subject": ""} == {
            **reference,
            "message": reference["message"][:3],
            "subject": "",
        }
    assert reference["reached"] == ["Order confirmed", "Proposal sent", "Request received"]
    assert reference["kept"] == ["Order confirmed", "Proposal sent"]
    assert reference["event"]["note"] == "The parts are in"


def test_it_queues_one_message_per_contact_and_sends_each_once(
    make_jobs, installation: Pipeline, bob: User, django_capture_on_commit_callbacks
) -> None:
    from django.core import mail

    jobs = make_jobs(3)

    with django_capture_on_commit_callbacks(execute=True):
        jobs_advance(jobs=jobs, to_stage=stage(installation, "Proposal sent"), actor=bob)

    messages = Message.objects.filter(job__in=jobs)
    assert sorted(messages.values_list("to_address", flat=True)) == [f"client{i}@example.com" for i in range(3)]
    assert set(messages.values_list("status", flat=True)) == {Message.Status.SENT}
    assert sorted(e.to[0] for e in mail.outbox) == [f"client{i}@example.com" for i in range(3)]
    french = Message.objects.get(to_address="client1@example.com")
    assert french.body_text.startswith("Bonjour Client 1,")


def test_it_sends_nothing_for_an_internal_stage(make_jobs, installation: Pipeline, bob: User) -> None:
    jobs = make_jobs(2)
    jobs_advance(jobs=jobs, to_stage=stage(installation, "Follow-up"), actor=bob)

    assert not Message.objects.filter(job__in=jobs).exists()
    assert JobEvent.objects.filter(job__in=jobs, kind=JobEvent.Kind.STAGE_ADVANCED).count() == 2


def test_it_refuses_the_whole_move_and_names_every_job_that_cannot_go(
    make_jobs, installation: Pipeline, bob: User, repair: Pipeline
) -> None:
    free, held, ahead, done = make_jobs(4)
    job_hold(job=held, actor=bob, reason="Customer abroad")
    job_advance(job=ahead, to_stage=stage(installation, "Installed"), actor=bob)
    job_advance(job=done, to_stage=stage(installation, "Order confirmed"), actor=bob)
    before = state([free, held, ahead, done])

    with pytest.raises(DomainError) as refused:
        jobs_advance(jobs=[free, held, ahead, done], to_stage=stage(installation, "Order confirmed"), actor=bob)

    text = str(refused.value)
    assert text.startswith("Nothing was moved.")
    assert f"Job {held.reference} is on hold" in text
    assert "from “Installed” to “Order confirmed” needs a reason" in text
    assert f"Job {done.reference} is already at “Order confirmed”" in text
    assert free.reference not in text
    assert state([free, held, ahead, done]) == before


def test_it_refuses_a_stage_of_another_pipeline(make_jobs, bob: User, repair: Pipeline) -> None:
    jobs = make_jobs(2)
    with pytest.raises(DomainError, match="belongs to the Repair pipeline"):
        jobs_advance(jobs=jobs, to_stage=repair.stages.order_by("position")[1], actor=bob)


def test_it_refuses_an_empty_choice_and_too_many_jobs(make_jobs, installation: Pipeline, bob: User) -> None:
    with pytest.raises(DomainError, match="Choose at least one job"):
        jobs_advance(jobs=[], to_stage=stage(installation, "Proposal sent"), actor=bob)

    [job] = make_jobs(1)
    too_many = [Job(pk=job.pk + n) for n in range(BULK_MOVE_MAX + 1)]
    with pytest.raises(DomainError, match=f"at most {BULK_MOVE_MAX} jobs"):
        jobs_advance(jobs=too_many, to_stage=stage(installation, "Proposal sent"), actor=bob)


def test_it_says_when_a_chosen_job_no_longer_exists(make_jobs, installation: Pipeline, bob: User) -> None:
    [job] = make_jobs(1)
    gone = Job(pk=job.pk + 1000)

    with pytest.raises(DomainError, match="no longer exists"):
        jobs_advance(jobs=[job, gone], to_stage=stage(installation, "Proposal sent"), actor=bob)

    assert Job.objects.get(pk=job.pk).current_stage.name == "Request received"


def test_it_takes_a_fixed_number_of_statements_however_many_jobs_move(
    make_jobs, installation: Pipeline, bob: User
) -> None:
    few, many = make_jobs(1), make_jobs(25)
    target = stage(installation, "Proposal sent")

    with CaptureQueriesContext(connection) as one_job:
        job_advance(job=few[0], to_stage=target, actor=bob)
    with CaptureQueriesContext(connection) as twenty_five:
        jobs_advance(jobs=many, to_stage=target, actor=bob)

    # Lock, read jobs, milestones; update milestones, promises, jobs; insert events; contacts;
    # insert messages, read them back, move the jobs' versions (inside the test's transaction:
    # savepoints, no BEGIN/COMMIT).
    # 14 with the webhook subscribers read once for the whole move (crm.services.webhooks).
    assert len(one_job.captured_queries) <= 14, [q["sql"][:80] for q in one_job.captured_queries]
    assert len(twenty_five.captured_queries) == len(one_job.captured_queries)
    assert Message.objects.filter(job__in=many).count() == 25
