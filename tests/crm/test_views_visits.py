"""Visits on the staff pages (crm.views.visits): booked, moved and cancelled from the job page, and
the installers' "Today" page with its buttons (on my way, running late, arrived, done, couldn't
get in). The rules themselves are the services' (tests/crm/test_services_visits.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm import selectors
from crm.models import (
    Contact,
    Customer,
    Job,
    JobEvent,
    Message,
    Pipeline,
    StaffProfile,
    Subcontractor,
    Visit,
    VisitKind,
)
from crm.services.jobs import job_create
from crm.services.visits import visit_book, visit_move, visit_on_the_way
from tests.crm.test_views_nul_sweep import NUL_REFUSED, encoded, post_raw, shown, stored_with_nul, with_nul

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
ADDRESS = "12 rue des Lilas\n69003 Lyon"


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def monday_morning(time_machine) -> None:
    time_machine.move_to(paris(2, 9), tick=False)


@pytest.fixture
def installation_day(installation: Pipeline) -> VisitKind:
    return VisitKind.objects.create(
        pipeline=installation,
        name="Installation day",
        window_minutes=120,
        duration_minutes=240,
        stage=installation.stages.get(name="Installed"),
        completes_stage=True,
    )


@pytest.fixture
def housed(customer: Customer, contact: Contact) -> Customer:
    Customer.objects.filter(pk=customer.pk).update(address=ADDRESS)
    Contact.objects.filter(pk=contact.pk).update(phone="+33 6 12 34 56 78")
    customer.refresh_from_db()
    return customer


def book(job: Job, kind: VisitKind, actor: User, start: datetime | None = None, **kwargs) -> Visit:
    kwargs.setdefault("address", ADDRESS)
    kwargs.setdefault("tell_customer", False)
    return visit_book(job=job, kind=kind, window_start=start or paris(3, 14), actor=actor, **kwargs)


def job_url(job: Job) -> str:
    return reverse("crm:job", args=[job.public_id])


def book_url(job: Job) -> str:
    return reverse("crm:visit_book", args=[job.public_id])


def visit_url(name: str, visit: Visit | uuid.UUID) -> str:
    return reverse(f"crm:{name}", args=[visit.public_id if isinstance(visit, Visit) else visit])


def booking(visit_kind: VisitKind, **fields: object) -> dict:
    data = {"kind": visit_kind.pk, "day": "2026-03-03", "start": "14:00", "address": "", "prepare": ""}
    data.update(fields)
    return {f"visit_book-{name}": value for name, value in data.items()}


def moving(visit: Visit, **fields: object) -> dict:
    data = {"day": "2026-03-04", "start": "09:00", "end": "", "reason": "Parts arrive Wednesday"}
    data.setdefault("expected_version", visit.version)
    data.update(fields)
    return {f"visit-{visit.pk}-move-{name}": value for name, value in data.items()}


# --- Book ---------------------------------------------------------------------------------------


def test_it_shows_the_visits_section_and_the_booking_form(
    staff: Client, live_job: Job, installation_day: VisitKind, housed: Customer, charlie: User
) -> None:
    book(live_job, installation_day, charlie, installers=[charlie], prepare="Clear the garage")

    body = staff.get(job_url(live_job)).content.decode()

    assert "Installation day" in body
    assert "Tue 3 Mar, 14:00–16:00" in body
    assert "charlie" in body and "Clear the garage" in body
    assert "Not confirmed yet" in body
    assert visit_url("visit_move", live_job.visits.get()) in body
    assert visit_url("visit_cancel", live_job.visits.get()) in body
    assert book_url(live_job) in body
    assert "12 rue des Lilas" in body  # the booking form's address: the customer's


def test_it_books_a_visit_in_business_time(
    staff: Client, live_job: Job, installation_day: VisitKind, housed: Customer, charlie: User
) -> None:
    response = staff.post(book_url(live_job), booking(installation_day, installers=[charlie.pk]))

    assert response.status_code == 302
    assert response["Location"] == job_url(live_job)
    visit = live_job.visits.get()
    # The kind's two hours from 14:00 on the team's clock, at the customer's address.
    assert (visit.window_start, visit.window_end) == (paris(3, 14), paris(3, 16))
    assert list(visit.installers.all()) == [charlie]
    assert visit.address == ADDRESS
    booked = live_job.events.get(kind=JobEvent.Kind.VISIT_BOOKED)
    assert (booked.actor.username, booked.data["told_customer"]) == ("bob", False)
    assert not Message.objects.filter(kind=Message.Kind.VISIT_BOOKED).exists()
    page = staff.get(job_url(live_job)).content.decode()
    assert "Installation day booked for Tuesday 3 March, 14:00–16:00." in page


def test_it_tells_the_customer_when_asked(
    staff: Client, live_job: Job, installation_day: VisitKind, housed: Customer, contact: Contact
) -> None:
    staff.post(book_url(live_job), booking(installation_day, tell_customer="on", end="17:00"))

    visit = live_job.visits.get()
    assert visit.window_end == paris(3, 17)
    assert Message.objects.filter(kind=Message.Kind.VISIT_BOOKED, contact=contact).exists()


def test_it_books_a_whole_day(staff: Client, live_job: Job, installation_day: VisitKind, housed: Customer) -> None:
    staff.post(book_url(live_job), booking(installation_day, start="", all_day="on"))

    visit = live_job.visits.get()
    assert (visit.window_start, visit.window_end, visit.all_day) == (paris(3, 9), paris(3, 18), True)


def test_it_refuses_an_overlap_then_books_it_as_a_double_booking(
    staff: Client, live_job: Job, installation_day: VisitKind, housed: Customer, charlie: User
) -> None:
    book(live_job, installation_day, charlie, installers=[charlie])  # busy 14:00 to 20:00

    refused = staff.post(book_url(live_job), booking(installation_day, start="17:00", installers=[charlie.pk]))

    assert refused.status_code == 400
    body = refused.content.decode()
    assert "charlie is already at" in body
    assert "confirm it as a double booking" in body
    assert live_job.visits.count() == 1

    accepted = staff.post(
        book_url(live_job), booking(installation_day, start="17:00", installers=[charlie.pk], double_booking="on")
    )

    assert accepted.status_code == 302
    assert live_job.visits.count() == 2


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"day": "not a day"}, "Enter a valid date."),
        ({"day": "99999-01-01"}, "Enter a valid date."),
        ({"day": "2026-02-27"}, "The day cannot be in the past."),
        ({"start": "25:99"}, "Enter a valid time."),
        ({"start": ""}, "Give the time the window starts"),
        ({"end": "13:00"}, "The window must end after it starts."),
        ({"kind": "99999999999999999999999"}, "Select a valid choice."),
        ({"installers": ["x"]}, "is not a valid value"),
        ({"day": "2026-03-07"}, "is not a working day — keep it?"),
    ],
)
def test_it_shows_bad_input_on_the_form(
    staff: Client, live_job: Job, installation_day: VisitKind, housed: Customer, fields: dict, error: str
) -> None:
    response = staff.post(book_url(live_job), booking(installation_day, **fields))

    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Visit.objects.exists()


def test_it_shows_the_services_refusal_on_the_form(
    staff: Client, live_job: Job, installation_day: VisitKind, customer: Customer
) -> None:
    response = staff.post(book_url(live_job), booking(installation_day))  # no address anywhere

    assert response.status_code == 400
    assert "Give the visit&#x27;s address" in response.content.decode()


def test_it_answers_htmx_with_the_detail_block(
    staff: Client, live_job: Job, installation_day: VisitKind, housed: Customer
) -> None:
    response = staff.post(book_url(live_job), booking(installation_day), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="job-detail">')
    assert "Installation day booked" in body


def test_booking_is_post_only(staff: Client, live_job: Job, installation_day: VisitKind) -> None:
    assert staff.get(book_url(live_job)).status_code == 405
    assert staff.post(reverse("crm:visit_book", args=[uuid.uuid4()]), {}).status_code == 404


def test_the_job_page_queries_stay_constant(
    staff: Client,
    live_job: Job,
    installation_day: VisitKind,
    housed: Customer,
    bob: User,
    charlie: User,
    django_assert_max_num_queries,
) -> None:
    book(live_job, installation_day, bob, installers=[charlie])
    with django_assert_max_num_queries(40) as one:
        staff.get(job_url(live_job))
    for hour in (9, 10, 11, 12):
        book(live_job, installation_day, bob, start=paris(4, hour), installers=[bob, charlie], double_booking=True)
    with django_assert_max_num_queries(40) as five:
        staff.get(job_url(live_job))

    assert len(five.captured_queries) == len(one.captured_queries)


# --- Move and cancel ----------------------------------------------------------------------------


def test_it_moves_a_visit(staff: Client, live_job: Job, installation_day: VisitKind, bob: User) -> None:
    visit = book(live_job, installation_day, bob)

    response = staff.post(visit_url("visit_move", visit), moving(visit, tell_customer=""))

    assert response.status_code == 302
    visit.refresh_from_db()
    assert (visit.window_start, visit.window_end) == (paris(4, 9), paris(4, 11))
    moved = live_job.events.get(kind=JobEvent.Kind.VISIT_MOVED)
    assert moved.data["reason"] == "Parts arrive Wednesday"


def test_a_stale_move_names_who_changed_it_first(
    staff: Client, live_job: Job, installation_day: VisitKind, bob: User, alice: User
) -> None:
    visit = book(live_job, installation_day, bob)
    seen = moving(visit, day="2026-03-05", tell_customer="")  # bob's page, before alice's move
    visit_move(visit=visit, window_start=paris(4, 10), reason="Customer asked", actor=alice, tell_customer=False)

    response = staff.post(visit_url("visit_move", visit), seen)

    assert response.status_code == 400
    body = response.content.decode()
    assert "Alice Martin changed this visit in the meantime" in body
    visit.refresh_from_db()
    assert visit.window_start == paris(4, 10)  # alice's move stands
    # What bob typed is kept, now against the visit as it is: sending it again is his choice.
    assert f'name="visit-{visit.pk}-move-expected_version" value="{visit.version}"' in body
    assert 'value="2026-03-05"' in body


def test_a_move_refused_by_the_service_is_shown_on_its_form(
    staff: Client, live_job: Job, installation_day: VisitKind, bob: User
) -> None:
    visit = book(live_job, installation_day, bob)

    response = staff.post(visit_url("visit_move", visit), moving(visit, day="2026-03-03", start="14:00"))

    assert response.status_code == 400
    assert "That is already the visit&#x27;s window." in response.content.decode()


def test_it_cancels_a_visit(staff: Client, live_job: Job, installation_day: VisitKind, bob: User) -> None:
    visit = book(live_job, installation_day, bob)

    response = staff.post(
        visit_url("visit_cancel", visit),
        {
            f"visit-{visit.pk}-cancel-reason": "Customer cancelled the order",
            f"visit-{visit.pk}-cancel-expected_version": visit.version,
        },
    )

    assert response.status_code == 302
    visit.refresh_from_db()
    assert (visit.status, visit.close_reason) == (Visit.Status.CANCELLED, "Customer cancelled the order")
    page = staff.get(job_url(live_job)).content.decode()
    assert "Customer cancelled the order" in page
    assert visit_url("visit_move", visit) not in page  # a cancelled visit no longer moves


def test_a_cancel_needs_a_reason(staff: Client, live_job: Job, installation_day: VisitKind, bob: User) -> None:
    visit = book(live_job, installation_day, bob)

    response = staff.post(visit_url("visit_cancel", visit), {f"visit-{visit.pk}-cancel-reason": ""})

    assert response.status_code == 400
    visit.refresh_from_db()
    assert visit.status == Visit.Status.PLANNED


def test_move_and_cancel_are_post_only_and_404_for_an_unknown_visit(
    staff: Client, live_job: Job, installation_day: VisitKind, bob: User
) -> None:
    visit = book(live_job, installation_day, bob)
    for name in ("visit_move", "visit_cancel"):
        assert staff.get(visit_url(name, visit)).status_code == 405
        assert staff.post(visit_url(name, uuid.uuid4()), {}).status_code == 404
    visit.refresh_from_db()
    assert visit.version == 1


# --- Today --------------------------------------------------------------------------------------


def today_url() -> str:
    return reverse("crm:today")


def act(client: Client, visit: Visit, action: str, **fields: object):
    return client.post(visit_url("visit_action", visit), {"action": action, **fields}, follow=True)


@pytest.fixture
def todays(live_job: Job, installation_day: VisitKind, housed: Customer, bob: User) -> Visit:
    return book(live_job, installation_day, bob, start=paris(2, 14), installers=[bob], prepare="Clear the garage")


def test_today_shows_my_visits_of_the_day_in_window_order(
    staff: Client, live_job: Job, installation_day: VisitKind, todays: Visit, bob: User, charlie: User
) -> None:
    early = book(live_job, installation_day, bob, start=paris(2, 10), installers=[bob], double_booking=True)
    book(live_job, installation_day, bob, start=paris(2, 11), installers=[charlie])  # not mine
    book(live_job, installation_day, bob, start=paris(3, 9), installers=[bob])  # tomorrow

    response = staff.get(today_url())

    assert response.status_code == 200
    body = response.content.decode()
    assert "Today, Monday 2 March" in body
    assert body.count('class="card mb-3 today-visit"') == 2
    assert body.index(str(early.public_id)) < body.index(str(todays.public_id))
    assert "14:00–16:00" in body and "11:00–13:00" not in body
    assert "Dupont household" in body
    assert 'href="https://www.openstreetmap.org/search?query=12%20rue%20des%20Lilas%0A69003%20Lyon"' in body
    assert 'href="tel:+33612345678"' in body
    assert "Clear the garage" in body
    assert 'aria-current="page" href="/today/"' in body


def test_today_says_when_there_is_nothing(staff: Client) -> None:
    assert "No visit for you today." in staff.get(today_url()).content.decode()


def test_everyone_has_the_today_link(client: Client, alice: User, charlie: User) -> None:
    for person in (alice, charlie):
        client.force_login(person)
        assert 'href="/today/"' in client.get(reverse("crm:jobs")).content.decode()


def test_today_sends_anonymous_visitors_to_sign_in(client: Client) -> None:
    response = client.get(today_url())
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_on_my_way(staff: Client, todays: Visit, contact: Contact) -> None:
    response = act(staff, todays, "on_the_way", minutes="30")

    assert response.redirect_chain == [(today_url(), 302)]
    todays.refresh_from_db()
    assert (todays.status, todays.expected_at) == (Visit.Status.ON_THE_WAY, paris(2, 9, 30))
    body = response.content.decode()
    assert "they are told you will be there about 09:30" in body
    assert "On the way, there about 09:30" in body
    assert Message.objects.filter(kind=Message.Kind.VISIT_ON_THE_WAY, contact=contact).exists()


def test_running_late(staff: Client, todays: Visit) -> None:
    response = act(staff, todays, "running_late", at="16:30", reason="Traffic on the ring road")

    assert response.redirect_chain == [(today_url(), 302)]
    todays.refresh_from_db()
    assert todays.expected_at == paris(2, 16, 30)
    late = todays.job.events.get(kind=JobEvent.Kind.VISIT_RUNNING_LATE)
    assert late.data["reason"] == "Traffic on the ring road"
    assert "Running late: about 16:30" in response.content.decode()


def test_arrived_then_done(staff: Client, todays: Visit) -> None:
    act(staff, todays, "arrived")
    todays.refresh_from_db()
    assert todays.status == Visit.Status.ARRIVED

    response = act(staff, todays, "done")

    todays.refresh_from_db()
    assert todays.status == Visit.Status.DONE
    assert "Installation day: done." in response.content.decode()
    assert todays.job.events.filter(kind=JobEvent.Kind.VISIT_DONE).exists()


def test_couldnt_get_in(staff: Client, todays: Visit) -> None:
    response = act(staff, todays, "missed", reason="Nobody home")

    todays.refresh_from_db()
    assert (todays.status, todays.close_reason) == (Visit.Status.MISSED, "Nobody home")
    assert "is asked to call the customer" in response.content.decode()


@pytest.mark.parametrize(
    ("action", "fields", "error"),
    [
        ("on_the_way", {}, "Say in how many minutes you will be there."),
        ("on_the_way", {"minutes": "5"}, "Select a valid choice."),
        ("running_late", {"reason": "Traffic"}, "Give the time you will be there."),
        ("running_late", {"at": "16:30"}, "Say why"),
        ("running_late", {"at": "08:00", "reason": "Traffic"}, "The arrival time must be later than now."),
        ("missed", {"reason": " "}, "Say why"),
        ("teleport", {}, "Select a valid choice."),
    ],
)
def test_a_bad_action_changes_nothing_and_says_why(
    staff: Client, todays: Visit, action: str, fields: dict, error: str
) -> None:
    response = act(staff, todays, action, **fields)

    assert response.redirect_chain == [(today_url(), 302)]
    assert error in response.content.decode()
    todays.refresh_from_db()
    assert (todays.status, todays.version) == (Visit.Status.PLANNED, 1)


def test_an_action_on_a_closed_visit_is_refused(staff: Client, todays: Visit) -> None:
    act(staff, todays, "missed", reason="Nobody home")

    response = act(staff, todays, "arrived")

    assert response.redirect_chain == [(today_url(), 302)]
    assert "This visit is" in response.content.decode()  # the service's refusal, as it words it
    todays.refresh_from_db()
    assert todays.status == Visit.Status.MISSED


def test_actions_are_post_only(staff: Client, todays: Visit) -> None:
    assert staff.get(visit_url("visit_action", todays) + "?action=arrived").status_code == 405
    todays.refresh_from_db()
    assert (todays.status, todays.version) == (Visit.Status.PLANNED, 1)


def test_a_colleagues_visit_can_be_acted_on(client: Client, todays: Visit, charlie: User) -> None:
    # Staff share the work: charlie covers bob's round.
    client.force_login(charlie)

    act(client, todays, "arrived")

    todays.refresh_from_db()
    assert (todays.status, todays.last_changed_by) == (Visit.Status.ARRIVED, charlie)


def test_an_unknown_visit_is_404(staff: Client) -> None:
    assert staff.post(visit_url("visit_action", uuid.uuid4()), {"action": "arrived"}).status_code == 404


def test_the_today_query_stays_constant(
    customer: Customer,
    contact: Contact,
    installation: Pipeline,
    installation_day: VisitKind,
    housed: Customer,
    bob: User,
    charlie: User,
    django_assert_num_queries,
) -> None:
    def jobs(n: int) -> None:
        for i in range(n):
            job = job_create(
                customer=customer,
                pipeline=installation,
                owner=bob,
                title=f"Job {i}",
                actor=bob,
                notify_customer=False,
                not_told_reason="Test.",
            )
            book(job, installation_day, bob, start=paris(2, 10 + i % 8), installers=[bob, charlie], double_booking=True)

    jobs(1)
    with django_assert_num_queries(3):  # the visits, who is going, the jobs' contacts
        assert len(list(selectors.visits_today(bob, paris(2, 0).date()))) == 1
    jobs(9)
    with django_assert_num_queries(3):
        assert len(list(selectors.visits_today(bob, paris(2, 0).date()))) == 10


# --- Odd input: a NUL, a lone surrogate (the staff sweep's rules, tests/crm/test_views_nul_sweep.py) --


def visit_submissions(job: Job, kind: VisitKind, visit: Visit) -> list[tuple[str, dict, tuple[str, ...]]]:
    """Each visit form as a person sends it, and its fields where a person types."""
    return [
        (
            book_url(job),
            booking(kind, subcontractor="Elec Pro", address=ADDRESS, prepare="Clear the garage"),
            ("visit_book-subcontractor", "visit_book-address", "visit_book-prepare"),
        ),
        (visit_url("visit_move", visit), moving(visit), (f"visit-{visit.pk}-move-reason",)),
        (visit_url("visit_cancel", visit), {f"visit-{visit.pk}-cancel-reason": "Order cancelled"}, ()),
        (visit_url("visit_action", visit), {"action": "running_late", "at": "16:30", "reason": "Traffic"}, ()),
        (visit_url("visit_action", visit), {"action": "missed", "reason": "Nobody home"}, ()),
    ]


def test_every_visit_form_answers_a_nul_or_a_surrogate_with_an_error_not_a_500(
    client: Client, live_job: Job, installation_day: VisitKind, todays: Visit, alice: User
) -> None:
    client.raise_request_exception = False
    client.force_login(alice)
    for url, data, typed in visit_submissions(live_job, installation_day, todays):
        for name, value in data.items():
            response = client.post(url, {**data, name: with_nul(value)}, follow=True)
            assert response.status_code != 500, (url, name)
            if name in typed or name.endswith("reason"):
                assert NUL_REFUSED in shown(response), (url, name)
            raw = post_raw(client, url, encoded(data, surrogate_in=name))
            assert raw.status_code != 500, (url, name)
    assert stored_with_nul() == []


# --- The dashboard: today's visits at risk, at the very top -------------------------------------


def test_the_dashboard_leads_with_a_visit_nobody_has_left_for(
    staff: Client, time_machine, job: Job, installation_day: VisitKind, bob: User, charlie: User
) -> None:
    on_time = book(job, installation_day, bob, start=paris(2, 13), installers=[charlie])
    at_risk = book(job, installation_day, bob, start=paris(2, 10), installers=[charlie], double_booking=True)
    visit_on_the_way(visit=on_time, actor=charlie, minutes=60)  # set off early for the 13:00 window

    keys = [s.key for s in staff.get(reverse("crm:home")).context["sections"]]
    assert "visits" not in keys  # 09:00: the 10:00 window is an hour away

    time_machine.move_to(paris(2, 9, 30), tick=False)
    response = staff.get(reverse("crm:home"))

    [first, *_rest] = response.context["sections"]
    assert (first.key, [v.pk for v in first.rows]) == ("visits", [at_risk.pk])
    assert "Nobody is on the way yet." in response.content.decode()


# --- Previews: exactly what the customer would be told, nothing kept ----------------------------


def test_the_booking_preview_is_the_message_and_books_nothing(
    staff: Client, live_job: Job, installation_day: VisitKind, housed: Customer
) -> None:
    data = booking(installation_day, **{"tell_customer": "on"})

    response = staff.get(
        reverse("crm:visit_book_preview", args=[live_job.public_id]), data, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert "mardi 3 mars" in response.text and "14:00" in response.text  # Marie reads French
    assert not Visit.objects.exists()
    assert not Message.objects.filter(kind=Message.Kind.VISIT_BOOKED).exists()


def test_the_move_preview_tells_the_new_window_and_moves_nothing(
    staff: Client, live_job: Job, installation_day: VisitKind, housed: Customer, bob: User
) -> None:
    visit = book(live_job, installation_day, bob)

    response = staff.get(
        reverse("crm:visit_move_preview", args=[visit.public_id]),
        {**moving(visit), f"visit-{visit.pk}-move-tell_customer": "on"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert "mercredi 4 mars" in response.text and "Parts arrive Wednesday" in response.text
    visit.refresh_from_db()
    assert visit.window_start == paris(3, 14)
    assert not Message.objects.filter(kind=Message.Kind.VISIT_MOVED).exists()


def test_the_booking_form_offers_who_goes_on_visits_and_suggests_the_subcontractors(
    staff: Client, live_job: Job, installation_day: VisitKind, housed: Customer, alice: User, charlie: User
) -> None:
    StaffProfile.objects.create(user=alice, goes_on_visits=False)  # the office manager
    Subcontractor.objects.create(name="Acme Roofing")
    Subcontractor.objects.create(name="Gone Ltd", is_active=False)

    form = staff.get(job_url(live_job)).context["forms"]["visit_book"]
    body = staff.get(job_url(live_job)).content.decode()

    offered = list(form.fields["installers"].queryset)
    assert charlie in offered and alice not in offered
    assert '<option value="Acme Roofing">' in body and "Gone Ltd" not in body
    response = staff.post(book_url(live_job), booking(installation_day, subcontractor="Someone New"))
    assert response.status_code == 302  # a name typed is taken too
    assert Visit.objects.get().subcontractor == "Someone New"


def test_who_goes_is_changed_on_the_job_page(
    staff: Client, live_job: Job, installation_day: VisitKind, housed: Customer, bob: User, charlie: User
) -> None:
    visit = book(live_job, installation_day, bob, installers=[bob])
    assert staff.get(job_url(live_job)).context["forms"]["visits"].rows[0][3] is not None

    response = staff.post(
        reverse("crm:visit_crew", args=[visit.public_id]),
        {
            f"visit-{visit.pk}-crew-installers": [charlie.pk],
            f"visit-{visit.pk}-crew-subcontractor": "Acme Roofing",
            f"visit-{visit.pk}-crew-expected_version": visit.version,
        },
    )

    assert response.status_code == 302
    visit.refresh_from_db()
    assert (list(visit.installers.all()), visit.subcontractor) == ([charlie], "Acme Roofing")
    stale = staff.post(
        reverse("crm:visit_crew", args=[visit.public_id]),
        {f"visit-{visit.pk}-crew-installers": [bob.pk], f"visit-{visit.pk}-crew-expected_version": 1},
    )
    assert stale.status_code == 400
    assert "changed this visit in the meantime" in stale.content.decode()
