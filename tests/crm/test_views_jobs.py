"""The job page and its actions, the jobs list and board, the unassigned mail list."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse

from crm.models import Contact, Customer, Job, JobEvent, Message, Pipeline, Question
from crm.services.jobs import job_cancel, job_create
from crm.services.questions import question_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)


def url(name: str, job: Job, *args: object) -> str:
    return reverse(f"crm:{name}", args=[job.public_id, *args])


def stage(job: Job, position: int):
    return job.pipeline.stages.get(position=position)


# --- Access -------------------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_to_sign_in(client: Client, live_job: Job) -> None:
    for target in [reverse("crm:home"), reverse("crm:jobs"), url("job", live_job)]:
        response = client.get(target)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_it_refuses_a_signed_in_user_who_is_not_staff(client: Client, dana: User, live_job: Job) -> None:
    client.force_login(dana)
    assert client.get(url("job", live_job)).status_code == 403
    assert client.post(url("job_advance", live_job), {}).status_code == 403


def test_it_gives_a_portal_session_nothing(client: Client, contact: Contact, live_job: Job) -> None:
    session = client.session
    session["portal_contact_id"] = contact.pk
    session.save()
    response = client.get(url("job", live_job))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_it_answers_404_for_an_unknown_job(staff: Client) -> None:
    assert staff.get("/jobs/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_it_refuses_get_on_every_action(staff: Client, live_job: Job) -> None:
    for name in [
        "job_advance",
        "job_move_date",
        "job_log_call",
        "job_send_message",
        "job_reassign",
        "job_change_status",
        "job_edit_details",
    ]:
        assert staff.get(url(name, live_job)).status_code == 405
    assert live_job.events.count() == 1


# --- The page -----------------------------------------------------------------------------------


def test_it_shows_the_job(staff: Client, live_job: Job, contact: Contact) -> None:
    response = staff.get(url("job", live_job))
    assert response.status_code == 200
    body = response.content.decode()
    assert live_job.reference in body
    assert contact.name in body
    assert "Proposal sent" in body  # the timeline and the next stage
    assert "Move the job" in body


def test_it_links_a_contacts_phone_for_dialling(staff: Client, live_job: Job, contact: Contact) -> None:
    Contact.objects.filter(pk=contact.pk).update(phone="+33 6 12 34 56 78")
    body = staff.get(url("job", live_job)).content.decode()
    # Shown as the team reads a French number; the link dials it from anywhere.
    assert '<a href="tel:+33612345678">06 12 34 56 78</a>' in body


def test_it_flags_a_bounced_address(staff: Client, live_job: Job, contact: Contact) -> None:
    Contact.objects.filter(pk=contact.pk).update(email_bounced_at="2026-03-01T10:00:00Z")
    assert "email bounced" in staff.get(url("job", live_job)).content.decode()


def test_it_keeps_the_page_queries_constant(
    staff: Client, live_job: Job, contact: Contact, bob: User, charlie: User, django_assert_num_queries
) -> None:
    def grow(n: int) -> None:
        for i in range(n):
            JobEvent.objects.create(job=live_job, kind=JobEvent.Kind.DETAILS_CHANGED, actor=bob, data={})
            Message.objects.create(
                job=live_job,
                contact=contact,
                channel=Message.Channel.EMAIL,
                kind=Message.Kind.FREE,
                to_address=contact.email,
                idempotency_key=f"grow:{n}:{i}",
                status=Message.Status.SENT,
            )

    live_job.installers.set([charlie])
    grow(5)
    # 22, 3 for the details form: the job's installers, the customer's contacts, the staff; 1
    # for the "Log a request" form: the customer's contacts; 1 for the visits (their installers are
    # one more once there are any) and 3 for the "Book a visit" form: the kinds, the staff who go on
    # visits, the subcontractors it suggests; 1 for the files (however many); 1 for "Reply by
    # text": whether anyone may be texted (their list is one more when someone may); 1 INSERT in
    # the access log.
    with django_assert_num_queries(30):
        staff.get(url("job", live_job))
    grow(50)
    with django_assert_num_queries(30):
        staff.get(url("job", live_job))


# --- Advance ------------------------------------------------------------------------------------


def test_it_advances_and_queues_the_message(staff: Client, live_job: Job, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            url("job_advance", live_job),
            {
                "advance-to_stage": stage(live_job, 2).pk,
                "advance-note": "See you soon",
                "advance-notify_customer": "on",
                "advance-expected_stage": live_job.current_stage_id,
            },
        )
    assert response.status_code == 302
    live_job.refresh_from_db()
    assert live_job.current_stage.position == 2
    assert Message.objects.filter(job=live_job, kind=Message.Kind.STAGE_CHANGE).count() == 1
    assert len(mail.outbox) == 1
    assert "See you soon" in mail.outbox[0].body


def test_it_swaps_the_detail_block_for_htmx(staff: Client, live_job: Job) -> None:
    response = staff.post(
        url("job_advance", live_job),
        {
            "advance-to_stage": stage(live_job, 2).pk,
            "advance-expected_stage": live_job.current_stage_id,
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="job-detail">')
    assert "is now at" in body
    assert "<html" not in body


def test_it_shows_a_conflict_when_a_colleague_moved_the_job(staff: Client, live_job: Job, alice: User) -> None:
    seen = live_job.current_stage_id
    from crm.services.jobs import job_advance

    job_advance(job=live_job, to_stage=stage(live_job, 2), actor=alice)
    response = staff.post(
        url("job_advance", live_job),
        {"advance-to_stage": stage(live_job, 3).pk, "advance-expected_stage": seen},
    )
    assert response.status_code == 400
    assert "Alice Martin moved job" in response.content.decode()
    live_job.refresh_from_db()
    assert live_job.current_stage.position == 2


def test_it_refuses_going_back_without_a_reason(staff: Client, live_job: Job) -> None:
    from crm.services.jobs import job_advance

    job_advance(job=live_job, to_stage=stage(live_job, 3), actor=None, notify_customer=False)
    live_job.refresh_from_db()
    events = live_job.events.count()
    response = staff.post(
        url("job_advance", live_job),
        {"advance-to_stage": stage(live_job, 2).pk, "advance-expected_stage": live_job.current_stage_id},
    )
    assert response.status_code == 400
    assert "needs a reason" in response.content.decode()
    assert live_job.events.count() == events


def test_it_refuses_to_advance_a_cancelled_job(staff: Client, live_job: Job, bob: User) -> None:
    job_cancel(job=live_job, actor=bob, reason="Customer moved")
    response = staff.post(
        url("job_advance", live_job),
        {"advance-to_stage": stage(live_job, 2).pk, "advance-expected_stage": live_job.current_stage_id},
    )
    assert response.status_code == 400
    assert "cancelled" in response.content.decode()


def test_it_previews_exactly_what_is_then_sent(
    staff: Client, live_job: Job, django_capture_on_commit_callbacks
) -> None:
    params = {
        "advance-to_stage": stage(live_job, 2).pk,
        "advance-note": "Bring <b>the</b> keys",
        "advance-notify_customer": "on",
        "advance-expected_stage": live_job.current_stage_id,
    }
    preview = staff.get(url("job_advance_preview", live_job), params, HTTP_HX_REQUEST="true")
    assert preview.status_code == 200
    shown = preview.context["preview"]["drafts"]
    assert len(shown) == 1
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(url("job_advance", live_job), params)
    sent = Message.objects.get(job=live_job, kind=Message.Kind.STAGE_CHANGE)
    assert (sent.subject, sent.body_text, sent.body_html) == (shown[0].subject, shown[0].body_text, shown[0].body_html)
    # The preview is escaped on the page.
    assert "Bring &lt;b&gt;the&lt;/b&gt; keys" in preview.content.decode()


def test_it_previews_nothing_when_the_customer_is_not_told(staff: Client, live_job: Job) -> None:
    response = staff.get(
        url("job_advance_preview", live_job),
        {"advance-to_stage": stage(live_job, 2).pk, "advance-expected_stage": live_job.current_stage_id},
        HTTP_HX_REQUEST="true",
    )
    assert "Nothing will be sent" in response.content.decode()


def test_it_never_changes_anything_on_a_preview(staff: Client, live_job: Job) -> None:
    staff.get(
        url("job_advance_preview", live_job),
        {"advance-to_stage": stage(live_job, 2).pk, "advance-notify_customer": "on", "advance-expected_stage": 1},
    )
    live_job.refresh_from_db()
    assert live_job.current_stage.position == 1
    assert not Message.objects.exists()


# --- Move a date --------------------------------------------------------------------------------


def test_it_moves_a_date_and_tells_the_customer(
    staff: Client, live_job: Job, django_capture_on_commit_callbacks
) -> None:
    milestone = live_job.milestones.get(stage__position=5)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            url("job_move_date", live_job),
            {
                "move-milestone": milestone.pk,
                "move-new_date": "2026-04-02",
                "move-reason": "The engineer is ill",
                "move-tell_customer": "on",
            },
        )
    assert response.status_code == 302
    milestone.refresh_from_db()
    assert milestone.forecast_date == date(2026, 4, 2)
    event = live_job.events.get(kind=JobEvent.Kind.DATE_MOVED)
    assert event.data["before_old_date"] is True
    moved = Message.objects.get(job=live_job, kind=Message.Kind.DATE_MOVED)
    assert "The engineer is ill" in moved.body_text
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"move-new_date": "2026-02-01", "move-reason": "x"}, "cannot be in the past"),
        ({"move-new_date": "2026-04-02", "move-reason": ""}, "This field is required"),
        ({"move-new_date": "not a date", "move-reason": "x"}, "Enter a valid date"),
    ],
)
def test_it_explains_a_bad_date_move(staff: Client, live_job: Job, data: dict[str, str], error: str) -> None:
    milestone = live_job.milestones.get(stage__position=5)
    response = staff.post(url("job_move_date", live_job), {"move-milestone": milestone.pk, **data})
    assert response.status_code == 400
    assert error in response.content.decode()
    milestone.refresh_from_db()
    assert milestone.forecast_date == milestone.planned_date


# --- Calls, messages, questions -----------------------------------------------------------------


def test_it_logs_a_call_with_a_callback_promise(staff: Client, live_job: Job, contact: Contact) -> None:
    response = staff.post(
        url("job_log_call", live_job),
        {
            "call-contact": contact.pk,
            "call-outcome": "reached",
            "call-notes": "Wants the morning",
            "call-callback_on": "2026-03-04",
        },
    )
    assert response.status_code == 302
    call = Message.objects.get(job=live_job, kind=Message.Kind.CALL)
    assert call.callback_due_on == date(2026, 3, 4)
    assert live_job.events.filter(kind=JobEvent.Kind.CALL_LOGGED).count() == 1


def test_it_refuses_a_call_with_a_stranger(staff: Client, live_job: Job, other_customer: Customer) -> None:
    stranger = Contact.objects.create(customer=other_customer, name="Stranger", email="s@example.com")
    response = staff.post(url("job_log_call", live_job), {"call-contact": stranger.pk, "call-outcome": "reached"})
    assert response.status_code == 400
    assert not Message.objects.filter(kind=Message.Kind.CALL).exists()


def test_it_sends_a_free_message(
    staff: Client, live_job: Job, contact: Contact, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            url("job_send_message", live_job), {"message-contacts": [contact.pk], "message-body": "Parts arrived"}
        )
    assert response.status_code == 302
    assert mail.outbox[0].to == [contact.email]
    assert "Parts arrived" in mail.outbox[0].body


def test_it_refuses_an_empty_message(staff: Client, live_job: Job, contact: Contact) -> None:
    response = staff.post(url("job_send_message", live_job), {"message-contacts": [contact.pk], "message-body": " "})
    assert response.status_code == 400
    assert not Message.objects.exists()


def test_it_answers_a_question(
    staff: Client, live_job: Job, contact: Contact, django_capture_on_commit_callbacks
) -> None:
    question = question_create(job=live_job, contact=contact, body="Morning?", source=Question.Source.PORTAL)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(url("question_answer", live_job, question.pk), {"body": "Yes, 8 am."})
    assert response.status_code == 302
    question.refresh_from_db()
    assert question.answered_at is not None
    assert any("Yes, 8 am." in m.body for m in mail.outbox)


# --- Owner and status ---------------------------------------------------------------------------


def test_it_lets_only_managers_reassign(client: Client, live_job: Job, alice: User, bob: User, charlie: User) -> None:
    client.force_login(bob)
    assert client.post(url("job_reassign", live_job), {"owner-owner": charlie.pk}).status_code == 403
    client.force_login(alice)
    assert client.post(url("job_reassign", live_job), {"owner-owner": charlie.pk}).status_code == 302
    live_job.refresh_from_db()
    assert live_job.owner == charlie


@pytest.mark.parametrize(
    ("action", "reason", "status"),
    [
        ("hold", "Waiting for parts", Job.Status.ON_HOLD),
        ("cancel", "Moved away", Job.Status.CANCELLED),
        ("complete", "", Job.Status.DONE),
    ],
)
def test_it_changes_the_status(staff: Client, live_job: Job, action: str, reason: str, status: str) -> None:
    response = staff.post(url("job_change_status", live_job), {"status-action": action, "status-reason": reason})
    assert response.status_code == 302
    live_job.refresh_from_db()
    assert live_job.status == status


def test_it_needs_a_reason_to_hold(staff: Client, live_job: Job) -> None:
    response = staff.post(url("job_change_status", live_job), {"status-action": "hold", "status-reason": ""})
    assert response.status_code == 400
    assert "Say why." in response.content.decode()


def test_it_explains_a_forbidden_status_change(staff: Client, live_job: Job) -> None:
    response = staff.post(url("job_change_status", live_job), {"status-action": "resume", "status-reason": ""})
    assert response.status_code == 400
    assert "cannot be resumed" in response.content.decode()


# --- Failed messages ----------------------------------------------------------------------------


def test_it_resends_a_failed_message_to_the_corrected_address(
    staff: Client, live_job: Job, contact: Contact, django_capture_on_commit_callbacks
) -> None:
    failed = Message.objects.create(
        job=live_job,
        contact=contact,
        channel=Message.Channel.EMAIL,
        kind=Message.Kind.FREE,
        to_address="old@example.com",
        subject="Hello",
        body_text="Hello",
        status=Message.Status.BOUNCED,
        idempotency_key="bounced:1",
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(url("message_retry", live_job, failed.pk))
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == Message.Status.SENT
    assert mail.outbox[0].to == [contact.email]


def test_it_will_not_resend_to_the_address_that_bounced(staff: Client, live_job: Job, contact: Contact) -> None:
    failed = Message.objects.create(
        job=live_job,
        contact=contact,
        channel=Message.Channel.EMAIL,
        kind=Message.Kind.FREE,
        to_address=contact.email,
        status=Message.Status.BOUNCED,
        idempotency_key="bounced:2",
    )
    response = staff.post(url("message_retry", live_job, failed.pk), follow=True)
    assert "correct the contact" in response.content.decode()
    failed.refresh_from_db()
    assert failed.status == Message.Status.BOUNCED


# --- List and board -----------------------------------------------------------------------------


def test_it_lists_my_open_jobs_by_default(
    staff: Client, live_job: Job, customer: Customer, installation: Pipeline, charlie: User
) -> None:
    theirs = job_create(customer=customer, pipeline=installation, owner=charlie, title="Not mine", actor=charlie)
    body = staff.get(reverse("crm:jobs")).content.decode()
    assert live_job.reference in body
    assert theirs.reference not in body
    assert theirs.reference in staff.get(reverse("crm:jobs"), {"owner": "all"}).content.decode()


def test_it_searches_by_contact_email(staff: Client, live_job: Job) -> None:
    assert live_job.reference in staff.get(reverse("crm:jobs"), {"q": "marie@example"}).content.decode()
    assert live_job.reference not in staff.get(reverse("crm:jobs"), {"q": "nobody@"}).content.decode()


def test_it_filters_late_jobs(staff: Client, live_job: Job, time_machine) -> None:
    assert live_job.reference not in staff.get(reverse("crm:jobs"), {"late": "1"}).content.decode()
    time_machine.move_to("2026-03-10 10:00:00+01:00", tick=False)  # "Proposal sent" (5 March) is overdue
    assert live_job.reference in staff.get(reverse("crm:jobs"), {"late": "1"}).content.decode()


def test_it_keeps_the_list_queries_constant(
    staff: Client, customer: Customer, installation: Pipeline, bob: User, django_assert_max_num_queries
) -> None:
    def make(n: int) -> None:
        for i in range(n):
            job_create(customer=customer, pipeline=installation, owner=bob, title=f"Job {i}", actor=bob)

    make(3)
    with django_assert_max_num_queries(15) as small:
        staff.get(reverse("crm:jobs"))
    make(27)
    with django_assert_max_num_queries(15) as large:
        staff.get(reverse("crm:jobs"))
    assert len(large.captured_queries) == len(small.captured_queries)


def test_it_shows_the_board(staff: Client, live_job: Job) -> None:
    response = staff.get(reverse("crm:job_board"))
    assert response.status_code == 200
    assert live_job.reference in response.content.decode()


# --- Unassigned mail ----------------------------------------------------------------------------


def test_it_files_an_unassigned_email(staff: Client, live_job: Job, contact: Contact) -> None:
    email = Message.objects.create(
        channel=Message.Channel.EMAIL,
        direction=Message.Direction.IN,
        kind=Message.Kind.REPLY,
        status=Message.Status.RECEIVED,
        from_address=contact.email,
        contact=contact,
        subject="About my pump",
        idempotency_key="in:1",
    )
    page = staff.get(reverse("crm:inbox")).content.decode()
    assert "About my pump" in page
    response = staff.post(reverse("crm:inbox_assign", args=[email.pk]), {"job": live_job.pk})
    assert response.status_code == 302
    email.refresh_from_db()
    assert email.job == live_job
    assert live_job.events.filter(kind=JobEvent.Kind.MESSAGE_ASSIGNED).exists()
