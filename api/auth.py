"""Who calls: an API key in ``Authorization: Bearer <key>`` (nothing else — no session, staff or
portal, is ever read here), within its rate limit, with the scope each operation needs; a write
acts as the key's owner, each log line saying “via API key …”."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer

from api.problems import Problem
from crm import ratelimit
from crm.models import ApiKey
from crm.services.api_keys import api_key_for, api_key_used
from crm.services.webhooks import acting_via

F = TypeVar("F", bound=Callable[..., Any])

RATE_WINDOW = 60


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="api"'})


class ApiKeyAuth(HttpBearer):
    """A live key within its rate limit, with ``scope`` when one is named (checked before the body
    is read: a key without the scope learns nothing about the request's shape)."""

    def __init__(self, scope: str | None = None) -> None:
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest) -> ApiKey:
        header = request.headers.get("Authorization", "")
        scheme, _sep, token = header.partition(" ")
        if not header:
            raise _unauthorized("Send your API key as “Authorization: Bearer <key>”.")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("The Authorization header must be “Bearer <key>”.")
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        key = api_key_for(token)
        if key is None:
            raise _unauthorized("This API key is unknown or has been revoked.")
        limit = settings.API_RATE_LIMIT_PER_MINUTE
        if not ratelimit.allow("api", key.prefix, limit=limit, window=RATE_WINDOW):
            wait = RATE_WINDOW - int(time.time()) % RATE_WINDOW
            raise Problem(
                429,
                f"More than {limit} calls this minute with this key: try again in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.API_MAX_BODY_BYTES:
            raise Problem(413, f"The body is larger than {settings.API_MAX_BODY_BYTES} bytes.")
        api_key_used(key)
        if self.scope is not None and not key.has_scope(self.scope):
            raise Problem(403, f"This API key does not have the “{self.scope}” scope.", required_scope=self.scope)
        return key


def key_of(request: HttpRequest) -> ApiKey:
    return cast(ApiKey, request.auth)  # type: ignore[attr-defined]


def needs(scope: str) -> dict[str, Any]:
    """An operation's arguments for its scope: ``@router.get(..., **needs("jobs:read"))``."""
    return {"auth": ApiKeyAuth(scope), "openapi_extra": {"x-required-scope": scope}}


def acting(view: F) -> F:
    """What the operation writes is done as the key's owner, each log line “via API key …”."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        with acting_via(key_of(request).name):
            return view(request, *args, **kwargs)

    return cast(F, wrapper)
