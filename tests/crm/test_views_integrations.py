"""The managers' integration pages: API keys (made, shown once, revoked) and webhook endpoints
(added, changed, rotated, paused, their deliveries sent again).

alice is a manager; bob is staff, not a manager; dana is not staff.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import ApiKey, WebhookDelivery, WebhookEndpoint
from crm.services.api_keys import api_key_create
from crm.services.webhooks import endpoint_create

pytestmark = pytest.mark.django_db

KEY_PATTERN = re.compile(r"cpk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def manager(client: Client, alice: User) -> Client:
    client.force_login(alice)
    return client


@pytest.fixture
def key(alice: User, bob: User) -> ApiKey:
    key, _secret = api_key_create(name="ERP", owner=bob, scopes=["jobs:read"], actor=alice)
    return key


@pytest.fixture
def endpoint(alice: User) -> WebhookEndpoint:
    return endpoint_create(
        url="https://erp.example.com/hooks", event_types=["job.created"], description="ERP", actor=alice
    )


def delivery_for(endpoint: WebhookEndpoint, status: str = WebhookDelivery.Status.FAILED, **fields) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_type="job.created",
        payload={"type": "job.created", "data": {}},
        status=status,
        attempts=fields.pop("attempts", 12),
        **fields,
    )


def every_url(key: ApiKey, endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> list[tuple[str, str]]:
    return [
        ("get", reverse("crm:api_keys")),
        ("post", reverse("crm:api_keys")),
        ("post", reverse("crm:api_key_revoke", args=[key.pk])),
        ("get", reverse("crm:webhooks")),
        ("post", reverse("crm:webhooks")),
        ("get", reverse("crm:webhook", args=[endpoint.pk])),
        ("post", reverse("crm:webhook", args=[endpoint.pk])),
        ("post", reverse("crm:webhook_rotate", args=[endpoint.pk])),
        ("post", reverse("crm:webhook_active", args=[endpoint.pk])),
        ("post", reverse("crm:webhook_delivery_send_again", args=[delivery.pk])),
    ]


# --- Who may ------------------------------------------------------------------------------------


def test_it_refuses_staff_who_are_not_managers(
    client: Client, bob: User, dana: User, key: ApiKey, endpoint: WebhookEndpoint
) -> None:
    delivery = delivery_for(endpoint)
    secret = endpoint.secret
    for person in (bob, dana):
        client.force_login(person)
        for method, url in every_url(key, endpoint, delivery):
            assert getattr(client, method)(url).status_code == 403, (person, method, url)
    key.refresh_from_db()
    endpoint.refresh_from_db()
    delivery.refresh_from_db()
    assert key.revoked_at is None
    assert (endpoint.secret, endpoint.is_active) == (secret, True)
    assert delivery.status == WebhookDelivery.Status.FAILED


def test_it_sends_anonymous_visitors_to_sign_in(client: Client, key: ApiKey, endpoint: WebhookEndpoint) -> None:
    delivery = delivery_for(endpoint)
    for method, url in every_url(key, endpoint, delivery):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url)
        assert response["Location"].startswith(reverse("login"))


def test_it_shows_the_settings_menu_to_managers_only(client: Client, alice: User, bob: User) -> None:
    client.force_login(bob)
    page = client.get(reverse("crm:home")).content.decode()
    assert reverse("crm:api_keys") not in page
    assert reverse("crm:webhooks") not in page

    client.force_login(alice)
    page = client.get(reverse("crm:home")).content.decode()
    assert reverse("crm:api_keys") in page
    assert reverse("crm:webhooks") in page


def test_it_answers_404_for_rows_that_do_not_exist(manager: Client) -> None:
    for pk in (999, 10**30):
        assert manager.get(f"/settings/webhooks/{pk}/").status_code == 404
        assert manager.post(f"/settings/webhooks/{pk}/rotate/").status_code == 404
        assert manager.post(f"/settings/api-keys/{pk}/revoke/").status_code == 404
        assert manager.post(f"/settings/webhooks/deliveries/{pk}/send-again/").status_code == 404


# --- API keys -----------------------------------------------------------------------------------


def test_it_shows_a_new_key_once(manager: Client, alice: User, bob: User) -> None:
    form = manager.get(reverse("crm:api_keys"))
    assert form.status_code == 200
    assert form.context["form"]["owner"].value() == alice.pk  # acts as the manager unless changed
    assert "Read jobs, pipelines and stages" in form.content.decode()

    response = manager.post(
        reverse("crm:api_keys"), {"name": " ERP ", "owner": bob.pk, "scopes": ["jobs:read", "customers:read"]}
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    [secret] = set(KEY_PATTERN.findall(page))
    assert "it will not be shown again" in page
    assert f'curl -H "Authorization: Bearer {secret}" http://testserver/api/v1/jobs/' in page
    key = ApiKey.objects.get()
    assert (key.name, key.owner, key.created_by) == ("ERP", bob, alice)
    assert key.scopes == ["customers:read", "jobs:read"]
    assert key.digest == ApiKey.digest_of(secret)
    assert secret.startswith(key.prefix)
    assert key.digest not in page

    listing = manager.get(reverse("crm:api_keys")).content.decode()
    assert key.prefix in listing
    assert secret not in listing
    assert not KEY_PATTERN.search(listing)


def test_it_explains_what_is_missing_from_a_new_key(manager: Client, alice: User, dana: User) -> None:
    response = manager.post(reverse("crm:api_keys"), {"name": "  ", "owner": dana.pk, "scopes": []})

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["name"] == ["Name the key after the system that will use it."]
    assert errors["owner"] == ["Choose an active staff member: the key acts as them."]
    assert errors["scopes"] == ["Choose at least one scope."]
    assert "Choose at least one scope." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_it_refuses_a_scope_that_is_not_offered(manager: Client, alice: User) -> None:
    response = manager.post(reverse("crm:api_keys"), {"name": "ERP", "owner": alice.pk, "scopes": ["admin:all"]})

    assert response.context["form"].errors["scopes"] == ["admin:all is not one of the scopes offered."]
    assert not ApiKey.objects.exists()


def test_it_revokes_a_key(manager: Client, alice: User, key: ApiKey) -> None:
    url = reverse("crm:api_key_revoke", args=[key.pk])
    assert manager.get(url).status_code == 405
    key.refresh_from_db()
    assert key.revoked_at is None

    response = manager.post(url, follow=True)

    assert response.redirect_chain == [(reverse("crm:api_keys"), 302)]
    assert "is revoked" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert key.revoked_by == alice
    again = manager.post(url, follow=True)
    assert "was already revoked" in again.content.decode()


# --- Webhook endpoints --------------------------------------------------------------------------


def test_it_adds_an_endpoint(manager: Client, alice: User) -> None:
    page = manager.get(reverse("crm:webhooks")).content.decode()
    assert "A job reached another stage" in page
    assert "Visits" in page  # the events' headings

    response = manager.post(
        reverse("crm:webhooks"),
        {"url": "https://erp.example.com/hooks", "description": "ERP", "event_types": ["job.created", "visit.done"]},
    )

    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("crm:webhook", args=[endpoint.pk])
    assert (endpoint.url, endpoint.description, endpoint.created_by) == ("https://erp.example.com/hooks", "ERP", alice)
    assert endpoint.event_types == ["job.created", "visit.done"]
    listing = manager.get(reverse("crm:webhooks")).content.decode()
    assert "https://erp.example.com/hooks" in listing
    assert "A visit was done" in listing


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("not an address", "Enter the endpoint's full address, starting with https://."),
        ("http://erp.example.com/hooks", "Webhooks are sent over https only: the address must start with https://."),
        ("https://127.0.0.1/hooks", "That address is private or local: webhooks go to public addresses only."),
        ("https://localhost/hooks", "That address is private or local: webhooks go to public addresses only."),
    ],
)
def test_it_explains_why_an_address_is_refused(manager: Client, url: str, error: str) -> None:
    response = manager.post(reverse("crm:webhooks"), {"url": url, "event_types": ["job.created"]})

    assert response.status_code == 200
    assert response.context["form"].errors["url"] == [error]
    assert not WebhookEndpoint.objects.exists()


def test_it_takes_a_local_address_where_private_ones_are_allowed(manager: Client, settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE = True
    response = manager.post(reverse("crm:webhooks"), {"url": "http://127.0.0.1:9000/", "event_types": ["job.created"]})

    assert response.status_code == 302
    assert WebhookEndpoint.objects.get().url == "http://127.0.0.1:9000/"


def test_it_asks_for_at_least_one_event(manager: Client) -> None:
    response = manager.post(reverse("crm:webhooks"), {"url": "https://erp.example.com/hooks", "event_types": []})

    assert response.context["form"].errors["event_types"] == ["Choose at least one event to send."]
    assert not WebhookEndpoint.objects.exists()


def test_it_changes_an_endpoint(manager: Client, endpoint: WebhookEndpoint) -> None:
    url = reverse("crm:webhook", args=[endpoint.pk])
    response = manager.post(
        url, {"url": "https://erp.example.com/v2", "description": "ERP v2", "event_types": ["visit.booked"]}
    )

    assert response.status_code == 302
    assert response["Location"] == url
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.description, endpoint.event_types) == (
        "https://erp.example.com/v2",
        "ERP v2",
        ["visit.booked"],
    )
    refused = manager.post(url, {"url": "ftp://erp.example.com/", "event_types": ["visit.booked"]})
    assert refused.context["form"].errors["url"] == ["Enter the endpoint's full address, starting with https://."]
    endpoint.refresh_from_db()
    assert endpoint.url == "https://erp.example.com/v2"


def test_the_endpoint_page_shows_its_secret_and_deliveries(manager: Client, endpoint: WebhookEndpoint) -> None:
    failed = delivery_for(endpoint, response_code=500, duration_ms=1234, last_error="HTTP 500: oops")
    delivered = delivery_for(endpoint, WebhookDelivery.Status.DELIVERED, attempts=1, response_code=204)
    sending = delivery_for(endpoint, WebhookDelivery.Status.SENDING, attempts=1)

    response = manager.get(reverse("crm:webhook", args=[endpoint.pk]))

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert endpoint.secret in page
    assert "Rotate the secret" in page
    assert "24 hours" in page
    for delivery in (failed, delivered, sending):
        assert delivery.webhook_id in page
    assert "HTTP 500: oops" in page
    assert "1234" in page
    # "Send again" on the failed and the delivered ones, not on one being sent.
    assert reverse("crm:webhook_delivery_send_again", args=[failed.pk]) in page
    assert reverse("crm:webhook_delivery_send_again", args=[delivered.pk]) in page
    assert reverse("crm:webhook_delivery_send_again", args=[sending.pk]) not in page


def test_the_endpoint_page_runs_a_fixed_number_of_queries(
    manager: Client, endpoint: WebhookEndpoint, django_assert_num_queries
) -> None:
    url = reverse("crm:webhook", args=[endpoint.pk])
    delivery_for(endpoint)
    # The user, whether they are a manager (asked once, by the view and the navigation alike),
    # the endpoint, its latest deliveries, the navigation's counts.
    with django_assert_num_queries(5):
        manager.get(url)
    for _i in range(60):
        delivery_for(endpoint)
    with django_assert_num_queries(5):
        response = manager.get(url)
    assert len(response.context["deliveries"]) == 50


def test_it_sends_a_failed_delivery_again(
    manager: Client, endpoint: WebhookEndpoint, django_capture_on_commit_callbacks
) -> None:
    delivery = delivery_for(endpoint, next_attempt_at=None)

    response = manager.post(reverse("crm:webhook_delivery_send_again", args=[delivery.pk]), follow=True)

    assert response.redirect_chain == [(reverse("crm:webhook", args=[endpoint.pk]) + "#deliveries", 302)]
    assert "queued to be sent again" in response.content.decode()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.PENDING, 0)
    assert manager.get(reverse("crm:webhook_delivery_send_again", args=[delivery.pk])).status_code == 405


def test_it_says_why_a_delivery_being_sent_is_not_sent_again(manager: Client, endpoint: WebhookEndpoint) -> None:
    delivery = delivery_for(endpoint, WebhookDelivery.Status.SENDING, attempts=1)

    response = manager.post(reverse("crm:webhook_delivery_send_again", args=[delivery.pk]), follow=True)

    assert response.status_code == 200
    assert "being sent right now" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SENDING


def test_it_rotates_the_secret_keeping_the_old_one_for_a_day(manager: Client, endpoint: WebhookEndpoint) -> None:
    old = endpoint.secret
    url = reverse("crm:webhook_rotate", args=[endpoint.pk])
    assert manager.get(url).status_code == 405

    response = manager.post(url, follow=True)

    assert response.redirect_chain == [(reverse("crm:webhook", args=[endpoint.pk]), 302)]
    assert "New signing secret made" in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.previous_secret == old
    assert endpoint.previous_secret_until is not None
    expected = timezone.now() + timedelta(hours=24)
    assert abs(endpoint.previous_secret_until - expected) < timedelta(minutes=1)
    assert endpoint.signing_secrets() == [endpoint.secret, old]
    assert endpoint.secret in response.content.decode()


def test_it_pauses_an_endpoint_and_turns_it_back_on(manager: Client, endpoint: WebhookEndpoint) -> None:
    url = reverse("crm:webhook_active", args=[endpoint.pk])
    assert manager.get(url).status_code == 405

    paused = manager.post(url, {"active": "0"}, follow=True)

    assert paused.redirect_chain == [(reverse("crm:webhook", args=[endpoint.pk]), 302)]
    assert "Paused." in paused.content.decode()
    assert "Turn back on" in paused.content.decode()
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert endpoint.disabled_at is not None

    manager.post(url, {"active": "1"})
    endpoint.refresh_from_db()
    assert endpoint.is_active
    assert (endpoint.disabled_at, endpoint.disabled_reason) == (None, "")

    manager.post(url, {"active": "maybe"})
    endpoint.refresh_from_db()
    assert endpoint.is_active


# --- Odd input ----------------------------------------------------------------------------------

NUL = "\x00"
# A lone surrogate's bytes as a browser would send them (the test client cannot encode one).
SURROGATE_BYTES = "%ED%A0%80"


def with_surrogate(data: dict[str, Any], name: str) -> str:
    """``data`` urlencoded, with a lone surrogate's bytes after each value of field ``name``."""
    marker = "SURROGATEMARKER"
    value = data[name]
    odd = [f"{item}{marker}" for item in value] if isinstance(value, list) else f"{value}{marker}"
    return urlencode({**data, name: odd}, doseq=True).replace(marker, SURROGATE_BYTES)


