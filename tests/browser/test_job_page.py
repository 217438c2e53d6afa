"""The staff job page in Chromium, on a laptop and on a 360 px phone: the next action first, every
other action one click (or key) away, no sideways scrolling, axe-clean at both widths."""

from __future__ import annotations

import pytest

from crm.models import Job
from crm.services.jobs import job_create
from tests.browser.conftest import assert_accessible, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fresh(customer, contact, installation, bob) -> Job:
    """A job begun today: nothing late, nothing waiting."""
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Heat pump installation",
        actor=bob,
        notify_customer=False,
        not_told_reason="Test.",
    )


HEIGHT = "() => document.documentElement.scrollHeight"


def test_on_a_laptop_the_next_action_is_open_and_the_others_one_key_away(page, live_server, fresh: Job) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, f"{live_server.url}/jobs/{fresh.public_id}/")
    primary = page.locator(".job-next a").first
    assert primary.inner_text() == "Move to “Proposal sent”"
    assert primary.bounding_box()["y"] < 800  # in the first screen
    assert page.get_by_role("button", name="Move the job").is_visible()
    assert not page.get_by_role("button", name="Log the call").is_visible()
    assert_accessible(page)
    # Another action, from the keyboard: its summary, Enter, and its form is there.
    page.locator("#action-call > summary").focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Log the call").wait_for()
    assert_accessible(page)


def test_on_a_phone_it_is_a_page_not_a_squeezed_desktop(phone_page, live_server, fresh: Job) -> None:
    sign_in(phone_page, f"{live_server.url}/jobs/{fresh.public_id}/")
    width = phone_page.viewport_size["width"]
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= width
    primary = phone_page.locator(".job-next a").first
    assert primary.bounding_box()["y"] < phone_page.viewport_size["height"]
    # The actions come before the long sections, folded.
    actions = phone_page.locator("#actions").bounding_box()["y"]
    assert actions < phone_page.locator("#timeline").bounding_box()["y"]
    assert phone_page.evaluate(HEIGHT) < 5000
    assert_accessible(phone_page)
