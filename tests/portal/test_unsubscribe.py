"""portal.views.unsubscribe: one-click opt-out from non-essential messages, in the contact's language."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from crm.models import Contact
from portal.access import make_unsubscribe_token

from .conftest import MONDAY_MORNING


def url(contact: Contact) -> str:
    return reverse("portal:unsubscribe", args=[make_unsubscribe_token(contact)])


def test_it_asks_before_opting_out(client: Client, john: Contact) -> None:
    response = client.get(url(john))
    assert response.status_code == 200
    assert "Stop tips, check-ins and surveys?" in response.text
    john.refresh_from_db()
    assert john.opted_out_at is None


def test_it_opts_out_on_post_without_a_cookie(john: Contact) -> None:
    response = Client(enforce_csrf_checks=True).post(url(john))
    assert response.status_code == 200
    john.refresh_from_db()
    assert john.opted_out_at == MONDAY_MORNING


def test_it_speaks_the_contacts_language(client: Client, contact: Contact) -> None:
    response = client.get(url(contact))
    assert '<html lang="fr">' in response.text
    assert response["Content-Language"] == "fr"
