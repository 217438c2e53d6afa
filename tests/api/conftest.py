"""An API client: Django's test client with an API key (alice's, a manager's, unless a test makes
another), and the JSON helpers every API test uses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from crm.models import ApiKey
from crm.services.api_keys import api_key_create

ALL_SCOPES = list(ApiKey.Scope.values)


class Api:
    """Calls /api/v1/ with a key; ``key=None`` calls without one."""

    def __init__(self, client: Client, key: str | None) -> None:
        self.client = client
        self.key = key

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        sent = dict(headers or {})
        if self.key is not None:
            sent.setdefault("Authorization", f"Bearer {self.key}")
        return sent

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params, headers=self._headers(headers))

    def post(
        self, path: str, body: Any = None, *, raw: bytes | str | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(
            f"/api/v1{path}", data=data, content_type="application/json", headers=self._headers(headers)
        )


@pytest.fixture
def make_key(alice: User) -> Callable[..., str]:
    def make(scopes: list[str] | None = None, *, owner: User | None = None, name: str = "ERP") -> str:
        _key, secret = api_key_create(name=name, owner=owner or alice, scopes=scopes or ALL_SCOPES, actor=alice)
        return secret

    return make


@pytest.fixture
def api(client: Client, make_key: Callable[..., str]) -> Api:
    return Api(client, make_key())


def problem(response: Any) -> dict[str, Any]:
    """The problem document of an error answer (asserting it is one)."""
    assert response["Content-Type"] == "application/problem+json", response.content
    document: dict[str, Any] = response.json()
    assert document["status"] == response.status_code
    assert document["title"] and document["detail"]
    return document
