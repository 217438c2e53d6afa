"""crm.reports: each promise that slipped counts once (the proactive-notice figure), for whoever
held it when it slipped; requests stay with who held their answer; the nudges each owner got.

The clock is frozen on Wednesday 18 March 2026, noon in Paris; the period is the two weeks of
Monday 16 to Sunday 29 March (summer time starts on the 29th). Promises and their moves are rows
written with every field set (who held the promise, when it was told), so each test says exactly
the history it is about.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User

from crm.models import Commitment, Customer, Job, Message, Pipeline, Question, Renegotiation
from crm.reports import NUDGES_KEY_PREFIX, Period, Slip, health_csv, health_report, slips
from crm.services import promises
from crm.services.jobs import job_create, job_reassign
from crm.services.questions import question_answer, question_create
from crm.services.scan import scan

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
PERIOD = Period(date(2026, 3, 16), date(2026, 3, 29))
NOW = datetime(2026, 3, 18, 12, 0, tzinfo=PARIS)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def at(day: str, hour: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day} {hour}").replace(tzinfo=PARIS)


@pytest.fixture
def now(time_machine) -> datetime:
    time_machine.move_to(NOW, tick=False)
    return NOW


@pytest.fixture
def chloe(db) -> User:
    return User.objects.create_user(
        "chloe", "chloe@example.com", "pw", first_name="Chloé", last_name="Petit", is_staff=True
    )


@pytest.fixture
def job_of_bob(now: datetime, customer: Customer, repair: Pipeline, bob: User) -> Job:
    job = job_create(customer=customer, pipeline=repair, owner=bob, title="Boiler", actor=bob)
    # The job's own stage dates are not these tests' business.
    Commitment.objects.all().delete()
    return job


def promise(job: Job, due: datetime, *, owner: User | None = None, **fields: object) -> Commitment:
    return Commitment.objects.create(
        job=job,
        kind=Commitment.Kind.DOCUMENT,
        title="Quote",
        owner=owner or job.owner,
        first_due_at=due,
        due_at=due,
        created_at=due - 10 * DAY,
        **fields,
    )


def move(commitment: Commitment, *, when: datetime, to: datetime, told: bool, holder: User | None = None) -> None:
    """A move of the promise's date: told in time (proactive) or not, by whoever held it."""
    Renegotiation.objects.create(
        commitment=commitment,
        old_due_at=commitment.due_at,
        new_due_at=to,
        reason="r",
        proactive=told and when <= commitment.due_at,
        told_customer_at=when if told else None,
        holder=holder or commitment.owner,
        created_at=when,
    )
    state = commitment.state if commitment.state == Commitment.State.BROKEN else Commitment.State.RENEGOTIATED
    Commitment.objects.filter(pk=commitment.pk).update(due_at=to, state=state)
    commitment.refresh_from_db()


def broke(commitment: Commitment, *, when: datetime, holder: User | None = None) -> None:
    Commitment.objects.filter(pk=commitment.pk).update(
        state=Commitment.State.BROKEN, broken_at=when, broken_holder=holder or commitment.owner
    )
    commitment.refresh_from_db()


def notice(report, name: str = "Team") -> tuple[int, int]:
    ratio = next(row for row in report.rows if row.name == name).total.proactive_notice
    return ratio.numerator, ratio.denominator


def weekly_notice(report, name: str = "Team") -> list[tuple[int, int]]:
    row = next(row for row in report.rows if row.name == name)
    return [(week.proactive_notice.numerator, week.proactive_notice.denominator) for week in row.weeks]


# --- What a slip is -----------------------------------------------------------------------------


def test_broken_then_told_late_is_one_reactive_slip(job_of_bob: Job, now: datetime, bob: User) -> None:
    quote = promise(job_of_bob, at("2026-03-16"))
    broke(quote, when=at("2026-03-16", "10:05"))
    # The customer is told the new date the next day: after the old one passed.
    move(quote, when=at("2026-03-17"), to=at("2026-03-20"), told=True)
    assert slips(period=PERIOD) == [Slip(quote.pk, at("2026-03-16", "10:05"), bob.pk, proactive=False)]
    assert notice(health_report(period=PERIOD)) == (0, 1)


