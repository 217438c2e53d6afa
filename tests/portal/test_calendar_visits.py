"""Visits in the customer's calendar: the feed (portal.views.calendar) carries the customer's visits
in their windows, cancelled ones cancelled, and nobody else's; a visit's own .ics (the booking
confirmation's "add to my calendar", crm.links.visit_calendar_url) opens for the contact it names
while the visit is their customer's."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlparse

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.links import make_calendar_token, make_visit_calendar_token, visit_calendar_url
from crm.models import Contact, Job, Visit, VisitKind
from crm.services.jobs import job_cancel
from crm.services.visits import visit_book, visit_cancel, visit_move

from .conftest import PARIS

pytestmark = pytest.mark.django_db

ADDRESS = "12 rue des Lilas, bât. B\n69003 Lyon"


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def installation_day(job: Job) -> VisitKind:
    return VisitKind.objects.create(
        pipeline=job.pipeline,
        name="Installation day",
        name_fr="Jour d'installation",
        window_minutes=120,
        duration_minutes=240,
        stage=job.pipeline.stages.get(name="Installed"),
    )


def book(job: Job, kind: VisitKind, start: datetime, *installers: User, **kwargs) -> Visit:
    kwargs.setdefault("address", ADDRESS)
    kwargs.setdefault("tell_customer", False)
    return visit_book(job=job, kind=kind, window_start=start, installers=installers, actor=job.owner, **kwargs)


def events(ics: str) -> list[dict[str, str]]:
    unfolded = ics.replace("\r\n ", "")
    found = []
    for block in unfolded.split("BEGIN:VEVENT\r\n")[1:]:
        lines = block.split("\r\nEND:VEVENT")[0].split("\r\n")
        found.append(dict(line.split(":", 1) for line in lines))
    return found


def feed(client: Client, contact: Contact) -> str:
    response = client.get(reverse("portal:calendar", args=[make_calendar_token(contact)]))
    assert response.status_code == 200
    return response.content.decode()


def visits_in(ics: str) -> dict[str, dict[str, str]]:
    """The feed's visit events by UID (the milestones are all-day events)."""
    return {e["UID"]: e for e in events(ics) if "DTSTART" in e}


def test_the_feed_carries_the_customers_visits_in_their_windows(
    client: Client, john: Contact, job: Job, installation_day: VisitKind, bob: User
) -> None:
    visit = book(job, installation_day, paris(3, 14), bob, prepare="Clear the garage")
    ics = feed(client, john)
    assert all(len(line.encode()) <= 75 for line in ics.split("\r\n"))
    assert len(events(ics)) == 6  # the five dated milestones, and the visit
    [event] = visits_in(ics).values()
    assert event["UID"] == f"{visit.public_id}@testserver"
    assert (event["DTSTART"], event["DTEND"]) == ("20260303T130000Z", "20260303T150000Z")
    assert event["SEQUENCE"] == "1"
    assert event["SUMMARY"] == f"Installation day — Heat pump installation ({job.reference})"
    assert event["LOCATION"] == "12 rue des Lilas\\, bât. B\\n69003 Lyon"
    # In John's language and on his clock (London: an hour behind Paris).
    assert event["DESCRIPTION"] == (
        f"Heat pump installation ({job.reference})\\nWe arrive between 13:00 and 15:00.\\n"
        "Who is coming: Bob\\nTo prepare: Clear the garage"
    )
    assert event["URL"] == f"http://testserver/portal/jobs/{job.public_id}/"
    assert (event["STATUS"], event["TRANSP"]) == ("CONFIRMED", "OPAQUE")


def test_a_moved_visit_moves_and_a_cancelled_one_is_cancelled(
    client: Client, john: Contact, job: Job, installation_day: VisitKind, bob: User
) -> None:
    moved = book(job, installation_day, paris(3, 14), bob)
    cancelled = book(job, installation_day, paris(5, 9))
    visit_move(
        visit=moved,
        window_start=paris(4, 8),
        reason="Parts late",
        expected_version=moved.version,
        actor=bob,
        tell_customer=False,
    )
    visit_cancel(visit=cancelled, actor=bob, reason="Weather", tell_customer=False)
    found = visits_in(feed(client, john))
    assert (found[f"{moved.public_id}@testserver"]["DTSTART"], found[f"{moved.public_id}@testserver"]["SEQUENCE"]) == (
        "20260304T070000Z",
        "2",
    )
    gone = found[f"{cancelled.public_id}@testserver"]
    assert gone["STATUS"] == "CANCELLED"
    assert "This visit is cancelled." in gone["DESCRIPTION"]


