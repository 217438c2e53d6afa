"""Staff sessions: a new session key at sign-in (a key planted before it is not kept), signed out
after STAFF_SESSION_IDLE_HOURS without a request (back to the page after signing in again), ended
by a password change, and staff pages never stored by the browser. The portal keeps its own
session lifetime."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.links import portal_url
from crm.models import Contact, Job

pytestmark = pytest.mark.django_db

DASHBOARD = "/"


@pytest.fixture
def at_nine(time_machine):
    time_machine.move_to("2026-03-02 09:00:00+01:00", tick=False)
    return time_machine


def sign_in(client: Client, username: str = "bob", password: str = "pw") -> None:
    response = client.post(reverse("login"), {"username": username, "password": password})
    assert response.status_code == 302, response


def test_signing_in_gives_a_new_session_key(client: Client, bob: User) -> None:
    # An attacker's session id, planted in the victim's browser before they sign in.
    client.get(reverse("login"))
    planted = "fixation0123456789abcdefghijklmn"
    client.cookies[settings.SESSION_COOKIE_NAME] = planted

    sign_in(client)

    assert client.cookies[settings.SESSION_COOKIE_NAME].value != planted
    assert client.get(DASHBOARD).status_code == 200


def test_a_staff_session_ends_after_the_idle_time(client: Client, bob: User, at_nine, settings) -> None:
    settings.STAFF_SESSION_IDLE_HOURS = 12
    sign_in(client)
    assert client.get(DASHBOARD).status_code == 200

    at_nine.shift(timedelta(hours=11, minutes=59))
    assert client.get(DASHBOARD).status_code == 200, "still within 12 h of the last request"
    at_nine.shift(timedelta(hours=11, minutes=59))
    assert client.get(DASHBOARD).status_code == 200, "each request starts the idle time again"

    at_nine.shift(timedelta(hours=12, minutes=1))
    response = client.get(reverse("crm:jobs"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={reverse('crm:jobs')}"
    # Signed out for good, not just sent away once.
    assert client.get(DASHBOARD).status_code == 302


def test_a_password_change_ends_the_other_sessions(bob: User) -> None:
    laptop, phone = Client(), Client()
    sign_in(laptop)
    sign_in(phone)

    bob.set_password("a new long passphrase")
    bob.save()

    assert laptop.get(DASHBOARD).status_code == 302
    assert phone.get(DASHBOARD).status_code == 302
    sign_in(phone, password="a new long passphrase")
    assert phone.get(DASHBOARD).status_code == 200


@pytest.mark.parametrize("name", ["crm:home", "crm:jobs", "crm:customers"])
def test_staff_pages_are_never_stored(client: Client, bob: User, name: str) -> None:
    client.force_login(bob)
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_the_portal_keeps_its_own_lifetime(client: Client, job: Job, contact: Contact, at_nine) -> None:
    """A contact's portal session is not a staff session: two days without a visit, it still works."""
    assert client.get(portal_url(contact, job)).status_code == 302
    at_nine.shift(timedelta(days=2))
    assert client.get(reverse("portal:job", args=[job.public_id])).status_code == 200


def test_an_htmx_request_after_the_idle_time_loads_the_sign_in_page_whole(
    client: Client, bob: User, at_nine, settings
) -> None:
    settings.STAFF_SESSION_IDLE_HOURS = 12
    sign_in(client)
    at_nine.shift(timedelta(hours=13))
    response = client.get(reverse("crm:jobs"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{reverse('login')}?next={reverse('crm:jobs')}"
