"""The OpenAPI 3 document: valid, one scope per operation, served with browsable docs from
vendored files (no CDN)."""

from __future__ import annotations

import re

from django.test import Client
from openapi_spec_validator import validate

from crm.models import ApiKey


def schema(client: Client) -> dict:
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    document: dict = response.json()
    return document


def test_the_schema_is_valid_openapi_3(client: Client, db) -> None:
    document = schema(client)
    assert document["openapi"].startswith("3.")
    validate(document)


def test_every_operation_names_one_known_scope(client: Client, db) -> None:
    operations = [op for item in schema(client)["paths"].values() for op in item.values()]
    assert len(operations) >= 18
    for operation in operations:
        assert operation["x-required-scope"] in ApiKey.Scope.values, operation["operationId"]
        assert operation["security"]


def test_the_docs_load_their_scripts_from_this_site(client: Client, db) -> None:
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    assert "<script>" not in html  # no inline script: the Content-Security-Policy holds


def test_an_address_with_no_operation_is_a_problem_too(client: Client, db) -> None:
    response = client.get("/api/v1/nothing/here/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
