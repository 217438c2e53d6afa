"""The customer portal in Chromium: a magic link opens the job, a staff change shows without a
reload, a question is acknowledged in place with its date, an expired link leads to a fresh one,
the pages switch to French, and every page passes axe at desktop width and at 360 px.

The live status is polled every second here (LIVE_STATUS_SECONDS; 20 s in the product).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import translation
from playwright.sync_api import expect

from crm.links import make_link_token, make_unsubscribe_token
from crm.models import Contact, Customer, Job, Pipeline, Question, StaffProfile
from crm.services.jobs import job_advance, job_create
from portal import views
from portal.templatetags.portal import long_day
from tests.browser.conftest import assert_accessible

pytestmark = pytest.mark.django_db(transaction=True)

FRENCH_WEEKDAY = re.compile(r"\b(lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)\b")


@pytest.fixture(autouse=True)
def _fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "LIVE_STATUS_SECONDS", 1)


@pytest.fixture
def john(customer: Customer) -> Contact:
    return Contact.objects.create(
        customer=customer, name="John Smith", email="john@example.com", phone="+447400123456", language="en"
    )


@pytest.fixture
def portal_job(customer: Customer, john: Contact, installation: Pipeline, bob: User) -> Job:
    StaffProfile.objects.create(user=bob, phone="+33 1 99 00 12 02", job_title="Project manager")
    installation.stages.filter(name="Proposal sent").update(customer_instructions="Send us photos of your panel.")
    return job_create(customer=customer, pipeline=installation, owner=bob, title="Heat pump", actor=bob)


def enter_path(contact: Contact, job: Job | None = None) -> str:
    path = reverse("portal:enter", args=[make_link_token(contact)])
    return f"{path}?job={job.public_id}" if job else path


@pytest.fixture
def signed_in(page: Any, live_server: Any, john: Contact, portal_job: Job) -> Iterator[Any]:
    page.goto(live_server.url + enter_path(john, portal_job))
    yield page


def test_it_opens_a_magic_link_on_the_job_status(signed_in: Any, portal_job: Job) -> None:
    page = signed_in
    assert page.url.endswith(reverse("portal:job", args=[portal_job.public_id]))
    expect(page.locator(".status-headline")).to_have_text("Request received")
    expect(page.locator(".status-next")).to_contain_text("Next: Proposal sent")
    expect(page.locator(".prepare").get_by_text("Send us photos of your panel.")).to_be_visible()
    expect(page.get_by_role("link", name="Call +33 1 99 00 12 02")).to_be_visible()
    assert_accessible(page)


def test_it_shows_a_staff_change_without_a_reload(signed_in: Any, portal_job: Job, bob: User) -> None:
    page = signed_in
    page.evaluate("window.notReloaded = true")
    expect(page.locator(".status-headline")).to_have_text("Request received")
    job_advance(job=portal_job, to_stage=portal_job.pipeline.stages.get(name="Order confirmed"), actor=bob)
    expect(page.locator(".status-headline")).to_have_text("Order confirmed", timeout=8_000)
    expect(page.locator("#live-announcer")).to_contain_text("Order confirmed")
    # The rest of the page follows too: the stage's message in the history, the job's header.
    expect(page.locator("#live-history .history-item").first).to_contain_text("From us")
    expect(page.locator("#live-history")).not_to_contain_text("No messages yet")
    assert page.evaluate("window.notReloaded") is True


def test_it_acknowledges_a_question_in_place_with_its_date(signed_in: Any, portal_job: Job, john: Contact) -> None:
    page = signed_in
    page.evaluate("window.notReloaded = true")
    page.get_by_label("Your question").fill("Can the installer park in the yard?")
    page.get_by_role("button", name="Send my question").click()
    ack = page.locator("#question-ack")
    expect(ack).to_contain_text("You will have our answer by")
    # The date the service promised (business hours from when it arrived, plus the buffer).
    request = Question.objects.get()
    with translation.override("en"):
        due = long_day(request.answer_due_on)
    expect(ack).to_contain_text(f"You will have our answer by {due} at the latest.")
    expect(ack).to_be_focused()
    assert page.evaluate("window.notReloaded") is True
    assert Question.objects.get().contact == john
    assert page.get_by_label("Your question").input_value() == ""
    # The next poll brings the question into the messages and its promise into "what we promised".
    expect(page.locator("#live-history")).to_contain_text("Can the installer park in the yard?", timeout=8_000)
    expect(page.locator("#live-promises")).to_contain_text("An answer to your question")
    assert page.evaluate("window.notReloaded") is True
    assert_accessible(page)


def test_an_expired_link_leads_to_a_new_link(page: Any, live_server: Any, john: Contact, portal_job: Job) -> None:
    with time_machine.travel(datetime.now(tz=UTC) - timedelta(days=31)):
        old_link = enter_path(john, portal_job)
    page.goto(live_server.url + old_link)
    expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired or is no longer valid")
    assert_accessible(page)
    page.get_by_label("Your email address").fill("john@example.com")
    page.get_by_role("button", name="Send me a new link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your messages")
    assert_accessible(page)


def test_it_switches_to_french(signed_in: Any) -> None:
    page = signed_in
    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    assert FRENCH_WEEKDAY.search(page.locator(".timeline").inner_text())
    assert_accessible(page)


def test_every_page_is_accessible_on_a_phone(phone_page: Any, live_server: Any, john: Contact, portal_job: Job) -> None:
    page = phone_page
    pages = [
        enter_path(john, portal_job),  # → the job page
        reverse("portal:home"),
        reverse("portal:preferences"),
        reverse("portal:unsubscribe", args=[make_unsubscribe_token(john)]),
        reverse("portal:link_sent"),
        reverse("portal:signed_out") + "?reason=expired",
    ]
    for path in pages:
        page.goto(live_server.url + path)
        assert_accessible(page)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than the phone"
    # The preferences form, with its errors shown, too.
    page.goto(live_server.url + reverse("portal:preferences"))
    page.get_by_label("By text message, at +44 7400 123456").check()
    page.get_by_role("button", name="Save my preferences").click()
    expect(page.get_by_text("Tick this box to get text messages")).to_be_visible()
    assert_accessible(page)
