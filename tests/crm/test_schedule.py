"""The schedule (crm.views.schedule, crm.selectors.schedule): a day or a week, for one person or the
team; visits as blocks in their windows, late ones and those at risk said in words, the free time
said too; a fixed number of queries however many visits."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm import selectors
from crm.models import Customer, Job, Pipeline, Visit, VisitKind
from crm.services.jobs import job_create
from crm.services.visits import visit_book, visit_cancel, visit_on_the_way, visit_running_late
from crm.views.schedule import Gap, lay_out

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def monday_morning(time_machine) -> None:
    time_machine.move_to(paris(2, 9), tick=False)


@pytest.fixture
def survey(installation: Pipeline) -> VisitKind:
    return VisitKind.objects.create(pipeline=installation, name="Site survey", window_minutes=120, duration_minutes=60)


@pytest.fixture
def other_job(other_customer: Customer, installation: Pipeline, alice: User) -> Job:
    return job_create(
        customer=other_customer,
        pipeline=installation,
        owner=alice,
        title="Acme cabling",
        actor=alice,
        notify_customer=False,
        not_told_reason="Opened before the test.",
    )


def book(job: Job, kind: VisitKind, start: datetime, *installers: User, **kwargs) -> Visit:
    kwargs.setdefault("address", "12 rue des Lilas, Lyon")
    kwargs.setdefault("tell_customer", False)
    return visit_book(job=job, kind=kind, window_start=start, installers=installers, actor=job.owner, **kwargs)


def page(client: Client, **query: str) -> str:
    response = client.get(reverse("crm:schedule"), query)
    assert response.status_code == 200
    return response.text


def blocks(html: str) -> list[str]:
    """The visit blocks of the page, each as its text, in page order."""
    found = re.findall(r'<li class="schedule-block[^"]*"[^>]*>(.*?)</li>', html, flags=re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", block).split()) for block in found]


def test_it_shows_the_signed_in_persons_day_by_default(
    staff: Client, job: Job, other_job: Job, survey: VisitKind, bob: User, charlie: User
) -> None:
    visit = book(job, survey, paris(2, 14), bob)
    book(other_job, survey, paris(2, 10), charlie)
    book(job, survey, paris(3, 10), bob)  # tomorrow
    html = page(staff)
    assert "Schedule: Monday 2 March 2026" in html
    assert blocks(html) == [
        f"14:00–16:00 Dupont household Site survey · {job.reference} Not confirmed yet",
    ]
    assert f'href="{reverse("crm:job", args=[job.public_id])}#visits"' in html
    assert str(visit.public_id) not in html  # the block links to the job page, where the forms are
    # The free time is said: the visit keeps bob busy until 17:00 (window, then an hour's stay).
    assert "Free 07:00–14:00" in html
    assert "Free 17:00–20:00" in html


def test_it_shows_another_installers_day(
    staff: Client, job: Job, other_job: Job, survey: VisitKind, bob: User, charlie: User
) -> None:
    book(job, survey, paris(2, 14), bob)
    book(other_job, survey, paris(2, 10), charlie)
    html = page(staff, who=str(charlie.pk))
    assert [b.split(" Site survey")[0] for b in blocks(html)] == ["10:00–12:00 Acme Telecom"]
    assert f'<option value="{charlie.pk}" selected>charlie</option>' in html


def test_it_shows_the_team_a_row_per_person(
    staff: Client, job: Job, other_job: Job, survey: VisitKind, alice: User, bob: User, charlie: User
) -> None:
    book(job, survey, paris(2, 14), bob, charlie)
    book(other_job, survey, paris(2, 10), charlie)
    book(other_job, survey, paris(2, 16), subcontractor="Acme Roofing")
    book(job, survey, paris(20, 10), alice)  # alice goes on visits, not today: a free row
    html = page(staff, who="team")
    labels = re.findall(r'<h[23] class="schedule-row-label[^"]*">(.*?)</h[23]>', html)
    assert labels == ["Alice Martin", "Bob Durand", "charlie", "Nobody of the team yet (or a subcontractor)"]
    rows = html.split('<div class="schedule-row">')[1:]
    assert "Free all day" in rows[0]
    assert [b[:11] for b in blocks(rows[1])] == ["14:00–16:00"]
    # A visit two people go on is in both rows; charlie's two visits overlap in time: two lanes.
    assert [b[:11] for b in blocks(rows[2])] == ["10:00–12:00", "14:00–16:00"]
    assert [b[:11] for b in blocks(rows[3])] == ["16:00–18:00"]


def test_it_leaves_cancelled_visits_out(staff: Client, job: Job, survey: VisitKind, bob: User) -> None:
    visit = book(job, survey, paris(2, 14), bob)
    visit_cancel(visit=visit, actor=bob, reason="Customer away", tell_customer=False)
    assert blocks(page(staff)) == []


def test_it_shows_a_week_from_its_monday(staff: Client, job: Job, survey: VisitKind, bob: User) -> None:
    book(job, survey, paris(3, 10), bob)
    book(job, survey, paris(6, 14), bob)
    book(job, survey, paris(9, 10), bob)  # the next week
    html = page(staff, week="2026-03-04")  # a Wednesday: its week
    assert "Schedule: week of 2 March 2026" in html
    labels = re.findall(r'<h[23] class="schedule-row-label[^"]*">(.*?)</h[23]>', html)
    assert labels == ["Mon 2 Mar", "Tue 3 Mar", "Wed 4 Mar", "Thu 5 Mar", "Fri 6 Mar", "Sat 7 Mar", "Sun 8 Mar"]
    assert [b[:11] for b in blocks(html)] == ["10:00–12:00", "14:00–16:00"]
    # The week scrolls inside its own region, reachable with the keyboard, never the page.
    assert re.search(r'<div class="schedule-scroll" tabindex="0" role="region" aria-label="[^"]+">', html)
    assert "?week=2026-02-23" in html
    assert "?week=2026-03-09" in html


def test_the_teams_week_has_a_section_per_day(staff: Client, job: Job, survey: VisitKind, bob: User) -> None:
    book(job, survey, paris(3, 10), bob)
    book(job, survey, paris(4, 10), subcontractor="Acme Roofing")
    html = page(staff, week="2026-03-02", who="team")
    days = html.split('<h2 class="schedule-day-heading h6">')[1:]
    assert [day.split("<")[0] for day in days][:3] == ["Monday 2 March", "Tuesday 3 March", "Wednesday 4 March"]
    # bob every day (free or not); the visits nobody of the team is on, on their day only.
    assert ["Bob Durand" in day for day in days] == [True] * 7
    assert ["Nobody of the team yet" in day for day in days] == [False, False, True, False, False, False, False]
    assert [len(blocks(day)) for day in days] == [0, 1, 1, 0, 0, 0, 0]
    assert "?week=2026-03-09&amp;who=team" in html


def test_the_day_view_moves_by_a_day_and_keeps_whose(staff: Client, charlie: User) -> None:
    html = page(staff, day="2026-03-06", who=str(charlie.pk))
    assert "Schedule: Friday 6 March 2026" in html
    assert f"?day=2026-03-05&amp;who={charlie.pk}" in html
    assert f"?day=2026-03-07&amp;who={charlie.pk}" in html
    assert 'class="schedule-scroll"' not in html  # a day fits a phone: it becomes a list there


def test_late_visits_and_visits_at_risk_say_so(
    staff: Client, job: Job, survey: VisitKind, bob: User, time_machine
) -> None:
    on_time = book(job, survey, paris(2, 10), bob)
    told_late = book(job, survey, paris(2, 13), bob, double_booking=True)
    book(job, survey, paris(2, 9, 30), bob, window_end=paris(2, 10), double_booking=True)
    book(job, survey, paris(2, 11), bob, double_booking=True)
    visit_on_the_way(visit=on_time, actor=bob, minutes=30)
    visit_running_late(visit=told_late, actor=bob, at=paris(2, 15, 30), reason="Traffic")
    time_machine.move_to(paris(2, 10, 45), tick=False)
    found = {b.removeprefix("⚠ Late ").removeprefix("⚠ At risk ")[:11]: b for b in blocks(page(staff))}
    assert "Late" not in found["10:00–12:00"] and "At risk" not in found["10:00–12:00"]
    # Said first, before the time: a narrow block still shows it.
    assert found["13:00–15:00"].startswith("⚠ Late ")  # told they would come after the window
    assert found["09:30–10:00"].startswith("⚠ Late ")  # the window is over and nobody arrived
    assert found["11:00–13:00"].startswith("⚠ At risk ")  # nobody on the way, 15 minutes before it
    html = page(staff)
    assert html.count("schedule-block--late") == 2
    assert html.count("schedule-block--at-risk") == 1


def test_it_refuses_a_stranger_and_nonsense(staff: Client, dana: User) -> None:
    assert staff.get(reverse("crm:schedule"), {"who": "99999"}).status_code == 404
    assert staff.get(reverse("crm:schedule"), {"who": str(dana.pk)}).status_code == 404  # not staff
    assert staff.get(reverse("crm:schedule"), {"day": "2026-02-30"}).status_code == 404
    assert staff.get(reverse("crm:schedule"), {"week": "1500-01-01"}).status_code == 404
    client = Client()
    assert client.get(reverse("crm:schedule")).status_code == 302
    client.force_login(dana)
    assert client.get(reverse("crm:schedule")).status_code == 403


def test_the_navigation_leads_there(staff: Client) -> None:
    html = staff.get(reverse("crm:today")).text
    assert f'href="{reverse("crm:schedule")}">Schedule</a>' in html


def test_a_double_booking_takes_a_second_lane(job: Job, survey: VisitKind, bob: User) -> None:
    first = book(job, survey, paris(2, 10), bob)
    second = book(job, survey, paris(2, 11), bob, double_booking=True)
    third = book(job, survey, paris(2, 14), bob)
    track = lay_out([first, second, third], date(2026, 3, 2), label="Bob", now=paris(2, 9))
    assert [(b.visit, b.lane) for b in track.blocks] == [(first, 0), (second, 1), (third, 0)]
    assert track.lanes == 2
    gaps = [(g.start.hour, g.end.hour) for g in track.items if isinstance(g, Gap)]
    assert gaps == [(7, 10), (17, 20)]
    # 07:00–20:00 is 13 hours: 10:00 is 3/13 of the way.
    assert f"--left:{3 / 13 * 100:.3f}%" in track.blocks[0].style


def test_the_selector_takes_a_fixed_number_of_queries(
    django_assert_num_queries, job: Job, survey: VisitKind, bob: User, charlie: User
) -> None:
    start, end = paris(2, 0), paris(9, 0)
    book(job, survey, paris(2, 10), bob)
    with django_assert_num_queries(2):
        assert len(selectors.schedule(start, end, bob)[0].visits) == 1
    with django_assert_num_queries(3):
        selectors.schedule(start, end, None)
    for n in range(9):
        book(job, survey, paris(3 + n % 5, 8 + n), bob, charlie, double_booking=True)
    with django_assert_num_queries(2):
        assert len(selectors.schedule(start, end, bob)[0].visits) == 10
    with django_assert_num_queries(3):
        rows = selectors.schedule(start, end, None)
    assert [(row.person, len(row.visits)) for row in rows] == [(bob, 10), (charlie, 9)]


@pytest.mark.parametrize("query", [{}, {"who": "team"}, {"week": "2026-03-02"}, {"week": "2026-03-02", "who": "team"}])
def test_the_page_takes_as_many_queries_for_ten_visits_as_for_one(
    staff: Client, job: Job, survey: VisitKind, bob: User, charlie: User, query: dict[str, str]
) -> None:
    book(job, survey, paris(2, 10), bob)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff.get(reverse("crm:schedule"), query).status_code == 200
        return len(queries)

    one = count()
    for n in range(9):
        book(job, survey, paris(2 + n % 5, 8 + n), bob, charlie, double_booking=True)
    assert count() == one


def test_it_speaks_french(staff: Client, job: Job, survey: VisitKind, bob: User) -> None:
    book(job, survey, paris(2, 14), bob)
    html = staff.get(reverse("crm:schedule"), {"week": "2026-03-02"}, HTTP_ACCEPT_LANGUAGE="fr").text
    assert "Planning\u00a0: semaine du 2 mars 2026" in html
    assert "Libre 07:00–14:00" in html
    assert "Votre lien d’agenda" in html
    # Positions stay CSS numbers whatever the language (a decimal comma would break them).
    assert re.search(r'style="--left:\d+\.\d{3}%;--width:\d+\.\d{3}%', html)


def test_it_says_when_nobody_is_booked(staff: Client) -> None:
    html = page(staff, who="team")
    assert "Nobody is booked on a visit around these days." in html
    assert blocks(html) == []
    # One person's day is a row all the same: all free.
    assert "Free all day" in page(staff)
