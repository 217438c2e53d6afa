"""The short sign-in link of text messages (portal/s/<token>/): the same promise as the long link
in 36 characters — signs the contact in, opens the job, expires after the link lifetime, ends when
the address changes, and opens nothing of another customer."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.test import Client
from django.urls import reverse

from crm.links import make_short_token, read_short_token, short_portal_url
from crm.models import Contact, Job
from portal.access import SESSION_KEY


def test_it_signs_in_and_opens_the_job_in_a_short_address(client: Client, john: Contact, job: Job) -> None:
    url = short_portal_url(john, job)
    assert len(url.removeprefix(settings.SITE_URL)) <= 50

    response = client.get(url)

    assert response["Location"] == reverse("portal:job", args=[job.public_id])
    assert client.session[SESSION_KEY] == john.pk
    assert client.get(response["Location"]).status_code == 200


def test_without_a_job_it_opens_my_jobs(client: Client, john: Contact) -> None:
    assert client.get(short_portal_url(john))["Location"] == reverse("portal:home")


def test_it_works_for_the_link_lifetime_then_offers_a_new_link(
    client: Client, john: Contact, job: Job, time_machine
) -> None:
    url = short_portal_url(john, job)
    time_machine.shift(timedelta(days=settings.PORTAL_LINK_MAX_AGE_DAYS))
    # On a new browser, past its first day, through "Continue as …?" (tests/portal/test_link_revocation.py).
    assert Client().post(url)["Location"] == reverse("portal:job", args=[job.public_id])

    time_machine.shift(timedelta(days=1))
    response = client.get(url)
    assert response["Location"] == f"{reverse('portal:signed_out')}?reason=expired"
    assert SESSION_KEY not in client.session


def test_a_changed_address_ends_it(client: Client, john: Contact, job: Job) -> None:
    url = short_portal_url(john, job)
    Contact.objects.filter(pk=john.pk).update(email="john.new@example.com")
    assert client.get(url)["Location"].startswith(reverse("portal:signed_out"))
    assert SESSION_KEY not in client.session


def test_a_token_naming_another_customers_job_opens_only_the_contacts_own_jobs(
    client: Client, john: Contact, stranger_job: Job
) -> None:
    # Only we can make tokens; even one naming a job of another customer opens nothing of it.
    response = client.get(reverse("portal:short_enter", args=[make_short_token(john, stranger_job)]))
    assert response["Location"] == reverse("portal:home")
    assert client.session[SESSION_KEY] == john.pk


def test_every_changed_character_is_refused(john: Contact, job: Job) -> None:
    token = make_short_token(john, job)
    assert read_short_token(token) is not None
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for index, char in enumerate(token):
        other = alphabet[(alphabet.index(char) + 1) % len(alphabet)]
        assert read_short_token(token[:index] + other + token[index + 1 :]) is None, index
    assert read_short_token(token[:-1]) is None
    assert read_short_token("") is None
