"""Requests staff log ("Log a request"): on the job page, on the customer's page (choosing the
job), and from a logged call ("they asked for something"). Each is acknowledged in writing at
once with its answer-by date, is a promise, waits on the dashboard and counts in the health report
from when the customer asked."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.models import Commitment, Contact, Customer, Job, JobEvent, Message, Pipeline, Question
from crm.reports import Period, health_report
from crm.services import delivery
from crm.services.jobs import job_complete, job_create
from crm.services.questions import question_answer
from crm.sms_segments import measure
from crm.workdays import end_of_business_day

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
NUL = "\x00"


def paris(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


# Friday 6 March 2026, 16:30; Monday 9 March is a holiday in some tests.
FRIDAY = paris(3, 6, 16, 30)
MONDAY = paris(3, 2, 10)


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(MONDAY, tick=False)


@pytest.fixture
def john(customer: Customer) -> Contact:
    """A contact who reads English (the fixture's Marie reads French)."""
    return Contact.objects.create(customer=customer, name="John Dupont", email="john@example.com", language="en")


@pytest.fixture
def stranger(other_customer: Customer) -> Contact:
    return Contact.objects.create(customer=other_customer, name="Wile Coyote", email="wile@example.com")


def job_url(name: str, job: Job) -> str:
    return reverse(f"crm:{name}", args=[job.public_id])


def customer_url(name: str, customer: Customer) -> str:
    return reverse(f"crm:{name}", args=[customer.pk])


def logged(contact: Contact, *, source: str = "phone", when: str = "2026-03-02T10:00", body: str = "") -> dict:
    return {
        "request-body": body or "Can you quote a second charger?",
        "request-source": source,
        "request-contact": contact.pk,
        "request-received_at": when,
    }


def acknowledgement(question: Question) -> Message:
    return Message.objects.get(
        kind=Message.Kind.ACKNOWLEDGEMENT, job=question.job, idempotency_key__startswith=f"ack:{question.pk}:"
    )


# --- Access -------------------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_to_sign_in(client: Client, live_job: Job, customer: Customer, john) -> None:
    for target in [job_url("job_question_new", live_job), customer_url("customer_question_new", customer)]:
        response = client.post(target, logged(john))
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    assert not Question.objects.exists()


def test_it_refuses_a_signed_in_user_who_is_not_staff(
    client: Client, dana: User, live_job: Job, customer: Customer, john
) -> None:
    client.force_login(dana)
    assert client.post(job_url("job_question_new", live_job), logged(john)).status_code == 403
    assert client.post(customer_url("customer_question_new", customer), logged(john)).status_code == 403
    assert not Question.objects.exists()


def test_it_refuses_get(staff: Client, live_job: Job, customer: Customer) -> None:
    assert staff.get(job_url("job_question_new", live_job)).status_code == 405
    assert staff.get(customer_url("customer_question_new", customer)).status_code == 405


def test_it_answers_404_for_an_unknown_job_or_customer(staff: Client, john: Contact) -> None:
    assert staff.post("/jobs/00000000-0000-0000-0000-000000000000/requests/new/", logged(john)).status_code == 404
    assert staff.post(reverse("crm:customer_question_new", args=[999999]), logged(john)).status_code == 404


# --- The job page -------------------------------------------------------------------------------


def test_the_job_page_offers_the_form_with_now_and_the_jobs_only_contact(
    staff: Client, live_job: Job, contact: Contact
) -> None:
    response = staff.get(job_url("job", live_job))

    form = response.context["forms"]["request"]
    assert form.initial["contact"] == contact.pk
    assert form.initial["received_at"] == MONDAY
    html = response.content.decode()
    assert "Log a request" in html
    assert job_url("job_question_new", live_job) in html
    assert 'value="2026-03-02T10:00"' in html
    assert [value for value, _label in form.fields["source"].choices] == ["phone", "in_person", "staff"]


def test_a_phone_request_on_friday_afternoon_is_promised_across_the_weekend_and_a_holiday(
    settings, staff: Client, live_job: Job, john: Contact, time_machine
) -> None:
    settings.HOLIDAYS = frozenset({date(2026, 3, 9)})
    time_machine.move_to(FRIDAY, tick=False)

    response = staff.post(job_url("job_question_new", live_job), logged(john, when="2026-03-06T16:00"))

    assert response.status_code == 302
    question = Question.objects.get()
    assert (question.source, question.contact, question.received_at) == ("phone", john, paris(3, 6, 16))
    # Four business hours: Friday 16:00-18:00, Monday off, Tuesday 09:00-11:00; then one business day.
    assert question.target_at == paris(3, 10, 11)
    assert question.answer_due_on == date(2026, 3, 11)
    promise = question.commitments.get()
    assert (promise.kind, promise.state, promise.contact) == (Commitment.Kind.ANSWER, Commitment.State.OPEN, john)
    assert promise.due_at == end_of_business_day(date(2026, 3, 11))
    ack = acknowledgement(question)
    assert (ack.contact, ack.channel, ack.status) == (john, Message.Channel.EMAIL, Message.Status.QUEUED)
    assert "Thank you for your call today about job" in ack.body_text
    assert "Can you quote a second charger?" in ack.body_text
    assert "We will answer by Wednesday 11 March 2026 at the latest." in ack.body_text
    assert "Wednesday 11 March 2026" in ack.body_html
    assert "answer by Wednesday 11 March" in ack.subject
    event = live_job.events.get(kind=JobEvent.Kind.REQUEST_RECEIVED)
    assert event.data["source"] == "phone"
    follow = staff.get(job_url("job", live_job))
    assert "answer by Wednesday 11 March" in follow.content.decode()  # the success message


@pytest.mark.parametrize(
    ("source", "target", "promised", "thanks"),
    [
        # Monday 10:00: four business hours for a call or a visit, nine for the team's own.
        ("phone", paris(3, 2, 14), date(2026, 3, 3), "Thank you for your call today about job"),
        ("in_person", paris(3, 2, 14), date(2026, 3, 3), "Thank you for speaking with us today about job"),
        ("staff", paris(3, 3, 10), date(2026, 3, 4), "Our team has noted your request about job"),
    ],
)
def test_each_source_has_its_target_and_its_words(
    staff: Client, live_job: Job, john: Contact, source: str, target: datetime, promised: date, thanks: str
) -> None:
    staff.post(job_url("job_question_new", live_job), logged(john, source=source))

    question = Question.objects.get()
    assert (question.source, question.target_at, question.answer_due_on) == (source, target, promised)
    ack = acknowledgement(question)
    assert thanks in ack.body_text
    assert f"We will answer by {promised:%A} {promised.day} March 2026 at the latest." in ack.body_text


def test_a_request_logged_the_next_day_is_promised_from_when_it_was_asked(
    staff: Client, live_job: Job, john: Contact, time_machine
) -> None:
    time_machine.move_to(paris(3, 3, 10), tick=False)

    staff.post(job_url("job_question_new", live_job), logged(john, when="2026-03-02T16:00"))

    question = Question.objects.get()
    assert question.received_at == paris(3, 2, 16)
    # Monday 16:00 + 4 business hours = Tuesday 11:00, still ahead: promised Wednesday.
    assert (question.target_at, question.answer_due_on) == (paris(3, 3, 11), date(2026, 3, 4))
    assert "Thank you for your call on Monday 2 March about job" in acknowledgement(question).body_text


def test_a_request_logged_after_its_target_passed_is_given_a_date_still_ahead(
    staff: Client, live_job: Job, john: Contact, time_machine
) -> None:
    time_machine.move_to(paris(3, 5, 10), tick=False)

    staff.post(job_url("job_question_new", live_job), logged(john, when="2026-03-02T10:00"))

    question = Question.objects.get()
    # Counted from Monday, the promise (Tuesday) has gone: the customer is given what a request
    # asked now gets (target Thursday 14:00, promised Friday); the target keeps the lateness.
    assert question.target_at == paris(3, 2, 14)
    assert question.answer_due_on == date(2026, 3, 6)
    assert question.commitments.get().due_at > paris(3, 5, 10)


def test_a_contact_who_prefers_calls_is_acknowledged_in_writing(
    staff: Client, live_job: Job, customer: Customer
) -> None:
    caller = Contact.objects.create(
        customer=customer, name="Paul Dupont", email="paul@example.com", phone="+33612345678", preferred_channel="phone"
    )
    no_email = Contact.objects.create(customer=customer, name="Jeanne Dupont", phone="+33612345679")
    Contact.objects.filter(pk=no_email.pk).update(preferred_channel="phone")

    staff.post(job_url("job_question_new", live_job), logged(caller))
    staff.post(job_url("job_question_new", live_job), logged(no_email))

    channels = {m.contact.name: m.channel for m in Message.objects.filter(kind=Message.Kind.ACKNOWLEDGEMENT)}
    # No call task to say "we have your question": an email, else a note on the portal.
    assert channels == {"Paul Dupont": Message.Channel.EMAIL, "Jeanne Dupont": Message.Channel.PORTAL}
    assert not Message.objects.filter(status=Message.Status.CALL_PENDING).exists()


def test_a_text_message_acknowledgement_fits_and_says_the_date(staff: Client, live_job: Job, customer: Customer):
    texter = Contact.objects.create(
        customer=customer,
        name="Luc Dupont",
        phone="+33612345670",
        preferred_channel="sms",
        sms_consent_at=MONDAY,
        sms_consent_source="order form",
        language="en",
    )

    staff.post(job_url("job_question_new", live_job), logged(texter, body="A quote " * 100))

    ack = acknowledgement(Question.objects.get())
    assert ack.channel == Message.Channel.SMS
    assert measure(ack.body_text).segments <= settings.SMS_MAX_SEGMENTS
    assert "thank you for your call today about" in ack.body_text
    assert "We will answer by 3 March." in ack.body_text


def test_the_owner_who_logs_it_gets_no_email_about_it_a_colleague_does(
    client: Client, live_job: Job, john: Contact, bob: User, charlie: User
) -> None:
    client.force_login(bob)
    client.post(job_url("job_question_new", live_job), logged(john))
    assert not Message.objects.filter(kind=Message.Kind.STAFF_ALERT).exists()

    client.force_login(charlie)
    client.post(job_url("job_question_new", live_job), logged(john, body="And the garage?"))
    [alert] = Message.objects.filter(kind=Message.Kind.STAFF_ALERT)
    assert alert.staff == bob
    assert Question.objects.count() == 2


def test_the_request_waits_on_the_dashboard(staff: Client, live_job: Job, john: Contact) -> None:
    staff.post(job_url("job_question_new", live_job), logged(john))

    response = staff.get(reverse("crm:home"))

    waiting = next(s for s in response.context["sections"] if s.key == "questions")
    assert [r.body for r in waiting.rows] == ["Can you quote a second charger?"]
    assert "Can you quote a second charger?" in response.content.decode()


def test_the_health_report_times_it_from_when_the_customer_asked(
    staff: Client, live_job: Job, john: Contact, bob: User, time_machine
) -> None:
    time_machine.move_to(paris(3, 2, 12), tick=False)
    staff.post(job_url("job_question_new", live_job), logged(john, when="2026-03-02T10:00"))
    question = Question.objects.get()
    delivery.deliver(message_id=acknowledgement(question).pk)
    time_machine.move_to(paris(3, 2, 15), tick=False)
    question_answer(question=question, body="Yes: 900 €.", actor=bob)

    figures = health_report(period=Period(date(2026, 3, 2), date(2026, 3, 8))).team.total

    # Acknowledged two hours after the call (when it was logged), answered five hours after it.
    assert figures.acknowledge.seconds == [2 * 3600.0]
    assert figures.answer.seconds == [5 * 3600.0]


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({"request-body": ""}, "body", "Write what they asked first."),
        ({"request-body": f"A quote{NUL}"}, "body", "Null characters are not allowed."),
        ({"request-body": "x" * 5001}, "body", "Ensure this value has at most 5000 characters"),
        ({"request-source": "portal"}, "source", "Select a valid choice."),
        ({"request-contact": ""}, "contact", "Choose who asked."),
        ({"request-contact": "99999999999999999999999"}, "contact", "Select a valid choice."),
        ({"request-received_at": "2026-03-02T10:30"}, "received_at", "This time is still to come"),
        ({"request-received_at": "2026-03-03T09:00"}, "received_at", "Choose a date no later than"),
        ({"request-received_at": "9999-12-31T23:59"}, "received_at", "Choose a date no later than"),
        ({"request-received_at": "0001-01-01T00:00"}, "received_at", "Choose a date on or after"),
        ({"request-received_at": "2026-01-01T10:00"}, "received_at", "Choose a date on or after"),
        ({"request-received_at": "yesterday"}, "received_at", "Enter a valid date/time."),
        ({"request-received_at": ""}, "received_at", "This field is required."),
    ],
)
def test_it_explains_bad_input_on_the_job_page(
    staff: Client, live_job: Job, john: Contact, changes: dict, field: str, error: str
) -> None:
    response = staff.post(job_url("job_question_new", live_job), {**logged(john), **changes})

    assert response.status_code == 400
    form = response.context["forms"]["request"]
    assert any(error in message for message in form.errors[field])
    assert not Question.objects.exists()
    assert not Message.objects.filter(kind=Message.Kind.ACKNOWLEDGEMENT).exists()


