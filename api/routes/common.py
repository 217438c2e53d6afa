"""What several routers share: finding a row by id (404 as a problem), the page arguments."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from api.problems import Problem, field_error

M = TypeVar("M", bound=Model)


def found(queryset: QuerySet[M], *, what: str, **lookup: Any) -> M:
    row = queryset.filter(**lookup).first()
    if row is None:
        raise Problem(404, f"No {what} with this id.")
    return row


def referenced(queryset: QuerySet[M], pk: int | None, *, field: str, what: str) -> M:
    """A row an input names by id: a missing one is a 422 naming the field (the request is
    well-formed, what it points at is not there)."""
    row = queryset.filter(pk=pk).first() if pk is not None else None
    if row is None:
        raise Problem(422, f"No {what} with id {pk}.", errors=[field_error(field, "not found")])
    return row
