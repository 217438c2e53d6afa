"""A job's version: ``Job.updated_at``, moved by every change its customer could see.

The portal's live poll answers "nothing changed" by it and the job page is cached under it
(portal.job_page), so a version must never come back: each one is later than the last, even when
the clock has not moved on (two changes in the same microsecond, a clock stepped back, a frozen
clock in tests). Services moving it on a job they hold (read under lock) use ``next_version``; on
rows by id, ``jobs_touch`` or ``version_after`` in their UPDATE.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from crm.models import Job

TICK = timedelta(microseconds=1)


def next_version(previous: datetime, now: datetime | None = None) -> datetime:
    """Now, or a microsecond after ``previous`` when the clock has not passed it."""
    now = now or timezone.now()
    return now if now > previous else previous + TICK


def version_after(now: datetime | None = None) -> Greatest:
    """``next_version`` in SQL, for an UPDATE of many jobs."""
    return Greatest(
        Value(now or timezone.now(), output_field=DateTimeField()),
        F("updated_at") + TICK,
        output_field=DateTimeField(),
    )


def jobs_touch(job_ids: Iterable[int | None]) -> None:
    """Move the version of these jobs (one UPDATE; ids that are None are skipped)."""
    ids = {pk for pk in job_ids if pk is not None}
    if ids:
        Job.objects.filter(pk__in=ids).update(updated_at=version_after())


def pipeline_jobs_touch(pipeline_id: int) -> None:
    """A stage's name, instructions or visibility changed: every page of the pipeline's jobs shows
    it (one UPDATE)."""
    Job.objects.filter(pipeline_id=pipeline_id).update(updated_at=version_after())


def owner_jobs_touch(user_id: int) -> None:
    """What customers see of a person changed (name, phone, job title): the live pages of the jobs
    they own show the new card (one UPDATE)."""
    Job.objects.filter(owner_id=user_id).update(updated_at=version_after())