def test_a_visit_left_planned_on_a_closed_job_is_cancelled(
    client: Client, john: Contact, job: Job, installation_day: VisitKind, bob: User
) -> None:
    visit = book(job, installation_day, paris(3, 14), bob)
    job_cancel(job=job, actor=bob, reason="Customer moved")
    event = visits_in(feed(client, john))[f"{visit.public_id}@testserver"]
    # A newer copy than the one the booking confirmation's .ics gave.
    assert (event["STATUS"], event["SEQUENCE"]) == ("CANCELLED", "2")


def test_another_customers_visits_are_absent(
    client: Client,
    john: Contact,
    stranger: Contact,
    job: Job,
    stranger_job: Job,
    installation_day: VisitKind,
    alice: User,
) -> None:
    mine = book(job, installation_day, paris(3, 14))
    theirs = book(stranger_job, installation_day, paris(3, 9), alice)
    assert list(visits_in(feed(client, john))) == [f"{mine.public_id}@testserver"]
    assert list(visits_in(feed(client, stranger))) == [f"{theirs.public_id}@testserver"]


def test_the_feed_speaks_the_contacts_language(
    client: Client, contact: Contact, job: Job, installation_day: VisitKind
) -> None:
    book(job, installation_day, paris(3, 14), all_day=True)
    [event] = visits_in(feed(client, contact)).values()
    assert event["SUMMARY"].startswith("Jour d'installation — ")
    assert "Pendant la journée de travail" in event["DESCRIPTION"]


def test_a_visits_own_ics_gives_that_visit(
    client: Client, john: Contact, job: Job, installation_day: VisitKind, bob: User
) -> None:
    visit = book(job, installation_day, paris(3, 14), bob)
    url = visit_calendar_url(john, visit)
    assert url.startswith("http://testserver/portal/visits/") and url.endswith(".ics")
    response = client.get(urlparse(url).path)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="visit-2026-03-03.ics"'
    ics = response.content.decode()
    assert ics.startswith("BEGIN:VCALENDAR\r\n") and ics.endswith("END:VCALENDAR\r\n")
    assert "X-WR-CALNAME" not in ics  # a file to import into one of the contact's calendars
    [event] = events(ics)
    # The same event as in the feed: an app that has both keeps one.
    assert event == visits_in(feed(client, john))[f"{visit.public_id}@testserver"] | {"DTSTAMP": event["DTSTAMP"]}
    # The link keeps giving the visit as it now is.
    visit_move(
        visit=visit, window_start=paris(4, 8), reason="Parts", expected_version=1, actor=bob, tell_customer=False
    )
    [event] = events(client.get(urlparse(url).path).content.decode())
    assert (event["DTSTART"], event["SEQUENCE"]) == ("20260304T070000Z", "2")


def test_a_visits_ics_opens_only_for_its_customers_contact(
    client: Client,
    john: Contact,
    stranger: Contact,
    job: Job,
    stranger_job: Job,
    installation_day: VisitKind,
) -> None:
    mine = book(job, installation_day, paris(3, 14))
    theirs = book(stranger_job, installation_day, paris(3, 9))

    def status(token: str) -> int:
        return client.get(reverse("portal:visit_calendar", args=[token])).status_code

    assert status(make_visit_calendar_token(contact_id=john.pk, visit_id=mine.public_id)) == 200
    # A token naming John and the stranger's visit, or the stranger and John's: nothing.
    assert status(make_visit_calendar_token(contact_id=john.pk, visit_id=theirs.public_id)) == 404
    assert status(make_visit_calendar_token(contact_id=stranger.pk, visit_id=mine.public_id)) == 404
    good = make_visit_calendar_token(contact_id=john.pk, visit_id=mine.public_id)
    for bad in ("garbage", good[:-4] + "AAAA", make_calendar_token(john)):
        assert status(bad) == 404, bad
    assert client.post(reverse("portal:visit_calendar", args=[good])).status_code == 405
    john.delete()
    assert status(good) == 404
