"""portal.views.unsubscribe: one-click opt-out from non-essential messages, in the contact's language."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from crm.links import make_unsubscribe_token
from crm.models import Contact

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


# --- The way on: never a dead end ---------------------------------------------------------------


def test_the_done_page_leads_a_signed_in_contact_to_their_preferences(john_client: Client, john: Contact) -> None:
    page = john_client.post(url(john)).text
    assert "Done: no more tips, check-ins or surveys" in page
    assert "Changed your mind?" in page
    assert f'<a href="{reverse("portal:preferences")}">Manage your preferences</a>' in page
    assert f'href="{reverse("portal:home")}"' in page
    preferences = john_client.get(reverse("portal:preferences"))
    assert preferences.status_code == 200
    # The box that turns them back on is there, unticked.
    assert 'name="non_essential"' in preferences.text
    assert 'name="non_essential" checked' not in preferences.text


def test_the_done_page_offers_a_sign_in_link_to_anyone_else(client: Client, john: Contact) -> None:
    page = client.post(url(john)).text
    assert f'<a href="{reverse("portal:signed_out")}">Manage your preferences</a>' in page
    assert reverse("portal:preferences") not in page
    assert "We will send you a link to your jobs; their Preferences page turns these messages back on." in page
    assert "Send me a new link" in client.get(reverse("portal:signed_out")).text


def test_another_contacts_session_does_not_lead_to_their_preferences(marie_client: Client, john: Contact) -> None:
    # Marie's portal is open on this browser; John's link must not send her to "his" preferences.
    page = marie_client.post(url(john)).text
    assert f'<a href="{reverse("portal:signed_out")}">Manage your preferences</a>' in page


def test_the_link_opened_again_says_it_is_done_and_how_to_undo_it(client: Client, john: Contact) -> None:
    client.post(url(john))
    page = client.get(url(john)).text
    assert "Done: no more tips, check-ins or surveys" in page
    assert "Stop tips, check-ins and surveys?" not in page
    assert "Manage your preferences" in page


def test_the_way_on_speaks_the_contacts_language(marie_client: Client, contact: Contact) -> None:
    page = marie_client.post(url(contact)).text
    assert '<html lang="fr">' in page
    assert f'href="{reverse("portal:preferences")}"' in page
    assert ">Mes dossiers</a>" in page
