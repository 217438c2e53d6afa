"""The staff navigation on a laptop: one line at 1280 and 1366 px for a manager with the admin
link, in English and in French; on a phone, behind the menu button."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from crm.models import Message
from tests.browser.conftest import new_phone_context, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

LINES = """() => new Set([...document.querySelectorAll('#staff-nav .nav-link')]
  .map((link) => Math.round(link.getBoundingClientRect().top))).size"""


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("width", [1280, 1366])
def test_the_navigation_fits_on_one_line(page, live_server, alice: User, language: str, width: int) -> None:
    alice.is_superuser = True  # the longest navigation: a manager with the admin link…
    alice.save()
    # …and its badges: a two-digit count of what needs attention, unassigned mail.
    for n in range(12):
        Message.objects.create(
            channel=Message.Channel.EMAIL,
            direction=Message.Direction.IN,
            kind=Message.Kind.REPLY,
            status=Message.Status.RECEIVED,
            from_address=f"someone{n}@example.com",
            subject="Hello",
            idempotency_key=f"in:nav:{n}",
        )
    Message.objects.create(
        channel=Message.Channel.EMAIL,
        kind=Message.Kind.STAFF_ALERT,
        status=Message.Status.FAILED,
        staff=alice,
        to_address="alice@example.com",
        idempotency_key="alert:nav",
    )
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, f"{live_server.url}/jobs/", username="alice")
    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page.goto(f"{live_server.url}/jobs/")
    assert page.evaluate("document.documentElement.lang") == language
    assert page.evaluate(LINES) == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_on_a_phone_the_navigation_is_behind_the_menu_button(browser, live_server, bob: User) -> None:
    context = new_phone_context(browser)
    try:
        phone = context.new_page()
        sign_in(phone, f"{live_server.url}/jobs/")
        assert not phone.get_by_role("link", name="Customers").is_visible()
        phone.get_by_role("button", name="Menu").click()
        phone.get_by_role("link", name="Customers").wait_for(state="visible")
    finally:
        context.close()
