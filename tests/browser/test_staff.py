"""The owner's day in a real browser: sign in, see what needs attention, open a late job, move its
date telling the customer, and see the message queued; every staff page passes axe-core."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from crm.models import Contact, Customer, Job, Message, Pipeline
from crm.services.jobs import job_create
from crm.workdays import add_business_days, business_today
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

    new_date = add_business_days(business_today(), 8)  # a working day: no "keep it?" question
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


def test_it_moves_several_jobs_after_reviewing_the_message(page, live_server, late_job: Job, bob: User) -> None:
    other = job_create(
        customer=late_job.customer, pipeline=late_job.pipeline, owner=bob, title="Second heat pump", actor=bob
    )
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/jobs/?owner=all&pipeline={late_job.pipeline_id}")
    assert_accessible(page)
    page.get_by_label("Select all on this page").check()
    assert page.get_by_label(f"Select {late_job.reference}").is_checked()
    assert page.get_by_label(f"Select {other.reference}").is_checked()
    page.get_by_role("combobox", name="Move the selected jobs to").select_option(label="3. Order confirmed")
    page.get_by_label("Personal note to the customers").fill("The parts are in")
    page.get_by_role("button", name="Review move").click()
    page.get_by_role("heading", name="Move 2 jobs to “Order confirmed”").wait_for()
    assert "The parts are in" in page.locator("#preview-heading + p + .preview").inner_text()
    assert_accessible(page)

    page.get_by_role("button", name="Move 2 jobs to “Order confirmed”").click()
    page.get_by_role("status").filter(has_text="Moved 2 jobs to “Order confirmed”").wait_for()
    assert_accessible(page)
    for job in (late_job, other):
        job.refresh_from_db()
        assert job.current_stage.name == "Order confirmed"
    assert Message.objects.filter(kind=Message.Kind.STAGE_CHANGE).count() == 2
