"""The portal ticket (portal.access, portal.middleware): a signed copy of the session's portal keys
that lets a page kept whole and the unchanged live poll answer without reading the session — and
never lets anyone in whom the session itself would not let in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.cached_db import SessionStore
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from crm.models import Contact, Job, Visit, VisitKind
from crm.services.contacts import contact_links_reset
from crm.services.visits import visit_book, visit_cancel
from portal import versions
from portal.access import TICKET_COOKIE, make_ticket, read_ticket

from .conftest import MONDAY_MORNING, sign_in

SIGNED_OUT = reverse("portal:signed_out")


def job_url(job: Job) -> str:
    return reverse("portal:job", args=[job.public_id])


def status_url(job: Job) -> str:
    return reverse("portal:job_status", args=[job.public_id])


def get(client: Client, url: str, **headers: str) -> tuple[HttpResponse, bool]:
    """The response, and whether the request read the session: its cached copy is dropped first,
    and a read puts it back (crm.sessions reads the database, then keeps the session again)."""
    cache_key = SessionStore(client.cookies[settings.SESSION_COOKIE_NAME].value).cache_key
    sessions = caches[settings.SESSION_CACHE_ALIAS]
    sessions.delete(cache_key)
    response = client.get(url, headers=headers)
    return response, sessions.get(cache_key) is not None


def kept(client: Client, url: str) -> None:
    """Open ``url`` until it is kept whole (the first view renders and keeps it)."""
    assert client.get(url).status_code == 200


def test_signing_in_issues_a_ticket_like_the_session_cookie(client: Client, john: Contact, job: Job) -> None:
    sign_in(client, john)
    ticket = client.cookies[TICKET_COOKIE]
    assert ticket["httponly"] is True
    assert ticket["samesite"] == settings.SESSION_COOKIE_SAMESITE
    assert ticket["max-age"] == settings.SESSION_COOKIE_AGE
    data = read_ticket(ticket.value)
    assert data is not None and data["portal_contact_id"] == john.pk
    assert data["portal_customer_id"] == john.customer_id
    assert data["portal_time_zone"] == "Europe/London"


def test_a_kept_page_and_an_unchanged_poll_answer_without_reading_the_session(john_client: Client, job: Job) -> None:
    kept(john_client, job_url(job))
    page, read = get(john_client, job_url(job))
    assert page.status_code == 200 and "Heat pump installation" in page.text
    assert not read
    etag = john_client.get(status_url(job))["ETag"]
    poll, read = get(john_client, status_url(job), If_None_Match=etag)
    assert poll.status_code == 304 and not read
    kept(john_client, reverse("portal:home"))
    home, read = get(john_client, reverse("portal:home"))
    assert "Heat pump installation" in home.text and not read
    # The same page without its ticket reads the session (the check above can tell).
    del john_client.cookies[TICKET_COOKIE]
    assert get(john_client, job_url(job))[1]


def test_without_a_ticket_the_pages_read_the_session_and_issue_one_again(john_client: Client, job: Job) -> None:
    del john_client.cookies[TICKET_COOKIE]
    page, read = get(john_client, job_url(job))
    assert page.status_code == 200 and "Heat pump installation" in page.text and read
    ticket = read_ticket(page.cookies[TICKET_COOKIE].value)
    assert ticket is not None and ticket["portal_contact_id"] == john_client.session["portal_contact_id"]
    assert not get(john_client, job_url(job))[1]


def test_a_forged_ticket_is_ignored_and_replaced(client: Client, john: Contact, stranger: Contact, job: Job) -> None:
    sign_in(client, john)
    kept(client, job_url(job))
    data = read_ticket(client.cookies[TICKET_COOKIE].value)
    client.cookies[TICKET_COOKIE] = make_ticket({**data, "portal_contact_id": stranger.pk})[:-3] + "abc"
    page, read = get(client, job_url(job))
    assert page.status_code == 200 and "Heat pump installation" in page.text and read
    assert read_ticket(page.cookies[TICKET_COOKIE].value) == data


def test_a_ticket_moved_to_another_browser_names_nobody_there(
    client: Client, john: Contact, stranger: Contact, job: Job, stranger_job: Job
) -> None:
    sign_in(client, john)
    kept(client, job_url(job))
    olga = sign_in(Client(), stranger)
    olga.cookies[TICKET_COOKIE] = client.cookies[TICKET_COOKIE].value  # John's ticket, Olga's session
    assert olga.get(job_url(job)).status_code == 404
    home = olga.get(reverse("portal:home"))
    assert "Acme cabling" in home.text and "Heat pump installation" not in home.text
    etag = client.get(status_url(job))["ETag"]
    assert olga.get(status_url(job), headers={"If-None-Match": etag}).status_code == 404


def test_signing_out_ends_the_ticket_and_replayed_cookies_sign_nobody_in(john_client: Client, job: Job) -> None:
    kept(john_client, job_url(job))
    etag = john_client.get(status_url(job))["ETag"]
    replayed = {name: john_client.cookies[name].value for name in (settings.SESSION_COOKIE_NAME, TICKET_COOKIE)}

    response = john_client.post(reverse("portal:sign_out"))
    assert response.cookies[TICKET_COOKIE].value == ""  # removed

    replay = Client()
    for name, value in replayed.items():
        replay.cookies[name] = value
    page = replay.get(job_url(job), follow=True)
    assert page.redirect_chain[0][0] == f"{SIGNED_OUT}?job={job.public_id}"
    assert "Heat pump installation" not in page.text
    poll = replay.get(status_url(job), headers={"If-None-Match": etag, "HX-Request": "true"})
    assert poll.status_code == 200 and poll["HX-Redirect"] == f"{SIGNED_OUT}?job={job.public_id}"
    assert "Heat pump installation" not in replay.get(reverse("portal:home"), follow=True).text


def test_an_expired_session_ends_the_ticket(john_client: Client, job: Job) -> None:
    kept(john_client, job_url(job))
    key = john_client.cookies[settings.SESSION_COOKIE_NAME].value
    Session.objects.filter(session_key=key).update(expire_date=MONDAY_MORNING - timedelta(seconds=1))
    caches[settings.SESSION_CACHE_ALIAS].clear()  # the session's cached copy expires with it
    assert john_client.get(job_url(job))["Location"] == f"{SIGNED_OUT}?job={job.public_id}"


def test_a_reset_of_the_links_ends_the_poll_of_every_other_browser_at_once(
    john_client: Client, john: Contact, job: Job
) -> None:
    etag = john_client.get(status_url(job))["ETag"]
    contact_links_reset(contact=john)  # from another browser: this one's session is bound to the old links
    poll = john_client.get(status_url(job), headers={"If-None-Match": etag, "HX-Request": "true"})
    assert poll["HX-Redirect"] == f"{SIGNED_OUT}?job={job.public_id}"
    assert "portal_contact_id" not in john_client.session


def test_a_language_chosen_on_this_browser_shows_at_once_on_kept_pages(john_client: Client, job: Job) -> None:
    kept(john_client, job_url(job))
    assert '<html lang="en">' in john_client.get(job_url(job)).text
    response = john_client.post(reverse("portal:language"), {"language": "fr", "next": job_url(job)})
    assert read_ticket(response.cookies[TICKET_COOKIE].value)["portal_language"] == "fr"
    page = john_client.get(job_url(job))
    assert page["Content-Language"] == "fr" and '<html lang="fr">' in page.text
    assert not get(john_client, job_url(job))[1]


@pytest.fixture
def visit(job: Job) -> Visit:
    return visit_book(
        job=job,
        kind=VisitKind.objects.create(pipeline=job.pipeline, name="Installation day", window_minutes=120),
        actor=job.owner,
        window_start=MONDAY_MORNING + timedelta(days=2),
        address="12 rue des Lilas",
        tell_customer=False,
    )


def test_a_flash_message_shows_on_a_page_kept_whole(john_client: Client, job: Job, visit: Visit) -> None:
    visit_cancel(visit=visit, reason="No longer needed", actor=job.owner, tell_customer=False)
    kept(john_client, job_url(job))
    confirm = reverse("portal:visit_confirm", args=[job.public_id, visit.public_id])
    response = john_client.get(confirm, follow=True)
    assert "This visit is no longer waiting for an answer" in response.text
    assert "This visit is no longer waiting for an answer" not in john_client.get(job_url(job)).text


def test_the_written_out_queries_name_the_models_own_tables() -> None:
    assert {model._meta.db_table: table for model, table in versions.TABLES.items()} == {
        table: table for table in versions.TABLES.values()
    }
    for table in versions.TABLES.values():
        assert f" {table} " in versions.JOB_SQL + versions.JOBS_SQL
