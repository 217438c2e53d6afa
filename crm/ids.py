"""Row ids read from what a page carries (a query string, a form value, a URL), strictly: ASCII
digits only ("²".isdigit() is true, but int("²") fails), and within the range of the model's
primary key column as PostgreSQL declares it (``integer`` for Django's own tables, ``bigint`` for
ours) — the same answer on SQLite, where the database itself would overflow at a different limit
or not at all, so a value is refused before any query is made.

Public ids (a job's UUID) likewise: ``parse_public_id``.

Below forms and selectors alike (crm.forms.fields builds its fields on it, crm.selectors filters
with it): it knows no form, request or HTTP error.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations


def max_id(model: type[models.Model]) -> int:
    """The largest primary key ``model``'s table can hold on PostgreSQL."""
    pk = model._meta.pk
    assert pk is not None
    return BaseDatabaseOperations.integer_field_ranges[pk.get_internal_type()][1]


def id_from_input(value: Any, model: type[models.Model]) -> int | None:
    """The primary key of ``model`` that ``value`` (a query-string or form value) names, or None
    when it cannot name one: empty, not ASCII digits, zero, or beyond what the column holds."""
    if isinstance(value, model):
        return value.pk
    if isinstance(value, bool):
        return None
    text = str(value).strip() if value is not None else ""
    limit = max_id(model)
    # The length first: int() of thousands of digits is slow, then refused by Python itself.
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(limit)):
        return None
    number = int(text)
    return number if 1 <= number <= limit else None


def parse_public_id(value: str | None) -> uuid.UUID | None:
    """A job's public id from a query string or a token, or None when it is missing or malformed."""
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
