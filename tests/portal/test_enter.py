"""portal.views.enter: the link in every message signs the contact in and opens the job."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.links import make_link_token, portal_url
from crm.models import Contact, Job
from portal.access import SESSION_CUSTOMER_KEY, SESSION_KEY

from .conftest import sign_in


def test_it_signs_in_and_opens_the_job(client: Client, john: Contact, job: Job) -> None:
    response = client.get(portal_url(john, job))
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:job", args=[job.public_id])
    assert client.session[SESSION_KEY] == john.pk
    assert client.session[SESSION_CUSTOMER_KEY] == john.customer_id
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "Heat pump installation" in page.text


def test_it_opens_my_jobs_without_a_job(client: Client, john: Contact) -> None:
    response = client.get(portal_url(john))
    assert response["Location"] == reverse("portal:home")


def test_it_is_not_a_staff_login(client: Client, john: Contact) -> None:
    sign_in(client, john)
    assert "_auth_user_id" not in client.session


def test_it_changes_the_session_key(client: Client, john: Contact) -> None:
    client.get(reverse("portal:signed_out"))
    client.session.save()
    before = client.session.session_key
    sign_in(client, john)
    assert client.session.session_key != before


def test_it_keeps_a_staff_login_in_the_same_browser(client: Client, john: Contact, bob: User) -> None:
    client.force_login(bob)
    sign_in(client, john)
    assert client.session["_auth_user_id"] == str(bob.pk)


def test_it_replaces_another_contacts_session(client: Client, john: Contact, contact: Contact, job: Job) -> None:
    sign_in(client, contact)
    sign_in(client, john)
    assert client.session[SESSION_KEY] == john.pk


def test_it_sends_an_expired_link_to_the_new_link_page_with_its_job(
    client: Client, john: Contact, job: Job, time_machine
) -> None:
    url = portal_url(john, job)
    time_machine.shift(timedelta(days=31))
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('portal:signed_out')}?job={job.public_id}&reason=expired"
    assert SESSION_KEY not in client.session
    page = client.get(response["Location"])
    assert "This link has expired" in page.text
    assert f'value="{job.public_id}"' in page.text


def test_it_still_works_on_the_last_day(client: Client, john: Contact, time_machine) -> None:
    url = portal_url(john)
    time_machine.shift(timedelta(days=29, hours=23))
    # On a new browser, past its first day, through "Continue as …?" (tests/portal/test_link_revocation.py).
    assert client.post(url)["Location"] == reverse("portal:home")


def test_it_refuses_a_tampered_link(client: Client, john: Contact) -> None:
    token = make_link_token(john)
    response = client.get(reverse("portal:enter", args=[token[:-2] + "xx"]))
    assert response["Location"].startswith(reverse("portal:signed_out"))
    assert SESSION_KEY not in client.session


def test_it_refuses_a_link_sent_to_an_old_address(client: Client, john: Contact) -> None:
    url = portal_url(john)
    Contact.objects.filter(pk=john.pk).update(email="john.new@example.com")
    assert client.get(url)["Location"].startswith(reverse("portal:signed_out"))


def test_it_lets_a_signed_in_contact_through_an_old_link(client: Client, john: Contact, job: Job, time_machine) -> None:
    old_link = portal_url(john, job)
    time_machine.shift(timedelta(days=31))
    sign_in(client, john)
    response = client.get(old_link)
    assert response["Location"] == reverse("portal:job", args=[job.public_id])


def test_it_ignores_a_malformed_job(client: Client, john: Contact) -> None:
    response = client.get(portal_url(john) + "?job=not-a-uuid")
    assert response["Location"] == reverse("portal:home")


def test_it_ends_the_session_when_the_address_changes(client: Client, john: Contact) -> None:
    sign_in(client, john)
    Contact.objects.filter(pk=john.pk).update(email="someone.else@example.com")
    response = client.get(reverse("portal:home"))
    assert response["Location"].startswith(reverse("portal:signed_out"))
    assert SESSION_KEY not in client.session


def test_it_ends_the_session_when_the_contact_is_deleted(client: Client, john: Contact) -> None:
    sign_in(client, john)
    john.delete()
    assert client.get(reverse("portal:home"))["Location"].startswith(reverse("portal:signed_out"))


def test_it_sends_an_anonymous_visitor_to_the_new_link_page_with_the_job(client: Client, job: Job) -> None:
    response = client.get(reverse("portal:job", args=[job.public_id]))
    assert response["Location"] == f"{reverse('portal:signed_out')}?job={job.public_id}"
