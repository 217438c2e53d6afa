"""Visits through their services: the window is a promise (kept, moved in time or not, broken),
the crew's day (on the way, late, arrived, done, couldn't get in), and two people at once."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User

from crm.errors import ConflictError, DomainError
from crm.models import Commitment, Contact, Job, JobEvent, Message, Pipeline, Question, Renegotiation, Visit, VisitKind
from crm.reports import Period, health_report, windows_by_installer
from crm.services.jobs import job_cancel
from crm.services.scan import scan
from crm.services.visits import (
    visit_arrived,
    visit_ask_to_move,
    visit_book,
    visit_cancel,
    visit_confirm,
    visit_crew_set,
    visit_done,
    visit_move,
    visit_on_the_way,
    visit_running_late,
)

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
ADDRESS = "12 rue des Lilas, 69003 Lyon"


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


def book(job: Job, kind: VisitKind, actor: User, start: datetime | None = None, **kwargs) -> Visit:
    start = start or paris(3, 14)
    kwargs.setdefault("address", ADDRESS)
    kwargs.setdefault("tell_customer", False)
    return visit_book(job=job, kind=kind, window_start=start, actor=actor, **kwargs)


def test_booking_promises_the_window_and_records_it(job: Job, installation_day: VisitKind, bob: User) -> None:
    visit = book(job, installation_day, bob, installers=[bob])

    assert (visit.window_start, visit.window_end) == (paris(3, 14), paris(3, 16))  # the kind's 2 hours
    assert visit.duration_minutes == 240
    promise = visit.commitment
    assert (promise.kind, promise.due_at, promise.first_due_at) == (Commitment.Kind.VISIT, paris(3, 16), paris(3, 16))
    assert promise.state == Commitment.State.OPEN
    booked = job.events.get(kind=JobEvent.Kind.VISIT_BOOKED)
    assert (booked.actor, booked.data["title"]) == (bob, "Installation day")
    assert list(visit.installers.all()) == [bob]


def test_an_all_day_visit_is_the_working_day(job: Job, installation_day: VisitKind, bob: User) -> None:
    visit = book(job, installation_day, bob, start=paris(3, 0), all_day=True)

    assert (visit.window_start, visit.window_end, visit.all_day) == (paris(3, 9), paris(3, 18), True)


@pytest.mark.parametrize(
    ("kwargs", "refusal"),
    [
        ({"start": paris(2, 7)}, "The window has already passed."),
        ({"address": ""}, "Give the visit's address"),
        ({"window_end": paris(3, 13)}, "The window must end after it starts."),
    ],
)
def test_booking_refuses_what_cannot_be_promised(
    job: Job, installation_day: VisitKind, bob: User, kwargs: dict, refusal: str
) -> None:
    with pytest.raises(DomainError, match=refusal):
        book(job, installation_day, bob, **kwargs)
    assert not Visit.objects.exists()
    assert not Commitment.objects.filter(kind=Commitment.Kind.VISIT).exists()


def test_booking_refuses_a_kind_of_another_pipeline(job: Job, repair: Pipeline, bob: User) -> None:
    call = VisitKind.objects.create(pipeline=repair, name="Repair call")

    with pytest.raises(DomainError, match="not a visit of this job's pipeline"):
        book(job, call, bob)


def test_an_installer_cannot_be_in_two_places_unless_it_is_a_double_booking(
    job: Job, installation_day: VisitKind, bob: User, charlie: User
) -> None:
    book(job, installation_day, bob, installers=[charlie])  # 14:00–16:00, then 4 hours on site

    with pytest.raises(DomainError, match=r"charlie is already at J-\d{4}-\d{4} from 14:00 to 20:00"):
        book(job, installation_day, bob, start=paris(3, 17), installers=[charlie])

    book(job, installation_day, bob, start=paris(3, 20), installers=[charlie])  # free again at 20:00
    book(job, installation_day, bob, start=paris(3, 17), installers=[charlie], double_booking=True)
    assert Visit.objects.count() == 3


def test_a_move_told_before_the_window_starts_is_proactive(job: Job, installation_day: VisitKind, bob: User) -> None:
    visit = book(job, installation_day, bob)
    visit_confirm(visit=visit, contact=job.contacts.get())

    visit = visit_move(visit=visit, window_start=paris(4, 9), reason="Parts arrive Wednesday", actor=bob)

    assert (visit.window_start, visit.window_end, visit.status) == (paris(4, 9), paris(4, 11), Visit.Status.PLANNED)
    assert visit.confirmed_at is None  # the customer confirms the new time
    [move] = Renegotiation.objects.filter(commitment=visit.commitment)
    assert (move.old_due_at, move.new_due_at, move.proactive) == (paris(3, 16), paris(4, 11), True)


def test_a_move_told_once_the_window_has_started_is_not_proactive(
    time_machine, job: Job, installation_day: VisitKind, bob: User
) -> None:
    visit = book(job, installation_day, bob)
    time_machine.move_to(paris(3, 14, 30), tick=False)  # inside the window, before its end

    visit_move(visit=visit, window_start=paris(4, 9), reason="Van broke down", actor=bob)

    assert Renegotiation.objects.get(commitment=visit.commitment).proactive is False


def test_a_move_not_told_is_not_proactive(job: Job, installation_day: VisitKind, bob: User) -> None:
    visit = book(job, installation_day, bob)

    visit_move(visit=visit, window_start=paris(4, 9), reason="Planning", actor=bob, tell_customer=False)

    move = Renegotiation.objects.get(commitment=visit.commitment)
    assert (move.told_customer_at, move.proactive) == (None, False)


def test_the_second_of_two_moves_is_told_who_moved_it(
    job: Job, installation_day: VisitKind, alice: User, bob: User
) -> None:
    visit = book(job, installation_day, bob)
    seen = visit.version

    visit_move(visit=visit, window_start=paris(4, 9), reason="Parts", actor=alice, expected_version=seen)
    with pytest.raises(ConflictError, match=r"Alice .* changed this visit in the meantime"):
        visit_move(visit=visit, window_start=paris(5, 9), reason="Other", actor=bob, expected_version=seen)

    visit.refresh_from_db()
    assert visit.window_start == paris(4, 9)


def test_arriving_in_the_window_keeps_its_promise(time_machine, job: Job, installation_day: VisitKind, bob: User):
    visit = book(job, installation_day, bob)
    time_machine.move_to(paris(3, 13, 20), tick=False)
    visit = visit_on_the_way(visit=visit, actor=bob, minutes=45)
    assert (visit.status, visit.expected_at) == (Visit.Status.ON_THE_WAY, paris(3, 14, 5))

    time_machine.move_to(paris(3, 14, 5), tick=False)
    visit = visit_arrived(visit=visit, actor=bob)

    promise = Commitment.objects.get(pk=visit.commitment_id)
    assert (promise.state, promise.kept_at) == (Commitment.State.KEPT, paris(3, 14, 5))
    assert job.events.get(kind=JobEvent.Kind.VISIT_ARRIVED).data["in_window"] is True


def test_running_late_past_the_window_moves_its_promise_proactively_before_it_starts(
    time_machine, job: Job, installation_day: VisitKind, bob: User
) -> None:
    visit = book(job, installation_day, bob)
    time_machine.move_to(paris(3, 12), tick=False)  # the morning job overran: told before 14:00

    visit = visit_running_late(visit=visit, actor=bob, at=paris(3, 16, 30), reason="The previous job overran")

    assert visit.expected_at == paris(3, 16, 30)
    move = Renegotiation.objects.get(commitment=visit.commitment)
    assert (move.new_due_at, move.proactive) == (paris(3, 16, 30), True)
    late = job.events.get(kind=JobEvent.Kind.VISIT_RUNNING_LATE)
    assert (late.data["before_window"], late.data["reason"]) == (True, "The previous job overran")


def test_running_late_inside_the_window_keeps_the_promise_as_it_is(
    time_machine, job: Job, installation_day: VisitKind, bob: User
) -> None:
    visit = book(job, installation_day, bob)
    time_machine.move_to(paris(3, 14, 10), tick=False)

    visit_running_late(visit=visit, actor=bob, minutes=40, reason="Traffic")

    assert not Renegotiation.objects.exists()  # 14:50 is still inside 14:00–16:00


def test_running_late_to_another_day_is_a_move(time_machine, job: Job, installation_day: VisitKind, bob: User) -> None:
    visit = book(job, installation_day, bob)
    time_machine.move_to(paris(3, 15), tick=False)

    with pytest.raises(DomainError, match="another day: move the visit instead"):
        visit_running_late(visit=visit, actor=bob, at=paris(4, 9), reason="Van")


def test_an_eta_must_be_ahead_and_honest(job: Job, installation_day: VisitKind, bob: User) -> None:
    visit = book(job, installation_day, bob)

    with pytest.raises(DomainError, match="later than now"):
        visit_on_the_way(visit=visit, actor=bob, at=paris(2, 8))
    with pytest.raises(DomainError, match="More than 8 hours away"):
        visit_on_the_way(visit=visit, actor=bob, minutes=9 * 60)


def test_a_done_installation_reaches_the_installed_stage(
    time_machine, job: Job, installation_day: VisitKind, bob: User
) -> None:
    visit = book(job, installation_day, bob)
    time_machine.move_to(paris(3, 18), tick=False)

    visit = visit_done(visit=visit, actor=bob)

    assert (visit.status, visit.arrived_at, visit.done_at) == (Visit.Status.DONE, paris(3, 18), paris(3, 18))
    job.refresh_from_db()
    assert job.current_stage.name == "Installed"


def test_the_customer_confirms_once_or_asks_for_another_time(
    job: Job, contact: Contact, installation_day: VisitKind, bob: User
) -> None:
    visit = book(job, installation_day, bob)

    visit = visit_confirm(visit=visit, contact=contact)
    again = visit_confirm(visit=visit, contact=contact)

    assert again.status == Visit.Status.CONFIRMED
    assert job.events.filter(kind=JobEvent.Kind.VISIT_CONFIRMED).count() == 1

    question = visit_ask_to_move(visit=visit, contact=contact, note="We are away on Tuesday")

    visit.refresh_from_db()
    assert (visit.status, visit.move_asked_at) == (Visit.Status.PLANNED, paris(2, 9))
    assert question.job == job and question.source == Question.Source.PORTAL
    assert "We are away on Tuesday" in question.body
    assert question.commitments.get().kind == Commitment.Kind.ANSWER  # answered by a date, like any question


def test_a_visit_called_off_in_time_releases_its_promise(job: Job, installation_day: VisitKind, bob: User) -> None:
    visit = book(job, installation_day, bob)

    visit = visit_cancel(visit=visit, actor=bob, reason="The customer is moving house", tell_customer=True)

    assert visit.status == Visit.Status.CANCELLED
    assert Commitment.objects.get(pk=visit.commitment_id).state == Commitment.State.WITHDRAWN
    assert job.messages.filter(kind=Message.Kind.VISIT_CANCELLED).count() == 1
    with pytest.raises(DomainError, match="can no longer change"):
        visit_move(visit=visit, window_start=paris(4, 9), reason="x", actor=bob)


@pytest.mark.parametrize(("when", "told"), [(paris(2, 9), False), (paris(3, 14, 30), True)])
def test_a_visit_called_off_without_a_word_or_once_the_window_began_breaks_its_promise(
    time_machine, job: Job, installation_day: VisitKind, bob: User, when: datetime, told: bool
) -> None:
    visit = book(job, installation_day, bob)
    time_machine.move_to(when, tick=False)

    visit = visit_cancel(visit=visit, actor=bob, reason="Van broke down", tell_customer=told)

    assert Commitment.objects.get(pk=visit.commitment_id).state == Commitment.State.BROKEN


def test_closing_the_job_cancels_its_visits_to_come(job: Job, installation_day: VisitKind, bob: User) -> None:
    visit = book(job, installation_day, bob)

    job_cancel(job=job, actor=bob, reason="The customer went elsewhere")

    visit.refresh_from_db()
    assert (visit.status, visit.close_reason) == (Visit.Status.CANCELLED, "The customer went elsewhere")
    with pytest.raises(DomainError, match="This job is closed"):
        visit_on_the_way(visit=visit, actor=bob, minutes=30)


def test_every_change_bumps_the_job_for_the_portal_poll(
    time_machine, job: Job, installation_day: VisitKind, bob: User
) -> None:
    visit = book(job, installation_day, bob)
    time_machine.move_to(paris(2, 9) + timedelta(minutes=5), tick=False)

    visit_on_the_way(visit=visit, actor=bob, minutes=30)

    job.refresh_from_db()
    assert paris(2, 9, 5) <= job.updated_at < paris(2, 9, 5) + timedelta(milliseconds=1)


def test_the_health_report_counts_the_windows_kept(
    time_machine, job: Job, installation_day: VisitKind, bob: User
) -> None:
    kept = book(job, installation_day, bob)  # 3 March, 14:00–16:00
    missed = book(job, installation_day, bob, start=paris(4, 9), double_booking=True)  # 4 March, 09:00–11:00
    time_machine.move_to(paris(3, 15), tick=False)
    visit_arrived(visit=kept, actor=bob)
    time_machine.move_to(paris(4, 11, 5), tick=False)  # the second window ended with nobody there
    scan()

    report = health_report(period=Period(date(2026, 3, 2), date(2026, 3, 8)))

    windows = report.for_owner(bob.pk).total.windows_kept
    assert (windows.numerator, windows.denominator) == (1, 2)
    assert Commitment.objects.get(pk=missed.commitment_id).state == Commitment.State.BROKEN


def test_arrival_windows_count_for_each_person_who_went(
    time_machine, client, job: Job, installation_day: VisitKind, alice: User, bob: User, charlie: User
) -> None:
    both = book(job, installation_day, bob, installers=[bob, charlie])  # 3 March 14:00–16:00: kept
    late = book(job, installation_day, bob, start=paris(4, 9), installers=[charlie])  # told late in time
    time_machine.move_to(paris(3, 15), tick=False)
    visit_arrived(visit=both, actor=bob)
    time_machine.move_to(paris(4, 8), tick=False)
    visit_running_late(visit=late, actor=charlie, at=paris(4, 11, 30), reason="Van")
    time_machine.move_to(paris(4, 11, 30), tick=False)
    visit_arrived(visit=late, actor=charlie)
    time_machine.move_to(paris(9, 9), tick=False)

    rows = {r.name: r for r in windows_by_installer(period=Period(date(2026, 3, 2), date(2026, 3, 8)))}

    assert set(rows) == {"Bob Durand", "charlie"}
    assert (rows["Bob Durand"].kept.numerator, rows["Bob Durand"].kept.denominator) == (1, 1)
    assert (rows["charlie"].kept.numerator, rows["charlie"].kept.denominator) == (1, 2)
    assert (rows["charlie"].notice.numerator, rows["charlie"].notice.denominator) == (1, 1)  # told before 09:00
    client.force_login(alice)
    page = client.get("/reports/health/", {"from": "2026-03-02", "to": "2026-03-08"}).content.decode()
    assert "Arrival windows, by who went" in page
    assert "50%" in page and "1 of 2 arrival windows" in page


def test_the_history_says_each_window_on_the_business_clock(
    time_machine, job: Job, installation_day: VisitKind, bob: User
) -> None:
    visit = book(job, installation_day, bob)
    time_machine.move_to(paris(3, 13), tick=False)
    visit_running_late(visit=visit, actor=bob, at=paris(3, 16, 20), reason="Traffic on the ring road")

    assert job.events.get(kind=JobEvent.Kind.VISIT_BOOKED).summary == "Installation day: Tue 3 Mar 14:00–16:00"
    late = job.events.get(kind=JobEvent.Kind.VISIT_RUNNING_LATE).summary
    assert late == "Installation day: expected 16:20 (Traffic on the ring road)"


def test_on_my_way_and_running_late_tell_the_customer_the_time_on_their_clock(
    time_machine, job: Job, contact: Contact, installation_day: VisitKind, bob: User
) -> None:
    Contact.objects.filter(pk=contact.pk).update(language="en", time_zone="Europe/London")
    visit = book(job, installation_day, bob, installers=[bob], tell_customer=True)
    [booked] = job.messages.filter(kind=Message.Kind.VISIT_BOOKED)
    assert "13:00" in booked.subject and "15:00" in booked.subject  # 14:00–16:00 in Paris is 13:00–15:00 in London
    assert "/portal/visits/" in booked.body_text  # the visit's own .ics

    time_machine.move_to(paris(3, 13, 20), tick=False)
    visit_on_the_way(visit=visit, actor=bob, minutes=30)
    time_machine.move_to(paris(3, 13, 40), tick=False)
    visit_running_late(visit=visit, actor=bob, at=paris(3, 16, 30), reason="A flat tyre")
    visit_running_late(visit=visit, actor=bob, at=paris(3, 16, 30), reason="A flat tyre")  # pressed twice

    [on_the_way] = job.messages.filter(kind=Message.Kind.VISIT_ON_THE_WAY)
    assert "12:50" in on_the_way.body_text  # 13:50 Paris
    [late] = job.messages.filter(kind=Message.Kind.VISIT_RUNNING_LATE)
    assert "15:30" in late.body_text and "A flat tyre" in late.body_text


def test_who_goes_changes_with_the_joiners_checked_and_the_job_records_it(
    job: Job, installation_day: VisitKind, bob: User, charlie: User
) -> None:
    visit = book(job, installation_day, bob, installers=[bob])
    book(job, installation_day, bob, start=paris(3, 15), installers=[charlie], double_booking=True)

    with pytest.raises(DomainError, match="charlie is already at"):
        visit_crew_set(visit=visit, installers=[bob, charlie], subcontractor="", actor=bob)

    visit = visit_crew_set(
        visit=visit, installers=[charlie], subcontractor="Acme Roofing", actor=bob, double_booking=True
    )

    assert (list(visit.installers.all()), visit.subcontractor) == ([charlie], "Acme Roofing")
    assert job.events.filter(kind=JobEvent.Kind.DETAILS_CHANGED).get().summary == (
        "who goes on the visit: charlie, Acme Roofing"
    )
