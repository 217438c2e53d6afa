"""An installer's private calendar feed (crm.views.calendar): the visits they go on, a month back
to three months ahead, as iCalendar that calendar apps read (folded lines, CRLF, escaped text);
the link is the secret, and "make a new link" ends the old one."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core import signing
from django.test import Client
from django.urls import reverse

from crm.links import (
    STAFF_CALENDAR_SALT,
    as_webcal,
    make_calendar_token,
    make_staff_calendar_token,
    staff_calendar_url,
)
from crm.models import Contact, Job, Pipeline, StaffProfile, Visit, VisitKind
from crm.services.visits import visit_book, visit_cancel, visit_move

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
ADDRESS = "12 rue des Lilas, bât. B; 3e étage\n69003 Lyon"
PREPARE = "Clear the boiler room; move the car, please. Someone must be home to open the garage door for the crew."


def paris(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def monday_morning(time_machine) -> None:
    time_machine.move_to(paris(2, 9), tick=False)


@pytest.fixture
def survey(installation: Pipeline) -> VisitKind:
    return VisitKind.objects.create(
        pipeline=installation, name="Site survey", name_fr="Visite technique", window_minutes=120, duration_minutes=60
    )


def book(job: Job, kind: VisitKind, start: datetime, *installers: User, **kwargs) -> Visit:
    kwargs.setdefault("address", ADDRESS)
    kwargs.setdefault("tell_customer", False)
    return visit_book(job=job, kind=kind, window_start=start, installers=installers, actor=job.owner, **kwargs)


def unfold(ics: str) -> list[str]:
    return ics.replace("\r\n ", "").split("\r\n")


def events(ics: str) -> list[dict[str, str]]:
    found = []
    for block in "\r\n".join(unfold(ics)).split("BEGIN:VEVENT\r\n")[1:]:
        lines = block.split("\r\nEND:VEVENT")[0].split("\r\n")
        found.append(dict(line.split(":", 1) for line in lines))
    return found


def feed(client: Client, user: User) -> str:
    response = client.get(reverse("crm:staff_calendar", args=[make_staff_calendar_token(user)]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert "private" in response["Cache-Control"]
    return response.content.decode()


def test_it_lists_the_persons_visits_as_calendar_apps_read_them(
    client: Client, job: Job, survey: VisitKind, bob: User, charlie: User
) -> None:
    visit = book(job, survey, paris(3, 14), bob, prepare=PREPARE)
    ics = feed(client, bob)
    assert ics.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert ics.endswith("END:VCALENDAR\r\n")
    # CRLF everywhere, every physical line at most 75 octets, long ones folded with one space.
    assert "\n" not in ics.replace("\r\n", "")
    assert all(len(line.encode()) <= 75 for line in ics.split("\r\n"))
    assert "\r\n " in ics
    [event] = events(ics)
    assert event["UID"] == f"{visit.public_id}@testserver"
    assert event["DTSTART"] == "20260303T130000Z"  # 14:00 in Paris, in UTC
    assert event["DTEND"] == "20260303T150000Z"
    assert event["SEQUENCE"] == str(visit.version)
    assert event["SUMMARY"] == "Site survey — Dupont household"
    # Commas, semicolons and newlines escaped, as RFC 5545 says for TEXT.
    assert event["LOCATION"] == "12 rue des Lilas\\, bât. B\\; 3e étage\\n69003 Lyon"
    job_url = f"http://testserver/jobs/{job.public_id}/#visits"
    assert event["DESCRIPTION"] == (
        f"{job.reference} — Heat pump installation\\n"
        "The customer should prepare: Clear the boiler room\\; move the car\\, please. "
        "Someone must be home to open the garage door for the crew.\\n"
        f"{job_url}"
    )
    assert event["URL"] == job_url
    assert event["STATUS"] == "CONFIRMED"


def test_a_moved_visit_keeps_its_uid_and_a_cancelled_one_is_cancelled(
    client: Client, job: Job, survey: VisitKind, bob: User
) -> None:
    moved = book(job, survey, paris(3, 14), bob)
    cancelled = book(job, survey, paris(4, 10), bob)
    visit_move(
        visit=moved,
        window_start=paris(5, 9),
        reason="Parts late",
        expected_version=moved.version,
        actor=bob,
        tell_customer=False,
    )
    visit_cancel(visit=cancelled, actor=bob, reason="Customer away", tell_customer=False)
    found = {e["UID"]: e for e in events(feed(client, bob))}
    moved.refresh_from_db()
    assert found[f"{moved.public_id}@testserver"]["DTSTART"] == "20260305T080000Z"
    assert found[f"{moved.public_id}@testserver"]["SEQUENCE"] == str(moved.version) == "2"
    gone = found[f"{cancelled.public_id}@testserver"]
    assert (gone["STATUS"], gone["TRANSP"]) == ("CANCELLED", "TRANSPARENT")
    assert gone["DESCRIPTION"].endswith(f"Cancelled: Customer away\\nhttp://testserver/jobs/{job.public_id}/#visits")


def test_another_persons_visits_are_absent(
    client: Client, job: Job, survey: VisitKind, bob: User, charlie: User, alice: User
) -> None:
    mine = book(job, survey, paris(3, 14), bob)
    shared = book(job, survey, paris(4, 14), bob, charlie)
    book(job, survey, paris(5, 14), charlie)
    book(job, survey, paris(6, 14), alice)
    book(job, survey, paris(9, 14), subcontractor="Acme Roofing")
    uids = [e["UID"] for e in events(feed(client, bob))]
    assert uids == [f"{mine.public_id}@testserver", f"{shared.public_id}@testserver"]
    assert "Going: charlie\\, Bob Durand" in "".join(unfold(feed(client, charlie)))


def test_it_covers_a_month_back_and_three_months_ahead(
    client: Client, job: Job, survey: VisitKind, bob: User, time_machine
) -> None:
    past = book(job, survey, paris(3, 14), bob)
    long_past = book(job, survey, paris(2, 14), bob)
    soon = book(job, survey, paris(1, 10, month=5), bob)
    too_far = book(job, survey, paris(1, 10, month=7), bob)
    time_machine.move_to(paris(2, 15) + timedelta(days=30, hours=1), tick=False)  # 1 April
    uids = {e["UID"].split("@")[0] for e in events(feed(client, bob))}
    assert uids == {str(past.public_id), str(soon.public_id)}
    assert str(long_past.public_id) not in uids and str(too_far.public_id) not in uids


def test_it_speaks_the_persons_language(client: Client, job: Job, survey: VisitKind, bob: User) -> None:
    StaffProfile.objects.create(user=bob, language="fr")
    book(job, survey, paris(3, 14), bob, prepare="Libérer l'accès")
    [event] = events(feed(client, bob))
    assert event["SUMMARY"] == "Visite technique — Dupont household"
    assert "Le client doit préparer" in event["DESCRIPTION"]


def test_a_bad_or_foreign_token_is_404(client: Client, bob: User, contact: Contact, dana: User) -> None:
    good = make_staff_calendar_token(bob)
    for bad in ("garbage", good[:-4] + "AAAA", make_calendar_token(contact), make_staff_calendar_token(dana)):
        assert client.get(reverse("crm:staff_calendar", args=[bad])).status_code == 404, bad
    # A token for a version that was never issued, or that does not name a person.
    for payload in ({"u": bob.pk, "v": 2}, {"u": str(bob.pk), "v": 1}, {"v": 1}, [bob.pk, 1]):
        token = signing.dumps(payload, salt=STAFF_CALENDAR_SALT)
        assert client.get(reverse("crm:staff_calendar", args=[token])).status_code == 404, payload
    User.objects.filter(pk=bob.pk).update(is_active=False)
    assert client.get(reverse("crm:staff_calendar", args=[good])).status_code == 404


def test_a_new_link_ends_the_old_one(client: Client, staff: Client, job: Job, survey: VisitKind, bob: User) -> None:
    book(job, survey, paris(3, 14), bob)
    old = staff_calendar_url(bob)
    assert Client().get(old).status_code == 200
    response = staff.post(reverse("crm:staff_calendar_reset"))
    assert response.status_code == 302
    assert response["Location"] == reverse("crm:schedule") + "#calendar-link"
    assert StaffProfile.objects.get(user=bob).calendar_version == 2
    assert Client().get(old).status_code == 404
    bob.refresh_from_db()
    new = staff_calendar_url(bob)
    assert new != old
    assert len(events(Client().get(new).content.decode())) == 1
    # Again, with the profile that now exists: the second link ends too.
    staff.post(reverse("crm:staff_calendar_reset"))
    assert Client().get(new).status_code == 404
    assert StaffProfile.objects.get(user=bob).calendar_version == 3


def test_making_a_new_link_is_a_post_with_csrf_for_staff(bob: User, dana: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.get(reverse("crm:staff_calendar_reset")).status_code == 405
    assert client.post(reverse("crm:staff_calendar_reset")).status_code == 403
    anonymous = Client()
    assert anonymous.post(reverse("crm:staff_calendar_reset")).status_code == 302
    anonymous.force_login(dana)
    assert anonymous.post(reverse("crm:staff_calendar_reset")).status_code == 403
    assert not StaffProfile.objects.exists()


def test_the_schedule_page_gives_the_link(staff: Client, bob: User) -> None:
    html = staff.get(reverse("crm:schedule")).text
    assert "Your calendar link" in html
    url = next(part.split('"')[0] for part in html.split('value="')[1:] if "/calendar/" in part)
    assert url.startswith("http://testserver/calendar/") and url.endswith(".ics")
    assert f'value="{as_webcal(url)}"' in html
    assert as_webcal(url).startswith("webcal://testserver/calendar/")
    assert Client().get(url).status_code == 200
    assert f'action="{reverse("crm:staff_calendar_reset")}"' in html
    assert "Make a new link (the old one stops working)" in html
