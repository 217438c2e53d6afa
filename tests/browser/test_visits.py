"""An installer's day on a 360 px phone, with the customer watching the job page on theirs.

Paul, the installer, opens /today/ and taps "On my way" (30 min), says he is running late (a
new time and why), taps "Arrived", then "Done"; after each tap the customer's job page, left
open, shows the new state without a reload (its status fragment is polled every second here:
LIVE_STATUS_SECONDS, 20 s in the product). Before that, the customer confirms the visit with
"That works". Every page on the way passes axe-core at 360 px: /today/ in each state, the staff
job page's visits section with its forms open, the portal job page with the visit.

The clock is moved to Tuesday 3 March 2026, 09:30 in Paris (the team's and the customer's time
zone), and runs from there: the window is 10:00–12:00.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import expect

from crm.links import make_link_token, visit_answer_url
from crm.models import Contact, Customer, Job, Pipeline, StaffProfile, Visit, VisitKind
from crm.services.jobs import job_create
from crm.services.visits import visit_book
from portal import views
from tests.browser.conftest import assert_accessible, new_phone_context, page_width, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

PARIS = ZoneInfo("Europe/Paris")
POLL = 8_000  # ms: a poll a second, with room for a slow CI machine


@pytest.fixture(autouse=True)
def tuesday_morning(time_machine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    time_machine.move_to(datetime(2026, 3, 3, 9, 30, tzinfo=PARIS), tick=True)
    monkeypatch.setattr(views, "LIVE_STATUS_SECONDS", 1)


@pytest.fixture
def paul(db: Any) -> User:
    user = User.objects.create_user("paul", "paul@example.com", "pw", first_name="Paul", last_name="Girard")
    user.is_staff = True
    user.save()
    StaffProfile.objects.create(user=user, phone="+33 6 11 22 33 44", job_title="Installer")
    return user


@pytest.fixture
def john(customer: Customer) -> Contact:
    Customer.objects.filter(pk=customer.pk).update(address="12 rue des Lilas\n75011 Paris")
    return Contact.objects.create(
        customer=customer, name="John Smith", email="john@example.com", phone="+33 6 98 76 54 32", language="en"
    )


@pytest.fixture
def visit(customer: Customer, john: Contact, installation: Pipeline, bob: User, paul: User) -> Visit:
    job = job_create(customer=customer, pipeline=installation, owner=bob, title="Heat pump", actor=bob)
    kind = VisitKind.objects.create(
        pipeline=installation,
        name="Installation day",
        window_minutes=120,
        duration_minutes=240,
        stage=installation.stages.get(name="Installed"),
        completes_stage=True,
    )
    return visit_book(
        job=job,
        kind=kind,
        window_start=datetime(2026, 3, 3, 10, 0, tzinfo=PARIS),
        installers=[paul],
        address="12 rue des Lilas\n75011 Paris",
        prepare="Clear the way to the boiler room.",
        actor=bob,
    )


@pytest.fixture
def customer_page(browser: Any) -> Iterator[Any]:
    context = new_phone_context(browser)
    yield context.new_page()
    context.close()


def enter_path(contact: Contact, job: Job) -> str:
    return reverse("portal:enter", args=[make_link_token(contact)]) + f"?job={job.public_id}"


def assert_fits_the_phone(page: Any) -> None:
    width = page_width(page)
    assert width <= 360, f"{page.url} is {width}px wide on a 360px phone"


def test_an_installers_day_shows_live_on_the_customers_phone(
    phone_page: Any, customer_page: Any, live_server: Any, visit: Visit, john: Contact
) -> None:
    staff, customer = phone_page, customer_page
    job = visit.job

    # The customer opens the link of the booking message and confirms: "That works".
    customer.goto(live_server.url + enter_path(john, job))
    card = customer.locator("#visit")
    expect(card).to_contain_text("Please confirm this time.")
    assert_accessible(customer)
    assert_fits_the_phone(customer)
    card.get_by_role("button", name="That works").tap()
    expect(card).to_contain_text("Confirmed — thank you.")
    expect(customer.get_by_role("status").filter(has_text="the visit is confirmed")).to_be_visible()
    assert Visit.objects.get(pk=visit.pk).status == Visit.Status.CONFIRMED
    customer.evaluate("window.notReloaded = true")

    # Paul's day: one visit, confirmed.
    sign_in(staff, f"{live_server.url}/today/", username="paul")
    today = staff.locator(f"#visit-{visit.public_id}")
    expect(today).to_contain_text("Dupont household")
    expect(today).to_contain_text("Confirmed by the customer")
    assert_accessible(staff)
    assert_fits_the_phone(staff)

    def tapped(button: Any, said: str) -> None:
        button.tap()
        staff.wait_for_url(f"{live_server.url}/today/")
        expect(staff.get_by_role("status").filter(has_text=said)).to_be_visible()

    # On my way, there in 30 minutes: the customer's page counts down, without a reload.
    tapped(today.get_by_role("button", name="On my way, there in 30 min"), "On your way to Dupont household")
    expect(card.locator(".visit-eta")).to_have_text("On the way — about 30 min", timeout=POLL)
    expect(card).to_contain_text("Expected around 10:")
    expect(customer.locator("#live-announcer")).to_contain_text("On the way")
    expect(today).to_contain_text("On the way, there about 10:")
    assert_accessible(customer)
    assert_accessible(staff)
    assert_fits_the_phone(staff)

    # Running late: 12:30 (after the window), and why.
    today.locator("summary", has_text="Running late").tap()
    today.get_by_label("I will be there at").fill("12:30")
    today.get_by_label("Why (the customer is told)").fill("A burst pipe at the previous visit")
    assert_accessible(staff)
    tapped(today.get_by_role("button", name="Tell them I am late"), "told you will be there about 12:30, and why")
    expect(card).to_contain_text("Expected around 12:30.", timeout=POLL)
    expect(card.locator(".late-note")).to_have_text("That is later than the time we gave you: we are sorry.")
    expect(card.locator(".visit-eta")).to_contain_text("On the way — about 3 h")

    # Arrived.
    tapped(today.get_by_role("button", name="Arrived"), "Installation day: arrived.")
    expect(card.locator(".visit-eta")).to_have_text(re.compile(r"Our team arrived at 09:\d\d\."), timeout=POLL)
    expect(customer.locator("#live-announcer")).to_contain_text("Our team arrived at")
    assert_accessible(customer)

    # Done: the job reaches "Installed", and the visit goes to the visit history.
    tapped(today.get_by_role("button", name="Done"), "Installation day: done. Thank you!")
    expect(today.locator(".badge", has_text="Done")).to_be_visible()
    expect(customer.locator(".status-headline")).to_have_text("Installed", timeout=POLL)
    expect(customer.locator("#visit")).to_have_count(0)
    expect(customer.locator(".visits-past")).to_contain_text("Installation day")
    expect(customer.locator(".visits-past")).to_contain_text("Done.")
    assert customer.evaluate("window.notReloaded") is True
    assert_accessible(customer)
    assert_fits_the_phone(customer)

    # Why they were late reached the customer: the message is in the job's history.
    customer.reload()
    history = customer.get_by_role("region", name="Messages")
    expect(history).to_contain_text("A burst pipe at the previous visit")

    visit.refresh_from_db()
    assert visit.status == Visit.Status.DONE and visit.arrived_at is not None


def test_the_job_pages_visits_section_on_a_phone(phone_page: Any, live_server: Any, visit: Visit) -> None:
    page = phone_page
    sign_in(page, f"{live_server.url}/jobs/{visit.job.public_id}/")
    visits = page.get_by_role("region", name="Visits")
    expect(visits).to_contain_text("Installation day")
    expect(visits).to_contain_text("Not confirmed yet")
    # Each form of the section open: move, cancel, book another.
    for summary in ("Move", "Cancel the visit", "Book a visit"):
        visits.locator("summary", has_text=summary).first.tap()
    expect(visits.get_by_role("button", name="Move the visit")).to_be_visible()
    expect(visits.get_by_role("button", name="Book the visit")).to_be_visible()
    assert_accessible(page)
    assert_fits_the_phone(page)


def test_the_answer_links_of_the_booking_message_on_a_phone(
    customer_page: Any, live_server: Any, visit: Visit, john: Contact, installation: Pipeline
) -> None:
    # The booking email's "I need another time" link, with self-booking on: the crew's free times,
    # one tap books one; then its "That works" link says it is confirmed already.
    installation.visit_self_booking = True
    installation.save()
    page = customer_page
    page.goto(live_server.url + visit_answer_url(john, visit, "another-time").removeprefix(settings.SITE_URL))
    expect(page.get_by_role("heading", name="Choose one of our free times")).to_be_visible()
    assert_accessible(page)
    assert_fits_the_phone(page)
    first = page.locator("button.free-time").first
    chosen = first.inner_text()
    first.tap()
    expect(page.get_by_role("status").first).to_contain_text("Thank you: the visit is booked for")
    expect(page.locator("#visit")).to_contain_text("Confirmed — thank you.")
    assert chosen.split(",")[0] in page.locator("#visit").inner_text()

    page.goto(live_server.url + visit_answer_url(john, visit, "confirm").removeprefix(settings.SITE_URL))
    expect(page.get_by_text("You have confirmed this time — thank you.")).to_be_visible()
    assert_accessible(page)
    assert_fits_the_phone(page)
