"""Retention: FILE_RETENTION_MONTHS calendar months after a job closed, the bytes of its files
(and thumbnails) leave storage, the rows say when, and the job's log says which — once, however
often or concurrently the daily schedule runs, and never for a job that is open again."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.management import call_command
from django.db import connection
from django.utils.module_loading import import_string
from django_q.models import Schedule

import crm.services.file_retention as retention
from crm.models import Contact, Customer, Job, JobEvent, JobFile, Pipeline
from crm.services.file_retention import files_expire, months_before
from crm.services.files import document_share
from crm.services.jobs import job_cancel, job_complete, job_create
from crm.uploads import inspect
from tests.files import PDF, received

pytestmark = pytest.mark.django_db

# bob completes the job on the last day of March (a month with more days than February).
CLOSED = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
A_YEAR_LATER = datetime(2027, 3, 31, 12, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _a_year(settings: Any) -> None:
    settings.FILE_RETENTION_MONTHS = 12


def with_files(job: Job, contact: Contact, bob: User) -> list[JobFile]:
    """Two photos from the customer (each with a thumbnail) and a PDF shared by bob (none)."""
    photos = received(job, contact, "roof.jpg", "meter.jpg")
    quote = document_share(job=job, actor=bob, document=inspect("quote.pdf", PDF), title="Quote")
    return [*photos, quote]


def close(job: Job, bob: User, time_machine: Any, at: datetime = CLOSED) -> Job:
    time_machine.move_to(at, tick=False)
    return job_complete(job=job, actor=bob)


def names_in_storage(files: list[JobFile]) -> list[str]:
    return [name for f in files for name in (f.file.name, f.thumbnail.name) if name and default_storage.exists(name)]


def removal_events(job: Job) -> list[JobEvent]:
    return list(job.events.filter(kind=JobEvent.Kind.FILES_REMOVED).order_by("pk"))


def another_job(customer: Customer, contact: Contact, installation: Pipeline, bob: User) -> Job:
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Battery",
        actor=bob,
        notify_customer=False,
        not_told_reason="Opened before the test.",
    )


def test_calendar_months_keep_the_day_or_take_the_last_of_a_shorter_month() -> None:
    assert months_before(datetime(2027, 3, 31, 12, tzinfo=UTC), 1) == datetime(2027, 2, 28, 12, tzinfo=UTC)
    assert months_before(datetime(2028, 3, 31, 12, tzinfo=UTC), 1) == datetime(2028, 2, 29, 12, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, 8, 30, tzinfo=UTC), 13) == datetime(2024, 12, 15, 8, 30, tzinfo=UTC)
    assert months_before(datetime(2026, 5, 31, tzinfo=UTC), 12) == datetime(2025, 5, 31, tzinfo=UTC)


def test_the_files_of_a_job_closed_longer_ago_leave_storage_and_the_log_says_which(
    job: Job, contact: Contact, bob: User, time_machine: Any
) -> None:
    files = with_files(job, contact, bob)
    assert len(names_in_storage(files)) == 5  # two photos, their thumbnails, the PDF
    close(job, bob, time_machine)
    time_machine.move_to(A_YEAR_LATER, tick=False)

    assert files_expire() == 3

    assert names_in_storage(files) == []
    for document in JobFile.objects.filter(job=job):
        assert document.removed_at == A_YEAR_LATER
        assert document.file.name  # the row still says what was there
        assert not document.is_stored and not document.on_portal
    [event] = removal_events(job)
    assert event.actor is None
    assert event.created_at == A_YEAR_LATER  # "removed on …"
    assert sorted(event.data["names"]) == ["Quote", "meter.jpg", "roof.jpg"]
    assert event.data["months"] == 12
    assert event.data["size"] == sum(f.size for f in files)
    assert sorted(event.data["file_ids"]) == sorted(str(f.public_id) for f in files)
    assert set(event.summary.split(", ")) == {"Quote", "meter.jpg", "roof.jpg"}
    job.refresh_from_db()
    assert job.updated_at == A_YEAR_LATER  # the portal's cached page changes


def test_a_job_closed_less_long_ago_keeps_its_files_counted_in_calendar_months(
    job: Job, customer: Customer, contact: Contact, installation: Pipeline, bob: User, time_machine: Any
) -> None:
    battery = another_job(customer, contact, installation, bob)
    old = with_files(job, contact, bob)
    recent = with_files(battery, contact, bob)
    close(job, bob, time_machine, at=datetime(2026, 1, 31, 12, tzinfo=UTC))
    close(battery, bob, time_machine)  # 31 March
    open_one = another_job(customer, contact, installation, bob)
    still_open = with_files(open_one, contact, bob)

    # Eleven months after 31 March is 28 February: the battery's year has not passed.
    assert files_expire(now=datetime(2027, 2, 28, 12, 1, tzinfo=UTC)) == 3

    assert names_in_storage(old) == []
    assert len(names_in_storage(recent)) == 5
    assert len(names_in_storage(still_open)) == 5
    assert not JobFile.objects.filter(job__in=[battery, open_one], removed_at__isnull=False).exists()
    assert removal_events(battery) == [] and removal_events(open_one) == []
    # A minute short of the year, still kept; a minute past it, gone.
    assert files_expire(now=datetime(2027, 3, 31, 11, 59, tzinfo=UTC)) == 0
    assert files_expire(now=A_YEAR_LATER) == 3
    assert names_in_storage(recent) == []


def test_a_cancelled_job_counts_from_its_cancellation(job: Job, contact: Contact, bob: User, time_machine: Any) -> None:
    files = with_files(job, contact, bob)
    time_machine.move_to(CLOSED, tick=False)
    job_cancel(job=job, actor=bob, reason="Customer moved away")

    assert files_expire(now=A_YEAR_LATER) == 3
    assert names_in_storage(files) == []


def test_nothing_is_removed_while_the_setting_is_empty(
    settings: Any, job: Job, contact: Contact, bob: User, time_machine: Any
) -> None:
    settings.FILE_RETENTION_MONTHS = None
    files = with_files(job, contact, bob)
    close(job, bob, time_machine)

    assert files_expire(now=datetime(2040, 1, 1, tzinfo=UTC)) == 0

    assert len(names_in_storage(files)) == 5
    assert not JobFile.objects.filter(removed_at__isnull=False).exists()
    assert removal_events(job) == []


def test_a_second_run_does_nothing(job: Job, contact: Contact, bob: User, time_machine: Any) -> None:
    with_files(job, contact, bob)
    close(job, bob, time_machine)

    assert files_expire(now=A_YEAR_LATER) == 3
    assert files_expire(now=datetime(2027, 4, 1, tzinfo=UTC)) == 0

    assert len(removal_events(job)) == 1
    assert set(JobFile.objects.values_list("removed_at", flat=True)) == {A_YEAR_LATER}


def test_a_job_open_again_is_not_touched(job: Job, contact: Contact, bob: User, time_machine: Any) -> None:
    files = with_files(job, contact, bob)
    close(job, bob, time_machine)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.ACTIVE, closed_at=None)

    assert files_expire(now=A_YEAR_LATER) == 0

    assert len(names_in_storage(files)) == 5
    assert removal_events(job) == []


def test_a_job_opened_again_after_the_list_was_read_is_not_touched(
    job: Job, contact: Contact, bob: User, time_machine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = with_files(job, contact, bob)
    close(job, bob, time_machine)
    listed = retention.files_due

    def listed_then_reopened(**kwargs: Any) -> dict[int, list[int]]:
        due = listed(**kwargs)
        Job.objects.filter(pk=job.pk).update(status=Job.Status.ACTIVE, closed_at=None)
        return due

    monkeypatch.setattr(retention, "files_due", listed_then_reopened)

    assert files_expire(now=A_YEAR_LATER) == 0
    assert len(names_in_storage(files)) == 5


def test_files_another_run_removed_after_this_one_read_the_list_are_not_removed_twice(
    job: Job, contact: Contact, bob: User, time_machine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_files(job, contact, bob)
    close(job, bob, time_machine)
    listed = retention.files_due
    other_run: list[int] = []

    def listed_then_another_run(**kwargs: Any) -> dict[int, list[int]]:
        due = listed(**kwargs)
        monkeypatch.setattr(retention, "files_due", listed)
        other_run.append(files_expire(now=A_YEAR_LATER))  # the other worker, in between
        return due

    monkeypatch.setattr(retention, "files_due", listed_then_another_run)

    assert files_expire(now=A_YEAR_LATER) == 0  # its conditional claim found nothing left
    assert other_run == [3]
    assert len(removal_events(job)) == 1


def test_a_file_storage_would_not_delete_waits_for_the_next_run_and_the_others_go(
    job: Job, contact: Contact, bob: User, time_machine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    roof, meter, quote = with_files(job, contact, bob)
    close(job, bob, time_machine)
    delete = FileSystemStorage.delete

    def refuse_the_roof(storage: FileSystemStorage, name: str) -> None:
        if name == roof.file.name:
            raise OSError("Permission denied")
        delete(storage, name)

    monkeypatch.setattr(FileSystemStorage, "delete", refuse_the_roof)

    assert files_expire(now=A_YEAR_LATER) == 2

    assert names_in_storage([meter, quote]) == []
    roof.refresh_from_db()
    assert roof.removed_at is None
    assert default_storage.exists(roof.file.name)
    [first] = removal_events(job)
    assert sorted(first.data["names"]) == ["Quote", "meter.jpg"]

    monkeypatch.setattr(FileSystemStorage, "delete", delete)
    assert files_expire(now=datetime(2027, 4, 1, tzinfo=UTC)) == 1

    assert names_in_storage([roof]) == []
    assert [e.data["names"] for e in removal_events(job)] == [first.data["names"], ["roof.jpg"]]


def test_a_run_that_failed_after_deleting_bytes_is_finished_by_the_next(
    job: Job, contact: Contact, bob: User, time_machine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = with_files(job, contact, bob)
    close(job, bob, time_machine)

    def log_down(**kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(retention, "record_event", log_down)
    assert files_expire(now=A_YEAR_LATER) == 0  # logged; its transaction rolled back
    assert names_in_storage(files) == []  # the bytes had gone already
    assert not JobFile.objects.filter(removed_at__isnull=False).exists()

    monkeypatch.undo()
    assert files_expire(now=A_YEAR_LATER) == 3  # deleting what is gone is no error
    assert len(removal_events(job)) == 1


def test_a_run_is_bounded_and_keeps_each_jobs_files_in_one_event(
    job: Job, customer: Customer, contact: Contact, installation: Pipeline, bob: User, time_machine: Any
) -> None:
    battery = another_job(customer, contact, installation, bob)
    with_files(job, contact, bob)
    with_files(battery, contact, bob)
    close(job, bob, time_machine, at=datetime(2026, 3, 1, tzinfo=UTC))
    close(battery, bob, time_machine)

    # Four files allowed: the battery's three would not fit after the first job's, so they wait.
    assert files_expire(now=A_YEAR_LATER, batch=4) == 3
    assert len(removal_events(job)) == 1 and removal_events(battery) == []
    assert files_expire(now=A_YEAR_LATER, batch=4) == 3
    assert len(removal_events(battery)) == 1
    assert files_expire(now=A_YEAR_LATER, batch=4) == 0


def test_a_job_with_more_files_than_a_run_takes_several_runs(
    job: Job, contact: Contact, bob: User, time_machine: Any
) -> None:
    with_files(job, contact, bob)
    close(job, bob, time_machine)

    assert files_expire(now=A_YEAR_LATER, batch=2) == 2
    assert files_expire(now=A_YEAR_LATER, batch=2) == 1
    assert files_expire(now=A_YEAR_LATER, batch=2) == 0
    assert [len(e.data["names"]) for e in removal_events(job)] == [2, 1]


def test_the_daily_schedule_runs_the_retention(job: Job, contact: Contact, bob: User, time_machine: Any) -> None:
    call_command("setup_schedules", stdout=StringIO())
    schedule = Schedule.objects.get(name="file-retention")
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "crm.tasks.expire_files",
        Schedule.MINUTES,
        24 * 60,
        -1,
    )
    files = with_files(job, contact, bob)
    close(job, bob, time_machine)
    task = import_string(schedule.func)

    assert task() == 0  # closed today
    time_machine.move_to(A_YEAR_LATER, tick=False)
    assert task() == 3
    assert names_in_storage(files) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_two_runs_at_once_remove_and_record_each_file_once(
    job: Job, contact: Contact, bob: User, time_machine: Any
) -> None:
    files = with_files(job, contact, bob)
    close(job, bob, time_machine)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(files_expire(now=A_YEAR_LATER))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(results) == [0, 3]
    assert names_in_storage(files) == []
    assert len(removal_events(job)) == 1
