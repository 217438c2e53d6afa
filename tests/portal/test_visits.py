"""The next visit on the job page, and the customer's answers to it (portal.views_visits).

The installation day is booked for Tuesday 3 March, 14:00–16:00 in Paris (13:00–15:00 where John
reads it, in London), with Paul the installer and a subcontractor. Time is frozen on Monday
2 March, 10:00 in Paris (tests/portal/conftest.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Contact, Job, JobEvent, Message, Question, StaffProfile, Visit, VisitKind
from crm.services.visits import (
    visit_arrived,
    visit_book,
    visit_cancel,
    visit_done,
    visit_move,
    visit_on_the_way,
    visit_running_late,
)
from portal import views_visits

from .conftest import PARIS, sign_in

TUESDAY_2PM = datetime(2026, 3, 3, 14, 0, tzinfo=PARIS)


@pytest.fixture
def paul(db) -> User:
    user = User.objects.create_user("paul", "paul@example.com", "pw", first_name="Paul", last_name="Girard")
    user.is_staff = True
    user.save()
    StaffProfile.objects.create(user=user, phone="+33 6 11 22 33 44", job_title="Installer")
    return user


@pytest.fixture
def kind(job: Job) -> VisitKind:
    return VisitKind.objects.create(pipeline=job.pipeline, name="Installation day", window_minutes=120)


def book(job: Job, kind: VisitKind, **kwargs: Any) -> Visit:
    options: dict[str, Any] = {
        "window_start": TUESDAY_2PM,
        "address": "12 rue des Lilas\n75011 Paris",
        "prepare": "Clear the way to the boiler room.",
        "tell_customer": False,
        **kwargs,
    }
    return visit_book(job=job, kind=kind, actor=job.owner, **options)


@pytest.fixture
def visit(job: Job, kind: VisitKind, paul: User) -> Visit:
    return book(job, kind, installers=[paul], subcontractor="Froid Services")


def job_url(job: Job) -> str:
    return reverse("portal:job", args=[job.public_id])


def status_url(job: Job) -> str:
    return reverse("portal:job_status", args=[job.public_id])


def confirm_url(visit: Visit, job: Job | None = None) -> str:
    return reverse("portal:visit_confirm", args=[(job or visit.job).public_id, visit.public_id])


def another_time_url(visit: Visit, job: Job | None = None) -> str:
    return reverse("portal:visit_another_time", args=[(job or visit.job).public_id, visit.public_id])


def visit_block(page: str) -> str:
    start = page.index('<section id="visit"')
    return page[start : page.index("</section>", start)]


# --- The block ----------------------------------------------------------------------------------


def test_it_leads_the_job_page_with_the_next_visit(john_client: Client, job: Job, visit: Visit) -> None:
    page = john_client.get(job_url(job)).text
    assert page.index('<section id="visit"') < page.index("Where things stand")
    block = visit_block(page)
    assert "Your next visit" in block
    assert "Installation day" in block
    # In John's time zone (London) and words.
    assert "Tuesday 3 March, between 13:00 and 15:00" in block
    assert "Paul Girard" in block and ">PG<" in block and "Installer" in block
    assert "Froid Services" in block
    assert "12 rue des Lilas<br>75011 Paris" in block
    assert "Clear the way to the boiler room." in block
    assert "Please confirm this time." in block
    assert "That works" in block and "I need another time" in block
    assert 'name="note"' in block
    # Before the day, the point of contact is the one to call, not the installer.
    assert "+33 6 11 22 33 44" not in block


def test_it_says_the_window_in_the_contacts_language_and_time_zone(
    marie_client: Client, job: Job, visit: Visit
) -> None:
    block = visit_block(marie_client.get(job_url(job)).text)
    assert "mardi 3 mars" in block
    assert "14:00" in block and "16:00" in block


def test_it_says_all_day_honestly(john_client: Client, job: Job, kind: VisitKind) -> None:
    book(job, kind, all_day=True)
    block = visit_block(john_client.get(job_url(job)).text)
    assert "Tuesday 3 March, during the day — we cannot give a narrower window" in block
    assert "between" not in block


def test_it_shows_nothing_without_a_visit(john_client: Client, job: Job) -> None:
    assert '<section id="visit"' not in john_client.get(job_url(job)).text


def test_it_shows_the_first_upcoming_visit_and_lists_the_later_ones(
    john_client: Client, job: Job, kind: VisitKind, visit: Visit
) -> None:
    check = VisitKind.objects.create(pipeline=job.pipeline, name="Commissioning check")
    book(job, check, window_start=TUESDAY_2PM + timedelta(days=7))
    block = visit_block(john_client.get(job_url(job)).text)
    assert block.index("Installation day") < block.index("Also booked")
    assert "Commissioning check</span> — Tuesday 10 March, between 13:00 and 15:00" in block


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_it_costs_the_same_for_1_or_15_visits(
    john_client: Client, job: Job, kind: VisitKind, visit: Visit, paul: User, django_assert_max_num_queries, settings
) -> None:
    settings.PORTAL_PAGE_CACHE_SECONDS = 0  # the rendering itself, as for the first view after a change
    # The page's queries, then the visits with their kind, and the crew with their profiles.
    one = count_queries(john_client, job_url(job))
    one_poll = count_queries(john_client, status_url(job))
    for day in range(1, 15):
        book(job, kind, window_start=TUESDAY_2PM + timedelta(days=day), installers=[paul])
    with django_assert_max_num_queries(10):  # the job's files: one query
        assert john_client.get(job_url(job)).status_code == 200
    assert count_queries(john_client, job_url(job)) == one
    assert count_queries(john_client, status_url(job)) == one_poll


# --- That works ---------------------------------------------------------------------------------


def test_it_confirms_the_visit(john_client: Client, job: Job, visit: Visit) -> None:
    response = john_client.post(confirm_url(visit), {"version": visit.version})
    assert response.status_code == 302
    assert response["Location"] == job_url(job) + "#visit"
    visit.refresh_from_db()
    assert visit.status == Visit.Status.CONFIRMED
    event = JobEvent.objects.get(kind=JobEvent.Kind.VISIT_CONFIRMED)
    assert event.data["contact"] == "John Smith"

    page = john_client.get(response["Location"]).text
    assert "Thank you: the visit is confirmed. We will see you then." in page
    block = visit_block(page)
    assert "Confirmed — thank you." in block
    assert "Please confirm" not in block
    # Still possible to ask for another time after all.
    assert "I need another time" in block


def test_it_changes_nothing_on_get(john_client: Client, job: Job, visit: Visit) -> None:
    # A GET is the page of the answer (where a message's one-click link lands), with its button.
    for url in (confirm_url(visit), another_time_url(visit)):
        response = john_client.get(url, {"version": visit.version, "note": "Hi"})
        assert response.status_code == 200
        assert f'action="{url}"' in response.text
    visit.refresh_from_db()
    assert (visit.status, visit.version, visit.move_asked_at) == (Visit.Status.PLANNED, 1, None)
    assert not Question.objects.exists()


def test_it_does_not_take_a_yes_to_a_time_that_has_moved(
    john_client: Client, job: Job, visit: Visit, time_machine
) -> None:
    shown = visit.version
    time_machine.shift(60)
    visit_move(visit=visit, window_start=TUESDAY_2PM + timedelta(days=1), reason="Van off the road", actor=job.owner)
    response = john_client.post(confirm_url(visit), {"version": shown}, follow=True)
    assert response.status_code == 200
    assert "This visit has changed since the page was shown." in response.text
    assert "Wednesday 4 March, between 13:00 and 15:00" in visit_block(response.text)
    visit.refresh_from_db()
    assert visit.status == Visit.Status.PLANNED


def test_it_shows_a_refusal_of_the_service_as_a_message(john_client: Client, job: Job, visit: Visit) -> None:
    visit_cancel(visit=visit, actor=job.owner, reason="Parts not delivered", tell_customer=False)
    for url in (confirm_url(visit), another_time_url(visit)):
        response = john_client.post(url, follow=True)
        assert response.status_code == 200
        assert "This visit is Cancelled: it can no longer change." in response.text
    assert not Question.objects.exists()


# --- I need another time ------------------------------------------------------------------------


def test_it_opens_a_question_and_acknowledges_it(john_client: Client, job: Job, visit: Visit, john: Contact) -> None:
    response = john_client.post(another_time_url(visit), {"version": visit.version, "note": "Thursday morning?"})
    assert response.status_code == 302
    assert response["Location"] == job_url(job) + "#visit"
    question = Question.objects.get()
    assert (question.job, question.contact, question.source) == (job, john, Question.Source.PORTAL)
    assert question.body.startswith("Can we find another time for the visit “Installation day”")
    assert question.body.endswith("Thursday morning?")
    assert Message.objects.filter(kind=Message.Kind.ACKNOWLEDGEMENT, contact=john).exists()
    visit.refresh_from_db()
    assert visit.move_asked_at is not None

    page = john_client.get(response["Location"]).text
    assert (
        "Thank you: we will find another time with you. You will have our answer by Wednesday 4 March at the latest."
        in page
    )
    block = visit_block(page)
    assert "You asked for another time on 2 March, 09:00: we will answer by <strong>Wednesday 4 March</strong>" in block
    assert "That time works after all" in block
    assert 'name="note"' not in block


def test_it_tells_another_contact_who_asked(
    client: Client, john_client: Client, job: Job, visit: Visit, contact: Contact
) -> None:
    john_client.post(another_time_url(visit), {"version": visit.version})
    marie = sign_in(Client(), contact)
    block = visit_block(marie.get(job_url(job)).text)
    said = block[block.index('class="visit-move-asked') : block.index("</p>", block.index('class="visit-move-asked'))]
    # Her own language and time zone (Paris); whoever translates the words keeps these in.
    for words in ("John Smith", "2 mars, 10:00", "mercredi 4 mars"):
        assert words in said


def test_it_takes_that_works_after_all(john_client: Client, job: Job, visit: Visit) -> None:
    john_client.post(another_time_url(visit))
    visit.refresh_from_db()
    john_client.post(confirm_url(visit), {"version": visit.version})
    visit.refresh_from_db()
    assert (visit.status, visit.move_asked_at) == (Visit.Status.CONFIRMED, None)


def test_it_refuses_a_very_long_note_with_the_form(john_client: Client, job: Job, visit: Visit) -> None:
    response = john_client.post(another_time_url(visit), {"note": "x" * 2001})
    assert response.status_code == 200
    assert "Please keep this under 2000 characters." in response.text
    assert "x" * 2001 in response.text  # what they typed is kept
    assert not Question.objects.exists()


def test_it_rate_limits_requests_like_questions(
    john_client: Client, job: Job, visit: Visit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views_visits, "QUESTIONS_PER_CONTACT", (1, 3600))
    assert john_client.post(another_time_url(visit), {"note": "Thursday?"}).status_code == 302
    response = john_client.post(another_time_url(visit), {"note": "Friday?"})
    assert response.status_code == 200
    assert "You have sent us many requests in a short time. Please wait a little, or call Bob Durand." in response.text
    assert Question.objects.count() == 1


# --- Live ---------------------------------------------------------------------------------------


def test_it_shows_on_the_way_at_the_next_poll(
    john_client: Client, job: Job, visit: Visit, paul: User, time_machine
) -> None:
    time_machine.move_to(TUESDAY_2PM - timedelta(minutes=30), tick=False)
    etag = john_client.get(status_url(job))["ETag"]
    time_machine.shift(60)
    visit_on_the_way(visit=visit, actor=paul, minutes=25)

    response = john_client.get(status_url(job), headers={"If-None-Match": etag, "HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text
    block = visit_block(response.text)
    assert "Today's visit" in block
    assert "On the way — about 25 min" in block
    assert "Expected around 12:56." in block  # 13:56 in Paris
    assert 'href="tel:+33611223344"' in block
    assert "Please confirm" not in block


def test_it_counts_down_while_the_crew_is_on_the_way(
    john_client: Client, job: Job, visit: Visit, paul: User, time_machine
) -> None:
    time_machine.move_to(TUESDAY_2PM - timedelta(minutes=30), tick=False)
    visit_on_the_way(visit=visit, actor=paul, minutes=25)
    first = john_client.get(status_url(job))
    assert "about 25 min" in first.text
    # The job has not changed, but the minutes have: the poll is answered afresh, not with a 304.
    time_machine.shift(timedelta(minutes=9))
    later = john_client.get(status_url(job), headers={"If-None-Match": first["ETag"]})
    assert later.status_code == 200
    assert "about 15 min" in later.text
    assert later["ETag"] != first["ETag"]
    # The same minutes: the same version, which the page does not swap in again.
    again = john_client.get(status_url(job), headers={"If-None-Match": later["ETag"]})
    assert again["ETag"] == later["ETag"]
    # The page and its first poll agree on the version.
    page = john_client.get(job_url(job)).text
    assert f'data-live-etag="{later["ETag"].replace(chr(34), "&quot;")}"' in page


def test_it_keeps_an_unchanged_poll_a_304_from_one_query(
    john_client: Client, job: Job, visit: Visit, django_assert_max_num_queries
) -> None:
    etag = john_client.get(status_url(job))["ETag"]
    with django_assert_max_num_queries(1):
        response = john_client.get(status_url(job), headers={"If-None-Match": etag, "HX-Request": "true"})
    assert response.status_code == 304


def test_it_shows_a_confirmation_from_another_contact_at_the_next_poll(
    john_client: Client, job: Job, visit: Visit, contact: Contact, time_machine
) -> None:
    etag = john_client.get(status_url(job))["ETag"]
    time_machine.shift(60)
    marie = sign_in(Client(), contact)
    marie.post(confirm_url(visit))
    response = john_client.get(status_url(job), headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert "Confirmed — thank you." in response.text


def test_it_keeps_a_late_crew_on_the_page_after_the_window(
    john_client: Client, job: Job, visit: Visit, paul: User, time_machine
) -> None:
    time_machine.move_to(TUESDAY_2PM + timedelta(minutes=30), tick=False)
    visit_running_late(
        visit=visit, actor=paul, reason="Traffic on the ring road", at=TUESDAY_2PM + timedelta(hours=2, minutes=30)
    )
    time_machine.move_to(TUESDAY_2PM + timedelta(hours=2, minutes=10), tick=False)
    block = visit_block(john_client.get(job_url(job)).text)
    assert "We are running late: we now expect to be with you around 15:30. We are sorry." in block
    assert "Visit history" not in john_client.get(job_url(job)).text


# --- Past visits --------------------------------------------------------------------------------


def past_visits(page: str) -> str:
    start = page.index("Visit history")
    return page[start : page.index("</ul>", start)]


def test_it_lists_a_visit_done_within_its_window(
    john_client: Client, job: Job, visit: Visit, paul: User, time_machine
) -> None:
    time_machine.move_to(TUESDAY_2PM + timedelta(minutes=20), tick=False)
    visit = visit_arrived(visit=visit, actor=paul)
    visit_done(visit=visit, actor=paul)
    page = john_client.get(job_url(job)).text
    assert '<section id="visit"' not in page
    assert "Arrived 13:20, within 13:00–15:00. Done." in past_visits(page)


def test_it_says_when_the_crew_arrived_after_the_window(
    john_client: Client, job: Job, visit: Visit, paul: User, time_machine
) -> None:
    time_machine.move_to(TUESDAY_2PM + timedelta(hours=2, minutes=30), tick=False)
    visit_done(visit=visit, actor=paul)
    assert "Arrived 15:30, after the window 13:00–15:00." in past_visits(john_client.get(job_url(job)).text)


def test_it_never_pretends_a_window_that_passed_is_still_to_come(
    john_client: Client, job: Job, visit: Visit, time_machine
) -> None:
    time_machine.move_to(TUESDAY_2PM + timedelta(hours=3), tick=False)
    page = john_client.get(job_url(job)).text
    assert '<section id="visit"' not in page
    assert "We did not come within 13:00–15:00. We are sorry: Bob Durand will give you a new time." in past_visits(page)


def test_it_lists_a_cancelled_visit(john_client: Client, job: Job, visit: Visit) -> None:
    visit_cancel(visit=visit, actor=job.owner, reason="Parts late", tell_customer=False)
    assert "Cancelled on 2 March." in past_visits(john_client.get(job_url(job)).text)


# --- Scope --------------------------------------------------------------------------------------


@pytest.fixture
def stranger_visit(stranger_job: Job) -> Visit:
    kind = VisitKind.objects.get_or_create(pipeline=stranger_job.pipeline, name="Installation day")[0]
    return book(stranger_job, kind)


@pytest.mark.parametrize("url_of", [confirm_url, another_time_url], ids=["confirm", "another_time"])
def test_another_customers_visit_is_404(
    url_of: Any, john_client: Client, job: Job, visit: Visit, stranger_job: Job, stranger_visit: Visit
) -> None:
    for url in (
        url_of(stranger_visit),  # their job, their visit
        url_of(stranger_visit, job),  # John's job, their visit
        url_of(visit, stranger_job),  # their job, John's visit
    ):
        assert john_client.post(url, {"note": "Hi"}).status_code == 404, url
        assert john_client.get(url).status_code == 404, url
    stranger_visit.refresh_from_db()
    assert (stranger_visit.status, stranger_visit.version) == (Visit.Status.PLANNED, 1)
    assert not Question.objects.exists()


def test_a_visit_of_another_of_the_customers_jobs_is_404(
    john_client: Client, job: Job, visit: Visit, customer: Any, john: Contact
) -> None:
    from crm.services.jobs import job_create

    other = job_create(
        customer=customer, pipeline=job.pipeline, owner=job.owner, title="Boiler", actor=job.owner, contacts=[john]
    )
    assert john_client.post(confirm_url(visit, other)).status_code == 404
    visit.refresh_from_db()
    assert visit.status == Visit.Status.PLANNED