def test_broken_then_told_late_through_the_services(job_of_bob: Job, now: datetime, bob: User, time_machine) -> None:
    quote = promises.commitment_make(
        job=job_of_bob, kind=Commitment.Kind.DOCUMENT, title="Quote", due_at=now + HOUR, actor=bob
    )
    time_machine.move_to(now + 2 * HOUR, tick=False)
    assert scan()["broken"] == 1
    time_machine.move_to(now + 3 * HOUR, tick=False)
    promises.commitment_renegotiate(
        commitment=Commitment.objects.get(pk=quote.pk),
        new_due_at=now + 2 * DAY,
        reason="Late",
        actor=bob,
        told_customer=True,
    )
    (slip,) = slips(period=PERIOD)
    assert (slip.commitment_id, slip.holder_id, slip.proactive) == (quote.pk, bob.pk, False)
    assert notice(health_report(period=PERIOD)) == (0, 1)


def test_moved_twice_before_its_date_and_told_both_times_is_one_proactive_slip(job_of_bob: Job, now: datetime):
    quote = promise(job_of_bob, at("2026-03-19"))
    move(quote, when=at("2026-03-17"), to=at("2026-03-21"), told=True)
    move(quote, when=at("2026-03-20"), to=at("2026-03-25"), told=True)
    (slip,) = slips(period=PERIOD)
    assert (slip.at, slip.proactive) == (at("2026-03-17"), True)
    assert notice(health_report(period=PERIOD)) == (1, 1)


def test_a_date_moved_earlier_is_not_a_slip(job_of_bob: Job, now: datetime) -> None:
    told = promise(job_of_bob, at("2026-03-25"))
    move(told, when=at("2026-03-17"), to=at("2026-03-20"), told=True)
    silent = promise(job_of_bob, at("2026-03-26"))
    move(silent, when=at("2026-03-17"), to=at("2026-03-19"), told=False)
    assert slips(period=PERIOD) == []
    assert notice(health_report(period=PERIOD)) == (0, 0)


def test_earlier_then_later_slips_at_the_later_move(job_of_bob: Job, now: datetime) -> None:
    quote = promise(job_of_bob, at("2026-03-25"))
    move(quote, when=at("2026-03-16"), to=at("2026-03-20"), told=False)  # good news, untold: no slip
    move(quote, when=at("2026-03-18"), to=at("2026-03-27"), told=True)
    (slip,) = slips(period=PERIOD)
    assert (slip.at, slip.proactive) == (at("2026-03-18"), True)


def test_told_in_time_then_silently_pushed_is_one_reactive_slip(job_of_bob: Job, now: datetime) -> None:
    quote = promise(job_of_bob, at("2026-03-19"))
    move(quote, when=at("2026-03-17"), to=at("2026-03-21"), told=True)
    move(quote, when=at("2026-03-20"), to=at("2026-03-25"), told=False)
    (slip,) = slips(period=PERIOD)
    assert (slip.at, slip.proactive) == (at("2026-03-17"), False)
    report = health_report(period=PERIOD)
    assert notice(report) == (0, 1)
    # In the week of the first move, not in the week of the silent one.
    assert weekly_notice(report) == [(0, 1), (0, 0)]


def test_a_withdrawn_promise_is_left_out(job_of_bob: Job, now: datetime) -> None:
    quote = promise(job_of_bob, at("2026-03-19"))
    move(quote, when=at("2026-03-17"), to=at("2026-03-21"), told=False)
    Commitment.objects.filter(pk=quote.pk).update(state=Commitment.State.WITHDRAWN, withdrawn_at=now)
    assert slips(period=PERIOD) == []


def test_a_slip_belongs_to_the_period_of_its_first_moment(job_of_bob: Job, now: datetime) -> None:
    quote = promise(job_of_bob, at("2026-03-13"))
    move(quote, when=at("2026-03-12"), to=at("2026-03-17"), told=True)  # the week before the period
    move(quote, when=at("2026-03-16"), to=at("2026-03-20"), told=True)
    broke(quote, when=at("2026-03-20", "10:05"))
    assert slips(period=PERIOD) == []
    (slip,) = slips(period=Period(date(2026, 3, 9), date(2026, 3, 15)))
    # Broken later: the slip of that week is no longer told in time.
    assert (slip.at, slip.proactive) == (at("2026-03-12"), False)


