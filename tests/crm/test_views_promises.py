"""Staff pages for promises: the one-click "new date, tell them now" page with its preview, a
promise recorded by hand, a document marked delivered, the ready status update.

Time is frozen on Monday 2 March 2026, 10:00 in Paris; the heat pump job (bob's) has Marie
(French) and John (English) as contacts; its "Installed" stage is promised for Monday 30 March.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from crm.models import Commitment, Contact, Customer, Job, JobEvent, Message, Pipeline, Renegotiation
from crm.services.jobs import job_cancel, job_create
from crm.services.promises import document_promise
from crm.services.questions import question_create

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(datetime(2026, 3, 2, 10, 0, tzinfo=PARIS), tick=False)


@pytest.fixture
def john(customer: Customer) -> Contact:
    return Contact.objects.create(customer=customer, name="John Smith", email="john@example.com", language="en")


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
        notify_customer=False,
        not_told_reason="Opened before the test.",
    )


@pytest.fixture
def installed(job: Job) -> Commitment:
    return job.commitments.get(milestone__stage__name="Installed")


def closing(day: date) -> datetime:
    return datetime.combine(day, time(18, 0), tzinfo=PARIS)


def move_url(job: Job, commitment: Commitment | int) -> str:
    pk = commitment if isinstance(commitment, int) else commitment.pk
    return reverse("crm:commitment_move", args=[job.public_id, pk])


def snapshot() -> tuple:
    return (
        list(Commitment.objects.order_by("pk").values_list("pk", "state", "due_at")),
        Renegotiation.objects.count(),
        Message.objects.count(),
        JobEvent.objects.count(),
    )


GOOD = {"new_date": "2026-04-02", "reason": "The unit ships late", "note": "Sorry about this."}


# --- Access -------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client: Client, job: Job, installed: Commitment) -> None:
    for method, target in [
        ("get", move_url(job, installed)),
        ("post", move_url(job, installed)),
        ("post", reverse("crm:commitment_kept", args=[job.public_id, installed.pk])),
        ("post", reverse("crm:promise_new", args=[job.public_id])),
        ("post", reverse("crm:status_update", args=[job.public_id])),
    ]:
        response = getattr(client, method)(target)
        assert response.status_code == 302, target
        assert response["Location"].startswith("/accounts/login/?next=")
    assert Message.objects.count() == 0


def test_someone_who_is_not_staff_is_refused(client: Client, dana: User, job: Job, installed: Commitment) -> None:
    client.force_login(dana)

    assert client.get(move_url(job, installed)).status_code == 403
    assert client.post(move_url(job, installed), GOOD).status_code == 403
    assert client.post(reverse("crm:status_update", args=[job.public_id])).status_code == 403


def test_the_actions_refuse_get(staff: Client, job: Job, installed: Commitment) -> None:
    for target in [
        reverse("crm:commitment_kept", args=[job.public_id, installed.pk]),
        reverse("crm:promise_new", args=[job.public_id]),
        reverse("crm:status_update", args=[job.public_id]),
    ]:
        assert staff.get(target).status_code == 405


def test_another_jobs_promise_is_not_found_here(
    staff: Client, job: Job, customer: Customer, installation: Pipeline, bob: User
) -> None:
    other = job_create(customer=customer, pipeline=installation, owner=bob, title="Other", actor=bob, contacts=[])
    theirs = other.commitments.first()
    before = snapshot()

    assert staff.get(move_url(job, theirs)).status_code == 404
    assert staff.get(move_url(job, theirs), GOOD).status_code == 404
    assert staff.post(move_url(job, theirs), GOOD).status_code == 404
    assert staff.post(reverse("crm:commitment_kept", args=[job.public_id, theirs.pk])).status_code == 404
    assert staff.get(move_url(job, 999999)).status_code == 404
    assert snapshot() == before


# --- New date, tell them now --------------------------------------------------------------------


def test_the_page_offers_the_form(staff: Client, job: Job, installed: Commitment) -> None:
    response = staff.get(move_url(job, installed))

    assert response.status_code == 200
    page = response.text
    assert "Get in front of it: “Installed”" in page
    assert 'name="new_date"' in page
    assert 'name="reason"' in page
    assert "Tell the customer now" in page
    assert 'id="commitment-preview"></div>' in page


def test_the_preview_shows_exactly_what_is_then_sent_and_writes_nothing(
    staff: Client, job: Job, installed: Commitment, contact: Contact, john: Contact
) -> None:
    before = snapshot()

    preview = staff.get(move_url(job, installed), GOOD)

    assert preview.status_code == 200
    assert snapshot() == before
    assert "What each of the 2 contacts will receive:" in preview.text

    response = staff.post(move_url(job, installed), GOOD)

    assert response.status_code == 302
    sent = list(Message.objects.filter(job=job, kind=Message.Kind.DATE_MOVED).order_by("contact__name"))
    assert [m.contact for m in sent] == [john, contact]
    for message in sent:
        assert escape(message.subject) in preview.text
        assert escape(message.body_text) in preview.text
    assert "it was Monday 30 March 2026, it is now Thursday 2 April 2026" in sent[0].body_text


def test_the_htmx_preview_is_the_fragment_alone(staff: Client, job: Job, installed: Commitment) -> None:
    before = snapshot()

    response = staff.get(move_url(job, installed), GOOD, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div class="preview')
    assert "<html" not in response.text
    assert "The unit ships late" in response.text
    assert snapshot() == before


def test_the_preview_of_a_refused_date_says_why_and_writes_nothing(
    staff: Client, job: Job, installed: Commitment
) -> None:
    before = snapshot()

    response = staff.get(move_url(job, installed), {**GOOD, "new_date": "2026-03-30"})

    assert response.status_code == 200
    assert "2026-03-30 is already the expected date." in response.text
    assert snapshot() == before


def test_the_preview_of_an_incomplete_form_asks_to_fill_it_in(staff: Client, job: Job, installed: Commitment) -> None:
    response = staff.get(move_url(job, installed), {"new_date": "2026-04-02", "reason": ""})

    assert "Nothing will be sent to the customer." not in response.text
    assert "Fill in the form to see what the customer will receive." in response.text


def test_sending_moves_the_date_tells_the_customer_and_records_a_proactive_move(
    staff: Client, job: Job, installed: Commitment, bob: User
) -> None:
    response = staff.post(move_url(job, installed), GOOD)

    assert response.status_code == 302
    assert response["Location"] == reverse("crm:job", args=[job.public_id])
    installed.refresh_from_db()
    assert installed.due_at == closing(date(2026, 4, 2))
    assert installed.first_due_at == closing(date(2026, 3, 30))
    move = installed.renegotiations.get()
    assert (move.proactive, move.reason, move.actor) == (True, "The unit ships late", bob)
    assert Message.objects.filter(job=job, kind=Message.Kind.DATE_MOVED).count() == 2
    page = staff.get(response["Location"]).text
    assert "New date given; the customer is being told now." in page


def test_sending_a_new_answer_date_tells_the_contact_who_asked(
    staff: Client, job: Job, john: Contact, contact: Contact
) -> None:
    answer = question_create(job=job, contact=john, body="When?", source="portal").commitments.get()

    response = staff.post(move_url(job, answer), {"new_date": "2026-03-06", "reason": "Checking stock"})

    assert response.status_code == 302
    [message] = Message.objects.filter(job=job, kind=Message.Kind.PROMISE_MOVED)
    assert message.contact == john
    assert answer.renegotiations.get().proactive


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({**GOOD, "new_date": "2026-02-27"}, "The new date cannot be in the past."),
        ({**GOOD, "new_date": "not a date"}, "Enter a valid date."),
        ({**GOOD, "reason": ""}, "This field is required."),
        ({**GOOD, "new_date": "2026-03-30"}, "2026-03-30 is already the expected date."),
    ],
)
def test_bad_input_is_shown_back_and_nothing_is_written(
    staff: Client, job: Job, installed: Commitment, data: dict[str, str], error: str
) -> None:
    before = snapshot()

    response = staff.post(move_url(job, installed), data)

    assert response.status_code == 400
    assert error in response.text
    assert snapshot() == before


def test_a_kept_promise_cannot_get_a_new_date(staff: Client, job: Job, bob: User) -> None:
    doc = document_promise(job=job, title="The quote", due_on=date(2026, 3, 6), actor=bob)
    staff.post(reverse("crm:commitment_kept", args=[job.public_id, doc.pk]))
    before = snapshot()

    response = staff.post(move_url(job, doc), GOOD)

    assert response.status_code == 400
    assert "This promise is no longer open." in response.text
    assert snapshot() == before


# --- A promise recorded by hand, a document delivered -------------------------------------------


def test_recording_a_promise(staff: Client, job: Job, john: Contact, bob: User) -> None:
    response = staff.post(
        reverse("crm:promise_new", args=[job.public_id]),
        {"promise-title": "The quote", "promise-due_on": "2026-03-06", "promise-contact": john.pk},
    )

    assert response.status_code == 302
    promise = job.commitments.get(kind=Commitment.Kind.DOCUMENT)
    assert (promise.title, promise.contact, promise.owner, promise.due_at) == (
        "The quote",
        john,
        bob,
        closing(date(2026, 3, 6)),
    )
    page = staff.get(response["Location"]).text
    assert "Promise recorded: you will be reminded before it is due." in page
    assert "The quote" in page


def test_recording_a_promise_with_htmx_answers_with_the_detail_block(staff: Client, job: Job) -> None:
    response = staff.post(
        reverse("crm:promise_new", args=[job.public_id]),
        {"promise-title": "The quote", "promise-due_on": "2026-03-06"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert 'id="promises"' in response.text
    assert "<html" not in response.text
    assert job.commitments.filter(kind=Commitment.Kind.DOCUMENT, contact=None).count() == 1


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"promise-title": "", "promise-due_on": "2026-03-06"}, "This field is required."),
        ({"promise-title": "The quote", "promise-due_on": "2026-03-01"}, "A promise cannot be due in the past."),
        ({"promise-title": "The quote", "promise-due_on": ""}, "This field is required."),
    ],
)
def test_a_promise_with_bad_input_is_refused(staff: Client, job: Job, data: dict[str, str], error: str) -> None:
    before = snapshot()

    response = staff.post(reverse("crm:promise_new", args=[job.public_id]), data)

    assert response.status_code == 400
    assert error in response.text
    assert snapshot() == before


def test_a_promise_to_another_customers_contact_is_refused(staff: Client, job: Job, other_customer: Customer) -> None:
    stranger = Contact.objects.create(customer=other_customer, name="Olga", email="olga@acme.example")

    response = staff.post(
        reverse("crm:promise_new", args=[job.public_id]),
        {"promise-title": "The quote", "promise-due_on": "2026-03-06", "promise-contact": stranger.pk},
    )

    assert response.status_code == 400
    assert not job.commitments.filter(kind=Commitment.Kind.DOCUMENT).exists()


def test_a_closed_job_takes_no_new_promise(staff: Client, job: Job, bob: User) -> None:
    job_cancel(job=job, actor=bob, reason="Gone")
    before = snapshot()

    response = staff.post(
        reverse("crm:promise_new", args=[job.public_id]), {"promise-title": "The quote", "promise-due_on": "2026-03-06"}
    )

    assert response.status_code == 400
    assert snapshot() == before
    assert "This job is closed." in response.text


def test_a_delivered_document_is_marked_kept(staff: Client, job: Job, bob: User) -> None:
    doc = document_promise(job=job, title="The quote", due_on=date(2026, 3, 6), actor=bob)

    response = staff.post(reverse("crm:commitment_kept", args=[job.public_id, doc.pk]))

    assert response.status_code == 302
    doc.refresh_from_db()
    assert doc.state == Commitment.State.KEPT
    assert "Promise kept." in staff.get(response["Location"]).text


def test_a_stage_promise_is_not_marked_kept_by_hand(staff: Client, job: Job, installed: Commitment) -> None:
    response = staff.post(reverse("crm:commitment_kept", args=[job.public_id, installed.pk]), follow=True)

    assert "This promise is kept by the work itself" in response.text
    installed.refresh_from_db()
    assert installed.state == Commitment.State.OPEN


# --- The ready status update --------------------------------------------------------------------


def test_sending_the_ready_update(staff: Client, job: Job, contact: Contact, john: Contact) -> None:
    response = staff.post(reverse("crm:status_update", args=[job.public_id]), {"update-note": "All on track."})

    assert response.status_code == 302
    updates = Message.objects.filter(job=job, kind=Message.Kind.STATUS_UPDATE)
    assert {m.contact for m in updates} == {contact, john}
    assert all("All on track." in m.body_text for m in updates)
    assert "Update queued for 2 contacts." in staff.get(response["Location"]).text


def test_the_ready_update_of_a_closed_job_is_refused(staff: Client, job: Job, bob: User) -> None:
    job_cancel(job=job, actor=bob, reason="Gone")

    response = staff.post(reverse("crm:status_update", args=[job.public_id]), {"update-note": ""})

    assert response.status_code == 400
    assert not Message.objects.filter(kind=Message.Kind.STATUS_UPDATE).exists()
    assert "This job is closed." in response.text


def test_the_ready_update_needs_someone_to_send_it_to(
    staff: Client, customer: Customer, installation: Pipeline, bob: User
) -> None:
    lonely = job_create(customer=customer, pipeline=installation, owner=bob, title="t", actor=bob, contacts=[])

    response = staff.post(reverse("crm:status_update", args=[lonely.public_id]), {})

    assert response.status_code == 400
    assert "No contact on this job: nobody would receive it." in response.text


def test_the_ready_update_with_htmx_answers_with_the_detail_block(staff: Client, job: Job) -> None:
    response = staff.post(reverse("crm:status_update", args=[job.public_id]), {}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "<html" not in response.text
    assert Message.objects.filter(job=job, kind=Message.Kind.STATUS_UPDATE).count() == 2


def test_the_page_gives_the_due_time_where_the_team_works(staff: Client, job: Job, installed: Commitment) -> None:
    assert "Promised for Mon 30 Mar 18:00." in staff.get(move_url(job, installed)).text
