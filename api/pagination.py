"""Cursor pagination: a page is the rows after the cursor in a fixed order (a timestamp, then the
id), so rows inserted or changed while a client pages through never make it skip one. Ordered by
updated_at (customers, contacts, jobs), a changed row moves to the end and is seen again, which is
what an incremental sync wants; ordered by id (messages, questions, surveys), a new row comes last
and ``updated_since`` finds the rows that changed."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet
from django.utils.dateparse import parse_datetime

from api.problems import Problem, field_error

M = TypeVar("M", bound=Model)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def _encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise Problem(
            400, "The cursor is not one this API gave.", errors=[field_error("cursor", "unreadable")]
        ) from error
    if not isinstance(values, list) or len(values) != 2 or not isinstance(values[1], int):
        raise Problem(400, "The cursor is not one this API gave.", errors=[field_error("cursor", "unreadable")])
    return values


def page(
    queryset: QuerySet[M],
    *,
    cursor: str | None,
    limit: int,
    by: str,
    row: Callable[[M], dict[str, Any]],
) -> dict[str, Any]:
    """One page of ``queryset`` ordered by (``by``, id): ``{"results": […], "next_cursor": …}``;
    ``next_cursor`` is null on the last page; ``row`` is each result's representation."""
    ordered = queryset.order_by(by, "pk")
    if cursor:
        mark, last_pk = _decode(cursor)
        if by == "pk":
            ordered = ordered.filter(pk__gt=last_pk)
        else:
            try:
                moment = parse_datetime(mark) if isinstance(mark, str) else None
            except ValueError:  # well-formed but impossible ("2026-13-45T…", "+99:00")
                moment = None
            if moment is None:
                raise Problem(400, "The cursor is not one this API gave.", errors=[field_error("cursor", "unreadable")])
            ordered = ordered.filter(Q(**{f"{by}__gt": moment}) | Q(**{by: moment, "pk__gt": last_pk}))
    rows = list(ordered[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        mark = getattr(last, by) if by != "pk" else last.pk
        next_cursor = _encode([mark.isoformat() if isinstance(mark, datetime) else mark, last.pk])
    return {"results": [row(r) for r in rows], "next_cursor": next_cursor}