def test_it_answers_a_nul_in_every_typed_field_with_the_form_error(
    manager: Client, alice: User, endpoint: WebhookEndpoint
) -> None:
    submissions = [
        (reverse("crm:api_keys"), {"name": "ERP", "owner": str(alice.pk), "scopes": ["jobs:read"]}),
        (
            reverse("crm:webhooks"),
            {"url": "https://erp.example.com/", "description": "ERP", "event_types": ["job.created"]},
        ),
        (
            reverse("crm:webhook", args=[endpoint.pk]),
            {"url": "https://erp.example.com/", "description": "ERP", "event_types": ["job.created"]},
        ),
    ]
    for url, data in submissions:
        for name, value in data.items():
            odd = [f"{v}{NUL}" for v in value] if isinstance(value, list) else f"{value}{NUL}"
            response = manager.post(url, {**data, name: odd})
            assert response.status_code == 200, (url, name)
            assert response.context["form"].errors.get(name), (url, name)
            raw = manager.post(url, with_surrogate(data, name), content_type="application/x-www-form-urlencoded")
            assert raw.status_code != 500, (url, name)
    # What the surrogate's requests stored (U+FFFD where it was), and never a NUL.
    stored = [*ApiKey.objects.values_list("name", flat=True)]
    stored += [text for row in WebhookEndpoint.objects.values_list("url", "description") for text in row]
    assert not [text for text in stored if NUL in text]


def test_its_buttons_ignore_odd_fields(manager: Client, key: ApiKey, endpoint: WebhookEndpoint) -> None:
    delivery = delivery_for(endpoint)
    for url in (
        reverse("crm:api_key_revoke", args=[key.pk]),
        reverse("crm:webhook_rotate", args=[endpoint.pk]),
        reverse("crm:webhook_active", args=[endpoint.pk]),
        reverse("crm:webhook_delivery_send_again", args=[delivery.pk]),
    ):
        assert manager.post(url, {"active": NUL, "reason": NUL}).status_code == 302, url
        raw = manager.post(url, f"active={SURROGATE_BYTES}", content_type="application/x-www-form-urlencoded")
        assert raw.status_code == 302, url
    endpoint.refresh_from_db()
    assert endpoint.is_active
