"""The satisfaction page in a real browser: a manager reaches it from the communication-health
page, reads the team, an installer and a pipeline, opens a chart's numbers; an owner reads their
own jobs; every state of the page passes axe-core."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from crm.models import Customer
from tests.browser.conftest import assert_accessible
from tests.browser.test_staff import sign_in
from tests.crm.test_reports_satisfaction import END, build_world

pytestmark = pytest.mark.django_db(transaction=True)

PERIOD = "from=2026-03-02&to=2026-04-26"


@pytest.fixture
def world(time_machine, bob: User, alice: User, customer: Customer):
    built = build_world(time_machine, bob=bob, alice=alice, customer=customer)
    # The clock runs again from the scripted end, so the browser's session behaves normally.
    time_machine.move_to(END, tick=True)
    return built


def test_a_manager_reads_the_team_installers_and_pipelines(page, live_server, world) -> None:
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/reports/health/")
    page.get_by_role("navigation", name="Reports").get_by_role("link", name="Satisfaction").click()
    page.wait_for_url(f"{live_server.url}/reports/satisfaction/")
    assert_accessible(page)

    page.goto(f"{live_server.url}/reports/satisfaction/?{PERIOD}")
    owners = page.get_by_role("region", name="Per owner")
    bob_row = owners.get_by_role("row").filter(has_text="Bob Durand")
    assert "100%" in bob_row.inner_text()
    assert "+25" in bob_row.inner_text()
    team_row = owners.get_by_role("row").filter(has_text="Team")
    assert "8 of 10 answered" in team_row.inner_text()
    page.get_by_role("img", name="Response rate, week by week: Team").wait_for()
    page.get_by_role("table", name="How many gave each score: Team").wait_for()
    page.locator("summary").first.click()
    page.get_by_role("columnheader", name="Week starting").first.wait_for()
    assert_accessible(page)

    installers = page.get_by_role("region", name="Per installer")
    installers.get_by_role("link", name="Paul").click()
    page.get_by_role("img", name="Product quality, average, week by week: Paul").wait_for()
    assert_accessible(page)

    page.get_by_role("region", name="Per pipeline").get_by_role("link", name="Repair").click()
    page.get_by_role("img", name="Detractors (0–6), week by week: Repair").wait_for()
    # Changing the period keeps the pipeline's charts.
    page.get_by_label("From", exact=True).fill("2026-04-01")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("img", name="Detractors (0–6), week by week: Repair").wait_for()
    assert "from=2026-04-01" in page.url

    page.get_by_label("From", exact=True).fill("2026-04-30")
    page.get_by_label("To", exact=True).fill("2026-03-01")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("alert").filter(has_text="The period must start before it ends.").wait_for()
    assert_accessible(page)


def test_an_owner_reads_their_own_jobs(page, live_server, world) -> None:
    sign_in(page, live_server, "bob")
    page.goto(f"{live_server.url}/reports/satisfaction/?{PERIOD}")
    page.get_by_role("img", name="Response rate, week by week: Bob Durand").wait_for()
    content = page.content()
    assert "Alice Martin" not in content
    assert "Zoé" not in content
    assert_accessible(page)


def test_it_reads_on_a_phone(phone_page, live_server, world) -> None:
    sign_in(phone_page, live_server, "alice")
    phone_page.goto(f"{live_server.url}/reports/satisfaction/?{PERIOD}")
    phone_page.get_by_role("img", name="Response rate, week by week: Team").wait_for()
    assert_accessible(phone_page)
