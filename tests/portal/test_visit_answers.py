"""A visit's two one-click answers in its messages, the page each opens, and the customer choosing
another time among the crew's free times when the pipeline lets them (portal.views_visits,
crm.visit_slots, crm.services.visits.visit_choose_time).

The installation day is booked for Tuesday 3 March, 14:00–16:00 in Paris with Paul; time is
frozen on Monday 2 March, 10:00 in Paris (tests/portal/conftest.py). John reads in London, one
hour behind.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.links import visit_answer_url
from crm.models import Commitment, Contact, Customer, Job, JobEvent, Message, Pipeline, Question, Visit, VisitKind
from crm.services.jobs import job_create
from crm.services.visits import visit_book, visit_cancel, visit_confirm
from crm.visit_slots import free_times

from .conftest import PARIS, sign_in

TUESDAY_2PM = datetime(2026, 3, 3, 14, 0, tzinfo=PARIS)


@pytest.fixture
def paul(db) -> User:
    return User.objects.create_user("paul", "paul@example.com", "pw", first_name="Paul", is_staff=True)


@pytest.fixture
def kind(job: Job) -> VisitKind:
    return VisitKind.objects.create(pipeline=job.pipeline, name="Installation day", window_minutes=120)


def book(job: Job, kind: VisitKind, paul: User, **kwargs: Any) -> Visit:
    options: dict[str, Any] = {
        "window_start": TUESDAY_2PM,
        "address": "12 rue des Lilas\n75011 Paris",
        "installers": [paul],
        "duration_minutes": 60,
        "tell_customer": True,
        **kwargs,
    }
    return visit_book(job=job, kind=kind, actor=job.owner, **options)


@pytest.fixture
def visit(job: Job, kind: VisitKind, paul: User) -> Visit:
    return book(job, kind, paul)


@pytest.fixture
def self_booking(installation: Pipeline) -> Pipeline:
    installation.visit_self_booking = True
    installation.visit_self_booking_days = 2
    installation.save()
    return installation


def email_to(contact: Contact, kind: str) -> Message:
    return Message.objects.get(contact=contact, kind=kind, channel=Message.Channel.EMAIL)


def link_after(label: str, text: str) -> str:
    match = re.search(re.escape(label) + r" (\S+)", text)
    assert match, f"no {label!r} link in:\n{text}"
    return match.group(1)


def choose_url(visit: Visit) -> str:
    return reverse("portal:visit_choose", args=[visit.job.public_id, visit.public_id])


def confirm_url(visit: Visit) -> str:
    return reverse("portal:visit_confirm", args=[visit.job.public_id, visit.public_id])


def another_time_url(visit: Visit) -> str:
    return reverse("portal:visit_another_time", args=[visit.job.public_id, visit.public_id])


# --- The two links in the messages -------------------------------------------------------------


def test_the_booking_email_carries_one_link_per_answer(john: Contact, visit: Visit) -> None:
    booked = email_to(john, Message.Kind.VISIT_BOOKED)
    confirm = link_after("That works:", booked.body_text)
    another = link_after("I need another time:", booked.body_text)
    assert confirm != another
    assert f'href="{confirm}"'.replace("&", "&amp;") in booked.body_html
    assert f'href="{another}"'.replace("&", "&amp;") in booked.body_html
    assert "answer=confirm" in confirm and "answer=another-time" in another
    assert str(visit.public_id) in confirm


def test_the_that_works_link_opens_its_page_and_a_post_confirms(john: Contact, visit: Visit) -> None:
    browser = Client()
    link = link_after("That works:", email_to(john, Message.Kind.VISIT_BOOKED).body_text)
    landed = browser.get(link, follow=True)
    assert landed.redirect_chain[-1][0] == confirm_url(visit)
    assert "Yes, that works" in landed.text
    assert "Tuesday 3 March, between 13:00 and 15:00" in landed.text  # London
    visit.refresh_from_db()
    assert visit.status == Visit.Status.PLANNED  # opening the link answered nothing

    response = browser.post(confirm_url(visit), {"version": visit.version}, follow=True)
    visit.refresh_from_db()
    assert visit.status == Visit.Status.CONFIRMED
    assert "Thank you: the visit is confirmed." in response.text


def test_the_another_time_link_opens_the_form_and_a_post_asks(john: Contact, visit: Visit) -> None:
    browser = Client()
    link = link_after("I need another time:", email_to(john, Message.Kind.VISIT_BOOKED).body_text)
    landed = browser.get(link, follow=True)
    assert landed.redirect_chain[-1][0] == another_time_url(visit)
    assert "What would suit you better?" in landed.text
    assert "Choose one of our free times" not in landed.text  # the pipeline does not offer it
    assert not Question.objects.exists()

    browser.post(another_time_url(visit), {"version": visit.version, "note": "Thursday?"})
    question = Question.objects.get()
    assert question.contact == john and "Thursday?" in question.body


def test_an_expired_answer_link_asks_for_a_fresh_one_for_the_same_job(
    john: Contact, visit: Visit, time_machine, settings
) -> None:
    link = link_after("That works:", email_to(john, Message.Kind.VISIT_BOOKED).body_text)
    time_machine.shift(timedelta(days=settings.PORTAL_LINK_MAX_AGE_DAYS + 1))
    response = Client().get(link)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:signed_out"))
    assert str(visit.job.public_id) in response["Location"]


def test_an_answer_link_for_a_visit_of_another_job_is_a_404(
    john: Contact, visit: Visit, stranger_job: Job, installation: Pipeline
) -> None:
    other_kind = VisitKind.objects.create(pipeline=installation, name="Survey", window_minutes=60)
    theirs = visit_book(
        job=stranger_job,
        kind=other_kind,
        window_start=TUESDAY_2PM,
        address="Somewhere",
        actor=stranger_job.owner,
        tell_customer=False,
    )
    link = visit_answer_url(john, visit, "confirm").replace(str(visit.public_id), str(theirs.public_id))
    assert Client().get(link, follow=True).status_code == 404


def test_a_link_to_an_unknown_answer_opens_the_job(john: Contact, visit: Visit) -> None:
    link = visit_answer_url(john, visit, "confirm").replace("answer=confirm", "answer=cancel")
    response = Client().get(link)
    assert response["Location"] == reverse("portal:job", args=[visit.job.public_id])
    with pytest.raises(ValueError):
        visit_answer_url(john, visit, "cancel")


def test_a_confirmed_visit_page_says_so_and_its_reminder_offers_only_another_time(
    john: Contact, visit: Visit, client: Client
) -> None:
    visit = visit_confirm(visit=visit, contact=john)
    sign_in(client, john)
    page = client.get(confirm_url(visit)).text
    assert "You have confirmed this time — thank you." in page
    assert f'action="{confirm_url(visit)}"' not in page

    from crm.notify import visit_drafts

    [draft] = [d for d in visit_drafts(visit, kind=Message.Kind.VISIT_REMINDER, extra={}) if d.contact == john]
    assert "That works:" not in draft.body_text
    assert "I need another time:" in draft.body_text


def test_a_cancelled_visit_page_goes_on_to_the_job_with_a_word(john: Contact, visit: Visit, client: Client) -> None:
    visit_cancel(visit=visit, reason="No longer needed", actor=visit.job.owner, tell_customer=False)
    sign_in(client, john)
    response = client.get(confirm_url(visit), follow=True)
    assert response.redirect_chain[-1][0] == reverse("portal:job", args=[visit.job.public_id]) + "#visit"
    assert "This visit is no longer waiting for an answer" in response.text


# --- Free times ---------------------------------------------------------------------------------


@pytest.fixture
def busy_wednesday(customer: Customer, installation: Pipeline, kind: VisitKind, paul: User, bob: User) -> Visit:
    """Paul at another job on Wednesday 4 March, 09:00–11:00, staying an hour: busy until noon."""
    other = job_create(customer=customer, pipeline=installation, owner=bob, title="Garage heater", actor=bob)
    return book(
        other,
        kind,
        paul,
        window_start=datetime(2026, 3, 4, 9, 0, tzinfo=PARIS),
        tell_customer=False,
    )


def starts(times) -> list[str]:
    return [f"{t.start.astimezone(PARIS):%a %H:%M}" for t in times]


def test_free_times_are_the_crews_windows_from_tomorrow_around_their_other_visits(
    self_booking: Pipeline, visit: Visit, busy_wednesday: Visit
) -> None:
    # 2 h windows from 09:00 to 18:00; Wednesday morning taken by the other visit (and its hour on
    # site); the visit's own time does not hold its crew.
    assert starts(free_times(visit)) == ["Tue 09:00", "Tue 11:00", "Tue 13:00", "Tue 15:00", "Wed 13:00", "Wed 15:00"]
    assert starts(free_times(visit, limit=2)) == ["Tue 09:00", "Tue 11:00"]


def test_free_times_skip_the_weekend_and_offer_whole_days_for_an_all_day_visit(
    self_booking: Pipeline, job: Job, kind: VisitKind, paul: User, time_machine
) -> None:
    time_machine.move_to(datetime(2026, 3, 6, 10, 0, tzinfo=PARIS), tick=False)  # a Friday
    visit = book(job, kind, paul, window_start=datetime(2026, 3, 10, 9, 0, tzinfo=PARIS), all_day=True)
    assert [(f"{t.start.astimezone(PARIS):%a %d %H:%M}", t.all_day) for t in free_times(visit)] == [
        ("Mon 09 09:00", True),  # Tuesday 10 is the visit's own day
    ]


def test_a_visit_nobody_goes_on_yet_is_free_whenever_the_business_is_open(
    self_booking: Pipeline, job: Job, kind: VisitKind, paul: User, busy_wednesday: Visit
) -> None:
    visit = visit_book(
        job=job, kind=kind, window_start=TUESDAY_2PM, address="12 rue des Lilas", actor=job.owner, tell_customer=False
    )
    assert len(free_times(visit, limit=10)) == 8  # 4 windows a day, 2 days


# --- Choosing one -------------------------------------------------------------------------------


def test_with_self_booking_the_messages_and_the_page_offer_the_free_times(
    self_booking: Pipeline, john: Contact, visit: Visit, client: Client
) -> None:
    booked = email_to(john, Message.Kind.VISIT_BOOKED)
    assert "Choose another time:" in booked.body_text
    sign_in(client, john)
    job_page = client.get(reverse("portal:job", args=[visit.job.public_id])).text
    assert "Choose another of our free times" in job_page
    page = client.get(another_time_url(visit)).text
    assert "Choose one of our free times" in page
    assert "Tuesday 3 March, between 08:00 and 10:00" in page  # 09:00 in Paris, for John in London
    assert page.count('class="btn btn-outline-primary w-100 text-start free-time"') == 6
    assert "None of these suit you?" in page


def test_choosing_a_free_time_books_and_confirms_it_and_tells_everyone(
    self_booking: Pipeline, john: Contact, contact: Contact, visit: Visit, client: Client
) -> None:
    sign_in(client, john)
    wanted = free_times(visit)[1]  # Tuesday 11:00–13:00
    response = client.post(
        choose_url(visit), {"start": wanted.start.isoformat(), "version": visit.version}, follow=True
    )

    visit.refresh_from_db()
    assert (visit.window_start, visit.window_end) == (wanted.start, wanted.end)
    assert visit.status == Visit.Status.CONFIRMED and visit.confirmed_at is not None
    assert "Thank you: the visit is booked for Tuesday 3 March, 10:00–12:00." in response.text  # London
    promise = Commitment.objects.get(pk=visit.commitment_id)
    assert promise.due_at == wanted.end and promise.first_due_at == TUESDAY_2PM + timedelta(hours=2)
    [move] = promise.renegotiations.all()
    assert move.proactive and move.told_customer_at is not None and move.actor is None
    event = visit.job.events.filter(kind=JobEvent.Kind.VISIT_MOVED).latest("pk")
    assert event.data["chosen_by_customer"] and event.data["contact"] == "John Smith"
    # Both contacts hear it in their language; the owner is told.
    assert "As John Smith chose" in email_to(john, Message.Kind.VISIT_CHOSEN).body_text
    assert "Comme John Smith l’a choisi" in email_to(contact, Message.Kind.VISIT_CHOSEN).body_text
    alert = Message.objects.get(kind=Message.Kind.STAFF_ALERT, staff=visit.job.owner, subject__contains="chose")
    assert "John Smith chose another time" in alert.body_text


def test_a_time_taken_in_the_meantime_is_refused_with_the_times_free_now(
    self_booking: Pipeline, john: Contact, visit: Visit, client: Client, customer: Customer, kind, paul, bob
) -> None:
    sign_in(client, john)
    shown = free_times(visit)
    # Someone books Paul on Tuesday morning meanwhile.
    other = job_create(customer=customer, pipeline=self_booking, owner=bob, title="Other", actor=bob)
    book(other, kind, paul, window_start=shown[0].start, tell_customer=False)

    response = client.post(choose_url(visit), {"start": shown[0].start.isoformat(), "version": visit.version})
    assert response.status_code == 200
    assert "That time is no longer free. Here are the times free now." in response.text
    assert "Tuesday 3 March, between 08:00 and 10:00" not in response.text
    assert "Tuesday 3 March, between 12:00 and 14:00" in response.text  # 11:00 still has him on site
    visit.refresh_from_db()
    assert visit.window_start == TUESDAY_2PM and visit.version == 1


def test_choosing_is_refused_where_the_pipeline_does_not_offer_it(john: Contact, visit: Visit, client: Client) -> None:
    sign_in(client, john)
    start = datetime(2026, 3, 3, 9, 0, tzinfo=PARIS)
    response = client.post(choose_url(visit), {"start": start.isoformat(), "version": visit.version})
    assert response.status_code == 200
    assert "time cannot be chosen here: ask for another time" in response.text
    visit.refresh_from_db()
    assert visit.window_start == TUESDAY_2PM


def test_a_choice_to_a_time_that_was_never_offered_or_garbled_changes_nothing(
    self_booking: Pipeline, john: Contact, visit: Visit, client: Client
) -> None:
    sign_in(client, john)
    for start in ("2026-03-03T07:00:00+01:00", "tomorrow", ""):
        response = client.post(choose_url(visit), {"start": start, "version": visit.version})
        assert response.status_code == 200
    visit.refresh_from_db()
    assert (visit.window_start, visit.version) == (TUESDAY_2PM, 1)


def test_a_choice_to_a_visit_shown_in_another_version_is_not_taken(
    self_booking: Pipeline, john: Contact, visit: Visit, client: Client
) -> None:
    sign_in(client, john)
    wanted = free_times(visit)[0]
    visit_confirm(visit=visit, contact=john)  # version 2 now
    response = client.post(choose_url(visit), {"start": wanted.start.isoformat(), "version": 1})
    assert "This visit has changed since the page was shown." in response.text
    visit.refresh_from_db()
    assert visit.window_start == TUESDAY_2PM


def test_free_times_take_two_queries_however_busy_the_crew(
    self_booking: Pipeline, visit: Visit, customer: Customer, kind: VisitKind, paul: User, bob: User
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    other = job_create(customer=customer, pipeline=self_booking, owner=bob, title="Other", actor=bob)
    for hour in (9, 13):
        book(other, kind, paul, window_start=datetime(2026, 3, 4, hour, 0, tzinfo=PARIS), tell_customer=False)
    visit = Visit.objects.select_related("job__pipeline").get(pk=visit.pk)
    with CaptureQueriesContext(connection) as queries:
        offered = free_times(visit)
    assert len(queries) == 2  # the crew, their visits
    assert starts(offered) == ["Tue 09:00", "Tue 11:00", "Tue 13:00", "Tue 15:00"]  # Wednesday is full