def test_weeks_and_the_period_are_counted_where_the_team_works(job_of_bob: Job, now: datetime) -> None:
    def slip_at(moment: datetime) -> Commitment:
        quote = promise(job_of_bob, moment + 2 * DAY)
        move(quote, when=moment, to=moment + 5 * DAY, told=True)
        return quote

    # Sunday 22 March 23:30 in Paris is the first week; Monday 00:30 in Paris (Sunday 23:30 UTC)
    # is the second.
    slip_at(at("2026-03-22", "23:30"))
    slip_at(at("2026-03-23", "00:30"))
    slip_at(at("2026-03-23", "00:30"))
    # Summer time: Sunday 29 March 23:30 in Paris (21:30 UTC) is in the period; Monday 00:30 in
    # Paris (Sunday 22:30 UTC) is not, nor is Sunday 15 March 23:30.
    slip_at(at("2026-03-29", "23:30"))
    slip_at(at("2026-03-30", "00:30"))
    slip_at(at("2026-03-15", "23:30"))
    assert at("2026-03-30", "00:30").astimezone(UTC).date() == date(2026, 3, 29)
    assert weekly_notice(health_report(period=PERIOD)) == [(1, 1), (3, 3)]


# --- Who it counts for --------------------------------------------------------------------------


def test_the_slip_stays_with_who_held_the_promise(
    job_of_bob: Job, now: datetime, bob: User, alice: User, chloe: User
) -> None:
    moved = promises.commitment_make(
        job=job_of_bob, kind=Commitment.Kind.DOCUMENT, title="Quote", due_at=now + DAY, actor=bob
    )
    promises.commitment_renegotiate(
        commitment=moved, new_due_at=now + 3 * DAY, reason="Supplier", actor=bob, told_customer=True
    )
    job_reassign(job=job_of_bob, owner=chloe, actor=alice, reason="Holidays", tell_customer=False)
    moved.refresh_from_db()
    assert moved.owner == chloe  # the open promise followed the job
    # Chloé moves it again, told in time: still one slip, and still bob's.
    promises.commitment_renegotiate(
        commitment=moved, new_due_at=now + 5 * DAY, reason="Supplier again", actor=chloe, told_customer=True
    )
    # A promise that broke while bob held it, given a late new date by Chloé after she took over.
    late = promise(job_of_bob, at("2026-03-17"), owner=chloe)
    broke(late, when=at("2026-03-17", "10:05"), holder=bob)
    move(late, when=at("2026-03-18", "11:00"), to=at("2026-03-20"), told=True, holder=chloe)

    report = health_report(period=PERIOD)
    assert notice(report, "Bob Durand") == (1, 2)
    assert notice(report, "Chloé Petit") == (0, 0)  # she owns the job now: its silence is hers
    assert notice(report) == (1, 2)
    assert notice(health_report(period=PERIOD, owner=bob), "Bob Durand") == (1, 2)
    assert notice(health_report(period=PERIOD, owner=chloe), "Chloé Petit") == (0, 0)
    assert {(s.commitment_id, s.holder_id) for s in slips(period=PERIOD, holder_id=bob.pk)} == {
        (moved.pk, bob.pk),
        (late.pk, bob.pk),
    }
    assert slips(period=PERIOD, holder_id=chloe.pk) == []


def test_a_slip_whose_holder_was_not_recorded_counts_for_the_owner(job_of_bob: Job, now: datetime, bob: User):
    quote = promise(job_of_bob, at("2026-03-19"))
    move(quote, when=at("2026-03-17"), to=at("2026-03-21"), told=True)
    Renegotiation.objects.update(holder=None)
    broken = promise(job_of_bob, at("2026-03-17"))
    broke(broken, when=at("2026-03-17", "10:05"))
    Commitment.objects.filter(pk=broken.pk).update(broken_holder=None)
    assert {slip.holder_id for slip in slips(period=PERIOD)} == {bob.pk}
    assert notice(health_report(period=PERIOD, owner=bob), "Bob Durand") == (1, 2)


