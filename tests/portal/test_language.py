"""portal.views.language: the switcher on every portal page; the choice stays with this browser."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from crm.models import Contact, Job

from .conftest import sign_in

URL = reverse("portal:language")


def test_it_switches_the_portal_language(john_client: Client, job: Job, john: Contact) -> None:
    page_url = reverse("portal:job", args=[job.public_id])
    response = john_client.post(URL, {"language": "fr", "next": page_url})
    assert response["Location"] == page_url
    page = john_client.get(page_url)
    assert '<html lang="fr">' in page.text
    assert "lundi 2 mars" in page.text
    # The contact's messages keep their own language (set in the preferences).
    john.refresh_from_db()
    assert john.language == "en"


def test_it_offers_the_other_language_on_every_page(john_client: Client, job: Job) -> None:
    for url in (reverse("portal:home"), reverse("portal:job", args=[job.public_id]), reverse("portal:preferences")):
        page = john_client.get(url).text
        assert 'name="language" value="fr" lang="fr"' in page, url


def test_it_is_offered_before_signing_in_too(client: Client, db) -> None:
    response = client.post(URL, {"language": "fr", "next": reverse("portal:signed_out")})
    page = client.get(response["Location"]).text
    assert '<html lang="fr">' in page
    assert 'value="en" lang="en"' in page


def test_it_survives_signing_in_again(client: Client, john: Contact) -> None:
    sign_in(client, john)
    client.post(URL, {"language": "fr"})
    sign_in(client, john)
    assert '<html lang="fr">' in client.get(reverse("portal:home")).text


def test_it_ignores_an_unknown_language(john_client: Client) -> None:
    john_client.post(URL, {"language": "xx"})
    assert '<html lang="en">' in john_client.get(reverse("portal:home")).text


def test_it_never_redirects_elsewhere(john_client: Client) -> None:
    response = john_client.post(URL, {"language": "fr", "next": "https://evil.example.com/"})
    assert response["Location"] == reverse("portal:home")


def test_it_changes_nothing_on_get_and_goes_on_to_my_jobs(john_client: Client) -> None:
    response = john_client.get(URL, {"language": "fr", "next": reverse("portal:preferences")})
    assert response["Location"] == reverse("portal:home")
    assert '<html lang="en">' in john_client.get(response["Location"]).text


def test_a_get_without_a_session_goes_on_to_the_new_link_page(client: Client, db) -> None:
    response = client.get(URL, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("portal:signed_out")
