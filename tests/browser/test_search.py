"""The navigation's search in Chromium: results appear as one types, the keyboard walks them,
Escape closes them, Enter opens the results page; all of it passes axe-core."""

from __future__ import annotations

import pytest

from crm.models import Contact
from tests.browser.conftest import assert_accessible, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_navigation_finds_a_job_as_one_types(page, live_server, bob, job, contact) -> None:
    Contact.objects.filter(pk=contact.pk).update(phone="06 12 34 56 78")
    base = live_server.url
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, f"{base}/jobs/")
    box = page.get_by_role("searchbox", name="Search jobs, customers and contacts")

    box.fill("+33 6 12 34 56 78")
    panel = page.locator("#nav-search-results")
    panel.get_by_role("link", name="Marie Dupont · Dupont household").wait_for()
    assert panel.get_by_role("link", name=f"{job.reference} · {job.title}").is_visible()
    assert_accessible(page)

    # Down arrow to the first result, down again to the next, Escape back to the box.
    box.press("ArrowDown")
    assert page.evaluate("document.activeElement.textContent").startswith(job.reference)
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.closest('#nav-search-results') !== null")
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.id") == "nav-search"
    assert panel.inner_html().strip() == ""

    # Enter opens the results page, its own box holding what was typed.
    box.fill("dupont")
    box.press("Enter")
    page.wait_for_url(f"{base}/search/?q=dupont")
    assert page.get_by_role("heading", name="Search", exact=True).is_visible()
    assert page.locator("main").get_by_role("link", name=f"{job.reference} · {job.title}").is_visible()
    assert page.get_by_label("A reference, a name, an email, a phone number or a job’s title").input_value() == "dupont"
    assert_accessible(page)

    # A result opens its page.
    page.locator("main").get_by_role("link", name=f"{job.reference} · {job.title}").click()
    page.wait_for_url(f"{base}/jobs/{job.public_id}/")
    box.fill("heat")
    panel.get_by_role("link", name=f"{job.reference} · {job.title}").wait_for()


def test_on_a_phone_the_search_is_in_the_menu(phone_page, live_server, bob, job) -> None:
    sign_in(phone_page, f"{live_server.url}/jobs/")
    phone_page.get_by_role("button", name="Menu").click()
    box = phone_page.get_by_role("searchbox", name="Search jobs, customers and contacts")
    box.wait_for(state="visible")
    box.fill("heat")
    phone_page.locator("#nav-search-results").get_by_role("link", name=f"{job.reference} · {job.title}").wait_for()
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 412
