"""Promises (commitments): every date given to a customer is made, kept, moved or withdrawn by the
services that do the work, and its history is never overwritten.

Time is frozen on Monday 2 March 2026, 10:00 in Paris, the day the heat pump job starts. Its
promised stage dates (business days): Proposal sent Thu 5 March, Order confirmed Thu 12,
Installation scheduled Mon 16, Installed Mon 30 March; "Request received" is reached at once and
"Follow-up" is internal, so neither is a promise. A promise "by <day>" falls due at 18:00 that day.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from anymail.inbound import AnymailInboundMessage
from django.contrib.auth.models import User
from django.utils import timezone

from crm.errors import DomainError
from crm.models import (
    Commitment,
    Contact,
    Customer,
    Job,
    JobEvent,
    Message,
    Milestone,
    Pipeline,
    Question,
    Renegotiation,
    StageTemplate,
)
from crm.services.inbound import inbound_receive
from crm.services.jobs import (
    commitment_move_and_tell,
    job_advance,
    job_cancel,
    job_complete,
    job_create,
    job_hold,
    job_reassign,
    milestone_move,
)
from crm.services.messages import CallOutcome, call_log, status_update_send
from crm.services.promises import commitment_mark_kept, document_promise
from crm.services.questions import answer_promise, question_answer, question_create
from crm.services.scan import scan

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
MONDAY_MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)
OPEN = Commitment.OPEN_STATES

PLAN = {
    "Proposal sent": date(2026, 3, 5),
    "Order confirmed": date(2026, 3, 12),
    "Installation scheduled": date(2026, 3, 16),
    "Installed": date(2026, 3, 30),
}


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(MONDAY_MORNING, tick=False)


@pytest.fixture
def john(customer: Customer) -> Contact:
    return Contact.objects.create(
        customer=customer, name="John Smith", email="john@example.com", language="en", time_zone="Europe/London"
    )


@pytest.fixture
def job(customer: Customer, contact: Contact, john: Contact, installation: Pipeline, bob: User) -> Job:
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Heat pump installation",
        actor=bob,
        contacts=[contact, john],
        start_date=date(2026, 3, 2),
    )


def paris(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


def closing(day: date) -> datetime:
    return datetime.combine(day, time(18, 0), tzinfo=PARIS)


def stage(job: Job, name: str) -> StageTemplate:
    return job.pipeline.stages.get(name=name)


def milestone(job: Job, name: str) -> Milestone:
    return job.milestones.get(stage__name=name)


def advance(job: Job, to: str, **kwargs) -> Job:
    return job_advance(job=job, to_stage=stage(job, to), actor=job.owner, **kwargs)


def stage_promise(job: Job, name: str) -> Commitment:
    """The open promise for a stage (there is at most one)."""
    return job.commitments.get(milestone__stage__name=name, state__in=OPEN)


def snapshot(job: Job) -> tuple:
    """What a refused action must leave exactly as it was."""
    return (
        list(Commitment.objects.filter(job=job).order_by("pk").values_list("pk", "state", "due_at", "first_due_at")),
        Renegotiation.objects.filter(commitment__job=job).count(),
        Message.objects.filter(job=job).count(),
        JobEvent.objects.filter(job=job).count(),
        list(job.milestones.order_by("pk").values_list("forecast_date", flat=True)),
    )


def ask(job: Job, contact: Contact | None, *, source: str = Question.Source.PORTAL, body: str = "When?") -> Question:
    return question_create(job=job, contact=contact, body=body, source=source)


def document(job: Job, *, due_on: date = date(2026, 3, 6), contact: Contact | None = None) -> Commitment:
    return document_promise(job=job, title="The quote", due_on=due_on, actor=job.owner, contact=contact)


def callback(job: Job, contact: Contact, on: date = date(2026, 3, 4)) -> Commitment:
    call = call_log(job=job, contact=contact, actor=job.owner, outcome=CallOutcome.REACHED, callback_on=on)
    return call.commitments.get()


# --- Stage dates are promises -------------------------------------------------------------------


def test_a_new_job_promises_each_stage_the_customer_will_see(job: Job, bob: User) -> None:
    promises = list(job.commitments.order_by("due_at"))

    assert [(c.title, c.due_at) for c in promises] == [(name, closing(day)) for name, day in PLAN.items()]
    for c in promises:
        assert c.kind == Commitment.Kind.MILESTONE
        assert c.state == Commitment.State.OPEN
        assert c.first_due_at == c.due_at
        assert c.owner == bob
        assert c.contact is None
        assert c.milestone == milestone(job, c.title)
        assert c.due_at.astimezone(PARIS).time() == time(18, 0)
    # Reached at once, or never shown to the customer: nothing to promise.
    assert not job.commitments.filter(milestone__stage__name__in=["Request received", "Follow-up"]).exists()


def test_a_stage_promise_falls_due_at_closing_time_where_the_team_works(
    settings, customer: Customer, installation: Pipeline, bob: User
) -> None:
    settings.BUSINESS_TIME_ZONE = "America/New_York"
    settings.BUSINESS_HOURS = (time(8, 0), time(17, 30))

    job = job_create(
        customer=customer, pipeline=installation, owner=bob, title="t", actor=bob, start_date=date(2026, 3, 2)
    )

    assert stage_promise(job, "Proposal sent").due_at == datetime(2026, 3, 5, 17, 30, tzinfo=NEW_YORK)


def test_a_holiday_pushes_a_stage_promise_to_the_next_working_day(
    settings, customer: Customer, installation: Pipeline, bob: User
) -> None:
    settings.HOLIDAYS = frozenset({date(2026, 3, 4)})

    job = job_create(
        customer=customer, pipeline=installation, owner=bob, title="t", actor=bob, start_date=date(2026, 3, 2)
    )

    assert stage_promise(job, "Proposal sent").due_at == closing(date(2026, 3, 6))


def test_reaching_stages_keeps_their_promises(job: Job, time_machine) -> None:
    time_machine.move_to(paris(3, 4, 11), tick=False)

    advance(job, "Order confirmed")  # Proposal sent is reached on the way

    kept = job.commitments.filter(state=Commitment.State.KEPT).order_by("due_at")
    assert [c.title for c in kept] == ["Proposal sent", "Order confirmed"]
    for c in kept:
        assert c.kept_at == paris(3, 4, 11)
        assert c.kept_on_time
    assert job.commitments.filter(state=Commitment.State.OPEN).count() == 2
    # A stage's promise is told by the stage's own event, not by a second "promise kept" one.
    assert not job.events.filter(kind=JobEvent.Kind.PROMISE_KEPT).exists()


def test_a_stage_reached_late_without_telling_moves_later_promises_silently(job: Job, time_machine) -> None:
    # Proposal sent was promised for Thursday 5 March; it is reached Thursday 19 March.
    time_machine.move_to(paris(3, 19, 9), tick=False)

    advance(job, "Proposal sent", notify_customer=False)

    proposal = job.commitments.get(milestone__stage__name="Proposal sent")
    assert proposal.state == Commitment.State.KEPT
    assert proposal.kept_at == paris(3, 19, 9)
    assert not proposal.kept_on_time
    # The rest of the plan slides: 5, 2 and 10 business days from 19 March.
    for name, new_day in LATE_PROPOSAL_PLAN.items():
        promise = stage_promise(job, name)
        assert promise.state == Commitment.State.RENEGOTIATED
        assert promise.due_at == closing(new_day)
        assert promise.first_due_at == closing(PLAN[name])
        assert milestone(job, name).forecast_date == new_day
        [move] = promise.renegotiations.all()
        assert (move.old_due_at, move.new_due_at) == (closing(PLAN[name]), closing(new_day))
        # Nobody told the customer: a silent slip is never a proactive notice.
        assert move.told_customer_at is None
        assert move.proactive is False
        assert move.actor == job.owner
        assert move.holder == job.owner
        assert move.reason == "“Proposal sent” was reached later than planned."
    assert not Message.objects.filter(job=job).exclude(kind=Message.Kind.WELCOME).exists()


# What a proposal reached on 19 March instead of 5 March does to the later stages.
LATE_PROPOSAL_PLAN = {
    "Order confirmed": date(2026, 3, 26),
    "Installation scheduled": date(2026, 3, 30),
    "Installed": date(2026, 4, 13),
}


def test_a_stage_reached_late_and_told_tells_every_later_date_in_its_message(job: Job, time_machine) -> None:
    time_machine.move_to(paris(3, 19, 9), tick=False)

    advance(job, "Proposal sent")

    for name in LATE_PROPOSAL_PLAN:
        [move] = stage_promise(job, name).renegotiations.all()
        # Told now: in time where the old date has not passed yet (Installed, 30 March), late
        # where it has (Order confirmed, 12 March; Installation scheduled, 16 March).
        assert move.told_customer_at == paris(3, 19, 9)
        assert move.proactive is (paris(3, 19, 9) <= closing(PLAN[name]))
    messages = Message.objects.filter(job=job, kind=Message.Kind.STAGE_CHANGE)
    assert messages.count() == job.contacts.count()
    english = messages.get(language="en")
    assert (
        "This step took longer than planned, so these dates move:\n"
        "- Order confirmed: Thursday 26 March 2026 (was Thursday 12 March 2026)\n"
        "- Installation scheduled: Monday 30 March 2026 (was Monday 16 March 2026)\n"
        "- Installed: Monday 13 April 2026 (was Monday 30 March 2026)\n"
    ) in english.body_text
    assert not Message.objects.filter(job=job, kind=Message.Kind.DATE_MOVED).exists()


def test_moving_a_stage_date_and_telling_before_the_old_date_is_a_proactive_notice(job: Job, bob: User) -> None:
    milestone_move(
        milestone=milestone(job, "Installed"),
        new_date=date(2026, 4, 2),
        reason="The unit ships late",
        actor=bob,
        tell_customer=True,
    )

    promise = stage_promise(job, "Installed")
    assert promise.state == Commitment.State.RENEGOTIATED
    assert promise.due_at == closing(date(2026, 4, 2))
    assert promise.first_due_at == closing(date(2026, 3, 30))
    [move] = promise.renegotiations.all()
    assert move.proactive is True
    assert move.told_customer_at == MONDAY_MORNING
    assert (move.reason, move.actor) == ("The unit ships late", bob)
    assert Message.objects.filter(job=job, kind=Message.Kind.DATE_MOVED).count() == 2


def test_moving_a_stage_date_after_it_passed_is_a_reactive_notice(job: Job, bob: User, time_machine) -> None:
    # Installed was promised for Monday 30 March; the customer hears of a new date on the 31st.
    time_machine.move_to(paris(3, 31, 9), tick=False)

    milestone_move(
        milestone=milestone(job, "Installed"), new_date=date(2026, 4, 3), reason="Late", actor=bob, tell_customer=True
    )

    [move] = stage_promise(job, "Installed").renegotiations.all()
    assert move.proactive is False
    assert move.told_customer_at == paris(3, 31, 9)


def test_telling_after_closing_time_on_the_promised_day_is_reactive(job: Job, bob: User, time_machine) -> None:
    time_machine.move_to(paris(3, 30, 19), tick=False)

    milestone_move(
        milestone=milestone(job, "Installed"), new_date=date(2026, 4, 3), reason="Late", actor=bob, tell_customer=True
    )

    [move] = stage_promise(job, "Installed").renegotiations.all()
    assert move.proactive is False


def test_the_event_and_the_promise_agree_on_whether_notice_came_before_the_date(
    job: Job, bob: User, time_machine
) -> None:
    time_machine.move_to(paris(3, 30, 19), tick=False)

    milestone_move(
        milestone=milestone(job, "Installed"), new_date=date(2026, 4, 3), reason="Late", actor=bob, tell_customer=True
    )

    [move] = stage_promise(job, "Installed").renegotiations.all()
    event = job.events.get(kind=JobEvent.Kind.DATE_MOVED)
    assert event.data["before_old_date"] == move.proactive


def test_moving_a_stage_date_without_telling_is_never_proactive(job: Job, bob: User) -> None:
    milestone_move(milestone=milestone(job, "Installed"), new_date=date(2026, 4, 2), reason="Planning", actor=bob)

    [move] = stage_promise(job, "Installed").renegotiations.all()
    assert (move.told_customer_at, move.proactive) == (None, False)
    assert not Message.objects.filter(job=job, kind=Message.Kind.DATE_MOVED).exists()


def test_the_first_promised_time_never_changes(job: Job, bob: User, time_machine) -> None:
    installed = milestone(job, "Installed")
    milestone_move(milestone=installed, new_date=date(2026, 4, 2), reason="a", actor=bob, tell_customer=True)
    milestone_move(milestone=installed, new_date=date(2026, 3, 31), reason="b", actor=bob)
    time_machine.move_to(paris(3, 24, 9), tick=False)
    advance(job, "Proposal sent")  # very late: the plan slides past 31 March

    promise = stage_promise(job, "Installed")
    assert promise.first_due_at == closing(date(2026, 3, 30))
    moves = list(promise.renegotiations.order_by("created_at", "pk"))
    assert [(m.old_due_at.date(), m.new_due_at.date()) for m in moves] == [
        (date(2026, 3, 30), date(2026, 4, 2)),
        (date(2026, 4, 2), date(2026, 3, 31)),
        (date(2026, 3, 31), date(2026, 4, 16)),
    ]
    assert promise.due_at == closing(date(2026, 4, 16))
    assert milestone(job, "Installed").planned_date == date(2026, 3, 30)


def test_a_new_owner_takes_over_the_open_promises(job: Job, alice: User, bob: User, charlie: User) -> None:
    advance(job, "Proposal sent")
    answer = ask(job, job.contacts.first()).commitments.get()

    job_reassign(job=job, owner=charlie, actor=alice)

    assert set(job.commitments.filter(state__in=OPEN).values_list("owner", flat=True)) == {charlie.pk}
    assert Commitment.objects.get(pk=answer.pk).owner == charlie
    # Kept ones stay with whoever kept them: the report counts them for bob.
    assert job.commitments.get(state=Commitment.State.KEPT).owner == bob


def test_cancelling_a_job_withdraws_its_open_promises(job: Job, bob: User, time_machine) -> None:
    advance(job, "Proposal sent")
    doc = document(job)
    time_machine.move_to(paris(3, 3, 9), tick=False)

    job_cancel(job=job, actor=bob, reason="Customer moved house")

    withdrawn = job.commitments.filter(state=Commitment.State.WITHDRAWN)
    assert withdrawn.count() == 4
    assert Commitment.objects.get(pk=doc.pk).state == Commitment.State.WITHDRAWN
    assert {c.withdrawn_at for c in withdrawn} == {paris(3, 3, 9)}
    kept = job.commitments.get(state=Commitment.State.KEPT)
    assert kept.title == "Proposal sent"
    assert kept.withdrawn_at is None


def test_completing_a_job_withdraws_what_is_still_open(job: Job, bob: User) -> None:
    advance(job, "Follow-up")
    doc = document(job)

    job_complete(job=job, actor=bob)

    assert Commitment.objects.get(pk=doc.pk).state == Commitment.State.WITHDRAWN
    assert job.commitments.filter(state=Commitment.State.KEPT).count() == 4
    assert not job.commitments.filter(state__in=OPEN).exists()


def test_putting_a_job_on_hold_keeps_its_promises_open(job: Job, bob: User) -> None:
    job_hold(job=job, actor=bob, reason="Waiting for the landlord")

    assert job.commitments.filter(state=Commitment.State.OPEN).count() == 4


def test_going_back_a_stage_promises_the_reopened_stages_again(job: Job, time_machine) -> None:
    time_machine.move_to(paris(3, 4, 11), tick=False)
    advance(job, "Order confirmed")

    advance(job, "Proposal sent", backwards_reason="The order was entered by mistake")

    order = job.commitments.filter(milestone__stage__name="Order confirmed").order_by("pk")
    assert [c.state for c in order] == [Commitment.State.KEPT, Commitment.State.OPEN]
    again = order.last()
    assert again.due_at == again.first_due_at == closing(date(2026, 3, 12))
    # The stage moved back to stays reached, and no stage gets two open promises.
    assert job.commitments.get(milestone__stage__name="Proposal sent").state == Commitment.State.KEPT
    for name in ("Installation scheduled", "Installed"):
        assert job.commitments.filter(milestone__stage__name=name, state__in=OPEN).count() == 1


# --- Questions: the "answer by" promise ---------------------------------------------------------


def test_a_question_is_promised_an_answer_by_closing_time_on_the_acknowledged_date(
    job: Job, john: Contact, bob: User
) -> None:
    question = ask(job, john)

    promise = question.commitments.get()
    assert question.answer_due_on == date(2026, 3, 4)
    assert promise.kind == Commitment.Kind.ANSWER
    assert promise.due_at == promise.first_due_at == closing(question.answer_due_on)
    assert (promise.contact, promise.owner, promise.state) == (john, bob, Commitment.State.OPEN)
    event = job.events.get(kind=JobEvent.Kind.PROMISE_MADE)
    assert event.data["commitment_id"] == promise.pk
    [ack] = Message.objects.filter(job=job, kind=Message.Kind.ACKNOWLEDGEMENT)
    assert ack.contact == john
    assert "You will have our answer by Wednesday 4 March 2026 at the latest." in ack.body_text


# Internal targets: 9 business hours for portal and email questions, 4 for phone ones; the
# customer is promised the target's day plus one business day.
@pytest.mark.parametrize(
    ("received", "source", "target", "promised"),
    [
        # Monday 10:00: the portal's 9 hours end Tuesday 10:00; promised Wednesday.
        (paris(3, 2, 10), Question.Source.PORTAL, paris(3, 3, 10), date(2026, 3, 4)),
        (paris(3, 2, 10), Question.Source.EMAIL, paris(3, 3, 10), date(2026, 3, 4)),
        (paris(3, 2, 10), Question.Source.PHONE, paris(3, 2, 14), date(2026, 3, 3)),
        # Friday 17:00: one hour on Friday, the rest on Monday; promised Tuesday.
        (paris(3, 6, 17), Question.Source.PORTAL, paris(3, 9, 17), date(2026, 3, 10)),
        (paris(3, 6, 17), Question.Source.EMAIL, paris(3, 9, 17), date(2026, 3, 10)),
        (paris(3, 6, 17), Question.Source.PHONE, paris(3, 9, 12), date(2026, 3, 10)),
        # Monday 20:00, after closing: the count starts Tuesday 09:00.
        (paris(3, 2, 20), Question.Source.PORTAL, paris(3, 3, 18), date(2026, 3, 4)),
        (paris(3, 2, 20), Question.Source.EMAIL, paris(3, 3, 18), date(2026, 3, 4)),
        (paris(3, 2, 20), Question.Source.PHONE, paris(3, 3, 13), date(2026, 3, 4)),
        # Saturday: nine hours from Monday's opening end at Monday's closing.
        (paris(3, 7, 11), Question.Source.PORTAL, paris(3, 9, 18), date(2026, 3, 10)),
    ],
)
def test_the_acknowledged_date_is_the_target_plus_the_buffer(
    job: Job, john: Contact, time_machine, received: datetime, source: str, target: datetime, promised: date
) -> None:
    time_machine.move_to(received, tick=False)

    question = ask(job, john, source=source)

    assert question.target_at == target
    assert question.answer_due_on == promised
    assert question.commitments.get().due_at == closing(promised)


@pytest.mark.parametrize(
    ("source", "target", "promised"),
    [
        # Tuesday 10:00, Wednesday 4 March is a holiday: 8 hours Tuesday, 1 hour Thursday;
        # promised Friday.
        (Question.Source.PORTAL, paris(3, 5, 10), date(2026, 3, 6)),
        (Question.Source.EMAIL, paris(3, 5, 10), date(2026, 3, 6)),
        # Target Tuesday 14:00; one business day later skips the holiday: Thursday.
        (Question.Source.PHONE, paris(3, 3, 14), date(2026, 3, 5)),
    ],
)
def test_the_acknowledged_date_skips_a_holiday(
    settings, job: Job, john: Contact, time_machine, source: str, target: datetime, promised: date
) -> None:
    settings.HOLIDAYS = frozenset({date(2026, 3, 4)})
    time_machine.move_to(paris(3, 3, 10), tick=False)

    question = ask(job, john, source=source)

    assert (question.target_at, question.answer_due_on) == (target, promised)


@pytest.mark.parametrize(("buffer", "promised"), [(0, date(2026, 3, 3)), (1, date(2026, 3, 4)), (3, date(2026, 3, 6))])
def test_the_acknowledged_date_includes_the_buffer(
    settings, job: Job, john: Contact, buffer: int, promised: date
) -> None:
    settings.REQUEST_BUFFER_BUSINESS_DAYS = buffer

    question = ask(job, john)

    # The internal target does not move with the buffer: only what the customer is promised does.
    assert question.target_at == paris(3, 3, 10)
    assert question.answer_due_on == promised
    assert question.commitments.get().due_at == closing(promised)
    assert answer_promise(Question.Source.PORTAL, MONDAY_MORNING) == (paris(3, 3, 10), promised)


def test_the_target_hours_follow_the_settings(settings, job: Job, john: Contact) -> None:
    settings.REQUEST_TARGET_HOURS = {**settings.REQUEST_TARGET_HOURS, "phone": 18}

    question = ask(job, john, source=Question.Source.PHONE)

    assert (question.target_at, question.answer_due_on) == (paris(3, 4, 10), date(2026, 3, 5))


def test_an_emailed_question_is_acknowledged_with_an_answer_by_promise(job: Job, contact: Contact) -> None:
    email = AnymailInboundMessage.construct(
        from_email="Marie Dupont <marie@example.com>",
        to=f"reply+{job.reply_token}@reply.example.com",
        subject="Radiateur",
        headers=[("Message-ID", "<q1@mail.example.org>")],
        text="Pouvez-vous aussi regarder le radiateur ?",
    )

    message = inbound_receive(email=email)

    question = Question.objects.get(message=message)
    assert (question.source, question.contact, question.answer_due_on) == ("email", contact, date(2026, 3, 4))
    promise = question.commitments.get()
    assert (promise.kind, promise.contact, promise.due_at) == (
        Commitment.Kind.ANSWER,
        contact,
        closing(date(2026, 3, 4)),
    )
    assert Message.objects.filter(job=job, kind=Message.Kind.ACKNOWLEDGEMENT, contact=contact).count() == 1
    # A follow-up while the question is open is part of it, not a second promise.
    inbound_receive(
        email=AnymailInboundMessage.construct(
            from_email="marie@example.com",
            to=f"reply+{job.reply_token}@reply.example.com",
            subject="Re: Radiateur",
            headers=[("Message-ID", "<q2@mail.example.org>")],
            text="Et la chaudière aussi.",
        )
    )
    assert job.commitments.filter(kind=Commitment.Kind.ANSWER).count() == 1


def test_answering_before_the_date_keeps_the_promise_early(job: Job, john: Contact, bob: User, time_machine) -> None:
    question = ask(job, john)
    time_machine.move_to(paris(3, 3, 11), tick=False)

    question_answer(question=question, body="Yes, Thursday.", actor=bob)

    promise = question.commitments.get()
    assert (promise.state, promise.kept_at) == (Commitment.State.KEPT, paris(3, 3, 11))
    assert promise.kept_on_time
    assert job.events.get(kind=JobEvent.Kind.PROMISE_KEPT).data["on_time"] is True
    assert job.events.get(kind=JobEvent.Kind.REQUEST_ANSWERED).data["early"] is True


def test_answering_after_the_date_keeps_the_promise_late(job: Job, john: Contact, bob: User, time_machine) -> None:
    question = ask(job, john)
    time_machine.move_to(paris(3, 5, 9), tick=False)

    question_answer(question=question, body="Sorry, Thursday.", actor=bob)

    promise = question.commitments.get()
    assert promise.state == Commitment.State.KEPT
    assert not promise.kept_on_time
    assert job.events.get(kind=JobEvent.Kind.PROMISE_KEPT).data["on_time"] is False


def test_an_answer_after_closing_time_on_the_promised_day_is_late_in_every_record(
    job: Job, john: Contact, bob: User, time_machine
) -> None:
    question = ask(job, john)
    time_machine.move_to(paris(3, 4, 19), tick=False)

    question_answer(question=question, body="Here it is.", actor=bob)

    assert not question.commitments.get().kept_on_time
    assert job.events.get(kind=JobEvent.Kind.REQUEST_ANSWERED).data["early"] is False


def test_an_answer_after_the_promise_broke_still_keeps_it_late(
    job: Job, john: Contact, bob: User, time_machine
) -> None:
    question = ask(job, john)
    time_machine.move_to(paris(3, 5, 9), tick=False)
    scan()
    assert question.commitments.get().state == Commitment.State.BROKEN

    question_answer(question=question, body="Sorry.", actor=bob)

    promise = question.commitments.get()
    assert (promise.state, promise.kept_at, promise.broken_at) == (
        Commitment.State.KEPT,
        paris(3, 5, 9),
        paris(3, 5, 9),
    )
    assert not promise.kept_on_time


# --- Callbacks ----------------------------------------------------------------------------------


def test_a_call_with_a_callback_date_promises_a_call_back(job: Job, john: Contact, bob: User) -> None:
    call = call_log(
        job=job,
        contact=john,
        actor=bob,
        outcome=CallOutcome.REACHED,
        notes="Wants a quote",
        callback_on=date(2026, 3, 4),
    )

    promise = call.commitments.get()
    assert promise.kind == Commitment.Kind.CALLBACK
    assert (promise.contact, promise.owner, promise.state) == (john, bob, Commitment.State.OPEN)
    assert promise.due_at == promise.first_due_at == closing(date(2026, 3, 4))


def test_the_next_call_with_that_contact_keeps_the_call_back_whatever_its_outcome(
    job: Job, john: Contact, contact: Contact, bob: User, time_machine
) -> None:
    promise = callback(job, john)
    time_machine.move_to(paris(3, 3, 15), tick=False)

    call_log(job=job, contact=contact, actor=bob, outcome=CallOutcome.REACHED)
    assert Commitment.objects.get(pk=promise.pk).state == Commitment.State.OPEN

    call_log(job=job, contact=john, actor=bob, outcome=CallOutcome.NO_ANSWER)

    promise.refresh_from_db()
    assert (promise.state, promise.kept_at) == (Commitment.State.KEPT, paris(3, 3, 15))
    assert promise.kept_on_time


def test_a_call_back_promised_again_stays_open_until_the_next_call(
    job: Job, john: Contact, bob: User, time_machine
) -> None:
    first = callback(job, john, on=date(2026, 3, 3))
    time_machine.move_to(paris(3, 3, 11), tick=False)
    second = callback(job, john, on=date(2026, 3, 5))

    assert Commitment.objects.get(pk=first.pk).state == Commitment.State.KEPT
    assert Commitment.objects.get(pk=second.pk).state == Commitment.State.OPEN


def test_a_callback_date_in_the_past_is_refused_and_nothing_is_written(job: Job, john: Contact, bob: User) -> None:
    before = snapshot(job)

    with pytest.raises(DomainError, match="cannot be in the past"):
        call_log(job=job, contact=john, actor=bob, outcome=CallOutcome.REACHED, callback_on=date(2026, 3, 1))

    assert snapshot(job) == before


# --- Documents ----------------------------------------------------------------------------------


def test_staff_can_promise_a_document_by_a_date(job: Job, john: Contact, bob: User) -> None:
    promise = document_promise(job=job, title="  The quote ", due_on=date(2026, 3, 6), actor=bob, contact=john)

    assert (promise.kind, promise.title, promise.contact) == (Commitment.Kind.DOCUMENT, "The quote", john)
    assert promise.due_at == promise.first_due_at == closing(date(2026, 3, 6))
    event = job.events.get(kind=JobEvent.Kind.PROMISE_MADE)
    assert (event.actor, event.data["promise"], event.data["promise_kind"]) == (bob, "The quote", "document")


@pytest.mark.parametrize(
    ("title", "due_on", "close", "message"),
    [
        ("", date(2026, 3, 6), False, "Say what you promised."),
        ("   ", date(2026, 3, 6), False, "Say what you promised."),
        ("The quote", date(2026, 3, 1), False, "A promise cannot be due in the past."),
        ("The quote", date(2026, 3, 6), True, "This job is closed."),
    ],
)
def test_a_document_promise_needs_a_title_a_future_date_and_an_open_job(
    job: Job, bob: User, title: str, due_on: date, close: bool, message: str
) -> None:
    if close:
        job_cancel(job=job, actor=bob, reason="Gone")
        job.refresh_from_db()
    before = snapshot(job)

    with pytest.raises(DomainError) as error:
        document_promise(job=job, title=title, due_on=due_on, actor=bob)

    assert error.value.message == message
    assert snapshot(job) == before


def test_a_document_promise_is_made_to_a_contact_of_the_jobs_customer(
    job: Job, other_customer: Customer, bob: User
) -> None:
    stranger = Contact.objects.create(customer=other_customer, name="Olga", email="olga@acme.example")

    with pytest.raises(DomainError):
        document_promise(job=job, title="The quote", due_on=date(2026, 3, 6), actor=bob, contact=stranger)


def test_a_delivered_document_keeps_its_promise(job: Job, bob: User, time_machine) -> None:
    promise = document(job)
    time_machine.move_to(paris(3, 6, 12), tick=False)

    kept = commitment_mark_kept(commitment=promise, actor=bob)

    assert (kept.state, kept.kept_at, kept.kept_on_time) == (Commitment.State.KEPT, paris(3, 6, 12), True)
    event = job.events.get(kind=JobEvent.Kind.PROMISE_KEPT)
    assert (event.actor, event.data["on_time"]) == (bob, True)
    with pytest.raises(DomainError, match="no longer open"):
        commitment_mark_kept(commitment=promise, actor=bob)


def test_only_a_document_is_marked_kept_by_hand(job: Job, bob: User) -> None:
    with pytest.raises(DomainError, match="kept by the work itself"):
        commitment_mark_kept(commitment=stage_promise(job, "Proposal sent"), actor=bob)
    assert stage_promise(job, "Proposal sent").state == Commitment.State.OPEN


# --- The one-click flow: a new date, told now ---------------------------------------------------


def test_a_new_stage_date_told_now_moves_the_stage_and_tells_every_contact(
    job: Job, bob: User, contact: Contact, john: Contact
) -> None:
    promise = stage_promise(job, "Installed")

    moved = commitment_move_and_tell(
        commitment=promise, new_date=date(2026, 4, 2), reason="The unit ships late", actor=bob, note="Sorry!"
    )

    assert moved.pk == promise.pk
    assert (moved.state, moved.due_at, moved.first_due_at) == (
        Commitment.State.RENEGOTIATED,
        closing(date(2026, 4, 2)),
        closing(date(2026, 3, 30)),
    )
    assert milestone(job, "Installed").forecast_date == date(2026, 4, 2)
    [move] = moved.renegotiations.all()
    assert (move.proactive, move.told_customer_at, move.reason, move.actor) == (
        True,
        MONDAY_MORNING,
        "The unit ships late",
        bob,
    )
    messages = Message.objects.filter(job=job, kind=Message.Kind.DATE_MOVED).order_by("contact__name")
    assert [(m.contact, m.language) for m in messages] == [(john, "en"), (contact, "fr")]
    assert "it was Monday 30 March 2026, it is now Thursday 2 April 2026" in messages[0].body_text
    assert "The unit ships late" in messages[0].body_text
    assert "Sorry!" in messages[0].body_text
    assert not Message.objects.filter(job=job, kind=Message.Kind.PROMISE_MOVED).exists()


def test_a_new_answer_date_told_now_writes_to_the_contact_who_asked(job: Job, john: Contact, bob: User) -> None:
    promise = ask(job, john).commitments.get()

    moved = commitment_move_and_tell(
        commitment=promise, new_date=date(2026, 3, 6), reason="We are checking with the maker", actor=bob
    )

    assert (moved.state, moved.due_at, moved.first_due_at) == (
        Commitment.State.RENEGOTIATED,
        closing(date(2026, 3, 6)),
        closing(date(2026, 3, 4)),
    )
    [move] = moved.renegotiations.all()
    assert (move.old_due_at, move.new_due_at) == (closing(date(2026, 3, 4)), closing(date(2026, 3, 6)))
    assert (move.proactive, move.told_customer_at) == (True, MONDAY_MORNING)
    [message] = Message.objects.filter(job=job, kind=Message.Kind.PROMISE_MOVED)
    assert (message.contact, message.language, message.channel) == (john, "en", Message.Channel.EMAIL)
    assert message.subject == "An answer to your question: new date Friday 6 March"
    assert (
        "We promised you “An answer to your question” by Wednesday 4 March 2026. "
        "We need a little longer: you will have it by Friday 6 March 2026." in message.body_text
    )
    assert "Why: We are checking with the maker" in message.body_text
    assert "We wanted you to know before the date, not after." in message.body_text
    event = job.events.get(kind=JobEvent.Kind.PROMISE_MOVED)
    assert (event.data["proactive"], event.data["told_customer"], event.actor) == (True, True, bob)


def test_a_new_call_back_date_told_now(job: Job, john: Contact, bob: User) -> None:
    promise = callback(job, john)

    commitment_move_and_tell(commitment=promise, new_date=date(2026, 3, 5), reason="Off sick", actor=bob)

    [message] = Message.objects.filter(job=job, kind=Message.Kind.PROMISE_MOVED)
    assert message.contact == john
    assert "We promised you “A call back” by Wednesday 4 March 2026." in message.body_text
    assert promise.renegotiations.get().proactive


def test_a_new_document_date_made_to_nobody_in_particular_is_told_to_every_contact(
    job: Job, bob: User, contact: Contact, john: Contact
) -> None:
    promise = document(job)

    commitment_move_and_tell(commitment=promise, new_date=date(2026, 3, 10), reason="Supplier prices", actor=bob)

    messages = Message.objects.filter(job=job, kind=Message.Kind.PROMISE_MOVED)
    assert {m.contact for m in messages} == {contact, john}
    assert promise.renegotiations.get().proactive


def test_a_new_date_is_told_in_the_contacts_language(job: Job, contact: Contact, bob: User) -> None:
    promise = ask(job, contact).commitments.get()

    commitment_move_and_tell(commitment=promise, new_date=date(2026, 3, 6), reason="Pièce en retard", actor=bob)

    [message] = Message.objects.filter(job=job, kind=Message.Kind.PROMISE_MOVED)
    assert message.language == "fr"
    assert "Bonjour Marie Dupont" in message.body_text
    assert "vendredi 6 mars 2026" in message.body_text
    assert "We need a little longer" not in message.body_text
    assert "new date" not in message.subject


def test_a_new_date_told_after_the_old_one_passed_is_reactive(job: Job, john: Contact, bob: User, time_machine) -> None:
    promise = document(job, due_on=date(2026, 3, 3))
    time_machine.move_to(paris(3, 4, 9), tick=False)

    commitment_move_and_tell(commitment=promise, new_date=date(2026, 3, 5), reason="Late", actor=bob)

    move = promise.renegotiations.get()
    assert (move.proactive, move.told_customer_at) == (False, paris(3, 4, 9))
    assert Message.objects.filter(job=job, kind=Message.Kind.PROMISE_MOVED).count() == 2


def test_a_broken_promise_can_still_get_a_new_date_told_late(job: Job, john: Contact, bob: User, time_machine) -> None:
    promise = ask(job, john).commitments.get()
    time_machine.move_to(paris(3, 5, 9), tick=False)
    scan()
    promise.refresh_from_db()
    assert promise.state == Commitment.State.BROKEN

    moved = commitment_move_and_tell(commitment=promise, new_date=date(2026, 3, 6), reason="Sorry", actor=bob)

    assert moved.due_at == closing(date(2026, 3, 6))
    assert moved.broken_at == paris(3, 5, 9)  # the breach stays on record
    assert promise.renegotiations.get().proactive is False
    assert Message.objects.filter(job=job, kind=Message.Kind.PROMISE_MOVED, contact=john).count() == 1


def test_a_broken_stage_promise_moved_late_records_a_reactive_renegotiation(job: Job, bob: User, time_machine) -> None:
    promise = stage_promise(job, "Proposal sent")
    time_machine.move_to(paris(3, 6, 9), tick=False)
    scan()

    moved = commitment_move_and_tell(commitment=promise, new_date=date(2026, 3, 9), reason="Sorry", actor=bob)

    assert moved.due_at == closing(date(2026, 3, 9))
    move = Renegotiation.objects.get(commitment=promise)
    assert (move.proactive, move.told_customer_at) == (False, paris(3, 6, 9))


def test_a_closed_jobs_broken_promise_gets_no_new_date(job: Job, john: Contact, bob: User, time_machine) -> None:
    promise = ask(job, john).commitments.get()
    time_machine.move_to(paris(3, 5, 9), tick=False)
    scan()
    job_cancel(job=job, actor=bob, reason="Gone")
    promise.refresh_from_db()
    before = snapshot(job)

    with pytest.raises(DomainError):
        commitment_move_and_tell(commitment=promise, new_date=date(2026, 3, 6), reason="Sorry", actor=bob)

    assert snapshot(job) == before


def test_a_new_answer_date_is_the_questions_promised_date(job: Job, john: Contact, bob: User) -> None:
    question = ask(job, john)

    commitment_move_and_tell(commitment=question.commitments.get(), new_date=date(2026, 3, 6), reason="r", actor=bob)

    question.refresh_from_db()
    assert question.answer_due_on == date(2026, 3, 6)


def _closed(job: Job, bob: User) -> Commitment:
    promise = document(job)
    job_cancel(job=job, actor=bob, reason="Gone")
    return promise


def _kept(job: Job, bob: User) -> Commitment:
    promise = document(job)
    commitment_mark_kept(commitment=promise, actor=bob)
    return promise


@pytest.mark.parametrize(
    ("make", "new_date", "reason", "message"),
    [
        (lambda job, bob: document(job), date(2026, 3, 1), "r", "The new date cannot be in the past."),
        (lambda job, bob: document(job), date(2026, 3, 9), "  ", "Say why the date moves: the customer will ask."),
        (lambda job, bob: document(job), date(2026, 3, 6), "r", "2026-03-06 is already the promised date."),
        (_kept, date(2026, 3, 9), "r", "This promise is no longer open."),
        (_closed, date(2026, 3, 9), "r", "This job is closed."),
        (
            lambda job, bob: stage_promise(job, "Installed"),
            date(2026, 2, 27),
            "r",
            "The new date cannot be in the past.",
        ),
        (lambda job, bob: stage_promise(job, "Installed"), date(2026, 4, 2), "", "Say why the date moves"),
    ],
    ids=["past", "no-reason", "same-date", "kept", "closed-job", "stage-past", "stage-no-reason"],
)
def test_a_new_date_is_refused_and_nothing_is_written(
    job: Job, bob: User, make, new_date: date, reason: str, message: str
) -> None:
    promise = make(job, bob)
    before = snapshot(job)

    with pytest.raises(DomainError) as error:
        commitment_move_and_tell(commitment=promise, new_date=new_date, reason=reason, actor=bob)

    assert error.value.message.startswith(message)
    assert snapshot(job) == before


def test_a_closed_jobs_stage_date_cannot_move(job: Job, bob: User) -> None:
    promise = stage_promise(job, "Installed")
    job_hold(job=job, actor=bob, reason="Paused")
    job_cancel(job=job, actor=bob, reason="Gone")
    before = snapshot(job)

    with pytest.raises(DomainError):
        commitment_move_and_tell(commitment=promise, new_date=date(2026, 4, 2), reason="r", actor=bob)

    assert snapshot(job) == before


# --- The ready status update --------------------------------------------------------------------


def test_the_ready_update_goes_to_every_contact_in_their_language(
    job: Job, bob: User, contact: Contact, john: Contact, time_machine
) -> None:
    time_machine.move_to(paris(3, 3, 9), tick=False)

    rows = status_update_send(job=job, actor=bob, note="All good.")

    assert {(m.contact, m.language, m.kind) for m in rows} == {
        (contact, "fr", Message.Kind.STATUS_UPDATE),
        (john, "en", Message.Kind.STATUS_UPDATE),
    }
    english = next(m for m in rows if m.contact == john)
    assert "is at the stage “Request received”, and everything is on track." in english.body_text
    assert "All good." in english.body_text
    assert Job.objects.get(pk=job.pk).updated_at == paris(3, 3, 9)


def test_the_ready_update_needs_an_open_job_with_a_contact(
    job: Job, bob: User, customer: Customer, installation: Pipeline
) -> None:
    nobody = job_create(customer=customer, pipeline=installation, owner=bob, title="t", actor=bob, contacts=[])
    with pytest.raises(DomainError, match="No contact on this job"):
        status_update_send(job=nobody, actor=bob)

    job_cancel(job=job, actor=bob, reason="Gone")
    with pytest.raises(DomainError, match=r"This job is closed\."):
        status_update_send(job=job, actor=bob)
    assert not Message.objects.filter(kind=Message.Kind.STATUS_UPDATE).exists()


def test_the_clock_is_frozen() -> None:
    assert timezone.now() == MONDAY_MORNING
