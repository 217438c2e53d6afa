"""Every operation of the schema, called with odd input — wrong types, huge and tiny numbers, odd
text, bodies that are not JSON objects, unknown fields, ids of nothing — answers a 2xx or a 4xx
problem document, never a 500. Seeded, so a failure is repeatable."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from django.test import Client

from crm.models import Contact, Customer, Job, Pipeline
from tests.api.conftest import Api

SEED = 20261207
CASES_PER_OPERATION = 40

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    -(2**70),
    1.5,
    float("1e308"),
    "",
    " ",
    "x" * 6000,
    "\u0000",
    "\ud800",
    "é✓🙂",
    "2026-02-30",
    "9999-12-31",
    "0000-00-00",
    "00000000-0000-0000-0000-000000000000",
    "not-a-uuid",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    [],
    [1, "a", None],
    {},
    {"nested": {"deeper": [1]}},
]
ODD_BODIES: list[str] = ["", "not json", "[]", "null", "1", '"x"', "{", '{"a": NaN}', "\xff", "{}" * 3]


def operations(client: Client) -> list[tuple[str, str, dict[str, Any]]]:
    document = client.get("/api/v1/schema/").json()
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            found.append((method, path, operation))
    return found


def odd_path(path: str, rng: random.Random, real: dict[str, str]) -> str:
    def value(name: str) -> str:
        choice = rng.random()
        if choice < 0.4 and name in real:
            return real[name]
        return str(
            rng.choice(["0", "-1", "99999999999999999999", "abc", "00000000-0000-0000-0000-000000000000", "%00"])
        )

    for name in ("job_id", "customer_id", "stage_id", "question_id"):
        path = path.replace("{" + name + "}", value(name))
    return path


# Values of the right type but odd content: these reach the services and their rules.
TYPED: dict[str, list[Any]] = {
    "string": ["", " ", "x" * 199, "é✓🙂", "\u0000", "\ud800", "<b>hi</b>", "reached", "fr", "sms", "company"],
    "date": ["2026-03-02", "1999-01-01", "2999-12-31", "2026-03-07"],
    "integer": [1, 2, 3, 4, 5, 999999, 2**62],
    "boolean": [True, False],
    "array": [[], [1], [1, 2, 3], [999999]],
}


def typed_value(spec: dict[str, Any], rng: random.Random) -> Any:
    options = spec.get("anyOf", [spec])
    chosen = rng.choice(options)
    if "enum" in chosen:
        return rng.choice(chosen["enum"])
    kind = "date" if chosen.get("format") == "date" else chosen.get("type", "string")
    return rng.choice(TYPED.get(kind, [None]))


def odd_body(operation: dict[str, Any], document: dict[str, Any], rng: random.Random) -> str:
    if rng.random() < 0.2:
        return rng.choice(ODD_BODIES)
    schema_ref = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    name = schema_ref.get("$ref", "").rsplit("/", 1)[-1]
    properties = document["components"]["schemas"].get(name, {}).get("properties", {})
    if rng.random() < 0.6:  # the right types: past the shape, into the rules
        body = {key: typed_value(spec, rng) for key, spec in properties.items() if rng.random() < 0.9}
        return json.dumps(body)
    body = {key: rng.choice(ODD_VALUES) for key in properties if rng.random() < 0.8}
    if rng.random() < 0.2:
        body["unexpected"] = 1
    try:
        return json.dumps(body)
    except ValueError:
        return "{}"


@pytest.fixture
def world(customer: Customer, contact: Contact, installation: Pipeline, job: Job) -> dict[str, str]:
    return {
        "job_id": str(job.public_id),
        "customer_id": str(customer.pk),
        "stage_id": str(installation.stages.get(position=3).pk),
    }


def test_no_operation_answers_500_to_odd_input(api: Api, client: Client, world: dict[str, str], settings) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 100_000
    rng = random.Random(SEED)
    document = client.get("/api/v1/schema/").json()
    seen: dict[int, int] = {}
    for method, path, operation in operations(client):
        query_names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        for _ in range(CASES_PER_OPERATION):
            url = odd_path(path, rng, world)
            # A query string is bytes: a lone surrogate cannot be in one (it can in a JSON body).
            params = {
                name: str(rng.choice(ODD_VALUES)).replace("\ud800", "\ufffd")
                for name in query_names
                if rng.random() < 0.6
            }
            if method == "get":
                response = api.get(url.removeprefix("/api/v1"), **params)
            else:
                response = api.post(url.removeprefix("/api/v1"), raw=odd_body(operation, document, rng))
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, (method, url, params, response.content[:500])
            if response.status_code >= 400:
                assert response["Content-Type"] == "application/problem+json", (method, url, response.content[:300])
    assert any(code < 300 for code in seen) and any(code == 400 for code in seen), seen
