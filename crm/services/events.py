"""The job's append-only log. Every service records what it did here, inside its transaction."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from crm.models import Job, JobEvent


def record_event(*, job: Job, kind: str, actor: AbstractBaseUser | None, **data: Any) -> JobEvent:
    return JobEvent.objects.create(job=job, kind=kind, actor=actor, data=data)
