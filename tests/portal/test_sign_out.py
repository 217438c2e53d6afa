"""portal.views.sign_out_view: a POST ends the portal session (a staff login stays); a GET changes
nothing and goes on to "My jobs"."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.models import Contact, Job
from portal.access import SESSION_KEY

from .conftest import sign_in

URL = reverse("portal:sign_out")


def test_it_signs_out(john_client: Client, job: Job) -> None:
    response = john_client.post(URL)
    assert response["Location"] == f"{reverse('portal:signed_out')}?reason=signed_out"
    assert SESSION_KEY not in john_client.session
    assert john_client.get(reverse("portal:job", args=[job.public_id])).status_code == 302
    assert "You are signed out" in john_client.get(response["Location"]).text


def test_it_leaves_a_staff_login_alone(client: Client, john: Contact, bob: User) -> None:
    client.force_login(bob)
    sign_in(client, john)
    client.post(URL)
    assert client.session["_auth_user_id"] == str(bob.pk)


def test_it_changes_nothing_on_get_and_goes_on_to_my_jobs(john_client: Client) -> None:
    response = john_client.get(URL)
    assert response["Location"] == reverse("portal:home")
    assert SESSION_KEY in john_client.session
    assert john_client.get(response["Location"]).status_code == 200


def test_a_get_when_signed_out_already_offers_a_new_link(client: Client, db) -> None:
    response = client.get(URL, follow=True)
    assert response.status_code == 200
    assert "Send me a new link" in response.text


def test_it_needs_the_csrf_token(john: Contact) -> None:
    client = sign_in(Client(enforce_csrf_checks=True), john)
    assert client.post(URL).status_code == 403
    assert SESSION_KEY in client.session
