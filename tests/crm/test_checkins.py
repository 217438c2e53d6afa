"""Check-ins (crm.services.checkins): "has everything kept working?" checkin_days after the job
was completed, in the morning of the contact's time zone, once per job and contact; non-essential,
so opt-outs and the frequency cap hold it back (until the cap allows); "there is a problem" opens
an acknowledged question on the job, "all good" goes on the job's log.

The job is completed on Monday 2 March 2026 at 10:00 in Paris; with checkin_days = 30 the
check-in is due on Wednesday 1 April at 10:00 in the contact's time zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from crm.errors import DomainError
from crm.models import CheckIn, Commitment, Contact, Customer, Job, JobEvent, Message, Pipeline, Question
from crm.services.checkins import check_in_answer, check_in_send, check_ins_due, check_ins_send
from crm.services.jobs import job_complete, job_create
from crm.tasks import send_check_ins

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")
COMPLETED_AT = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)
DUE = datetime(2026, 4, 1, 10, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _start(time_machine) -> None:
    time_machine.move_to(COMPLETED_AT, tick=False)


@pytest.fixture
def checked(installation: Pipeline) -> Pipeline:
    installation.checkin_days = 30
    installation.save()
    return installation


@pytest.fixture
def done_job(customer: Customer, contact: Contact, checked: Pipeline, bob: User) -> Job:
    contact.time_zone = "Europe/Paris"
    contact.save()
    job = job_create(customer=customer, pipeline=checked, owner=bob, title="Heat pump", actor=bob, contacts=[contact])
    return job_complete(job=job, actor=bob)


def check_ins(job: Job) -> list[Message]:
    return list(Message.objects.filter(job=job, kind=Message.Kind.CHECK_IN))


def run_at(moment: datetime, time_machine) -> int:
    time_machine.move_to(moment, tick=False)
    return send_check_ins()


def tip(contact: Contact, *, at: datetime, status: str = Message.Status.SENT) -> Message:
    return Message.objects.create(
        contact=contact,
        channel=Message.Channel.EMAIL,
        kind=Message.Kind.TIP,
        status=status,
        to_address=contact.email,
        idempotency_key=f"tip:{contact.pk}:{at.isoformat()}",
        created_at=at,
    )


def test_it_checks_in_once_checkin_days_after_completion(done_job: Job, contact: Contact, time_machine) -> None:
    assert run_at(DUE - timedelta(minutes=1), time_machine) == 0
    assert run_at(DUE, time_machine) == 1
    assert run_at(DUE, time_machine) == 0
    assert run_at(DUE + timedelta(days=1), time_machine) == 0

    [message] = check_ins(done_job)
    assert message.idempotency_key == f"checkin:{done_job.pk}:{contact.pk}"
    assert message.contact == contact
    assert "?answer=all_good" in message.body_html
    assert "?answer=problem" in message.body_html
    assert "/portal/check-in/" in message.body_text
    assert CheckIn.objects.get(job=done_job).sent_at == DUE


def test_it_waits_for_the_morning_in_the_contacts_time_zone(done_job: Job, contact: Contact, time_machine) -> None:
    contact.time_zone = "America/Montreal"
    contact.save()
    assert run_at(DUE, time_machine) == 0  # 04:00 in Montreal
    assert run_at(datetime(2026, 4, 1, 10, 0, tzinfo=ZoneInfo("America/Montreal")), time_machine) == 1


def test_a_pipeline_without_check_ins_sends_none(done_job: Job, checked: Pipeline, time_machine) -> None:
    checked.checkin_days = None
    checked.save()
    assert run_at(DUE, time_machine) == 0


def test_an_open_job_gets_no_check_in(customer: Customer, contact: Contact, checked: Pipeline, bob: User, time_machine):
    job_create(customer=customer, pipeline=checked, owner=bob, title="Still going", actor=bob, contacts=[contact])
    assert run_at(DUE, time_machine) == 0


def test_an_opted_out_contact_gets_no_check_in(done_job: Job, contact: Contact, time_machine) -> None:
    contact.opted_out_at = COMPLETED_AT
    contact.save()
    assert run_at(DUE, time_machine) == 0
    assert not CheckIn.objects.exists()


def test_the_cap_holds_it_back_after_a_tip_then_lets_it_go(done_job: Job, contact: Contact, time_machine) -> None:
    tipped_at = (DUE - timedelta(days=5)).astimezone(UTC)
    tip(contact, at=tipped_at)
    assert run_at(DUE, time_machine) == 0
    assert check_ins_due() == []
    # Fourteen days (of 24 hours: the clocks went forward on 29 March) after the tip, it goes out.
    assert run_at(tipped_at + timedelta(days=14) - timedelta(minutes=15), time_machine) == 0
    assert run_at(tipped_at + timedelta(days=14), time_machine) == 1
    assert len(check_ins(done_job)) == 1


def test_a_failed_tip_does_not_hold_it_back(done_job: Job, contact: Contact, time_machine) -> None:
    tip(contact, at=DUE - timedelta(days=1), status=Message.Status.FAILED)
    assert run_at(DUE, time_machine) == 1


def test_two_jobs_done_the_same_day_check_in_fourteen_days_apart(
    done_job: Job, customer: Customer, contact: Contact, checked: Pipeline, bob: User, time_machine
) -> None:
    time_machine.move_to(COMPLETED_AT + timedelta(minutes=5), tick=False)
    other = job_create(customer=customer, pipeline=checked, owner=bob, title="Boiler", actor=bob, contacts=[contact])
    job_complete(job=other, actor=bob)

    assert run_at(DUE, time_machine) == 1
    assert run_at(DUE + timedelta(days=1), time_machine) == 0
    assert run_at(DUE.astimezone(UTC) + timedelta(days=14), time_machine) == 1
    assert len(check_ins(done_job)) + len(check_ins(other)) == 2


def test_a_check_in_counts_against_the_cap(done_job: Job, contact: Contact, time_machine) -> None:
    from crm.services.cadence import allowed

    run_at(DUE, time_machine)
    assert not allowed(contact, at=DUE + timedelta(days=13))


def test_the_send_rechecks_the_cap_under_the_contact_lock(done_job: Job, contact: Contact, time_machine) -> None:
    time_machine.move_to(DUE, tick=False)
    [due] = check_ins_due()
    # A campaign's tip went out after the schedule looked.
    tip(contact, at=DUE)
    assert check_in_send(job=due.job, contact=due.contact) is None
    assert check_ins(done_job) == []


def test_it_gives_up_a_month_late(done_job: Job, contact: Contact, time_machine) -> None:
    tip(contact, at=DUE)
    assert run_at(DUE + timedelta(days=31), time_machine) == 0


def test_the_schedule_exists() -> None:
    from crm.schedules import PERIODIC

    assert ("check-ins", "crm.tasks.send_check_ins", 15) in [(p.name, p.func, p.minutes) for p in PERIODIC]


# --- The answer ---------------------------------------------------------------------------------


@pytest.fixture
def check_in(done_job: Job, time_machine) -> CheckIn:
    run_at(DUE, time_machine)
    time_machine.move_to(DUE + timedelta(hours=2), tick=False)
    return CheckIn.objects.get(job=done_job)


def test_all_good_goes_on_the_jobs_log(check_in: CheckIn) -> None:
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.ALL_GOOD)
    check_in.refresh_from_db()
    assert check_in.answer == CheckIn.Answer.ALL_GOOD
    assert check_in.answered_at == DUE + timedelta(hours=2)
    event = JobEvent.objects.get(job=check_in.job, kind=JobEvent.Kind.CHECK_IN_ANSWERED)
    assert event.data["answer"] == "all_good"
    assert event.summary == "Marie Dupont: all good"
    assert not Question.objects.exists()
    # Said twice: nothing new.
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.ALL_GOOD)
    assert JobEvent.objects.filter(kind=JobEvent.Kind.CHECK_IN_ANSWERED).count() == 1


def test_a_problem_opens_an_acknowledged_question(check_in: CheckIn, contact: Contact) -> None:
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.PROBLEM, details="It trips the breaker at night.")

    question = Question.objects.get(job=check_in.job)
    assert question.source == Question.Source.PORTAL
    assert question.contact == contact
    assert question.body == "It trips the breaker at night."
    assert question.answer_due_on is not None
    assert Commitment.objects.filter(question=question, kind=Commitment.Kind.ANSWER).exists()
    ack = Message.objects.get(job=check_in.job, kind=Message.Kind.ACKNOWLEDGEMENT)
    assert ack.contact == contact
    check_in.refresh_from_db()
    assert check_in.question == question
    assert JobEvent.objects.filter(job=check_in.job, kind=JobEvent.Kind.REQUEST_RECEIVED).exists()


def test_a_problem_without_details_still_says_what_it_is(check_in: CheckIn) -> None:
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.PROBLEM)
    # Written in the contact's language (Marie reads French): it names our check-in.
    assert "prise de nouvelles" in Question.objects.get(job=check_in.job).body.lower()


def test_the_same_problem_sent_twice_opens_one_question(check_in: CheckIn) -> None:
    for _ in range(2):  # a double click, or the back button and Send again
        check_in_answer(check_in=check_in, answer=CheckIn.Answer.PROBLEM, details="Noise")
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.PROBLEM)  # nothing new to say
    assert Question.objects.filter(job=check_in.job).count() == 1
    assert JobEvent.objects.filter(kind=JobEvent.Kind.CHECK_IN_ANSWERED).count() == 1


def test_every_new_problem_reaches_the_team(check_in: CheckIn) -> None:
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.PROBLEM, details="It trips the breaker.")
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.PROBLEM, details="Now it leaks as well.")

    bodies = list(Question.objects.filter(job=check_in.job).order_by("pk").values_list("body", flat=True))
    assert bodies == ["It trips the breaker.", "Now it leaks as well."]
    check_in.refresh_from_db()
    assert check_in.question.body == "Now it leaks as well."  # the thanks page shows the latest
    # Each one acknowledged to the customer.
    assert Message.objects.filter(job=check_in.job, kind=Message.Kind.ACKNOWLEDGEMENT).count() == 2
    answered = JobEvent.objects.filter(kind=JobEvent.Kind.CHECK_IN_ANSWERED).order_by("pk")
    assert [e.data["details"] for e in answered] == ["It trips the breaker.", "Now it leaks as well."]


def test_a_problem_again_after_all_good_opens_a_new_question_once_the_first_was_answered(
    check_in: CheckIn, bob: User
) -> None:
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.PROBLEM, details="Noise")
    first = Question.objects.get(job=check_in.job)
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.ALL_GOOD)
    # Still waiting for our answer to the first: no second question without anything new.
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.PROBLEM)
    assert Question.objects.filter(job=check_in.job).count() == 1

    Question.objects.filter(pk=first.pk).update(answered_at=timezone.now())
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.ALL_GOOD)
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.PROBLEM)
    assert Question.objects.filter(job=check_in.job).count() == 2


def test_all_good_then_a_problem_opens_the_question(check_in: CheckIn) -> None:
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.ALL_GOOD)
    check_in_answer(check_in=check_in, answer=CheckIn.Answer.PROBLEM, details="It stopped after all.")
    check_in.refresh_from_db()
    assert check_in.answer == CheckIn.Answer.PROBLEM
    assert check_in.question is not None


def test_an_unknown_answer_is_refused(check_in: CheckIn) -> None:
    with pytest.raises(DomainError):
        check_in_answer(check_in=check_in, answer="maybe")


# --- Many workers at once (PostgreSQL) ----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_schedules_send_one_check_in_within_the_cap(
    done_job: Job, customer: Customer, contact: Contact, checked: Pipeline, bob: User, time_machine
) -> None:
    from django.db import connection

    from tests.crm.test_scan import run_together

    if connection.vendor != "postgresql":
        pytest.skip("concurrent schedules need PostgreSQL")
    # A second job for the same contact, done at the same time: both check-ins are due together,
    # and the cap allows only one of them.
    other = job_create(customer=customer, pipeline=checked, owner=bob, title="Boiler", actor=bob, contacts=[contact])
    job_complete(job=other, actor=bob)
    time_machine.move_to(DUE, tick=False)

    outcomes = run_together(check_ins_send, check_ins_send, check_ins_send)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sum(outcomes) == 1
    assert Message.objects.filter(contact=contact, kind=Message.Kind.CHECK_IN).count() == 1
