"""What the ORM does not say: which rows an UPDATE changed, and a count as a subquery.

``QuerySet.update()`` returns a count. Claiming outbox rows (queued → sending) and recording them
sent need the ids of the rows this statement moved — not the ones another worker moved a moment
before — in one round trip, so they use ``UPDATE … RETURNING`` (PostgreSQL, and SQLite ≥ 3.35).
"""

from __future__ import annotations

from typing import Any, cast

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import F, Func, IntegerField, Model, QuerySet, Subquery
from django.db.models.sql import UpdateQuery


def update_returning_pks(queryset: QuerySet[Any], **values: Any) -> list[Any]:
    """``queryset.update(**values)``, returning the primary keys of the rows it changed.

    The filters must be on the model's own columns (no joins): that is what keeps the UPDATE a
    single statement that the database applies row by row under its own row locks.
    """
    model: type[Model] = queryset.model
    # chain(klass) returns the copy as an instance of klass (the stubs say only Query).
    query = cast(UpdateQuery, queryset.query.chain(UpdateQuery))
    query.add_update_values(values)
    if len(query.alias_map) > 1:
        raise ValueError("update_returning_pks() takes filters on the model's own columns only.")
    connection = connections[queryset.db]
    if not connection.features.can_return_rows_from_bulk_insert:
        raise NotImplementedError(f"{connection.vendor} cannot return rows from an UPDATE.")
    try:
        sql, params = query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:  # e.g. pk__in=[]: nothing can match
        return []
    if not sql:
        return []
    pk_column = connection.ops.quote_name(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {pk_column}", params)
        return [row[0] for row in cursor.fetchall()]


def count_of(queryset: QuerySet[Any]) -> Subquery:
    """Annotation: how many rows ``queryset`` holds (0 when none), as a scalar subquery — COUNT
    over the whole filtered set, with no GROUP BY, correlated when the filters use OuterRef. Two
    of them on one query do not multiply each other, unlike two joined Counts."""
    counted = queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")
    return Subquery(counted, output_field=IntegerField())
