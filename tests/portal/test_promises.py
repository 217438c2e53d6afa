"""portal job page, "What we promised you": every date we gave this contact (or everyone on the job)
and what became of it, in plain words — kept (early, on time, late), moved (and when we told them),
missed — never a withdrawn promise, never another contact's.

Time starts frozen on Monday 2 March 2026, 10:00 in Paris (see conftest.py for the job's plan).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Commitment, Contact, Customer, Job, Pipeline, Renegotiation, StageTemplate
from crm.services.jobs import commitment_move_and_tell, job_cancel, job_create, milestone_move
from crm.services.messages import CallOutcome, call_log
from crm.services.promises import document_promise
from crm.services.questions import question_answer, question_create
from crm.services.scan import scan

from .conftest import PARIS, advance, sign_in


def job_url(job: Job) -> str:
    return reverse("portal:job", args=[job.public_id])


def section(page: str) -> str:
    """The "What we promised you" card alone, its text with tags and spacing squeezed out."""
    match = re.search(r'<section[^>]*id="promises".*?</section>', page, re.S)
    if match is None:
        return ""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0))).strip()


def promises_of(client: Client, job: Job) -> str:
    response = client.get(job_url(job))
    assert response.status_code == 200
    return section(response.text)


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


# --- What is listed -----------------------------------------------------------------------------


def test_it_lists_each_stage_date_we_promised(john_client: Client, job: Job) -> None:
    text = promises_of(john_client, job)

    assert text.startswith("What we promised you Every date we gave you, and whether we kept it.")
    assert (
        "Proposal sent Promised by Thursday 5 March. "
        "Order confirmed Promised by Thursday 12 March. "
        "Installation scheduled Promised by Monday 16 March. "
        "Installed Promised by Monday 30 March."
    ) in text
    # Reached at once, or internal: never a promise.
    assert "Request received" not in text
    assert "Follow-up" not in text


def test_it_names_stages_in_the_contacts_language(marie_client: Client, job: Job) -> None:
    StageTemplate.objects.filter(pipeline=job.pipeline, name="Installed").update(name_fr="Installé")

    assert "Installé" in promises_of(marie_client, job)


def test_it_says_nothing_about_promises_when_there_are_none(
    john_client: Client, customer: Customer, john: Contact, bob: User, bob_profile
) -> None:
    pipeline = Pipeline.objects.create(name="One step")
    StageTemplate.objects.create(pipeline=pipeline, position=1, name="Done")
    job = job_create(customer=customer, pipeline=pipeline, owner=bob, title="Quick fix", actor=bob)

    page = john_client.get(job_url(job)).text

    assert 'id="promises"' not in page


# --- Kept ---------------------------------------------------------------------------------------


def test_it_says_a_promise_was_kept_ahead_of_time(client: Client, john: Contact, job: Job, time_machine) -> None:
    time_machine.move_to(at(3, 4, 11), tick=False)
    advance(job, "Proposal sent")

    text = promises_of(sign_in(client, john), job)

    assert "Proposal sent Kept: done on Wednesday 4 March, ahead of time." in text


def test_it_says_a_promise_was_kept_on_time(client: Client, john: Contact, job: Job, time_machine) -> None:
    time_machine.move_to(at(3, 5, 17), tick=False)
    advance(job, "Proposal sent")

    text = promises_of(sign_in(client, john), job)

    assert "Proposal sent Kept: done on Thursday 5 March, on time." in text


def test_it_says_when_a_promise_was_kept_late(client: Client, john: Contact, job: Job, time_machine) -> None:
    time_machine.move_to(at(3, 19, 9), tick=False)
    advance(job, "Proposal sent")

    text = promises_of(sign_in(client, john), job)

    assert "Proposal sent Done on Thursday 19 March, later than we first promised (5 March)." in text


# --- Moved --------------------------------------------------------------------------------------


def test_it_shows_a_moved_date_and_when_we_told_them(client: Client, john: Contact, job: Job, time_machine) -> None:
    time_machine.move_to(at(3, 25, 9), tick=False)
    milestone_move(
        milestone=job.milestones.get(stage__name="Installed"),
        new_date=date(2026, 4, 2),
        reason="The unit ships late",
        actor=job.owner,
        tell_customer=True,
    )

    text = promises_of(sign_in(client, john), job)

    assert (
        "Installed Promised by Thursday 2 April. "
        "Moved from 30 March to 2 April — we told you on 25 March. Why: The unit ships late"
    ) in text


def test_it_shows_a_date_that_moved_without_a_word_and_keeps_the_reason_internal(
    client: Client, john: Contact, job: Job, time_machine
) -> None:
    # Proposal sent is reached two weeks late, without telling the customer: the later stages
    # slide without a message.
    time_machine.move_to(at(3, 19, 9), tick=False)
    advance(job, "Proposal sent", notify_customer=False)

    text = promises_of(sign_in(client, john), job)

    assert "Order confirmed Promised by Thursday 26 March. Moved from 12 March to 26 March on 19 March." in text
    assert "we told you" not in text
    assert "was reached later than planned." not in text


def test_a_late_stage_whose_message_lists_the_later_dates_says_we_told_you(
    client: Client, john: Contact, job: Job, time_machine
) -> None:
    time_machine.move_to(at(3, 19, 9), tick=False)
    advance(job, "Proposal sent")

    text = promises_of(sign_in(client, john), job)

    # Installed (30 March) was still ahead: told in time. Order confirmed (12 March) had passed.
    assert "Moved from 30 March to 13 April — we told you on 19 March." in text
    assert "Moved from 12 March to 26 March — we told you on 19 March, after the earlier date had passed." in text


def test_it_says_so_when_we_told_them_after_the_date_had_passed(
    client: Client, john: Contact, job: Job, bob: User, time_machine
) -> None:
    document_promise(job=job, title="The quote", due_on=date(2026, 3, 3), actor=bob)
    time_machine.move_to(at(3, 4, 9), tick=False)
    # Broken first (the scan ran), then a new date given the day after.
    scan()
    commitment_move_and_tell(
        commitment=job.commitments.get(title="The quote"), new_date=date(2026, 3, 6), reason="Prices", actor=bob
    )

    text = promises_of(sign_in(client, john), job)

    assert (
        "The quote Promised by Friday 6 March. "
        "Moved from 3 March to 6 March — we told you on 4 March, after the earlier date had passed. Why: Prices"
    ) in text


def test_a_moved_and_kept_promise_shows_both(client: Client, john: Contact, job: Job, time_machine) -> None:
    time_machine.move_to(at(3, 3, 9), tick=False)
    commitment_move_and_tell(
        commitment=job.commitments.get(milestone__stage__name="Proposal sent"),
        new_date=date(2026, 3, 9),
        reason="Survey first",
        actor=job.owner,
    )
    time_machine.move_to(at(3, 9, 12), tick=False)
    advance(job, "Proposal sent")

    text = promises_of(sign_in(client, john), job)

    assert (
        "Proposal sent Done on Monday 9 March, later than we first promised (5 March). "
        "Moved from 5 March to 9 March — we told you on 3 March. Why: Survey first"
    ) in text


# --- Missed -------------------------------------------------------------------------------------


def test_it_owns_up_to_a_missed_date(client: Client, john: Contact, job: Job, time_machine) -> None:
    time_machine.move_to(at(3, 6, 9), tick=False)
    scan()
    assert job.commitments.get(milestone__stage__name="Proposal sent").state == Commitment.State.BROKEN

    text = promises_of(sign_in(client, john), job)

    assert (
        "Proposal sent We promised this by Thursday 5 March and missed that date. "
        "We are sorry: Bob Durand will give you a new date."
    ) in text


def test_it_owns_up_to_a_missed_date_before_the_scan_has_run(
    client: Client, john: Contact, job: Job, time_machine
) -> None:
    time_machine.move_to(at(3, 5, 18, 1), tick=False)

    text = promises_of(sign_in(client, john), job)

    assert "Proposal sent We promised this by Thursday 5 March and missed that date." in text
    assert "Order confirmed Promised by Thursday 12 March." in text


# --- What is never shown ------------------------------------------------------------------------


def test_it_never_shows_a_withdrawn_promise(client: Client, john: Contact, job: Job, time_machine) -> None:
    time_machine.move_to(at(3, 4, 11), tick=False)
    advance(job, "Proposal sent")
    job_cancel(job=job, actor=job.owner, reason="Customer moved house")

    text = promises_of(sign_in(client, john), job)

    assert "Proposal sent Kept: done on Wednesday 4 March, ahead of time." in text
    for withdrawn in ("Order confirmed", "Installation scheduled", "Installed"):
        assert withdrawn not in text


def test_it_shows_each_contact_only_their_own_promises_and_the_jobs(
    client: Client, john: Contact, contact: Contact, job: Job, bob: User
) -> None:
    call_log(job=job, contact=john, actor=bob, outcome=CallOutcome.REACHED, callback_on=date(2026, 3, 4))
    document_promise(job=job, title="Wiring diagram for John", due_on=date(2026, 3, 6), actor=bob, contact=john)
    document_promise(job=job, title="The quote", due_on=date(2026, 3, 9), actor=bob)
    question_create(job=job, contact=john, body="Can you also look at the boiler?", source="portal")

    johns = promises_of(sign_in(client, john), job)
    client.cookies.clear()
    maries = promises_of(sign_in(client, contact), job)

    assert "A call back from us Promised by Wednesday 4 March." in johns
    assert "Wiring diagram for John Promised by Friday 6 March." in johns
    assert "An answer to your question of 2 March Promised by Wednesday 4 March." in johns
    assert "The quote Promised by Monday 9 March." in johns
    assert "The quote" in maries
    for theirs in ("call back", "Wiring diagram", "An answer to your question"):
        assert theirs not in maries


def test_it_never_shows_what_staff_called_a_promise_to_someone_else(
    client: Client, john: Contact, contact: Contact, job: Job, bob: User
) -> None:
    call = call_log(job=job, contact=contact, actor=bob, outcome=CallOutcome.REACHED, callback_on=date(2026, 3, 4))
    Commitment.objects.filter(call=call).update(title="Call Marie back about the unpaid invoice")

    page = sign_in(client, john).get(job_url(job)).text

    assert "unpaid invoice" not in page


def test_another_customers_promises_stay_theirs(
    client: Client, john: Contact, job: Job, stranger_job: Job, alice: User
) -> None:
    document_promise(job=stranger_job, title="Acme secret quote", due_on=date(2026, 3, 6), actor=alice)
    sign_in(client, john)

    assert "Acme secret quote" not in client.get(job_url(job)).text
    assert client.get(job_url(stranger_job)).status_code == 404


# --- Answers ------------------------------------------------------------------------------------


def test_it_shows_the_answer_we_promised_and_when_it_came(
    client: Client, john: Contact, job: Job, bob: User, time_machine
) -> None:
    question = question_create(job=job, contact=john, body="Is Thursday fine?", source="portal")
    time_machine.move_to(at(3, 3, 15), tick=False)
    question_answer(question=question, body="Yes.", actor=bob)

    text = promises_of(sign_in(client, john), job)

    assert "An answer to your question of 2 March Kept: done on Tuesday 3 March, ahead of time." in text


def test_a_new_answer_date_shows_in_the_conversation_too(
    client: Client, john: Contact, job: Job, bob: User, time_machine
) -> None:
    question = question_create(job=job, contact=john, body="Is Thursday fine?", source="portal")
    time_machine.move_to(at(3, 3, 9), tick=False)
    commitment_move_and_tell(
        commitment=question.commitments.get(), new_date=date(2026, 3, 6), reason="Checking with the maker", actor=bob
    )

    page = sign_in(client, john).get(job_url(job)).text

    assert "Moved from 4 March to 6 March — we told you on 3 March." in section(page)
    assert "Answer promised by Friday 6 March." in page
    assert "Answer promised by Wednesday 4 March." not in page


# --- Time zones, language, cost -----------------------------------------------------------------


def contact_in(customer: Customer, job: Job, time_zone: str) -> Contact:
    name = time_zone.split("/")[-1]
    far = Contact.objects.create(customer=customer, name=name, email=f"{name.lower()}@example.com", time_zone=time_zone)
    job.contacts.add(far)
    return far


def test_a_promised_day_is_the_same_day_wherever_the_contact_reads_it(
    client: Client, customer: Customer, job: Job
) -> None:
    # 18:00 in Paris on Thursday is 02:00 on Friday in Tokyo; the promise is still "by Thursday".
    far = contact_in(customer, job, "Asia/Tokyo")

    text = promises_of(sign_in(client, far), job)

    assert "Proposal sent Promised by Thursday 5 March." in text


def test_done_on_the_promised_day_where_the_contact_is_is_on_time(
    client: Client, customer: Customer, job: Job, time_machine
) -> None:
    # Due by Thursday 5 March (closing time in Paris, 18:00); done at 20:30 in Paris, which is
    # still the afternoon of Thursday 5 March in Montreal: on time, as the page's days say.
    montreal = contact_in(customer, job, "America/Montreal")
    time_machine.move_to(at(3, 5, 20, 30), tick=False)
    advance(job, "Proposal sent")

    text = promises_of(sign_in(client, montreal), job)

    assert "Proposal sent Kept: done on Thursday 5 March, on time." in text
    assert "later than we first promised" not in text


def test_done_after_the_promised_day_where_the_contact_is_is_late(
    client: Client, customer: Customer, job: Job, time_machine
) -> None:
    # The same moment is already Friday 6 March in Tokyo: the page says so, and says it was late.
    tokyo = contact_in(customer, job, "Asia/Tokyo")
    time_machine.move_to(at(3, 5, 20, 30), tick=False)
    advance(job, "Proposal sent")

    text = promises_of(sign_in(client, tokyo), job)

    assert "Proposal sent Done on Friday 6 March, later than we first promised (5 March)." in text


def test_done_the_day_before_where_the_contact_is_is_ahead_of_time(
    client: Client, customer: Customer, john: Contact, job: Job, time_machine
) -> None:
    # 01:00 on Thursday in Paris is still Wednesday 4 March, 19:00, in Montreal (and Thursday,
    # 00:00, in London).
    montreal = contact_in(customer, job, "America/Montreal")
    time_machine.move_to(at(3, 5, 1), tick=False)
    advance(job, "Proposal sent")

    assert "Proposal sent Kept: done on Wednesday 4 March, ahead of time." in promises_of(
        sign_in(client, montreal), job
    )
    client.cookies.clear()
    assert "Proposal sent Kept: done on Thursday 5 March, on time." in promises_of(sign_in(client, john), job)


def test_it_speaks_the_contacts_language(marie_client: Client, job: Job) -> None:
    text = promises_of(marie_client, job)

    assert text.startswith("Ce que nous vous avons promis")
    assert "Proposal sent Promis au plus tard le jeudi 5 mars." in text


def many_promises(customer: Customer, john: Contact, bob: User, size: int) -> Job:
    job = job_create(
        customer=customer, pipeline=Pipeline.objects.get(name="Installation"), owner=bob, title="t", actor=bob
    )
    job.contacts.add(john)
    for i in range(size):
        promise = document_promise(job=job, title=f"Doc {i}", due_on=date(2026, 3, 6), actor=bob)
        for day in (9, 10):
            Renegotiation.objects.create(
                commitment=promise,
                old_due_at=promise.due_at,
                new_due_at=at(3, day, 18),
                reason="r",
                told_customer_at=at(3, 2, 10),
                proactive=True,
            )
    return job


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_page_costs_the_same_for_1_or_60_promises(
    john_client: Client, customer: Customer, john: Contact, bob: User, job: Job, django_assert_max_num_queries, settings
) -> None:
    settings.PORTAL_PAGE_CACHE_SECONDS = 0  # the rendering itself, as for the first view after a change
    small = many_promises(customer, john, bob, 1)
    large = many_promises(customer, john, bob, 60)

    with django_assert_max_num_queries(9):  # the job's files: one query
        page = john_client.get(job_url(large)).text
    assert count_queries(john_client, job_url(small)) == count_queries(john_client, job_url(large))
    assert section(page).count("Moved from 6 March to 9 March") == 60
