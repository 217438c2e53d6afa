"""Errors as RFC 9457 problem details (application/problem+json): a status, a title, a detail
written for the developer reading it, and, where a field is at fault, ``errors`` naming it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpResponse

from crm.errors import ConflictError, DomainError

PROBLEM_TYPE = "about:blank"
CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """Raised anywhere under the API; answered as a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Sequence[dict[str, Any]] = (),
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}
        self.extra = extra


def field_error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def response(problem: Problem) -> HttpResponse:
    document: dict[str, Any] = {
        "type": PROBLEM_TYPE,
        "title": HTTPStatus(problem.status).phrase,
        "status": problem.status,
        "detail": problem.detail,
        **problem.extra,
    }
    if problem.errors:
        document["errors"] = problem.errors
    answer = HttpResponse(json.dumps(document, ensure_ascii=False), status=problem.status, content_type=CONTENT_TYPE)
    for name, value in problem.headers.items():
        answer[name] = value
    return answer


@contextmanager
def rules_about(field: str | None) -> Iterator[None]:
    """A service's refusal as a problem: a conflict (someone moved it first) is a 409, any other
    rule of the business a 422 naming ``field`` (the input the rule is about)."""
    try:
        yield
    except ConflictError as error:
        raise Problem(409, str(error)) from error
    except DomainError as error:
        raise Problem(422, str(error), errors=[field_error(field, str(error))] if field else []) from error
    except ValidationError as error:
        errors = validation_errors(error, field=field)
        raise Problem(422, " ".join(e["message"] for e in errors), errors=errors) from error


def validation_errors(error: ValidationError, *, field: str | None = None) -> list[dict[str, str]]:
    """A model's or form's ValidationError as named fields (``__all__`` as ``field``)."""
    if not hasattr(error, "error_dict"):
        return [field_error(field or "", str(message)) for message in error.messages]
    return [
        field_error(field or "" if name == "__all__" else name, str(message))
        for name, messages in error.message_dict.items()
        for message in messages
    ]
