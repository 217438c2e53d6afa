"""crm.reports: the communication-health figures, from a scripted scenario whose truth is known.

The scenario (``build_scenario``), with the clock moved by hand from Monday 2 March 2026 to
Sunday 26 April 2026 (the default period is exactly those eight weeks):

bob makes ten promises on five "Visit" jobs (one stage date each) and five quotes:
  - six kept on time: the visits of jobs 1-3 (reached before their date) and quotes 1-3;
  - two moved with notice before the date (proactive): visit 4 (moved on 20 Mar, due 25 Mar)
    and quote 4 (moved on 24 Mar, due 26 Mar), both kept later, after their first date;
  - one moved after its date passed (reactive): visit 5 (due 1 Apr, moved on 2 Apr);
  - one broken: quote 5 (due 2 Apr; the scan of 3 Apr breaks it).
  → kept on time 6/10 = 60 %, proactive notice 2 of 4 slips (visits 4-5, quotes 4-5) = 50 %.
  Silence (14 days allowed): job 1 closes on 5 Mar, job 2 hears from us on 10 Mar and closes on
  20 Mar; jobs 3-5 never get a message out (theirs stay queued) → 3 of 5 jobs silent.

alice owns job A1 (its visit kept on time) and receives four questions on it:
  R1 Mon 9 Mar 10:00, acknowledged after 5 min, answered after 4 h;
  R2 Tue 10 Mar 10:00, acknowledged after 15 min, answered after 24 h;
  R3 Wed 11 Mar 11:00, acknowledged after 30 min, never answered (its promise breaks);
  R4 Thu 12 Mar 10:00, from no contact (so no acknowledgement), answered after 1 h.
  → acknowledge: median 15 min, 1 not acknowledged; answer: median 4 h, 1 not answered;
  kept on time 4/5 (A1, R1, R2, R4), proactive notice 0/1 (R3 broken).
  A1 last hears from us on 11 Mar → silent; A2, opened on 20 Apr, is not → 1 of 2.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User

from crm.models import Commitment, Contact, Customer, Job, Message, Pipeline, Question
from crm.reports import EpochMicros, Period, Silences, health_csv, health_report, micros
from crm.services import delivery, promises
from crm.services.jobs import job_advance, job_cancel, job_complete, job_create, milestone_move
from crm.services.questions import question_answer, question_create
from crm.services.scan import scan
from tests.conftest import make_pipeline

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
PERIOD = Period(date(2026, 3, 2), date(2026, 4, 26))
END = datetime(2026, 4, 26, 12, 0, tzinfo=PARIS)


def at(day: str, hour: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day} {hour}").replace(tzinfo=PARIS)


@dataclass
class Scenario:
    bob_jobs: list[Job]
    quotes: list[Commitment]
    alice_jobs: list[Job]
    requests: list[Question]
    visit: Pipeline


def build_scenario(time_machine, *, bob: User, alice: User, customer: Customer, contact: Contact) -> Scenario:
    def go(moment: datetime) -> None:
        time_machine.move_to(moment, tick=False)

    def deliver(**lookup: object) -> None:
        # Sent now (with the test database's transactions, on_commit never sends it earlier).
        message = Message.objects.get(**lookup)
        delivery.deliver(message_id=message.pk)
        message.refresh_from_db()
        assert message.status == Message.Status.SENT

    def keep(commitment: Commitment, who: User) -> None:
        assert promises.commitments_keep(Commitment.objects.filter(pk=commitment.pk), actor=who) == 1

    visit = make_pipeline("Visit", [("Booked", True, 0), ("Visited", True, 2)])
    visit.silence_days = 14
    visit.save()
    visited = visit.stages.get(position=2)

    def reach(job: Job, who: User) -> None:
        job_advance(job=job, to_stage=visited, actor=who)

    go(at("2026-03-02", "09:00"))
    jobs = [
        job_create(
            customer=customer,
            pipeline=visit,
            owner=bob,
            title=f"Visit {n + 1}",
            actor=bob,
            start_date=date(2026, 3, 2) + timedelta(weeks=n),
        )
        for n in range(5)
    ]
    quotes = [
        promises.commitment_make(
            job=job,
            kind=Commitment.Kind.DOCUMENT,
            title=f"Quote {n + 1}",
            due_at=promises.due_at_for(date(2026, 3, 5) + timedelta(weeks=n)),
            actor=bob,
            contact=contact,
        )
        for n, job in enumerate(jobs)
    ]
    a1 = job_create(
        customer=customer, pipeline=visit, owner=alice, title="Alice's visit", actor=alice, start_date=date(2026, 3, 2)
    )

    go(at("2026-03-03"))
    reach(jobs[0], bob)
    reach(a1, alice)
    go(at("2026-03-05"))
    keep(quotes[0], bob)
    job_complete(job=jobs[0], actor=bob)

    go(at("2026-03-09"))
    r1 = question_create(job=a1, contact=contact, body="When do you come?", source=Question.Source.PORTAL)
    go(at("2026-03-09", "10:05"))
    deliver(idempotency_key__startswith=f"ack:{r1.pk}:")
    go(at("2026-03-09", "14:00"))
    question_answer(question=r1, body="On Wednesday.", actor=alice)

    go(at("2026-03-10"))
    reach(jobs[1], bob)
    deliver(job=jobs[1], kind=Message.Kind.STAGE_CHANGE)
    r2 = question_create(job=a1, contact=contact, body="Which door?", source=Question.Source.PORTAL)
    go(at("2026-03-10", "10:15"))
    deliver(idempotency_key__startswith=f"ack:{r2.pk}:")

    go(at("2026-03-11"))
    question_answer(question=r2, body="The front door.", actor=alice)
    keep(quotes[1], bob)
    go(at("2026-03-11", "11:00"))
    r3 = question_create(job=a1, contact=contact, body="And the price?", source=Question.Source.PORTAL)
    go(at("2026-03-11", "11:30"))
    deliver(idempotency_key__startswith=f"ack:{r3.pk}:")

    go(at("2026-03-12"))
    r4 = question_create(job=a1, contact=None, body="Phoned: parking?", source=Question.Source.STAFF, actor=alice)
    go(at("2026-03-12", "11:00"))
    question_answer(question=r4, body="In the yard.", actor=alice)

    go(at("2026-03-16", "09:00"))
    assert scan()["broken"] == 1  # R3's answer-by date passed on Friday
    go(at("2026-03-17"))
    reach(jobs[2], bob)
    go(at("2026-03-19", "09:00"))
    keep(quotes[2], bob)

    go(at("2026-03-20"))
    milestone_move(
        milestone=jobs[3].milestones.get(stage=visited),
        new_date=date(2026, 4, 8),
        reason="The part is late",
        actor=bob,
        tell_customer=True,
    )
    job_complete(job=jobs[1], actor=bob)
    go(at("2026-03-24"))
    promises.commitment_renegotiate(
        commitment=quotes[3],
        new_due_at=promises.due_at_for(date(2026, 4, 9)),
        reason="Waiting for the supplier's prices",
        actor=bob,
        told_customer=True,
    )

    go(at("2026-04-02", "09:00"))
    milestone_move(
        milestone=jobs[4].milestones.get(stage=visited),
        new_date=date(2026, 4, 10),
        reason="Forgot to call",
        actor=bob,
        tell_customer=True,
    )
    go(at("2026-04-03", "09:00"))
    assert scan()["broken"] == 1  # quote 5

    go(at("2026-04-07"))
    reach(jobs[3], bob)
    go(at("2026-04-09"))
    keep(quotes[3], bob)
    go(at("2026-04-10"))
    reach(jobs[4], bob)

    go(at("2026-04-20"))
    a2 = job_create(
        customer=customer,
        pipeline=visit,
        owner=alice,
        title="Alice's next visit",
        actor=alice,
        start_date=date(2026, 5, 4),
    )
    go(END)
    assert scan()["broken"] == 0
    return Scenario(jobs, quotes, [a1, a2], [r1, r2, r3, r4], visit)


@pytest.fixture
def scenario(time_machine, bob: User, alice: User, customer: Customer, contact: Contact) -> Scenario:
    return build_scenario(time_machine, bob=bob, alice=alice, customer=customer, contact=contact)


def figures_of(report, name: str):
    return next(row for row in report.rows if row.name == name)


# --- The scripted scenario ----------------------------------------------------------------------


def test_the_scenario_is_what_it_says(scenario: Scenario, bob: User) -> None:
    mine = Commitment.objects.filter(owner=bob)
    assert mine.count() == 10
    assert sum(c.kept_on_time for c in mine) == 6
    moves = [r for c in mine for r in c.renegotiations.all()]
    assert sorted(r.proactive for r in moves) == [False, True, True]
    assert mine.filter(state=Commitment.State.BROKEN).count() == 1


def test_bobs_promises_kept_on_time_and_told_before_the_date(scenario: Scenario) -> None:
    report = health_report(period=PERIOD)
    bob = figures_of(report, "Bob Durand").total
    assert (bob.kept_on_time.numerator, bob.kept_on_time.denominator) == (6, 10)
    assert bob.kept_on_time.percent == 60
    assert (bob.proactive_notice.numerator, bob.proactive_notice.denominator) == (2, 4)
    assert bob.proactive_notice.percent == 50
    # bob had no questions: nothing to time, and nothing to call missing.
    assert bob.acknowledge.median is None
    assert bob.acknowledge.total == 0
    assert bob.answer.median is None
    assert (bob.silent_jobs.numerator, bob.silent_jobs.denominator) == (3, 5)


def test_alices_acknowledgements_and_answers(scenario: Scenario) -> None:
    alice = figures_of(health_report(period=PERIOD), "Alice Martin").total
    assert alice.acknowledge.median == timedelta(minutes=15)
    assert (alice.acknowledge.count, alice.acknowledge.missing) == (3, 1)
    assert alice.answer.median == timedelta(hours=4)
    assert (alice.answer.count, alice.answer.missing) == (3, 1)
    assert (alice.kept_on_time.numerator, alice.kept_on_time.denominator) == (4, 5)
    assert (alice.proactive_notice.numerator, alice.proactive_notice.denominator) == (0, 1)
    assert alice.proactive_notice.percent == 0
    assert (alice.silent_jobs.numerator, alice.silent_jobs.denominator) == (1, 2)


def test_the_team_adds_everyone_up(scenario: Scenario) -> None:
    report = health_report(period=PERIOD)
    assert [row.name for row in report.rows] == ["Alice Martin", "Bob Durand", "Team"]
    team = report.team.total
    assert (team.kept_on_time.numerator, team.kept_on_time.denominator) == (10, 15)
    assert (team.proactive_notice.numerator, team.proactive_notice.denominator) == (2, 5)
    assert team.proactive_notice.percent == 40
    # The team's median is over every request, not a median of medians.
    assert team.acknowledge.median == timedelta(minutes=15)
    assert team.answer.median == timedelta(hours=4)
    assert (team.silent_jobs.numerator, team.silent_jobs.denominator) == (4, 7)


def test_week_by_week(scenario: Scenario) -> None:
    report = health_report(period=PERIOD)
    assert [w.first_day for w in report.weeks] == [date(2026, 3, 2) + timedelta(weeks=n) for n in range(8)]
    bob = figures_of(report, "Bob Durand")
    assert [w.kept_on_time.percent for w in bob.weeks] == [100, 100, 100, 0, 0, None, None, None]
    assert [w.proactive_notice.percent for w in bob.weeks] == [None, None, 100, 100, 0, None, None, None]
    assert [(w.silent_jobs.numerator, w.silent_jobs.denominator) for w in bob.weeks] == [
        (0, 5),  # nobody has waited 14 days yet
        (0, 4),  # job 1 closed on 5 March
        (3, 4),  # jobs 3-5 pass 14 days on 16 March; job 2 heard from us on the 10th
        (3, 3),  # job 2 closed on 20 March
        (3, 3),
        (3, 3),
        (3, 3),
        (3, 3),
    ]
    alice = figures_of(report, "Alice Martin")
    assert [w.acknowledge.median for w in alice.weeks][:2] == [None, timedelta(minutes=15)]
    assert [(w.silent_jobs.numerator, w.silent_jobs.denominator) for w in alice.weeks] == [
        (0, 1),
        (0, 1),
        (0, 1),  # last message on 11 March: 14 days pass on the 25th
        (1, 1),
        (1, 1),
        (1, 1),
        (1, 1),
        (1, 2),  # A2 opened on 20 April
    ]
    team = report.team
    assert [w.kept_on_time.denominator for w in team.weeks] == [3, 5, 3, 2, 2, 0, 0, 0]


def test_one_owner_only(scenario: Scenario, bob: User) -> None:
    report = health_report(period=PERIOD, owner=bob)
    assert report.team is None
    assert [row.name for row in report.rows] == ["Bob Durand"]
    assert report.owners[0].total == figures_of(health_report(period=PERIOD), "Bob Durand").total


def test_an_owner_with_nothing_gets_an_empty_row(scenario: Scenario, charlie: User) -> None:
    report = health_report(period=PERIOD, owner=charlie)
    (row,) = report.rows
    assert row.name == "charlie"
    assert row.total.kept_on_time.percent is None
    assert len(row.weeks) == 8


def test_the_period_limits_what_counts(scenario: Scenario) -> None:
    # The first two weeks only: bob's visits and quotes 1-2; nothing moved or broke yet.
    report = health_report(period=Period(date(2026, 3, 2), date(2026, 3, 15)))
    bob = figures_of(report, "Bob Durand").total
    assert (bob.kept_on_time.numerator, bob.kept_on_time.denominator) == (4, 4)
    assert bob.proactive_notice.denominator == 0
    alice = figures_of(report, "Alice Martin").total
    assert alice.acknowledge.total == 4
    # After 16 March: R3's break and the silences, no request.
    later = health_report(period=Period(date(2026, 3, 16), date(2026, 4, 26)))
    alice = figures_of(later, "Alice Martin").total
    assert alice.acknowledge.total == 0
    assert (alice.proactive_notice.numerator, alice.proactive_notice.denominator) == (0, 1)


def test_it_is_eight_queries_whatever_the_data(scenario: Scenario, django_assert_num_queries) -> None:
    with django_assert_num_queries(8):
        health_report(period=PERIOD)


def test_the_csv_has_every_figure_with_what_it_is_counted_from(scenario: Scenario) -> None:
    rows = list(csv.reader(io.StringIO(health_csv(health_report(period=PERIOD)))))
    assert rows == [
        [
            "Owner",
            "From",
            "To",
            "Promises kept on time",
            "Promises decided",
            "Kept on time (%)",
            "Slips told in time",
            "Promises that slipped (moved later or broken)",
            "Proactive notice (%)",
            "Requests acknowledged",
            "Requests not acknowledged",
            "Median time to acknowledge (minutes)",
            "Requests answered",
            "Requests not answered",
            "Median time to first answer (hours)",
            "Jobs silent too long",
            "Jobs active",
            "Nudges (digests of promises about to slip)",
            "Arrival windows kept",
            "Arrival windows decided",
            "Windows kept (%)",
        ],
        [
            "Alice Martin",
            "2026-03-02",
            "2026-04-26",
            "4",
            "5",
            "80",
            "0",
            "1",
            "0",
            "3",
            "1",
            "15",
            "3",
            "1",
            "4",
            "1",
            "2",
            "0",
            "0",
            "0",
            "",
        ],
        [
            "Bob Durand",
            "2026-03-02",
            "2026-04-26",
            "6",
            "10",
            "60",
            "2",
            "4",
            "50",
            "0",
            "0",
            "",
            "0",
            "0",
            "",
            "3",
            "5",
            "0",
            "0",
            "0",
            "",
        ],
        [
            "Team",
            "2026-03-02",
            "2026-04-26",
            "10",
            "15",
            "66.7",
            "2",
            "5",
            "40",
            "3",
            "1",
            "15",
            "3",
            "1",
            "4",
            "4",
            "7",
            "0",
            "0",
            "0",
            "",
        ],
    ]


# --- What counts, one rule at a time ------------------------------------------------------------


@pytest.fixture
def now(time_machine) -> datetime:
    moment = at("2026-03-18", "12:00")
    time_machine.move_to(moment, tick=False)
    return moment


@pytest.fixture
def job_of_bob(now: datetime, customer: Customer, contact: Contact, repair: Pipeline, bob: User) -> Job:
    return job_create(customer=customer, pipeline=repair, owner=bob, title="Boiler", actor=bob)


def promise(job: Job, due: datetime, **fields) -> Commitment:
    commitment = promises.commitment_make(
        job=job, kind=Commitment.Kind.DOCUMENT, title="Quote", due_at=due, actor=job.owner
    )
    if fields:
        Commitment.objects.filter(pk=commitment.pk).update(**fields)
    return commitment


def kept(report) -> tuple[int, int]:
    ratio = report.team.total.kept_on_time
    return ratio.numerator, ratio.denominator


def test_undecided_and_withdrawn_promises_are_left_out(job_of_bob: Job, now: datetime) -> None:
    Commitment.objects.all().delete()  # the job's own stage dates: not this test's business
    period = Period(date(2026, 3, 16), date(2026, 3, 22))
    promise(job_of_bob, now + timedelta(days=1))  # open, first date ahead: not decided
    promise(job_of_bob, now - timedelta(hours=1))  # open, first date passed: not kept on time
    promise(job_of_bob, now - timedelta(days=1), state="withdrawn", withdrawn_at=now)
    promise(job_of_bob, now - timedelta(days=1), state="kept", kept_at=now - timedelta(days=2))  # on time
    promise(job_of_bob, now - timedelta(days=1), state="kept", kept_at=now)  # late
    promise(job_of_bob, now - timedelta(days=1), state="kept", kept_at=now - timedelta(days=1))  # at the minute
    # Moved with its first date still ahead: the first promise was not kept as given.
    promise(job_of_bob, now + timedelta(days=2), state="renegotiated", due_at=now + timedelta(days=5))
    # Broken, then done late: decided, not on time.
    promise(job_of_bob, now - timedelta(days=1), state="kept", kept_at=now, broken_at=now - timedelta(hours=2))
    # First due in another period.
    promise(job_of_bob, now + timedelta(days=10))
    assert kept(health_report(period=period)) == (2, 6)


def test_proactive_notice_counts_each_slip_once(job_of_bob: Job, now: datetime, bob: User, time_machine) -> None:
    Commitment.objects.all().delete()
    first = promise(job_of_bob, now + timedelta(days=1))
    promises.commitment_renegotiate(
        commitment=first, new_due_at=now + timedelta(days=3), reason="r", actor=bob, told_customer=True
    )
    # Moved again without telling the customer, even before the date: the slip is not told in time.
    promises.commitment_renegotiate(
        commitment=first, new_due_at=now + timedelta(days=4), reason="r", actor=bob, told_customer=False
    )
    second = promise(job_of_bob, now + timedelta(hours=1))
    time_machine.move_to(now + timedelta(hours=2), tick=False)
    scan()
    assert Commitment.objects.get(pk=second.pk).state == Commitment.State.BROKEN
    ratio = health_report(period=Period(date(2026, 3, 16), date(2026, 3, 22))).team.total.proactive_notice
    assert (ratio.numerator, ratio.denominator) == (0, 2)


def test_only_an_acknowledgement_that_went_out_counts(
    job_of_bob: Job, now: datetime, contact: Contact, bob: User, time_machine
) -> None:
    period = Period(date(2026, 3, 16), date(2026, 3, 22))
    queued = question_create(job=job_of_bob, contact=contact, body="Still queued?", source=Question.Source.PORTAL)
    failed = question_create(job=job_of_bob, contact=contact, body="Failed?", source=Question.Source.PORTAL)
    Message.objects.filter(idempotency_key__startswith=f"ack:{failed.pk}:").update(
        status=Message.Status.FAILED, sent_at=now
    )
    twice = question_create(job=job_of_bob, contact=contact, body="Twice?", source=Question.Source.PORTAL)
    first_ack = Message.objects.get(idempotency_key__startswith=f"ack:{twice.pk}:")
    time_machine.move_to(now + timedelta(minutes=2), tick=False)
    delivery.deliver(message_id=first_ack.pk)
    # A second acknowledgement on another channel, later: the first one counts.
    Message.objects.create(
        job=job_of_bob,
        contact=contact,
        channel=Message.Channel.SMS,
        kind=Message.Kind.ACKNOWLEDGEMENT,
        status=Message.Status.DELIVERED,
        sent_at=now + timedelta(minutes=9),
        idempotency_key=f"ack:{twice.pk}:{contact.pk}:sms",
    )
    # Another request's acknowledgement never counts for this one ("ack:1:" is not "ack:11:").
    Message.objects.create(
        job=job_of_bob,
        contact=contact,
        channel=Message.Channel.EMAIL,
        kind=Message.Kind.ACKNOWLEDGEMENT,
        status=Message.Status.SENT,
        sent_at=now + timedelta(minutes=1),
        idempotency_key=f"ack:{queued.pk}0:{contact.pk}:email",
    )
    figures = health_report(period=period).team.total.acknowledge
    assert figures.seconds == [120.0]
    assert figures.missing == 2


def test_answers_are_timed_from_the_request(job_of_bob: Job, now: datetime, contact: Contact, bob: User, time_machine):
    period = Period(date(2026, 3, 16), date(2026, 3, 22))
    question = question_create(job=job_of_bob, contact=contact, body="?", source=Question.Source.PORTAL)
    question_create(job=job_of_bob, contact=contact, body="??", source=Question.Source.PORTAL)
    time_machine.move_to(now + timedelta(hours=26), tick=False)
    question_answer(question=question, body="!", actor=bob)
    answer = health_report(period=period).team.total.answer
    assert answer.median == timedelta(hours=26)
    assert (answer.count, answer.missing) == (1, 1)


def test_a_cancelled_job_stops_being_silent(job_of_bob: Job, now: datetime, bob: User, time_machine) -> None:
    time_machine.move_to(now + timedelta(days=3), tick=False)
    job_cancel(job=job_of_bob, actor=bob, reason="Customer moved")
    time_machine.move_to(now + timedelta(days=30), tick=False)
    report = health_report(period=Period(date(2026, 3, 16), date(2026, 4, 19)))
    assert (report.team.total.silent_jobs.numerator, report.team.total.silent_jobs.denominator) == (0, 1)


# --- Silence, moment by moment ------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=PARIS)
DAY = timedelta(days=1)


def silent(sent: list[datetime], **kwargs) -> bool | None:
    bounds = {
        "active_from": T0,
        "active_until": T0 + 60 * DAY,
        "window_start": T0,
        "window_end": T0 + 60 * DAY,
        "limit": 7 * DAY,
        **kwargs,
    }
    silences = Silences.of(
        [micros(moment) for moment in sent],
        active_from=micros(bounds["active_from"]),
        active_until=micros(bounds["active_until"]),
        limit=bounds["limit"] // timedelta(microseconds=1),
    )
    return silences.silent_in(micros(bounds["window_start"]), micros(bounds["window_end"]))


def test_silence_is_more_than_the_limit_without_a_message() -> None:
    assert silent([T0 + 7 * DAY, T0 + 14 * DAY], active_until=T0 + 21 * DAY) is False  # exactly 7 days: fine
    assert silent([T0 + 7 * DAY, T0 + 14 * DAY], active_until=T0 + 21 * DAY + timedelta(seconds=1)) is True
    assert silent([T0 + 8 * DAY]) is True  # the job's creation starts the count


def test_silence_only_counts_inside_the_window() -> None:
    # Silent from day 2 to day 12, then a message every few days.
    sent = [T0 + 2 * DAY, T0 + 12 * DAY, T0 + 15 * DAY, T0 + 18 * DAY]
    hour = timedelta(hours=1)
    assert silent(sent, window_start=T0, window_end=T0 + 9 * DAY + hour) is True  # 7 days passed on day 9
    assert silent(sent, window_start=T0, window_end=T0 + 9 * DAY) is False
    assert silent(sent, window_start=T0 + 12 * DAY, window_end=T0 + 20 * DAY, active_until=T0 + 20 * DAY) is False
    # A silence that began before the window and lasts into it counts.
    assert silent(sent, window_start=T0 + 11 * DAY, window_end=T0 + 13 * DAY) is True


def test_silence_stops_when_the_job_closes_and_never_before_it_opens() -> None:
    assert silent([], active_until=T0 + 5 * DAY) is False
    assert silent([], window_start=T0 + 6 * DAY, active_until=T0 + 5 * DAY) is None
    assert silent([], active_from=T0 + 30 * DAY, window_end=T0 + 20 * DAY) is None
    assert silent([], active_from=T0 + 15 * DAY, window_end=T0 + 20 * DAY) is False


def test_one_jobs_silences_answer_every_window_as_the_rule_says() -> None:
    """Silences is built once per job and asked about every week of a report: its answers are
    the rule's, checked moment by moment (the silence is longest just before each message, the
    window's end or the job's closing), over many random jobs and windows."""

    def by_the_rule(sent, active_from, active_until, window_start, window_end, limit):  # type: ignore[no-untyped-def]
        stop = min(window_end, active_until)
        if active_from >= stop or stop <= window_start:
            return None
        marks = [active_from, *(m for m in sorted(sent) if active_from <= m < stop)]
        ends = [*marks[1:], stop]
        return any(end > window_start and end - start > limit for start, end in zip(marks, ends, strict=True))

    chance = random.Random(18)
    for _ in range(300):
        sent = sorted(T0 + timedelta(hours=chance.randrange(0, 60 * 24)) for _ in range(chance.randrange(0, 12)))
        active_from = T0 + timedelta(hours=chance.randrange(0, 20 * 24))
        active_until = active_from + timedelta(hours=chance.randrange(1, 50 * 24))
        limit = timedelta(days=chance.choice([3, 7, 10]))
        silences = Silences.of(
            [micros(moment) for moment in sent],
            active_from=micros(active_from),
            active_until=micros(active_until),
            limit=micros(T0 + limit) - micros(T0),
        )
        for _ in range(10):
            window_start = T0 + timedelta(hours=chance.randrange(0, 60 * 24))
            window_end = window_start + timedelta(hours=chance.randrange(1, 14 * 24))
            expected = by_the_rule(sent, active_from, active_until, window_start, window_end, limit)
            assert silences.silent_in(micros(window_start), micros(window_end)) == expected


def test_the_database_counts_microseconds_since_1970_exactly(bob: User) -> None:
    """EpochMicros: what the report reads instead of timestamps, to the microsecond, on SQLite and
    PostgreSQL alike (with and without a fraction of a second)."""
    moments = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC), datetime(2026, 3, 9, 23, 59, 59, 999999, tzinfo=UTC)]
    for moment in moments:
        User.objects.filter(pk=bob.pk).update(last_login=moment)
        assert User.objects.filter(pk=bob.pk).values_list(EpochMicros("last_login"), flat=True).get() == micros(moment)
    assert micros(moments[0]) == 1_772_442_000_000_000


# --- Periods ------------------------------------------------------------------------------------


def test_the_default_period_is_the_last_eight_weeks_to_today(time_machine) -> None:
    time_machine.move_to(at("2026-04-26", "12:00"), tick=False)
    period = Period.last_weeks()
    assert (period.first_day, period.last_day) == (date(2026, 3, 2), date(2026, 4, 26))
    # Half past midnight in Paris is still the day before in UTC: today is where the team works.
    time_machine.move_to(datetime(2026, 4, 26, 22, 30, tzinfo=UTC), tick=False)
    assert Period.last_weeks().last_day == date(2026, 4, 27)
    assert period.days == 56
    assert len(period.weeks()) == 8


def test_a_period_runs_from_midnight_to_midnight_where_the_team_works() -> None:
    period = Period(date(2026, 3, 23), date(2026, 4, 5))  # across the change to summer time
    assert period.start == datetime(2026, 3, 22, 23, 0, tzinfo=UTC)
    assert period.end == datetime(2026, 4, 5, 22, 0, tzinfo=UTC)
    assert period.local_day(datetime(2026, 3, 29, 22, 30, tzinfo=UTC)) == date(2026, 3, 30)


def test_the_last_week_may_be_short() -> None:
    weeks = Period(date(2026, 3, 2), date(2026, 3, 17)).weeks()
    assert [(w.first_day, w.last_day) for w in weeks] == [
        (date(2026, 3, 2), date(2026, 3, 8)),
        (date(2026, 3, 9), date(2026, 3, 15)),
        (date(2026, 3, 16), date(2026, 3, 17)),
    ]


# --- CSV ----------------------------------------------------------------------------------------


def test_the_csv_cannot_smuggle_a_formula(now: datetime, customer: Customer, repair: Pipeline) -> None:
    mallory = User.objects.create_user("mallory", first_name='=HYPERLINK("http://evil")', is_staff=True)
    job_create(customer=customer, pipeline=repair, owner=mallory, title="Boiler", actor=mallory)
    rows = list(csv.reader(io.StringIO(health_csv(health_report(period=Period(date(2026, 3, 16), date(2026, 3, 22)))))))
    assert rows[1][0] == '\'=HYPERLINK("http://evil")'
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