def test_it_refuses_a_contact_of_another_customer_by_name(staff: Client, live_job: Job, stranger: Contact) -> None:
    response = staff.post(job_url("job_question_new", live_job), logged(stranger))

    assert response.status_code == 400
    assert response.context["forms"]["request"].errors["contact"] == [
        "Wile Coyote is a contact of another customer: choose one of Dupont household's contacts."
    ]
    assert not Question.objects.exists()


def test_a_time_a_minute_ahead_of_the_server_is_now(staff: Client, live_job: Job, john: Contact, time_machine):
    time_machine.move_to(MONDAY + timedelta(seconds=30), tick=False)

    response = staff.post(job_url("job_question_new", live_job), logged(john, when="2026-03-02T10:01"))

    assert response.status_code == 302
    assert Question.objects.get().received_at == MONDAY + timedelta(seconds=30)


def test_htmx_gets_the_detail_block_with_the_error(staff: Client, live_job: Job, stranger: Contact) -> None:
    response = staff.post(job_url("job_question_new", live_job), logged(stranger), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "is a contact of another customer" in response.content.decode()
    assert response.templates[0].name == "crm/job/_detail.html"


# --- A logged call that asked for something ----------------------------------------------------


def call(contact: Contact, **changes: str) -> dict:
    return {"call-contact": contact.pk, "call-outcome": "reached", "call-notes": "", "call-callback_on": "", **changes}


def test_a_call_that_asked_for_something_logs_one_request(staff: Client, live_job: Job, john: Contact) -> None:
    response = staff.post(
        job_url("job_log_call", live_job), call(john, **{"call-asked": "  A quote for a second charger  "})
    )

    assert response.status_code == 302
    the_call = Message.objects.get(kind=Message.Kind.CALL)
    [question] = Question.objects.all()
    assert (question.body, question.source, question.contact, question.job) == (
        "A quote for a second charger",
        "phone",
        john,
        live_job,
    )
    assert question.received_at == the_call.sent_at == MONDAY
    assert question.commitments.get().kind == Commitment.Kind.ANSWER
    assert "We will answer by Tuesday 3 March 2026 at the latest." in acknowledgement(question).body_text


def test_a_call_that_asked_nothing_logs_no_request(staff: Client, live_job: Job, john: Contact) -> None:
    staff.post(job_url("job_log_call", live_job), call(john, **{"call-asked": "   "}))

    assert Message.objects.filter(kind=Message.Kind.CALL).count() == 1
    assert not Question.objects.exists()


def test_nobody_asks_for_anything_on_a_voicemail(staff: Client, live_job: Job, john: Contact) -> None:
    response = staff.post(
        job_url("job_log_call", live_job), call(john, **{"call-outcome": "voicemail", "call-asked": "A quote"})
    )

    assert response.status_code == 400
    assert response.context["forms"]["call"].errors["asked"] == [
        "Only someone you spoke with can have asked for something."
    ]
    assert not Message.objects.filter(kind=Message.Kind.CALL).exists()
    assert not Question.objects.exists()


def test_a_call_whose_request_is_refused_is_not_logged_either(staff: Client, live_job: Job, john: Contact) -> None:
    response = staff.post(job_url("job_log_call", live_job), call(john, **{"call-asked": f"A quote{NUL}"}))

    assert response.status_code == 400
    assert "Null characters are not allowed." in response.content.decode()
    assert not Message.objects.filter(kind=Message.Kind.CALL).exists()
    assert not Question.objects.exists()


# --- The customer's page ------------------------------------------------------------------------


@pytest.fixture
def second_job(customer: Customer, contact: Contact, repair: Pipeline, bob: User, live_job: Job, time_machine) -> Job:
    """A newer open job of the same customer (created an hour after live_job)."""
    time_machine.move_to(MONDAY + timedelta(hours=1), tick=False)
    job = job_create(
        customer=customer,
        pipeline=repair,
        owner=bob,
        title="Boiler repair",
        actor=bob,
        notify_customer=False,
        not_told_reason="Opened before the test.",
    )
    time_machine.move_to(MONDAY + timedelta(hours=2), tick=False)
    return job


def test_the_customer_page_offers_the_open_jobs_newest_first(
    staff: Client, customer: Customer, live_job: Job, second_job: Job, contact: Contact
) -> None:
    response = staff.get(customer_url("customer", customer))

    assert response.status_code == 200
    form = response.context["request_form"]
    assert form.initial["job"] == second_job.pk
    assert [value for value, _label in form.fields["job"].widget.choices] == [
        second_job.pk,
        live_job.pk,
        "",
    ]  # then "no job yet"
    assert form.initial["contact"] == contact.pk  # the customer's only contact
    html = response.content.decode()
    assert customer_url("customer_question_new", customer) in html
    assert "Boiler repair" in html


def test_the_customer_page_files_it_on_the_chosen_job(
    staff: Client, customer: Customer, live_job: Job, second_job: Job, john: Contact
) -> None:
    response = staff.post(
        customer_url("customer_question_new", customer),
        {**logged(john, source="in_person", when="2026-03-02T11:30"), "request-job": live_job.pk},
    )

    assert response.status_code == 302
    assert response["Location"] == customer_url("customer", customer)
    question = Question.objects.get()
    assert (question.job, question.source, question.received_at) == (live_job, "in_person", paris(3, 2, 11, 30))
    assert question.commitments.get().job == live_job
    assert acknowledgement(question).job == live_job
    assert not second_job.questions.exists()


def test_a_request_about_no_job_yet_opens_its_job(
    staff: Client, customer: Customer, live_job: Job, installation: Pipeline, bob: User, john: Contact
) -> None:
    job_complete(job=live_job, actor=bob, reason="")

    page = staff.get(customer_url("customer", customer)).content.decode()
    assert "has no open job: the request opens one" in page
    closed = staff.post(customer_url("customer_question_new", customer), {**logged(john), "request-job": live_job.pk})
    untitled = staff.post(
        customer_url("customer_question_new", customer),
        {**logged(john), "request-job": "", "request-pipeline": installation.pk, "request-title": " "},
    )
    assert (closed.status_code, untitled.status_code) == (400, 400)
    assert "Give the new job a title" in untitled.content.decode()
    assert not Question.objects.exists() and Job.objects.count() == 1

    response = staff.post(
        customer_url("customer_question_new", customer),
        {
            **logged(john, body="A quote for a heat pump in the barn"),
            "request-job": "",
            "request-pipeline": installation.pk,
            "request-title": "Barn heat pump",
        },
    )

    assert response.status_code == 302
    [question] = Question.objects.all()
    job = question.job
    assert (job.title, job.customer, job.owner, job.current_stage.position) == ("Barn heat pump", customer, bob, 1)
    assert (question.contact, question.source) == (john, Question.Source.PHONE)
    assert job.commitments.filter(kind=Commitment.Kind.ANSWER, question=question).exists()
    # The acknowledgement is the first word; no welcome on top of it, and the job says why.
    assert list(Message.objects.filter(job=job).values_list("kind", flat=True)) == [Message.Kind.ACKNOWLEDGEMENT]
    assert "acknowledged" in job.events.get(kind=JobEvent.Kind.CREATED).data["not_told_reason"]


def test_a_new_job_for_a_request_needs_its_pipeline(
    staff: Client, customer: Customer, installation: Pipeline, repair: Pipeline, john: Contact
) -> None:
    response = staff.post(
        customer_url("customer_question_new", customer),
        {**logged(john), "request-job": "", "request-title": "Barn heat pump"},
    )
    assert response.status_code == 400
    assert "Choose the pipeline of the new job." in response.content.decode()
    assert not Job.objects.exists() and not Question.objects.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"request-job": "99999999999999999999999"},
        {"request-job": f"1{NUL}"},
        {"request-job": ""},
        {"request-body": NUL},
        {"request-received_at": "2026-03-09T10:00"},
    ],
)
def test_the_customer_page_explains_bad_input(
    staff: Client, customer: Customer, live_job: Job, john: Contact, changes: dict
) -> None:
    response = staff.post(
        customer_url("customer_question_new", customer), {**logged(john), "request-job": live_job.pk, **changes}
    )

    assert response.status_code == 400
    assert response.context["request_form"].errors
    assert "Log the request" in response.content.decode()
    assert not Question.objects.exists()


