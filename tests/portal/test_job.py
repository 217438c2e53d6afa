"""portal.views.job_detail: where the job stands, when the next thing happens, whom to call, what
was said — only ever for the signed-in contact's customer."""

from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Contact, Customer, Job, JobEvent, Message, Milestone, Pipeline, Question, StageTemplate
from crm.notify import free_message_drafts
from crm.services.jobs import job_complete, job_create, job_hold, milestone_move
from crm.services.outbox import messages_queue
from crm.services.questions import question_create

from .conftest import PARIS, advance, sign_in

FRENCH_CATALOGUE = settings.BASE_DIR / "locale" / "fr" / "LC_MESSAGES" / "django.mo"


def job_url(job: Job) -> str:
    return reverse("portal:job", args=[job.public_id])


def installed(job: Job) -> Milestone:
    return job.milestones.get(stage__name="Installed")


def tell(job: Job, contact: Contact, body: str) -> Message:
    [message] = messages_queue(
        drafts=free_message_drafts(job, body=body, contacts=[contact]),
        job=job,
        key=lambda d: f"test:{d.contact.pk}:{body[:20]}",
    )
    return message


# --- Status, next step, what to prepare ---------------------------------------------------------


def test_it_says_where_the_job_stands_and_what_comes_next(john_client: Client, job: Job) -> None:
    advance(job, "Order confirmed")
    response = john_client.get(job_url(job))
    assert response.status_code == 200
    page = response.text
    assert '<p class="status-headline">Order confirmed</p>' in page
    assert "Next: <strong>Installation scheduled</strong> — Monday 16 March" in page


def test_it_shows_what_to_prepare_for_the_next_step(john_client: Client, job: Job) -> None:
    StageTemplate.objects.filter(pipeline=job.pipeline, name="Proposal sent").update(
        customer_instructions="Send us photos of your electrical panel."
    )
    page = john_client.get(job_url(job)).text
    assert "What to prepare" in page
    assert "Send us photos of your electrical panel." in page


def test_it_says_so_when_the_next_date_has_passed(john_client: Client, job: Job, time_machine) -> None:
    time_machine.move_to(datetime(2026, 3, 9, 10, 0, tzinfo=PARIS), tick=False)
    page = john_client.get(job_url(job)).text
    assert "This date has passed and we are late. Bob Durand will confirm a new date with you." in page


def test_it_says_when_a_job_is_on_hold(john_client: Client, job: Job) -> None:
    job_hold(job=job, actor=job.owner, reason="Waiting for the landlord")
    page = john_client.get(job_url(job)).text
    assert "Work is paused for now. Bob Durand will tell you as soon as it starts again." in page
    assert "Waiting for the landlord" not in page


def test_it_keeps_a_finished_job_readable(john_client: Client, job: Job) -> None:
    advance(job, "Follow-up")
    job_complete(job=job, actor=job.owner)
    page = john_client.get(job_url(job)).text
    assert "Your job was finished on Monday 2 March. Thank you!" in page
    assert "Installed" in page


# --- Timeline -----------------------------------------------------------------------------------


def test_it_lists_the_customer_visible_stages_with_their_dates(john_client: Client, job: Job) -> None:
    page = john_client.get(job_url(job)).text
    for name in ("Request received", "Proposal sent", "Order confirmed", "Installation scheduled", "Installed"):
        assert f'<p class="timeline-stage mb-0">{name}' in page
    assert "Follow-up" not in page
    assert "Done on Monday 2 March" in page
    assert "Expected on Monday 30 March" in page


def test_it_explains_a_moved_date_it_told_the_customer_about(
    client: Client, john: Contact, job: Job, time_machine
) -> None:
    time_machine.move_to(datetime(2026, 3, 25, 9, 0, tzinfo=PARIS), tick=False)
    milestone_move(
        milestone=installed(job),
        new_date=date(2026, 4, 2),
        reason="The unit ships late",
        actor=job.owner,
        tell_customer=True,
    )
    page = sign_in(client, john).get(job_url(job)).text
    assert "Expected on Thursday 2 April</p>" in page
    assert "Was 30 March, now 2 April — we told you on 25 March. Why: The unit ships late" in page


def test_it_does_not_claim_it_told_the_customer_when_it_did_not(john_client: Client, job: Job) -> None:
    milestone_move(
        milestone=installed(job),
        new_date=date(2026, 4, 2),
        reason="Internal planning",
        actor=job.owner,
        tell_customer=False,
    )
    page = john_client.get(job_url(job)).text
    assert "Was 30 March, now 2 April." in page
    assert "we told you" not in page
    assert "Internal planning" not in page


def test_it_explains_dates_pushed_out_by_a_late_stage(client: Client, john: Contact, job: Job, time_machine) -> None:
    # Proposal sent was due Thursday 5 March; reached Thursday 19 March, the rest of the plan slides.
    time_machine.move_to(datetime(2026, 3, 19, 9, 0, tzinfo=PARIS), tick=False)
    advance(job, "Proposal sent", notify_customer=False)
    page = sign_in(client, john).get(job_url(job)).text
    assert "Was 12 March, now 26 March." in page


