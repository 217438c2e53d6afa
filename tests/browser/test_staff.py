"""The owner's day in a real browser: sign in, see what needs attention, open a late job, move its
date telling the customer, and see the message queued; every staff page passes axe-core."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from crm.models import Contact, Customer, Job, Message, Pipeline
from crm.services.jobs import job_create
from crm.workdays import business_today
from tests.browser.conftest import assert_accessible

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def late_job(customer: Customer, contact: Contact, installation: Pipeline, bob: User) -> Job:
    # Started five weeks ago: "Proposal sent" is long overdue.
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Heat pump installation",
        actor=bob,
        start_date=business_today() - timedelta(days=35),
    )


def sign_in(page, live_server, username: str = "bob", password: str = "pw") -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    assert_accessible(page)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def test_it_moves_a_late_date_and_tells_the_customer(page, live_server, late_job: Job) -> None:
    sign_in(page, live_server)
    assert_accessible(page)
    late = page.locator("section", has=page.get_by_role("heading", name="Running late"))
    late.get_by_role("link", name=late_job.reference).click()
    page.wait_for_url(re.compile(rf"/jobs/{late_job.public_id}/"))
    assert_accessible(page)

    new_date = business_today() + timedelta(days=10)
    form = page.locator("form", has=page.get_by_label("Which date"))
    proposal = late_job.milestones.get(stage__name="Proposal sent")
    form.get_by_label("Which date").select_option(value=str(proposal.pk))
    form.get_by_label("New date").fill(new_date.isoformat())
    form.get_by_label("Reason").fill("Waiting for the supplier's price")
    form.get_by_role("button", name="Preview").click()
    preview = page.locator("#move-preview")
    preview.get_by_text("What 1 contact will receive").wait_for()
    assert "Waiting for the supplier" in preview.inner_text()

    form.get_by_role("button", name="Move the date").click()
    page.get_by_role("status").filter(has_text="the customer is being told now").wait_for()
    messages = page.locator("#messages")
    messages.get_by_text("Date moved").first.wait_for()
    assert Message.objects.filter(job=late_job, kind=Message.Kind.DATE_MOVED).count() == 1
    late_job.refresh_from_db()
    assert late_job.milestones.get(stage__position=2).forecast_date == new_date


def test_every_staff_page_is_accessible(page, live_server, late_job: Job) -> None:
    sign_in(page, live_server)
    for path in ["/", "/?scope=team", "/jobs/", "/jobs/?owner=all&late=1", "/jobs/board/", "/inbox/"]:
        page.goto(f"{live_server.url}{path}")
        assert_accessible(page)
    page.goto(f"{live_server.url}/jobs/{late_job.public_id}/")
    assert_accessible(page)