def test_an_answer_stays_with_who_gave_it(
    job_of_bob: Job, now: datetime, contact, bob: User, alice: User, chloe: User, time_machine
) -> None:
    answered = question_create(job=job_of_bob, contact=contact, body="When?", source=Question.Source.PORTAL)
    waiting = question_create(job=job_of_bob, contact=contact, body="How much?", source=Question.Source.PORTAL)
    time_machine.move_to(now + 2 * HOUR, tick=False)
    question_answer(question=answered, body="Friday.", actor=bob)
    job_reassign(job=job_of_bob, owner=chloe, actor=alice, reason="Holidays", tell_customer=False)
    assert Job.objects.get(pk=job_of_bob.pk).owner == chloe

    report = health_report(period=PERIOD)
    answers = {row.name: (row.total.answer.count, row.total.answer.missing) for row in report.owners}
    # The answer is bob's; the question still waiting is Chloé's to answer now.
    assert answers == {"Bob Durand": (1, 0), "Chloé Petit": (0, 1)}
    bob_only = health_report(period=PERIOD, owner=bob).owners[0].total
    assert (bob_only.answer.count, bob_only.answer.missing, bob_only.acknowledge.total) == (1, 0, 1)
    assert Commitment.objects.get(question=waiting).owner == chloe


# --- The hand count -----------------------------------------------------------------------------


def test_the_team_figure_is_the_hand_count(
    job_of_bob: Job, now: datetime, bob: User, chloe: User, customer: Customer, repair: Pipeline
) -> None:
    """Eight promises, their outcomes worked out by hand:

    P1 bob    kept on time                                               no slip
    P2 bob    moved twice, told before each date (week 1)                slip, told in time
    P3 bob    broken (week 1), then moved, told late (week 2)            slip, not in time
    P4 chloé  moved earlier (week 1)                                     no slip
    P5 chloé  moved told in time (week 2), then moved silently           slip, not in time
    P6 now chloé's: moved by bob told in time (week 2), then by chloé    slip, told in time, bob's
    P7 chloé  moved told in time (week 1), then kept late                slip, told in time
    P8 bob    moved silently (week 1), then withdrawn                    left out

    → bob 2 of 3, chloé 1 of 2, team 3 of 5; week 1: 2 of 3 (P2, P3, P7), week 2: 1 of 2 (P5, P6).
    """
    job_of_chloe = job_create(customer=customer, pipeline=repair, owner=chloe, title="Roof", actor=chloe)
    Commitment.objects.filter(job=job_of_chloe).delete()

    p1 = promise(job_of_bob, at("2026-03-17"))
    Commitment.objects.filter(pk=p1.pk).update(state=Commitment.State.KEPT, kept_at=at("2026-03-16"))
    p2 = promise(job_of_bob, at("2026-03-18"))
    move(p2, when=at("2026-03-16"), to=at("2026-03-20"), told=True)
    move(p2, when=at("2026-03-19"), to=at("2026-03-24"), told=True)
    p3 = promise(job_of_bob, at("2026-03-19"))
    broke(p3, when=at("2026-03-19", "10:05"))
    move(p3, when=at("2026-03-23"), to=at("2026-03-26"), told=True)
    p4 = promise(job_of_chloe, at("2026-03-27"))
    move(p4, when=at("2026-03-17"), to=at("2026-03-20"), told=True)
    p5 = promise(job_of_chloe, at("2026-03-25"))
    move(p5, when=at("2026-03-23"), to=at("2026-03-27"), told=True)
    move(p5, when=at("2026-03-26"), to=at("2026-04-01"), told=False)
    p6 = promise(job_of_chloe, at("2026-03-26"))
    move(p6, when=at("2026-03-24"), to=at("2026-03-28"), told=True, holder=bob)
    move(p6, when=at("2026-03-27"), to=at("2026-04-02"), told=True, holder=chloe)
    p7 = promise(job_of_chloe, at("2026-03-18"))
    move(p7, when=at("2026-03-17"), to=at("2026-03-20"), told=True)
    Commitment.objects.filter(pk=p7.pk).update(state=Commitment.State.KEPT, kept_at=at("2026-03-20"))
    p8 = promise(job_of_bob, at("2026-03-20"))
    move(p8, when=at("2026-03-17"), to=at("2026-03-23"), told=False)
    Commitment.objects.filter(pk=p8.pk).update(state=Commitment.State.WITHDRAWN, withdrawn_at=at("2026-03-18"))

    assert sorted((s.commitment_id, s.holder_id, s.proactive) for s in slips(period=PERIOD)) == sorted(
        [
            (p2.pk, bob.pk, True),
            (p3.pk, bob.pk, False),
            (p5.pk, chloe.pk, False),
            (p6.pk, bob.pk, True),
            (p7.pk, chloe.pk, True),
        ]
    )
    report = health_report(period=PERIOD)
    assert notice(report, "Bob Durand") == (2, 3)
    assert notice(report, "Chloé Petit") == (1, 2)
    assert notice(report) == (3, 5)
    assert report.team is not None and report.team.total.proactive_notice.percent == 60
    # The weeks add up to the period, for the team and for each owner.
    assert weekly_notice(report) == [(2, 3), (1, 2)]
    assert weekly_notice(report, "Bob Durand") == [(1, 2), (1, 1)]
    assert weekly_notice(report, "Chloé Petit") == [(1, 1), (0, 1)]
    for row in report.rows:
        weeks = weekly_notice(report, row.name)
        assert (sum(n for n, _d in weeks), sum(d for _n, d in weeks)) == notice(report, row.name)
    # The CSV says the same.
    rows = {row[0]: row for row in csv.reader(io.StringIO(health_csv(report)))}
    assert rows["Owner"][6:9] == [
        "Slips told in time",
        "Promises that slipped (moved later or broken)",
        "Proactive notice (%)",
    ]
    assert rows["Team"][6:9] == ["3", "5", "60"]
    assert rows["Bob Durand"][6:9] == ["2", "3", "66.7"]
    assert rows["Chloé Petit"][6:9] == ["1", "2", "50"]