def test_dates_pushed_out_by_a_late_stage_are_told_in_its_message(
    client: Client, john: Contact, job: Job, time_machine
) -> None:
    time_machine.move_to(datetime(2026, 3, 19, 9, 0, tzinfo=PARIS), tick=False)
    advance(job, "Proposal sent")
    page = sign_in(client, john).get(job_url(job)).text
    assert "Was 12 March, now 26 March — we told you on 19 March." in page


def test_it_shows_the_stage_names_in_the_contacts_language(marie_client: Client, job: Job) -> None:
    StageTemplate.objects.filter(pipeline=job.pipeline, name="Installed").update(name_fr="Installé")
    page = marie_client.get(job_url(job)).text
    assert "Installé" in page


# --- Owner card ---------------------------------------------------------------------------------


def test_it_shows_the_point_of_contact(john_client: Client, job: Job) -> None:
    page = john_client.get(job_url(job)).text
    assert "Your point of contact" in page
    assert "Bob Durand" in page
    assert ">BD<" in page
    assert "Project manager" in page
    assert 'href="tel:+33199001202"' in page
    assert 'href="mailto:bob@example.com"' in page


def test_it_shows_an_owner_without_a_profile(client: Client, customer: Customer, john: Contact, repair, alice) -> None:
    job = job_create(customer=customer, pipeline=repair, owner=alice, title="Boiler", actor=alice)
    page = sign_in(client, john).get(job_url(job)).text
    assert "Alice Martin" in page
    assert "tel:" not in page


# --- Messages -----------------------------------------------------------------------------------


def test_it_lists_messages_both_ways_newest_first(john_client: Client, job: Job, john: Contact, time_machine) -> None:
    question_create(job=job, contact=john, body="Is Monday fine?", source="portal")
    time_machine.shift(3600)
    tell(job, john, "Monday is perfect.")
    page = john_client.get(job_url(job)).text
    assert page.index("Monday is perfect.") < page.index("Is Monday fine?")
    assert "From you" in page and "From us" in page


def test_it_escapes_what_people_wrote(john_client: Client, job: Job, john: Contact) -> None:
    tell(job, john, "<script>alert('x')</script> & <b>bold</b>")
    page = john_client.get(job_url(job)).text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>alert" not in page


def test_it_never_shows_call_scripts_sign_in_links_or_other_contacts_messages(
    john_client: Client, job: Job, john: Contact, contact: Contact
) -> None:
    Message.objects.create(
        job=job,
        contact=john,
        channel=Message.Channel.PHONE,
        kind=Message.Kind.STAGE_CHANGE,
        status=Message.Status.CALL_PENDING,
        body_text="CALL SCRIPT: mention the discount",
        idempotency_key="call",
    )
    Message.objects.create(
        job=job,
        contact=john,
        channel=Message.Channel.EMAIL,
        kind=Message.Kind.PORTAL_LINK,
        body_text="SIGN-IN LINK",
        idempotency_key="link",
    )
    tell(job, contact, "Bonjour Marie, message for Marie only")
    page = john_client.get(job_url(job)).text
    assert "CALL SCRIPT" not in page
    assert "SIGN-IN LINK" not in page
    assert "message for Marie only" not in page


def test_it_says_when_a_message_did_not_arrive(john_client: Client, job: Job, john: Contact) -> None:
    message = tell(job, john, "Your parts are here")
    Message.objects.filter(pk=message.pk).update(status=Message.Status.BOUNCED)
    assert "not delivered" in john_client.get(job_url(job)).text


def test_it_shows_open_questions_with_their_promised_date(john_client: Client, job: Job, john: Contact) -> None:
    question_create(job=job, contact=john, body="Can you come earlier?", source="phone")
    page = john_client.get(job_url(job)).text
    assert "Can you come earlier?" in page
    # A phone request: 4 business hours (Monday 14:00) plus one business day of buffer.
    assert "Answer promised by Tuesday 3 March." in page


# --- Scope --------------------------------------------------------------------------------------


def test_it_is_404_for_another_customers_job(john_client: Client, stranger_job: Job) -> None:
    assert john_client.get(job_url(stranger_job)).status_code == 404


def test_it_is_404_for_an_unknown_job(john_client: Client) -> None:
    assert john_client.get(reverse("portal:job", args=["00000000-0000-0000-0000-000000000000"])).status_code == 404


def test_it_shows_any_job_of_the_contacts_customer(
    client: Client, customer: Customer, john: Contact, repair, bob
) -> None:
    # A colleague's job at the same customer: the portal is the customer's, not one person's.
    other = Contact.objects.create(customer=customer, name="Paul", email="paul@example.com")
    job = job_create(customer=customer, pipeline=repair, owner=bob, title="Fridge", actor=bob, contacts=[other])
    assert sign_in(client, john).get(job_url(job)).status_code == 200


