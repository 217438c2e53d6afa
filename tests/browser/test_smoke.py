"""The browser harness itself: Chromium starts, the page is served with its static files, axe runs."""

import pytest

from tests.browser.conftest import assert_accessible


@pytest.mark.django_db(transaction=True)
def test_it_serves_a_styled_accessible_page(page, live_server):
    response = page.goto(f"{live_server.url}/portal/signed-out/")
    assert response.status == 200
    # Bootstrap is served by the app itself (no CDN): its reset sets the body margin to 0.
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"
    assert_accessible(page)
