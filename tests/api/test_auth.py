"""Who may call: a live API key with the operation's scope, within its rate limit; nothing else
(no key, another scheme, a revoked key, a staff or portal session)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from crm.links import portal_url
from crm.models import ApiKey
from crm.services.api_keys import api_key_revoke
from tests.api.conftest import Api, problem

# Every operation and the scope it needs (the schema says the same: test_schema.py).
READS = [
    ("/customers/", "customers:read"),
    ("/contacts/", "customers:read"),
    ("/pipelines/", "jobs:read"),
    ("/jobs/", "jobs:read"),
    ("/messages/", "messages:read"),
    ("/questions/", "messages:read"),
    ("/surveys/", "messages:read"),
    ("/reports/health/?first_day=2026-01-05&last_day=2026-02-01", "reports:read"),
    ("/reports/satisfaction/?first_day=2026-01-05&last_day=2026-02-01", "reports:read"),
]


def test_no_key_is_a_401_problem_with_how_to_send_one(client: Client, db) -> None:
    response = client.get("/api/v1/jobs/")
    assert response.status_code == 401
    assert "Bearer" in problem(response)["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "Bearer cpk_nothing_here", "Token abc"])
def test_another_scheme_or_an_unknown_key_is_a_401(client: Client, db, header: str) -> None:
    response = client.get("/api/v1/jobs/", headers={"Authorization": header})
    assert response.status_code == 401
    problem(response)


def test_a_revoked_key_stops_at_once(client: Client, make_key, alice: User) -> None:
    secret = make_key()
    api = Api(client, secret)
    assert api.get("/jobs/").status_code == 200
    api_key_revoke(key=ApiKey.objects.get(), actor=alice)
    response = api.get("/jobs/")
    assert response.status_code == 401
    assert "revoked" in problem(response)["detail"]


def test_a_key_of_someone_no_longer_active_stops(client: Client, make_key, bob: User) -> None:
    api = Api(client, make_key(owner=bob))
    bob.is_active = False
    bob.save()
    assert api.get("/jobs/").status_code == 401


def test_a_key_is_found_by_its_prefix_and_checked_by_digest(client: Client, make_key) -> None:
    secret = make_key()
    key = ApiKey.objects.get()
    assert secret.startswith(key.prefix + "_") and key.digest == ApiKey.digest_of(secret)
    assert secret not in str(ApiKey.objects.values().get())  # never stored whole
    tampered = secret[:-2] + ("AA" if not secret.endswith("AA") else "BB")
    assert Api(client, tampered).get("/jobs/").status_code == 401


@pytest.mark.parametrize(("path", "scope"), READS)
def test_each_read_needs_its_scope(client: Client, make_key, path: str, scope: str) -> None:
    others = [s for s in ApiKey.Scope.values if s != scope]
    refused = Api(client, make_key(others)).get(path)
    assert refused.status_code == 403
    assert problem(refused)["required_scope"] == scope
    assert Api(client, make_key([scope])).get(path).status_code == 200


WRITES = [
    ("/customers/", "customers:write"),
    ("/customers/1/contacts/", "customers:write"),
    ("/jobs/", "jobs:write"),
    ("/jobs/00000000-0000-0000-0000-000000000000/advance/", "jobs:write"),
    ("/jobs/00000000-0000-0000-0000-000000000000/milestones/1/move/", "jobs:write"),
    ("/jobs/00000000-0000-0000-0000-000000000000/messages/", "messages:write"),
    ("/jobs/00000000-0000-0000-0000-000000000000/calls/", "messages:write"),
    ("/questions/1/answer/", "messages:write"),
]


@pytest.mark.parametrize(("path", "scope"), WRITES)
def test_each_write_needs_its_scope(client: Client, make_key, path: str, scope: str) -> None:
    read_only = [s for s in ApiKey.Scope.values if s != scope]
    response = Api(client, make_key(read_only)).post(path, {})
    # Refused before the body is read: a key without the scope learns nothing of its shape.
    assert response.status_code == 403
    assert problem(response)["required_scope"] == scope


def test_the_rate_limit_answers_429_with_retry_after(client: Client, make_key, settings) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    api = Api(client, make_key())
    assert [api.get("/pipelines/").status_code for _ in range(3)] == [200, 200, 200]
    response = api.get("/pipelines/")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    problem(response)
    # Per key: another key is not held back.
    assert Api(client, make_key(name="Accounting")).get("/pipelines/").status_code == 200


def test_last_used_is_noted(client: Client, make_key) -> None:
    api = Api(client, make_key())
    assert ApiKey.objects.get().last_used_at is None
    api.get("/pipelines/")
    assert (timezone.now() - ApiKey.objects.get().last_used_at).total_seconds() < 5


def test_a_staff_or_portal_session_is_not_a_key(client: Client, alice: User, contact) -> None:
    client.force_login(alice)
    assert client.get("/api/v1/jobs/").status_code == 401
    client.logout()
    # Signed in to the portal by the contact's own link, as a customer is.
    entered = client.get(urlsplit(portal_url(contact)).path)
    assert entered.status_code == 302 and client.session.get("portal_contact_id") == contact.pk
    assert client.get("/api/v1/customers/").status_code == 401
    assert client.get("/api/v1/jobs/").status_code == 401


def test_a_body_over_the_limit_is_413(client: Client, make_key, settings) -> None:
    settings.API_MAX_BODY_BYTES = 1000
    response = Api(client, make_key()).post("/customers/", raw='{"name": "' + "x" * 2000 + '"}')
    assert response.status_code == 413
    problem(response)