def test_the_customer_page_refuses_another_customers_job_and_contact(
    staff: Client, customer: Customer, live_job: Job, john: Contact, other_customer: Customer, stranger: Contact
) -> None:
    theirs = job_create(
        customer=other_customer,
        pipeline=live_job.pipeline,
        owner=live_job.owner,
        title="Fibre",
        actor=live_job.owner,
        notify_customer=False,
        not_told_reason="Opened before the test.",
    )

    wrong_job = staff.post(customer_url("customer_question_new", customer), {**logged(john), "request-job": theirs.pk})
    wrong_contact = staff.post(
        customer_url("customer_question_new", customer), {**logged(stranger), "request-job": live_job.pk}
    )

    assert wrong_job.context["request_form"].errors["job"] == ["Choose one of this customer's open jobs."]
    assert wrong_contact.context["request_form"].errors["contact"] == [
        "Wile Coyote is a contact of another customer: choose one of Dupont household's contacts."
    ]
    assert not Question.objects.exists()


def test_a_customer_with_an_open_job_may_still_ask_about_something_new(
    staff: Client, customer: Customer, live_job: Job, installation: Pipeline, john: Contact
) -> None:
    page = staff.get(customer_url("customer", customer)).content.decode()
    assert "No job yet: open one for this request" in page

    staff.post(
        customer_url("customer_question_new", customer),
        {**logged(john), "request-job": "", "request-pipeline": installation.pk, "request-title": "Second charger"},
    )

    [question] = Question.objects.all()
    assert question.job != live_job and question.job.title == "Second charger"
