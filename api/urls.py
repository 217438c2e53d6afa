"""/api/v1/: the NinjaAPI, its routers, and every error as an RFC 9457 problem (never a 500 for
bad input: a body that is not JSON, wrong types, unknown fields, a body too large)."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import re_path
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from api import problems
from api.auth import ApiKeyAuth
from api.problems import Problem, field_error
from api.routes import customers, jobs, messages, reports

DESCRIPTION = """The customer portal's API for other systems (ERP, accounting, scheduling).

Authenticate with an API key made by a manager (Settings → API keys):
`Authorization: Bearer cpk_…`. Each operation needs one scope. Errors are RFC 9457 problem
documents. Write calls accept an `Idempotency-Key` header. Lists are paged by cursor
(`next_cursor`) and take `updated_since` for incremental syncs. See docs/api.md."""

api = NinjaAPI(
    title="Customer portal API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=ApiKeyAuth(),
    openapi_url="/schema/",
    docs_url="/docs/",
)
for module in (customers, jobs, messages, reports):
    api.add_router("/", module.router)


@api.exception_handler(Problem)
def _problem(request: HttpRequest, error: Problem) -> HttpResponse:
    return problems.response(error)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, error: ValidationError) -> HttpResponse:
    errors = []
    for item in error.errors:
        location = [str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path")]
        # ninja names the body argument itself ("body"): the field is what comes after it.
        if location[:1] == ["payload"]:
            location = location[1:]
        errors.append(field_error(".".join(location) or "body", str(item.get("msg", "invalid"))))
    return problems.response(Problem(400, "The request does not have the expected shape.", errors=errors))


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return problems.response(Problem(401, "Send your API key as “Authorization: Bearer <key>”."))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    return problems.response(Problem(error.status_code, str(error)))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return problems.response(Problem(404, "Nothing here."))


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, error: RequestDataTooBig) -> HttpResponse:
    return problems.response(Problem(413, "The body is too large."))


def _no_such_operation(request: HttpRequest, rest: str = "") -> HttpResponse:
    return problems.response(Problem(404, "No operation at this address: see /api/v1/docs/."))


# Any other address under /api/v1/ is a problem document too, never an HTML page.
urlpatterns = [*api.urls[0], re_path(r"^(?P<rest>.*)$", _no_such_operation)]
