"""The visits' schedule, time frozen across the days: the reminder at the pipeline's time in the
customer's time zone (never at night, once), the owner told of an unconfirmed visit, and a late
crew told before the window — once, however often the scan runs."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User

from crm.models import Contact, Job, Message, Pipeline, Visit, VisitKind
from crm.services import visit_scan
from crm.services.visits import visit_arrived, visit_book, visit_confirm, visit_on_the_way

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def monday_morning(time_machine) -> None:
    time_machine.move_to(paris(2, 8), tick=False)  # Monday 2 March 2026


@pytest.fixture
def survey_kind(installation: Pipeline) -> VisitKind:
    return VisitKind.objects.create(pipeline=installation, name="Site survey", window_minutes=120, duration_minutes=60)


def book(job: Job, kind: VisitKind, start: datetime, actor: User, **kwargs) -> Visit:
    return visit_book(job=job, kind=kind, window_start=start, address="12 rue des Lilas, Lyon", actor=actor, **kwargs)


def reminders(job: Job) -> list[Message]:
    return list(job.messages.filter(kind=Message.Kind.VISIT_REMINDER).order_by("pk"))


def alerts(person: User, name: str) -> list[Message]:
    return [m for m in Message.objects.filter(kind=Message.Kind.STAFF_ALERT, staff=person) if name in m.idempotency_key]


def scan_at(time_machine, moment: datetime) -> dict[str, int]:
    time_machine.move_to(moment, tick=False)
    return visit_scan.scan()


def test_the_reminder_goes_the_business_day_before_at_ten_in_the_customers_time_zone(
    time_machine, job: Job, contact: Contact, survey_kind: VisitKind, bob: User
) -> None:
    book(job, survey_kind, paris(4, 14), bob)  # Wednesday 14:00–16:00

    assert scan_at(time_machine, paris(3, 9, 55))["reminded"] == 0
    assert scan_at(time_machine, paris(3, 10))["reminded"] == 1
    assert scan_at(time_machine, paris(3, 10, 5))["reminded"] == 0  # once

    [reminder] = reminders(job)
    assert reminder.contact == contact and reminder.language == "fr"
    assert "mercredi 4 mars" in reminder.subject and "14:00" in reminder.subject


def test_a_monday_visit_is_reminded_on_the_friday(time_machine, job: Job, survey_kind: VisitKind, bob: User) -> None:
    book(job, survey_kind, paris(9, 9), bob)

    assert scan_at(time_machine, paris(6, 10))["reminded"] == 1  # Friday 6 March


def test_a_customer_abroad_is_reminded_at_ten_their_time_never_at_night(
    time_machine, job: Job, contact: Contact, survey_kind: VisitKind, bob: User
) -> None:
    Contact.objects.filter(pk=contact.pk).update(time_zone="America/New_York")
    book(job, survey_kind, paris(4, 14), bob)

    assert scan_at(time_machine, datetime(2026, 3, 3, 9, 59, tzinfo=NEW_YORK))["reminded"] == 0
    assert scan_at(time_machine, datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK))["reminded"] == 1


def test_a_scan_that_was_down_waits_for_the_customers_morning(
    time_machine, job: Job, survey_kind: VisitKind, bob: User
) -> None:
    book(job, survey_kind, paris(4, 14), bob)

    assert scan_at(time_machine, paris(3, 23))["reminded"] == 0  # the reminder was due at 10:00
    assert scan_at(time_machine, paris(4, 8, 55))["reminded"] == 0
    assert scan_at(time_machine, paris(4, 9))["reminded"] == 1


def test_an_unconfirmed_visit_is_told_to_the_owner_with_its_reminder(
    time_machine, job: Job, contact: Contact, survey_kind: VisitKind, bob: User
) -> None:
    unconfirmed = book(job, survey_kind, paris(4, 9), bob)
    confirmed = book(job, survey_kind, paris(4, 14), bob)
    visit_confirm(visit=confirmed, contact=contact)

    scan_at(time_machine, paris(3, 10))

    [alert] = alerts(bob, "unconfirmed")
    assert f"visit:{unconfirmed.pk}:" in alert.idempotency_key
    assert len(reminders(job)) == 2


def test_a_visit_booked_after_its_reminder_time_is_not_reminded_again(
    time_machine, job: Job, survey_kind: VisitKind, bob: User
) -> None:
    time_machine.move_to(paris(3, 11), tick=False)
    book(job, survey_kind, paris(4, 14), bob)  # the booking message says it all

    assert scan_at(time_machine, paris(3, 11, 5))["reminded"] == 0
    assert Visit.objects.get().reminded_at is not None
    assert reminders(job) == []


def test_nobody_on_the_way_half_an_hour_before_the_window_warns_the_crew_and_owner_once(
    time_machine, job: Job, survey_kind: VisitKind, bob: User, charlie: User
) -> None:
    book(job, survey_kind, paris(3, 14), bob, installers=[charlie])

    assert scan_at(time_machine, paris(3, 13, 29))["at_risk"] == 0
    assert scan_at(time_machine, paris(3, 13, 30))["at_risk"] == 1
    assert scan_at(time_machine, paris(3, 13, 35))["at_risk"] == 0

    [to_charlie] = alerts(charlie, "at-risk")
    [to_bob] = alerts(bob, "at-risk")
    assert "Nobody is on the way yet." in to_charlie.body_text
    assert "/today/" in to_bob.body_text


def test_a_crew_on_the_way_is_not_warned(time_machine, job: Job, survey_kind: VisitKind, bob: User, charlie: User):
    visit = book(job, survey_kind, paris(3, 14), bob, installers=[charlie])
    time_machine.move_to(paris(3, 13, 10), tick=False)
    visit_on_the_way(visit=visit, actor=charlie, minutes=30)

    assert scan_at(time_machine, paris(3, 13, 45))["at_risk"] == 0


def test_a_previous_visit_that_overruns_warns_at_once(
    time_machine, job: Job, survey_kind: VisitKind, installation: Pipeline, bob: User, charlie: User
) -> None:
    long_day = VisitKind.objects.create(pipeline=installation, name="Installation day", duration_minutes=240)
    morning = book(job, long_day, paris(3, 8), bob, installers=[charlie])
    book(job, survey_kind, paris(3, 11), bob, installers=[charlie], double_booking=True)  # 11:00–13:00
    time_machine.move_to(paris(3, 9), tick=False)
    visit_arrived(visit=morning, actor=charlie)  # four hours of work: 13:00, then the road

    assert scan_at(time_machine, paris(3, 9, 5))["at_risk"] == 1

    [alert] = alerts(charlie, "at-risk")
    assert f"The crew is still at {job.reference}" in alert.body_text


def test_a_previous_visit_that_ends_in_time_for_the_next_window_warns_nobody(
    time_machine, job: Job, survey_kind: VisitKind, installation: Pipeline, bob: User, charlie: User
) -> None:
    long_day = VisitKind.objects.create(pipeline=installation, name="Installation day", duration_minutes=240)
    morning = book(job, long_day, paris(3, 8), bob, installers=[charlie])
    book(job, survey_kind, paris(3, 12), bob, installers=[charlie], double_booking=True)  # 12:00–14:00
    time_machine.move_to(paris(3, 9), tick=False)
    visit_arrived(visit=morning, actor=charlie)  # done by 13:00, there by 13:30: inside the window

    assert scan_at(time_machine, paris(3, 9, 5))["at_risk"] == 0
    assert scan_at(time_machine, paris(3, 11, 30))["at_risk"] == 1  # still there as the window nears
