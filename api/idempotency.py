"""``Idempotency-Key`` on write calls: the first answer is stored in the change's own transaction;
the same key with the same request within API_IDEMPOTENCY_HOURS gets that answer again and
changes nothing; the same key with another request is a 422. Two calls racing with one key: the
second waits on the first's row (its unique key) and then replays it."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from api.auth import key_of
from api.models import IdempotentRequest
from api.problems import Problem, field_error

F = TypeVar("F", bound=Callable[..., HttpResponse])

HEADER = "Idempotency-Key"


class _Refused(Exception):
    """The call answered 4xx: nothing it did is kept, nor its key."""

    def __init__(self, answer: HttpResponse) -> None:
        self.answer = answer


def _fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method or "", request.path, request.body):
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _replay(record: IdempotentRequest, fingerprint: str) -> HttpResponse:
    if record.fingerprint != fingerprint:
        raise Problem(
            422,
            "This Idempotency-Key was already used with another request: use a new key for a new request.",
            errors=[field_error(HEADER, "reused with another request")],
        )
    answer = HttpResponse(bytes(record.body), status=record.status_code, content_type="application/json")
    answer["Idempotent-Replayed"] = "true"
    return answer


def idempotent(view: F) -> F:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        key = request.headers.get(HEADER)
        if key is None:
            with transaction.atomic():
                return view(request, *args, **kwargs)
        if not 1 <= len(key) <= 255 or not key.isprintable():
            raise Problem(
                400, "An Idempotency-Key is 1 to 255 printable characters.", errors=[field_error(HEADER, "invalid")]
            )
        api_key = key_of(request)
        fingerprint = _fingerprint(request)
        since = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
        kept = IdempotentRequest.objects.filter(api_key=api_key, key=key)
        if (record := kept.filter(created_at__gte=since).first()) is not None:
            return _replay(record, fingerprint)
        try:
            with transaction.atomic():
                kept.filter(created_at__lt=since).delete()
                record = IdempotentRequest.objects.create(
                    api_key=api_key, key=key, fingerprint=fingerprint, status_code=0, body=b""
                )
                answer = view(request, *args, **kwargs)
                if not 200 <= answer.status_code < 300:
                    raise _Refused(answer)
                record.status_code = answer.status_code
                record.body = answer.content
                record.save(update_fields=["status_code", "body"])
        except _Refused as refused:
            return refused.answer
        except IntegrityError:
            # Another call with this key committed first (we waited for it on the unique key).
            if (record := kept.first()) is None:
                raise
            return _replay(record, fingerprint)
        return answer

    return cast(F, wrapper)
