"""The job's append-only log. Every service records what it did here, inside its transaction.

A line written during an API call says so (``via``: the key's name), and a line of a kind other
systems subscribe to stores its webhook deliveries in the same transaction (crm.services.webhooks).
"""

from collections.abc import Iterable
from typing import Any, cast, overload

from django.contrib.auth.models import User

from crm.models import Job, JobEvent
from crm.services.webhooks import current_via, events_emit


@overload
def event(*, kind: str, actor: User | None, job: Job, **data: Any) -> JobEvent: ...


@overload
def event(*, kind: str, actor: User | None, job_id: int, **data: Any) -> JobEvent: ...


def event(*, kind: str, actor: User | None, job: Job | None = None, job_id: int | None = None, **data: Any) -> JobEvent:
    """One log line, not yet saved (for record_events)."""
    data = _marked(data)
    if job is not None:
        return JobEvent(job=job, kind=kind, actor=actor, data=data)
    # Without a job, the overloads above require its id.
    return JobEvent(job_id=cast(int, job_id), kind=kind, actor=actor, data=data)


def record_event(*, job: Job, kind: str, actor: User | None, **data: Any) -> JobEvent:
    line = JobEvent.objects.create(job=job, kind=kind, actor=actor, data=_marked(data))
    events_emit([line])
    return line


def record_events(events: Iterable[JobEvent]) -> list[JobEvent]:
    """Save several log lines in one INSERT (their ids are set on PostgreSQL and SQLite)."""
    rows = list(events)
    if not rows:
        return []
    saved = JobEvent.objects.bulk_create(rows)
    events_emit(saved)
    return saved


def _marked(data: dict[str, Any]) -> dict[str, Any]:
    if via := current_via():
        return {**data, **via}
    return data
