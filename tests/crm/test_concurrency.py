"""Two people acting on the same job at the same moment, on a real database with row locks.

SQLite serialises whole transactions, so these only say something on PostgreSQL. Each thread has
its own connection and closes it at the end; the data is committed so every thread sees it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction

import crm.services.jobs as jobs_services
from crm.errors import ConflictError, DomainError
from crm.models import Contact, Customer, Job, JobEvent, JobReferenceCounter, Pipeline, StageTemplate
from crm.services.customers import contacts_delete
from crm.services.jobs import job_advance, job_create, job_hold
from crm.workdays import business_today

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]

Outcome = tuple[str, Any]


def _outcome(call: Callable[[], Any]) -> Outcome:
    try:
        return ("ok", call())
    except Exception as error:
        return ("error", error)
    finally:
        connection.close()


def run_together(*calls: Callable[[], Any], timeout: float = 10) -> list[Outcome]:
    """Start every call at the same moment, each in its own thread (and connection)."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Outcome] = [("not run", None)] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        def after_barrier() -> Any:
            barrier.wait(timeout=timeout)
            return call()

        outcomes[index] = _outcome(after_barrier)

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return outcomes


def run_alone(call: Callable[[], Any]) -> Outcome:
    return run_together(call)[0]


def wait_until_blocking_another_session(timeout: float = 3) -> bool:
    """Poll until another session waits for a lock this session holds."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # pg_stat_activity is read once per transaction unless the snapshot is cleared.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))")
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.01)
    return False


def run_blocked_behind(first: Callable[[], Any], second: Callable[[], Any]) -> Outcome:
    """Run ``first`` in this thread's transaction, then ``second`` in another thread, which has to
    wait for the first to commit; return what the second got."""
    outcomes: list[Outcome] = []
    thread = threading.Thread(target=lambda: outcomes.append(_outcome(second)))
    with transaction.atomic():
        first()
        thread.start()
        assert wait_until_blocking_another_session(), "the second call did not wait for the first"
    thread.join(timeout=10)
    assert not thread.is_alive(), "the second call is stuck"
    return outcomes[0]


def make_the_winner_wait_for_the_loser(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, the call that gets the job's lock first keeps it until the other call waits
    for it, so the two really overlap whatever the threads' timing."""
    record_event = jobs_services.record_event

    def record_event_once_the_other_waits(**kwargs: Any) -> JobEvent:
        wait_until_blocking_another_session()
        return record_event(**kwargs)

    monkeypatch.setattr(jobs_services, "record_event", record_event_once_the_other_waits)


def new_job(customer: Customer, pipeline: Pipeline, owner: User, title: str = "Heat pump installation") -> Job:
    # No contacts: these tests are about the job row, not the messages a stage change queues.
    return job_create(
        customer=customer,
        pipeline=pipeline,
        owner=owner,
        title=title,
        actor=owner,
        contacts=[],
        start_date=date(2026, 3, 2),
    )


TARGETS = pytest.mark.parametrize(
    "targets",
    [("Proposal sent", "Proposal sent"), ("Proposal sent", "Order confirmed")],
    ids=["same target", "different targets"],
)


def race_two_advances(
    monkeypatch: pytest.MonkeyPatch,
    customer: Customer,
    installation: Pipeline,
    alice: User,
    bob: User,
    targets: tuple[str, str],
) -> tuple[Job, list[Outcome], list[StageTemplate]]:
    job = new_job(customer, installation, bob)
    seen = installation.stages.get(name="Request received")
    to_stages = [installation.stages.get(name=name) for name in targets]
    make_the_winner_wait_for_the_loser(monkeypatch)

    outcomes = run_together(
        lambda: job_advance(job=job, to_stage=to_stages[0], actor=alice, expected_stage=seen),
        lambda: job_advance(job=job, to_stage=to_stages[1], actor=bob, expected_stage=seen),
    )
    return job, outcomes, to_stages


@TARGETS
def test_it_lets_only_one_of_two_simultaneous_advances_through(
    monkeypatch: pytest.MonkeyPatch,
    customer: Customer,
    installation: Pipeline,
    alice: User,
    bob: User,
    targets: tuple[str, str],
) -> None:
    job, outcomes, to_stages = race_two_advances(monkeypatch, customer, installation, alice, bob, targets)

    assert sorted(kind for kind, _ in outcomes) == ["error", "ok"], outcomes
    [winner] = [i for i, (kind, _) in enumerate(outcomes) if kind == "ok"]
    job.refresh_from_db()
    assert job.current_stage == to_stages[winner]
    advanced = JobEvent.objects.filter(job=job, kind=JobEvent.Kind.STAGE_ADVANCED)
    assert advanced.count() == 1
    assert advanced.get().actor == (alice, bob)[winner]
    assert JobEvent.objects.filter(job=job).count() == 2


