"""The survey and the check-in in Chromium on a 360 px phone: a score link from the email opens the
survey with that score chosen, the person answers the rest and sends, and sees the thanks page
with their answer; the check-in's "there is a problem" is confirmed and acknowledged with a date.
Every page passes axe-core and nothing overflows the screen sideways."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from crm.links import checkin_url, survey_url
from crm.models import CheckIn, Contact, Customer, Job, Pipeline, Question, StaffProfile, Survey
from crm.services.checkins import check_in_send
from crm.services.jobs import job_complete, job_create, job_update_details
from crm.services.surveys import survey_invite
from tests.browser.conftest import assert_accessible

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def john(customer: Customer) -> Contact:
    return Contact.objects.create(
        customer=customer, name="John Smith", email="john@example.com", phone="+44 7700 900123", language="en"
    )


@pytest.fixture
def done_job(customer: Customer, john: Contact, installation: Pipeline, bob: User) -> Job:
    StaffProfile.objects.create(user=bob, phone="+33 1 99 00 12 02", job_title="Project manager")
    installer = User.objects.create_user("marc", "marc@example.com", "pw", first_name="Marc", is_staff=True)
    job = job_create(customer=customer, pipeline=installation, owner=bob, title="Heat pump", actor=bob)
    job_update_details(job=job, actor=bob, installers=[installer])
    return job


def local(url: str, live_server: Any) -> str:
    return url.replace("http://testserver", live_server.url)


def choose(page: Any, question: str, score: int) -> None:
    """Tap a score as a person does: on its label (the radio itself is drawn as that button)."""
    page.locator(f"input[name='{question}'][value='{score}'] + label").click()


def assert_fits(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0, page.url


def test_it_answers_the_survey_on_a_phone(phone_page: Any, live_server: Any, done_job: Job, john: Contact) -> None:
    survey = survey_invite(job=done_job, contact=john)
    assert survey is not None
    page = phone_page
    page.goto(local(survey_url(done_job, john), live_server) + "?product=4")

    expect(page.get_by_role("heading", name="How did we do?")).to_be_visible()
    product = page.get_by_role("group", name="How satisfied are you with the product?")
    expect(product.get_by_role("radio", name="4")).to_be_checked()
    assert_accessible(page)
    assert_fits(page)
    # Opening the link saved nothing.
    assert not Survey.objects.get(pk=survey.pk).is_answered

    choose(page, "workmanship", 5)
    expect(page.get_by_role("group", name="installer's conduct")).to_contain_text("Marc")
    choose(page, "installer_conduct", 5)
    choose(page, "recommend", 9)
    page.get_by_label("Anything you want to tell us?").fill("Quick and tidy.")
    send = page.get_by_role("button", name="Send")
    box = send.bounding_box()
    assert box is not None and box["height"] >= 44
    send.click()

    expect(page.get_by_role("heading", name="Thank you for your answer")).to_be_visible()
    expect(page.get_by_text("9 out of 10")).to_be_visible()
    expect(page.get_by_text("Quick and tidy.")).to_be_visible()
    assert_accessible(page)
    assert_fits(page)
    survey.refresh_from_db()
    assert (survey.product_quality, survey.workmanship, survey.installer_conduct, survey.recommend) == (4, 5, 5, 9)

    # Changing the answer: the form comes back filled in.
    page.get_by_role("link", name="Change my answer").click()
    expect(page.get_by_role("group", name="recommend us").get_by_role("radio", name="9")).to_be_checked()
    choose(page, "recommend", 10)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("10 out of 10")).to_be_visible()
    assert Survey.objects.filter(job=done_job, contact=john).count() == 1


def test_a_low_score_tells_the_customer_who_will_call(
    phone_page: Any, live_server: Any, done_job: Job, john: Contact
) -> None:
    survey_invite(job=done_job, contact=john)
    page = phone_page
    page.goto(local(survey_url(done_job, john), live_server) + "?product=1")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Bob Durand will call you by")).to_be_visible()
    assert_accessible(page)


def test_the_check_in_pages_work_on_a_phone(
    phone_page: Any, live_server: Any, done_job: Job, john: Contact, bob: User
) -> None:
    job_complete(job=done_job, actor=bob)
    check_in = check_in_send(job=done_job, contact=john)
    assert check_in is not None
    page = phone_page
    url = local(checkin_url(done_job, john), live_server)

    page.goto(url)
    expect(page.get_by_role("heading", name="Has everything kept working?")).to_be_visible()
    assert_accessible(page)
    assert_fits(page)

    page.goto(url + "?answer=problem")
    page.get_by_label("What is not working? (optional)").fill("The outdoor unit rattles.")
    page.get_by_role("button", name="Send: there is a problem").click()
    expect(page.get_by_role("heading", name="Thank you: we have your report")).to_be_visible()
    expect(page.get_by_text("at the latest")).to_be_visible()
    assert_accessible(page)
    assert_fits(page)
    assert Question.objects.get(job=done_job).body == "The outdoor unit rattles."
    assert CheckIn.objects.get(pk=check_in.pk).answer == CheckIn.Answer.PROBLEM


def test_a_broken_survey_link_page_is_accessible(phone_page: Any, live_server: Any) -> None:
    page = phone_page
    response = page.goto(live_server.url + "/portal/survey/broken-link/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="We could not open this survey")).to_be_visible()
    assert_accessible(page)