def test_it_is_never_cached(john_client: Client, job: Job) -> None:
    cache_control = john_client.get(job_url(job))["Cache-Control"]
    assert "no-store" in cache_control and "private" in cache_control


# --- Speed --------------------------------------------------------------------------------------


def big_job(customer: Customer, contact: Contact, owner: User, size: int) -> Job:
    """A job with ``size`` customer-visible stages, ``size`` messages, questions and date moves."""
    pipeline = Pipeline.objects.create(name=f"Big {size}")
    StageTemplate.objects.bulk_create(
        StageTemplate(pipeline=pipeline, position=i, name=f"Stage {i}", default_duration_days=1)
        for i in range(1, size + 1)
    )
    job = job_create(
        customer=customer, pipeline=pipeline, owner=owner, title=f"Big {size}", actor=owner, contacts=[contact]
    )
    Message.objects.bulk_create(
        Message(
            job=job,
            contact=contact,
            channel=Message.Channel.EMAIL,
            kind=Message.Kind.FREE,
            subject=f"Note {i}",
            body_text=f"Body {i}",
            status=Message.Status.SENT,
            idempotency_key=f"big:{size}:{i}",
        )
        for i in range(size)
    )
    for i, milestone in enumerate(job.milestones.filter(completed_at__isnull=True).order_by("stage__position")[:size]):
        JobEvent.objects.create(
            job=job,
            kind=JobEvent.Kind.DATE_MOVED,
            data={
                "milestone_id": milestone.pk,
                "old_date": "2026-03-03",
                "new_date": f"2026-04-{i % 28 + 1:02d}",
                "tell_customer": True,
                "reason": "r",
            },
        )
    for i in range(size):
        question_create(job=job, contact=contact, body=f"Question {i}", source="phone")
    return job


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_it_costs_the_same_few_queries_for_5_or_100_milestones_and_messages(
    john_client: Client, customer: Customer, john: Contact, bob: User, django_assert_max_num_queries, settings
) -> None:
    settings.PORTAL_PAGE_CACHE_SECONDS = 0  # the rendering itself, as for the first view after a change
    small = big_job(customer, john, bob, 5)
    large = big_job(customer, john, bob, 100)
    # 9 with the job's files (one query however many).
    with django_assert_max_num_queries(9):
        john_client.get(job_url(large))
    assert count_queries(john_client, job_url(small)) == count_queries(john_client, job_url(large))


# --- Language -----------------------------------------------------------------------------------


def test_it_speaks_the_contacts_language(marie_client: Client, job: Job) -> None:
    response = marie_client.get(job_url(job))
    assert '<html lang="fr">' in response.text
    assert response["Content-Language"] == "fr"
    # Dates by Django's own French catalogue.
    assert "lundi 2 mars" in response.text
    assert "lundi 30 mars" in response.text


def test_it_speaks_french_in_its_own_words(marie_client: Client, job: Job) -> None:
    page = marie_client.get(job_url(job)).text
    assert "Votre interlocuteur" in page
    assert "Poser une question" in page


def test_it_shows_times_in_the_contacts_time_zone(john_client: Client, job: Job, john: Contact) -> None:
    tell(job, john, "Hello")
    # Sent at 10:00 in Paris, 09:00 in London where John lives.
    assert "2 March, 09:00" in john_client.get(job_url(job)).text


def test_it_says_when_every_visible_step_is_done(john_client: Client, job: Job) -> None:
    advance(job, "Follow-up")
    page = john_client.get(job_url(job)).text
    assert '<p class="status-headline">Installed</p>' in page
    assert "Every step is done: we are wrapping up" in page


def test_it_shows_when_a_question_was_answered(john_client: Client, job: Job, john: Contact) -> None:
    question = question_create(job=job, contact=john, body="Which brand?", source="phone")
    Question.objects.filter(pk=question.pk).update(answered_at=timezone.now())
    assert "Answered on 2 March." in john_client.get(job_url(job)).text


def test_it_never_shows_the_notes_of_a_logged_call(john_client: Client, job: Job, john: Contact, bob: User) -> None:
    from crm.services.messages import CallOutcome, call_log

    Message.objects.create(
        job=job,
        contact=john,
        channel=Message.Channel.PHONE,
        kind=Message.Kind.STAGE_CHANGE,
        status=Message.Status.CALL_PENDING,
        body_text="CALL SCRIPT: read this out",
        idempotency_key="call-task",
    )
    call_log(job=job, contact=john, actor=bob, outcome=CallOutcome.REACHED, notes="INTERNAL: grumpy, offer a discount")
    page = john_client.get(job_url(job)).text
    # The call task is done now (sent), and still a script for staff.
    assert "CALL SCRIPT" not in page
    assert "INTERNAL" not in page