@TARGETS
def test_it_tells_the_loser_of_two_simultaneous_advances_to_look_again(
    monkeypatch: pytest.MonkeyPatch,
    customer: Customer,
    installation: Pipeline,
    alice: User,
    bob: User,
    targets: tuple[str, str],
) -> None:
    _, outcomes, _ = race_two_advances(monkeypatch, customer, installation, alice, bob, targets)

    [error] = [value for kind, value in outcomes if kind == "error"]
    assert isinstance(error, ConflictError), repr(error)


def test_it_holds_a_job_right_after_a_colleague_advanced_it(
    customer: Customer, installation: Pipeline, alice: User, bob: User
) -> None:
    job = new_job(customer, installation, bob)

    kind, value = run_blocked_behind(
        lambda: job_advance(job=job, to_stage=installation.stages.get(name="Proposal sent"), actor=alice),
        lambda: job_hold(job=job, actor=bob, reason="Customer asked to wait"),
    )

    assert kind == "ok", repr(value)
    job.refresh_from_db()
    assert job.status == Job.Status.ON_HOLD
    assert job.current_stage.name == "Proposal sent"


def test_it_hands_out_distinct_references_to_simultaneous_creations(
    customer: Customer, installation: Pipeline, bob: User
) -> None:
    # No counter row for the year yet: the first creations race to insert it.
    assert not JobReferenceCounter.objects.exists()

    outcomes = run_together(*[lambda i=i: new_job(customer, installation, bob, f"Job {i}") for i in range(4)])

    assert [kind for kind, _ in outcomes] == ["ok"] * 4, outcomes
    year = business_today().year
    references = sorted(job.reference for _, job in outcomes)
    assert references == [f"J-{year}-{n:04d}" for n in range(1, 5)]
    assert JobReferenceCounter.objects.get(year=year).last_number == 4


def test_it_hands_out_distinct_references_when_the_year_has_started(
    customer: Customer, installation: Pipeline, bob: User
) -> None:
    first = new_job(customer, installation, bob)

    outcomes = run_together(*[lambda i=i: new_job(customer, installation, bob, f"Job {i}") for i in range(4)])

    assert [kind for kind, _ in outcomes] == ["ok"] * 4, outcomes
    year = business_today().year
    references = sorted([first.reference] + [job.reference for _, job in outcomes])
    assert references == [f"J-{year}-{n:04d}" for n in range(1, 6)]


# The services lock the job with select_for_update() after select_related("current_stage",
# "pipeline", "owner"); without of=("self",), PostgreSQL locks the joined stage, pipeline and user
# rows too, and inserting a row that references them waits for FOR KEY SHARE.


def _within_lock_timeout(call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '300ms'")
            return call()

    return run


def test_it_does_not_block_another_job_while_one_changes(customer: Customer, installation: Pipeline, bob: User) -> None:
    job, other = new_job(customer, installation, bob), new_job(customer, installation, bob, "Other job")

    with transaction.atomic():
        job_hold(job=job, actor=bob, reason="Waiting for permit")
        kind, value = run_alone(_within_lock_timeout(lambda: job_hold(job=other, actor=bob, reason="Customer away")))

    assert kind == "ok", value


def test_it_does_not_block_creating_a_job_while_one_changes(
    customer: Customer, installation: Pipeline, bob: User
) -> None:
    job = new_job(customer, installation, bob)

    with transaction.atomic():
        job_hold(job=job, actor=bob, reason="Waiting for permit")
        kind, value = run_alone(_within_lock_timeout(lambda: new_job(customer, installation, bob, "New job")))

    assert kind == "ok", value


# --- Deleting contacts --------------------------------------------------------------------------


def test_two_people_deleting_a_jobs_last_two_contacts_leave_it_one(
    customer: Customer, installation: Pipeline, alice: User, bob: User
) -> None:
    marie = Contact.objects.create(customer=customer, name="Marie", email="marie@example.com")
    paul = Contact.objects.create(customer=customer, name="Paul", email="paul@example.com")
    job = job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Heat pump installation",
        actor=bob,
        contacts=[marie, paul],
        notify_customer=False,
        not_told_reason="Concurrency test.",
    )

    kind, value = run_blocked_behind(
        lambda: contacts_delete(contacts=[marie], actor=alice),
        lambda: contacts_delete(contacts=[paul], actor=bob),
    )

    assert kind == "error" and isinstance(value, DomainError), (kind, value)
    assert "nobody else to tell" in str(value)
    assert list(job.contacts.all()) == [paul]
