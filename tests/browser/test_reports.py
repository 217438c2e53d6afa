"""The communication-health page in a real browser: a manager and an owner read it, open a
chart's numbers, and every state of the page passes axe-core."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from crm.models import Contact, Customer
from tests.browser.conftest import assert_accessible
from tests.browser.test_staff import sign_in
from tests.crm.test_reports import END, build_scenario

pytestmark = pytest.mark.django_db(transaction=True)

PERIOD = "from=2026-03-02&to=2026-04-26"


@pytest.fixture
def scenario(time_machine, bob: User, alice: User, customer: Customer, contact: Contact):
    world = build_scenario(time_machine, bob=bob, alice=alice, customer=customer, contact=contact)
    # The clock runs again from the scenario's end, so the browser's session behaves normally.
    time_machine.move_to(END, tick=True)
    return world


def test_a_manager_reads_the_team_and_each_owner(page, live_server, scenario, bob: User) -> None:
    sign_in(page, live_server, "alice")
    page.get_by_role("link", name="Reports").click()
    page.wait_for_url(f"{live_server.url}/reports/health/")
    assert_accessible(page)

    page.goto(f"{live_server.url}/reports/health/?{PERIOD}")
    table = page.get_by_role("region", name="Per owner and for the team")
    bob_row = table.get_by_role("row").filter(has_text="Bob Durand")
    assert "60%" in bob_row.inner_text()
    assert "6 of 10 promises" in bob_row.inner_text()
    chart = page.get_by_role("img", name="Promises kept on time, week by week: Team")
    chart.wait_for()
    page.locator("summary").first.click()
    page.get_by_role("columnheader", name="Week starting").first.wait_for()
    assert_accessible(page)

    bob_row.get_by_role("link", name="Bob Durand").click()
    page.get_by_role("img", name="Promises kept on time, week by week: Bob Durand").wait_for()
    assert_accessible(page)

    page.get_by_label("From", exact=True).fill("2026-04-01")
    page.get_by_label("To", exact=True).fill("2026-03-01")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("alert").filter(has_text="The period must start before it ends.").wait_for()
    assert_accessible(page)


def test_an_owner_reads_their_own_figures(page, live_server, scenario) -> None:
    sign_in(page, live_server, "bob")
    page.goto(f"{live_server.url}/reports/health/?{PERIOD}")
    page.get_by_role("img", name="Promises kept on time, week by week: Bob Durand").wait_for()
    assert "Alice Martin" not in page.content()
    assert_accessible(page)
