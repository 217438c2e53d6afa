"""The job page rendered once per change and served from the cache (portal.job_page): every kind
of change shows at once, nobody sees another's rendering, the per-request parts stay per request,
and a cache that does not answer costs speed, never the page."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Contact, Customer, Job, Message, StaffProfile, Visit, VisitKind
from crm.services.contacts import contact_links_reset
from crm.services.delivery import deliver
from crm.services.jobs import job_reassign, job_update_details, milestone_move
from crm.services.messages import free_message_send as message_send
from crm.services.questions import question_create
from crm.services.visits import visit_book, visit_on_the_way
from portal import job_page
from portal.job_page import HISTORY_SHOWN, csrf_placeholder

from .conftest import MONDAY_MORNING, advance, sign_in


def job_url(job: Job) -> str:
    return reverse("portal:job", args=[job.public_id])


def status_url(job: Job) -> str:
    return reverse("portal:job_status", args=[job.public_id])


def page(client: Client, job: Job, query: str = "") -> str:
    response = client.get(job_url(job) + query)
    assert response.status_code == 200
    return response.text


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def book(job: Job, kind: VisitKind, start: datetime) -> Visit:
    return visit_book(
        job=job, kind=kind, actor=job.owner, window_start=start, address="12 rue des Lilas", tell_customer=False
    )


@pytest.fixture
def cached_hits(monkeypatch) -> list[bool]:
    """Whether each job page of the test came from the cache."""
    seen: list[bool] = []
    whole, cached, rendered = job_page.cached_page, job_page.cached_job_page, job_page.job_page

    def whole_from_cache(*args, **kwargs):  # type: ignore[no-untyped-def]
        html = whole(*args, **kwargs)
        if html is not None:
            seen.append(True)
        return html

    def from_cache(*args, **kwargs):  # type: ignore[no-untyped-def]
        page = cached(*args, **kwargs)
        if page is not None:
            seen.append(True)
        return page

    def render(*args, **kwargs):  # type: ignore[no-untyped-def]
        page = rendered(*args, **kwargs)
        seen.append(page.from_cache)
        return page

    monkeypatch.setattr("portal.views.cached_page", whole_from_cache)
    monkeypatch.setattr("portal.views.cached_job_page", from_cache)
    monkeypatch.setattr("portal.views.job_page", render)
    return seen


def test_the_second_view_comes_from_the_cache_in_at_most_three_queries(
    john_client: Client, job: Job, cached_hits: list[bool]
) -> None:
    first = page(john_client, job)
    # The contact and the job (the session comes from the cache).
    assert queries(john_client, job_url(job)) <= 3
    second = page(john_client, job)
    assert cached_hits == [False, True, True]
    # The same page, but for its CSRF tokens (masked afresh for each response).
    assert re.sub(r"[A-Za-z0-9]{64}", "", first) == re.sub(r"[A-Za-z0-9]{64}", "", second)


def _kinds_of_change() -> dict[str, tuple[Callable[[Job, Contact, User], None], str]]:
    """Each kind of change the page shows, made through the services, and the text that shows it."""

    def stage(job: Job, john: Contact, alice: User) -> None:
        advance(job, "Proposal sent")

    def date(job: Job, john: Contact, alice: User) -> None:
        milestone = job.milestones.get(stage__name="Installed")
        milestone_move(
            milestone=milestone,
            new_date=milestone.forecast_date + timedelta(days=7),
            reason="The unit ships a week later.",
            actor=job.owner,
            tell_customer=True,
        )

    def question(job: Job, john: Contact, alice: User) -> None:
        question_create(job=job, contact=john, body="Can you come on a Saturday?", source="portal")

    def message(job: Job, john: Contact, alice: User) -> None:
        message_send(job=job, body="The panel arrived today.", contacts=[john], actor=job.owner)

    def owner(job: Job, john: Contact, alice: User) -> None:
        job_reassign(job=job, owner=alice, actor=job.owner, tell_customer=False)

    def title(job: Job, john: Contact, alice: User) -> None:
        job_update_details(job=job, actor=job.owner, title="Heat pump and solar panels")

    def visit(job: Job, john: Contact, alice: User) -> None:
        kind = VisitKind.objects.create(pipeline=job.pipeline, name="Survey visit", window_minutes=120)
        book(job, kind, MONDAY_MORNING + timedelta(days=1))

    def owner_card(job: Job, john: Contact, alice: User) -> None:
        profile = StaffProfile.objects.get(user=job.owner)
        profile.phone = "+33 6 99 88 77 66"
        profile.save()

    return {
        "stage": (stage, "Next: <strong>Order confirmed</strong>"),
        "date": (date, "The unit ships a week later."),
        "question": (question, "Can you come on a Saturday?"),
        "message": (message, "The panel arrived today."),
        "owner": (owner, "Alice"),
        "title": (title, "Heat pump and solar panels"),
        "visit": (visit, "Survey visit"),
        "owner_card": (owner_card, "+33 6 99 88 77 66"),
    }


@pytest.mark.parametrize("kind", list(_kinds_of_change()))
def test_each_kind_of_change_shows_at_once(
    kind: str, john_client: Client, job: Job, john: Contact, alice: User, cached_hits: list[bool]
) -> None:
    change, shown = _kinds_of_change()[kind]
    assert shown not in page(john_client, job)
    assert shown not in page(john_client, job)  # cached now, and still true
    change(job, john, alice)
    assert shown in page(john_client, job)
    assert cached_hits[:2] == [False, True]


def test_a_message_sent_no_longer_shows_on_its_way(john_client: Client, job: Job, john: Contact) -> None:
    [message] = message_send(job=job, body="See you soon.", contacts=[john], actor=job.owner)
    on_its_way = page(john_client, job).count("on its way")
    deliver(message_id=message.pk)
    assert Message.objects.get(pk=message.pk).status == Message.Status.SENT
    assert page(john_client, job).count("on its way") == on_its_way - 1


def test_two_contacts_in_two_languages_never_see_each_others_page(
    client: Client, job: Job, john: Contact, contact: Contact
) -> None:
    marie_client, john_client = sign_in(Client(), contact), sign_in(Client(), john)
    message_send(job=job, body="For John only.", contacts=[john], actor=job.owner)
    for _ in range(2):  # the first render, then the cached one
        french, english = page(marie_client, job), page(john_client, job)
        assert "Votre interlocuteur" in french and "Your point of contact" not in french
        assert "Your point of contact" in english and "Votre interlocuteur" not in english
        # Each contact's own messages.
        assert "For John only." in english and "For John only." not in french


def test_two_contacts_in_one_language_each_see_their_own_messages(job: Job, john: Contact, customer: Customer) -> None:
    jane = Contact.objects.create(customer=customer, name="Jane Smith", email="jane@example.com", language="en")
    job.contacts.add(jane)
    message_send(job=job, body="For John only.", contacts=[john], actor=job.owner)
    john_client, jane_client = sign_in(Client(), john), sign_in(Client(), jane)
    for _ in range(2):
        assert "For John only." in page(john_client, job)
        assert "For John only." not in page(jane_client, job)


def test_each_browser_gets_its_own_csrf_token_in_the_cached_visit_forms(
    job: Job, john: Contact, kind: VisitKind
) -> None:
    visit = book(job, kind, MONDAY_MORNING + timedelta(days=1))
    first, second = sign_in(Client(enforce_csrf_checks=True), john), sign_in(Client(enforce_csrf_checks=True), john)
    page(first, job)
    cached = page(second, job)
    assert csrf_placeholder() not in cached
    # The token in the cached form is this browser's: confirming the visit with it works.
    token = re.search(r'name="csrfmiddlewaretoken" value="([A-Za-z0-9]+)"', cached)
    assert token is not None
    response = second.post(
        reverse("portal:visit_confirm", args=[job.public_id, visit.public_id]),
        {"csrfmiddlewaretoken": token.group(1), "version": visit.version},
    )
    assert response.status_code == 302


@pytest.fixture
def kind(job: Job) -> VisitKind:
    return VisitKind.objects.create(pipeline=job.pipeline, name="Installation day", window_minutes=120)


def test_a_crew_on_its_way_counts_down_on_the_cached_page(
    john_client: Client, job: Job, kind: VisitKind, time_machine
) -> None:
    visit = book(job, kind, MONDAY_MORNING + timedelta(hours=1))
    visit_on_the_way(visit=visit, actor=job.owner, minutes=25)
    assert "about 25 min" in page(john_client, job)
    time_machine.shift(timedelta(minutes=10))
    assert "about 15 min" in page(john_client, job)


def test_the_history_shows_the_latest_messages_and_all_on_request(john_client: Client, job: Job, john: Contact) -> None:
    for number in range(HISTORY_SHOWN + 5):
        message_send(job=job, body=f"Update number {number}.", contacts=[john], actor=job.owner)
    latest = page(john_client, job)
    assert "Update number 24." in latest and "Update number 4." not in latest
    shown = re.search(r"Show all (\d+) messages", latest)
    assert shown is not None and int(shown.group(1)) >= HISTORY_SHOWN + 5
    everything = page(john_client, job, "?messages=all")
    assert all(f"Update number {number}." in everything for number in range(HISTORY_SHOWN + 5))
    # The live poll of that page keeps showing them all.
    assert f'hx-get="{status_url(job)}?messages=all"' in everything


def test_the_poll_brings_back_every_part_that_changed(john_client: Client, job: Job, john: Contact) -> None:
    found = re.search(r'data-live-etag="([^"]+)"', page(john_client, job))
    assert found is not None
    etag = found.group(1).replace("&quot;", '"')
    unchanged = john_client.get(status_url(job), headers={"HX-Request": "true", "If-None-Match": etag})
    assert unchanged.status_code == 304
    message_send(job=job, body="Your unit is here.", contacts=[john], actor=job.owner)
    question_create(job=job, contact=john, body="When do you come?", source="portal")
    changed = john_client.get(status_url(job), headers={"HX-Request": "true", "If-None-Match": etag})
    assert changed.status_code == 200
    history = changed.text.split('hx-swap-oob="innerHTML:#live-history"')[1]
    assert "Your unit is here." in history and "When do you come?" in history
    promises = changed.text.split('hx-swap-oob="innerHTML:#live-promises"')[1].split("hx-swap-oob")[0]
    assert "An answer to your question" in promises
    for part in ("#live-header", "#live-owner", "#live-files"):
        assert f'hx-swap-oob="innerHTML:{part}"' in changed.text


def test_with_the_cache_down_the_page_still_renders_and_says_so(
    john_client: Client, job: Job, caplog: pytest.LogCaptureFixture
) -> None:
    down = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    with override_settings(CACHES=down), caplog.at_level(logging.WARNING):
        text = page(john_client, job)
        assert "Where things stand" in text and job.title in text
        assert "Where things stand" in page(john_client, job)
    assert any("portal page cache did not answer" in r.getMessage() for r in caplog.records)


def test_a_flash_message_shows_once_and_is_never_kept(john_client: Client, job: Job) -> None:
    page(john_client, job)
    page(john_client, job)  # kept whole now
    response = john_client.post(reverse("portal:ask", args=[job.public_id]), {"body": "Is Tuesday fine?"}, follow=True)
    assert "Thank you: we have your question." in response.text
    assert "Thank you: we have your question." not in page(john_client, job)


def test_the_whole_page_kept_is_per_address(john_client: Client, job: Job) -> None:
    page(john_client, job)
    page(john_client, job, "?from=email")
    # The language switcher comes back to the address the page was opened at.
    assert f'value="{job_url(job)}?from=email"' in page(john_client, job, "?from=email")
    assert f'name="next" value="{job_url(job)}"' in page(john_client, job)


def test_a_page_kept_whole_still_ends_a_session_whose_links_were_reset(
    john_client: Client, job: Job, john: Contact
) -> None:
    page(john_client, job)
    page(john_client, job)  # kept whole
    contact_links_reset(contact=john, user_agent="another browser")
    response = john_client.get(job_url(job))
    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:signed_out"))


def test_a_page_kept_whole_is_nobody_elses(job: Job, john: Contact, other_customer: Customer) -> None:
    john_client = sign_in(Client(), john)
    page(john_client, job)
    page(john_client, job)
    # John moves to another customer: his session ends, the page is not served.
    Contact.objects.filter(pk=john.pk).update(customer=other_customer)
    response = john_client.get(job_url(job))
    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:signed_out"))