def test_slips_are_one_query_and_the_report_a_fixed_number(
    job_of_bob: Job, now: datetime, bob: User, django_assert_num_queries
) -> None:
    for n in range(5):
        quote = promise(job_of_bob, at("2026-03-19") + n * HOUR)
        move(quote, when=at("2026-03-17"), to=at("2026-03-21"), told=bool(n % 2))
        broke(quote, when=at("2026-03-21", "10:05"))
    with django_assert_num_queries(1):
        assert len(slips(period=PERIOD)) == 5
    with django_assert_num_queries(1):
        assert len(slips(period=PERIOD, holder_id=bob.pk)) == 5
    with django_assert_num_queries(8):
        health_report(period=PERIOD)
    with django_assert_num_queries(7):
        health_report(period=PERIOD, owner=bob)


# --- Nudges -------------------------------------------------------------------------------------


def nudge(owner: User, day: date, *, hour: str = "08:00", key: str | None = None) -> Message:
    return Message.objects.create(
        channel=Message.Channel.EMAIL,
        kind=Message.Kind.STAFF_ALERT,
        staff=owner,
        to_address=owner.email,
        subject="Promises about to slip",
        idempotency_key=key or f"{NUDGES_KEY_PREFIX}{owner.pk}:{day.isoformat()}",
        created_at=at(day.isoformat(), hour),
    )


def test_nudges_per_owner_and_for_the_team(now: datetime, bob: User, chloe: User) -> None:
    nudge(bob, date(2026, 3, 16))
    nudge(bob, date(2026, 3, 17))
    nudge(bob, date(2026, 3, 24))
    nudge(chloe, date(2026, 3, 29), hour="23:30")  # Sunday evening in Paris: still the period
    # Not counted: before and after the period (Monday 00:30 in Paris is Sunday in UTC), another
    # alert, a nudge-like key for nobody.
    nudge(bob, date(2026, 3, 15), hour="23:30")
    nudge(chloe, date(2026, 3, 30), hour="00:30")
    nudge(bob, date(2026, 3, 18), key=f"alert:promise-at-risk:commitment:1:{bob.pk}")
    Message.objects.create(
        channel=Message.Channel.EMAIL,
        kind=Message.Kind.STAFF_ALERT,
        idempotency_key="nudges:0:2026-03-18",
        created_at=at("2026-03-18"),
    )

    report = health_report(period=PERIOD)
    nudges = {row.name: (row.total.nudges, [week.nudges for week in row.weeks]) for row in report.rows}
    assert nudges == {"Bob Durand": (3, [2, 1]), "Chloé Petit": (1, [0, 1]), "Team": (4, [2, 2])}
    assert health_report(period=PERIOD, owner=chloe).owners[0].total.nudges == 1
    rows = {row[0]: row for row in csv.reader(io.StringIO(health_csv(report)))}
    assert rows["Owner"][-4] == "Nudges (digests of promises about to slip)"
    assert (rows["Bob Durand"][-4], rows["Chloé Petit"][-4], rows["Team"][-4]) == ("3", "1", "4")
