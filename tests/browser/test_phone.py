"""The staff side on a 360 px phone: every staff page, and the admin's job form, is laid out
within the screen (the page never scrolls sideways: a wide table scrolls inside its own region,
which the keyboard reaches), with every <details> open too, and passes axe-core.

The data is the communication-health scenario (tests/crm/test_reports.py: jobs, promises,
questions and messages over eight weeks), so the reports and lists have rows; the clock runs
again from its end, when the superuser has a job with a visit today.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import Contact, Customer, Job, Pipeline, VisitKind
from crm.services.jobs import job_create
from crm.services.visits import visit_book
from tests.browser.conftest import assert_accessible, page_width, sign_in
from tests.crm.test_reports import END, build_scenario

pytestmark = pytest.mark.django_db(transaction=True)

# Every element that scrolls sideways (the page itself aside) and cannot be focused: a keyboard
# could not scroll it. Reported by tag, classes and how much wider its content is.
UNREACHABLE_SCROLLERS = """() => [...document.body.querySelectorAll('*')].filter(el => {
  const overflow = getComputedStyle(el).overflowX;
  return (overflow === 'auto' || overflow === 'scroll') && el.scrollWidth > el.clientWidth + 1 && el.tabIndex < 0;
}).map(el => `${el.tagName.toLowerCase()}.${[...el.classList].join('.')} (+${el.scrollWidth - el.clientWidth}px)`)"""


@pytest.fixture
def job(
    time_machine: Any,
    superuser: User,
    bob: User,
    alice: User,
    customer: Customer,
    contact: Contact,
    installation: Pipeline,
) -> Job:
    build_scenario(time_machine, bob=bob, alice=alice, customer=customer, contact=contact)
    # The clock runs again from the scenario's end, so the browser's session behaves normally.
    time_machine.move_to(END, tick=True)
    Customer.objects.filter(pk=customer.pk).update(address="12 rue des Lilas\n69003 Lyon")
    job = job_create(customer=customer, pipeline=installation, owner=superuser, title="Heat pump", actor=superuser)
    kind = VisitKind.objects.create(pipeline=installation, name="Installation day", window_minutes=120)
    visit_book(
        job=job,
        kind=kind,
        window_start=timezone.now() + timedelta(hours=1),
        installers=[superuser],
        prepare="Clear the way to the boiler room.",
        tell_customer=False,
        actor=superuser,
    )
    return job


def assert_fits(page: Any) -> None:
    width = page_width(page)
    assert width <= 360, f"{page.url} is {width}px wide on a 360px phone: it scrolls sideways"


def test_every_staff_page_fits_a_phone(phone_page: Any, live_server: Any, job: Job, contact: Contact) -> None:
    page = phone_page
    base = live_server.url
    customer = job.customer
    sign_in(page, f"{base}/", username="root")  # a superuser: a manager's pages, and the admin
    paths = [
        "/",
        "/?scope=team",
        "/jobs/",
        "/jobs/board/",
        f"/jobs/{job.public_id}/",
        "/jobs/new/",
        "/customers/",
        "/customers/new/",
        f"/customers/{customer.pk}/",
        f"/customers/{customer.pk}/edit/",
        f"/contacts/{contact.pk}/edit/",
        "/import/",
        "/reports/health/",
        "/reports/satisfaction/",
        "/campaigns/",
        "/campaigns/new/",
        "/today/",
        "/schedule/",
        "/schedule/?who=team",
        "/schedule/?who=team&week=2026-03-02",
        "/inbox/",
    ]
    for path in paths:
        page.goto(base + path)
        assert_fits(page)
        # What a tap opens (the job page's forms, a chart's numbers) stays within the screen too.
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
        assert_fits(page)
        assert page.evaluate(UNREACHABLE_SCROLLERS) == [], f"{path}: it scrolls sideways out of the keyboard's reach"
        assert_accessible(page)
        if path == "/today/":
            expect(page.get_by_role("button", name="Arrived")).to_be_visible()  # with today's visit

    # The admin's job form: its autocomplete boxes are named after their fields, its breadcrumbs'
    # links are underlined; on the new-job form, the customer's dropdown search box too.
    page.goto(f"{base}/admin/crm/job/{job.pk}/change/")
    expect(page.get_by_role("link", name="Customer portal — administration")).to_be_visible()
    expect(page.get_by_role("searchbox", name="Installers")).to_be_attached()
    assert page.locator(".breadcrumbs a").first.evaluate("a => getComputedStyle(a).textDecorationLine") == "underline"
    assert_fits(page)
    assert_accessible(page)
    page.goto(f"{base}/admin/crm/job/add/")
    page.locator(".field-customer .select2-selection").tap()
    expect(page.get_by_role("searchbox", name="Customer")).to_be_focused()
    assert_fits(page)
    assert_accessible(page)
