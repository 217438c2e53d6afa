"""What several routers share: finding a row by id (404 as a problem), the page arguments."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from django.db.models import Model, QuerySet

from api.problems import Problem, field_error
from crm.models import Job

M = TypeVar("M", bound=Model)


def found(queryset: QuerySet[M], *, what: str, **lookup: Any) -> M:
    row = queryset.filter(**lookup).first()
    if row is None:
        raise Problem(404, f"No {what} with this id.")
    return row


def job_pk(public_id: UUID | None) -> int | None:
    """The id of the job a list is narrowed to (``?job_id=``): None for no narrowing, a 404 for a
    job that is not there."""
    if public_id is None:
        return None
    return found(Job.objects.all(), what="job", public_id=public_id).pk


def referenced(queryset: QuerySet[M], pk: int | None, *, field: str, what: str) -> M:
    """A row an input names by id: a missing one is a 422 naming the field (the request is
    well-formed, what it points at is not there)."""
    row = queryset.filter(pk=pk).first() if pk is not None else None
    if row is None:
        raise Problem(422, f"No {what} with id {pk}.", errors=[field_error(field, "not found")])
    return row
