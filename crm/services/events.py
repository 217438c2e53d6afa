"""The job's append-only log. Every service records what it did here, inside its transaction."""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from crm.models import Job, JobEvent


def event(
    *, kind: str, actor: AbstractBaseUser | None, job: Job | None = None, job_id: int | None = None, **data: Any
) -> JobEvent:
    """One log line, not yet saved (for record_events)."""
    if job is not None:
        return JobEvent(job=job, kind=kind, actor=actor, data=data)
    return JobEvent(job_id=job_id, kind=kind, actor=actor, data=data)


def record_event(*, job: Job, kind: str, actor: AbstractBaseUser | None, **data: Any) -> JobEvent:
    return JobEvent.objects.create(job=job, kind=kind, actor=actor, data=data)


def record_events(events: Iterable[JobEvent]) -> list[JobEvent]:
    """Save several log lines in one INSERT (their ids are set on PostgreSQL and SQLite)."""
    rows = list(events)
    return JobEvent.objects.bulk_create(rows) if rows else []
