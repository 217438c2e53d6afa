"""Home: "Needs attention", most urgent first, scoped to my jobs or the whole team."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User
from django.db.models import Q
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm import selectors
from crm.models import Commitment, Contact, Customer, Job, Message, Pipeline, Question, StageTemplate
from crm.services.jobs import job_advance, job_create
from crm.services.questions import question_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)


def make_job(customer: Customer, pipeline: Pipeline, owner: User, title: str = "Heat pump", **kwargs) -> Job:
    return job_create(customer=customer, pipeline=pipeline, owner=owner, title=title, actor=owner, **kwargs)


def stage_named(job: Job, name: str) -> StageTemplate:
    return job.pipeline.stages.get(name=name)


def section(response, key: str):
    return next(s for s in response.context["sections"] if s.key == key)


def message(job: Job, contact: Contact, **fields) -> Message:
    defaults = {
        "channel": Message.Channel.EMAIL,
        "kind": Message.Kind.FREE,
        "to_address": contact.email,
        "idempotency_key": f"t:{Message.objects.count()}",
    }
    return Message.objects.create(job=job, contact=contact, **{**defaults, **fields})


def test_it_needs_a_staff_user(client: Client, dana: User) -> None:
    assert client.get(reverse("crm:home")).status_code == 302
    client.force_login(dana)
    assert client.get(reverse("crm:home")).status_code == 403


def test_it_says_when_nothing_needs_attention(staff: Client) -> None:
    response = staff.get(reverse("crm:home"))
    assert response.status_code == 200
    assert all(s.count == 0 for s in response.context["sections"])
    assert "Nothing is running late." in response.content.decode()


def test_it_lists_what_needs_attention_most_urgent_first(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User, time_machine
) -> None:
    late = make_job(customer, installation, bob, "Late one", start_date=date(2026, 2, 2))
    fine = make_job(customer, installation, bob, "Fine one")
    message(fine, contact, status=Message.Status.BOUNCED, last_error="mailbox unknown")
    message(fine, contact, direction=Message.Direction.IN, status=Message.Status.RECEIVED, subject="A question")
    message(fine, contact, status=Message.Status.CALL_PENDING, channel=Message.Channel.PHONE, to_address="+33 1")
    question_create(job=fine, contact=contact, body="When?", source=Question.Source.PORTAL)

    response = staff.get(reverse("crm:home"))
    keys = [s.key for s in response.context["sections"]]
    assert keys[:9] == ["unhappy", "broken", "at_risk", "untold", "failed", "questions", "replies", "calls", "late"]
    assert [j.pk for j in section(response, "late").rows] == [late.pk]
    assert section(response, "failed").count == 1
    assert section(response, "questions").count == 1
    assert section(response, "replies").count == 1
    assert section(response, "calls").count == 1
    body = response.content.decode()
    assert "Fix and resend" in body
    # One name for one action wherever it is offered: late, slipping or broken.
    assert "New date, tell them now" in body and "#action-move" in body
    # The navigation counts the same things.
    # The late job's passed stage dates are broken promises (3: proposal, order, scheduling),
    # listed once, by the first, with "+2 more"; its "Installed" date, due tonight, is about to slip.
    assert [(c.title, c.job_rows) for c in section(response, "broken").rows] == [("Proposal sent", 3)]
    assert "+2 more promises" in body
    assert [c.title for c in section(response, "at_risk").rows] == ["Installed"]
    assert response.context["attention_counts"]["total"] == 5 + 3 + 1


def test_it_lists_milestones_due_within_two_business_days(
    staff: Client, customer: Customer, installation: Pipeline, bob: User, time_machine
) -> None:
    job = make_job(customer, installation, bob)  # "Proposal sent" planned Thursday 5 March
    assert section(staff.get(reverse("crm:home")), "due_soon").count == 0
    time_machine.move_to("2026-03-03 10:00:00+01:00", tick=False)
    rows = section(staff.get(reverse("crm:home")), "due_soon").rows
    assert [(m.job_id, m.stage.name) for m in rows] == [(job.pk, "Proposal sent")]


def test_it_lists_jobs_left_without_news(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User, time_machine
) -> None:
    quiet = make_job(customer, installation, bob, "Quiet")
    chatty = make_job(customer, installation, bob, "Chatty")
    time_machine.move_to("2026-03-12 10:00:00+01:00", tick=False)  # 10 days later; silence_days = 7
    message(chatty, contact, status=Message.Status.SENT, created_at=timezone.now() - timedelta(days=1))
    rows = section(staff.get(reverse("crm:home")), "silent").rows
    assert [j.pk for j in rows] == [quiet.pk]


def test_it_shows_only_my_jobs_unless_asked_for_the_team(
    staff: Client, customer: Customer, installation: Pipeline, charlie: User
) -> None:
    theirs = make_job(customer, installation, charlie, start_date=date(2026, 2, 2))
    assert section(staff.get(reverse("crm:home")), "late").count == 0
    team = section(staff.get(reverse("crm:home"), {"scope": "team"}), "late")
    assert [j.pk for j in team.rows] == [theirs.pk]


def test_it_keeps_its_queries_constant(
    staff: Client,
    customer: Customer,
    contact: Contact,
    installation: Pipeline,
    bob: User,
    django_assert_max_num_queries,
) -> None:
    def grow(n: int) -> None:
        for i in range(n):
            job = make_job(customer, installation, bob, f"Job {i}", start_date=date(2026, 2, 2))
            # Reached late without telling: the later dates move untold.
            job_advance(job=job, to_stage=stage_named(job, "Proposal sent"), actor=bob, notify_customer=False)
            message(job, contact, status=Message.Status.FAILED)
            message(job, contact, direction=Message.Direction.IN, status=Message.Status.RECEIVED)

    grow(2)
    with django_assert_max_num_queries(12) as small:
        staff.get(reverse("crm:home"))
    grow(18)
    with django_assert_max_num_queries(12) as large:
        staff.get(reverse("crm:home"))
    assert len(large.captured_queries) == len(small.captured_queries)


def test_it_offers_to_tell_the_customer_every_date_moved_without_telling_them(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    # Started 2 February: "Proposal sent" (5 February) is reached on 2 March, a month late,
    # and nobody tells the customer: Order confirmed, Installation scheduled and Installed move.
    job = make_job(customer, installation, bob, "Late one", start_date=date(2026, 2, 2))
    job_advance(job=job, to_stage=stage_named(job, "Proposal sent"), actor=bob, notify_customer=False)
    home = reverse("crm:home")

    response = staff.get(home)
    [row] = section(response, "untold").rows
    assert (row, row.untold_count, row.untold_stage) == (job, 3, "Order confirmed")
    assert "Tell them the 3 new dates" in response.content.decode()

    response = staff.post(reverse("crm:dates_tell", args=[job.public_id]), {"next": home})
    assert response.status_code == 302 and response["Location"] == home
    [told] = Message.objects.filter(job=job, kind=Message.Kind.DATE_MOVED)
    for name in ("Order confirmed", "Installation scheduled", "Installed"):
        assert name in told.body_text
    assert section(staff.get(home), "untold").rows == []

    # A second click (another tab) says so and sends nothing.
    response = staff.post(reverse("crm:dates_tell", args=[job.public_id]), {"next": "https://evil.example/"})
    assert response["Location"] == job.get_absolute_url()
    assert Message.objects.filter(job=job, kind=Message.Kind.DATE_MOVED).count() == 1


def test_the_lists_of_one_query_each_keep_their_own_order_and_length(
    customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    """selectors.firsts_of_each: each list its own first rows in its own order; a row in two
    lists is in both."""
    from datetime import datetime

    from django.db.models import Q

    from crm.selectors import firsts_of_each

    job = make_job(customer, installation, bob)
    at = [timezone.make_aware(datetime(2026, 3, 1, hour)) for hour in range(6)]
    made = [message(job, contact, subject=f"m{i}", created_at=moment) for i, moment in enumerate(at)]
    lists = firsts_of_each(
        Message.objects.filter(job=job),
        {
            "even_newest": (Q(subject__in=["m0", "m2", "m4"]), ("-created_at", "pk")),
            "low_oldest": (Q(subject__in=["m0", "m1", "m2", "m3"]), ("created_at", "pk")),
            "none": (Q(subject="nobody"), ("created_at",)),
        },
        limit=2,
    )
    assert [m.subject for m in lists["even_newest"]] == ["m4", "m2"]
    assert [m.subject for m in lists["low_oldest"]] == ["m0", "m1"]
    assert lists["none"] == []
    assert {m.pk for m in made} >= {m.pk for rows in lists.values() for m in rows}


def test_a_managers_team_dashboard_keeps_its_queries_constant_too(
    client: Client,
    customer: Customer,
    contact: Contact,
    installation: Pipeline,
    bob: User,
    alice: User,
    django_assert_max_num_queries,
) -> None:
    client.force_login(alice)
    url = reverse("crm:home") + "?scope=team"
    with django_assert_max_num_queries(12) as small:
        assert client.get(url).status_code == 200
    for i in range(10):
        job = make_job(customer, installation, bob, f"Job {i}", start_date=date(2026, 2, 2))
        message(job, contact, status=Message.Status.FAILED)
        message(job, contact, direction=Message.Direction.IN, status=Message.Status.RECEIVED)
        message(job, contact, status=Message.Status.CALL_PENDING)
    with django_assert_max_num_queries(12) as large:
        response = client.get(url)
    assert len(large.captured_queries) == len(small.captured_queries)
    assert section(response, "failed").count == 10 and section(response, "calls").count == 10


def test_each_list_of_promises_names_a_job_once_by_its_most_urgent_promise(
    staff: Client, customer: Customer, installation: Pipeline, bob: User
) -> None:
    later = make_job(customer, installation, bob, "Later", start_date=date(2026, 2, 2))
    earlier = make_job(customer, installation, bob, "Earlier", start_date=date(2026, 1, 26))
    response = staff.get(reverse("crm:home"))
    rows = section(response, "broken").rows
    assert [(c.job_id, c.title) for c in rows] == [(earlier.pk, "Proposal sent"), (later.pk, "Proposal sent")]
    broken_now = selectors.broken_promise(timezone.now())
    for row in rows:
        assert row.job_rows == Commitment.objects.filter(broken_now, job_id=row.job_id).exclude(kind="recovery").count()
    assert rows[0].job_rows > rows[1].job_rows > 1
    body = response.content.decode()
    assert f"+{rows[0].job_rows - 1} more promises" in body and f"+{rows[1].job_rows - 1} more promises" in body
    # At most the limit of jobs, the most urgent first.
    firsts = selectors.first_per_job(Commitment.objects.filter(broken_now), ("due_at", "pk"), 1)
    assert [c.job_id for c in firsts] == [earlier.pk]


def test_a_job_with_two_questions_or_two_replies_is_listed_once_with_how_many_more(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User, time_machine
) -> None:
    chatty = make_job(customer, installation, bob, "Chatty")
    quiet = make_job(customer, installation, bob, "Quiet")
    for n, job in enumerate((chatty, chatty, quiet)):
        message(job, contact, direction=Message.Direction.IN, status=Message.Status.RECEIVED, subject=f"Reply {n}")
        question_create(job=job, contact=contact, body=f"Question {n}?", source=Question.Source.PORTAL)
    response = staff.get(reverse("crm:home"))
    replies, questions = section(response, "replies"), section(response, "questions")
    # Each job once, by its oldest reply waiting; the rest are on the job page.
    assert [(m.job_id, m.subject, m.job_rows) for m in replies.rows] == [
        (chatty.pk, "Reply 0", 2),
        (quiet.pk, "Reply 2", 1),
    ]
    assert [(q.job_id, q.job_rows) for q in questions.rows] == [(chatty.pk, 2), (quiet.pk, 1)]
    body = response.content.decode()
    assert "+1 more question" in body and "+1 more reply" in body


def test_a_burst_of_failures_is_one_entry_and_leaves_room_for_the_next_job(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    """30 messages of one job that did not get through (a provider's bad hour) name that job once,
    by its latest failure, "+29 more"; the job whose one failure is older is still listed."""
    burst, other = make_job(customer, installation, bob, "Burst"), make_job(customer, installation, bob, "Other")
    now = timezone.now()
    message(other, contact, status=Message.Status.BOUNCED, failed_at=now - timedelta(hours=3), subject="Older")
    for n in range(30):
        message(
            burst, contact, status=Message.Status.FAILED, failed_at=now - timedelta(minutes=60 - n), subject=f"F{n}"
        )
    for n in range(3):
        message(other, contact, status=Message.Status.CALL_PENDING, created_at=now - timedelta(minutes=n))
    response = staff.get(reverse("crm:home"))
    failed, calls = section(response, "failed"), section(response, "calls")
    assert [(m.job_id, m.subject, m.job_rows) for m in failed.rows] == [(burst.pk, "F29", 30), (other.pk, "Older", 1)]
    assert [(m.job_id, m.job_rows) for m in calls.rows] == [(other.pk, 3)]
    body = response.content.decode()
    assert "+29 more messages not delivered" in body and "+2 more calls to make" in body
    # The first jobs only, the most recent failure first; the other lists of the query unchanged.
    lists = selectors.firsts_of_each(
        Message.objects.all(),
        {
            "failed": (Q(status__in=["failed", "bounced"]), ("-failed_at", "-pk")),
            "each": (Q(status__in=["failed", "bounced"]), ("failed_at", "pk")),
        },
        limit=1,
        per_job=("failed",),
    )
    assert [(m.job_id, m.job_rows) for m in lists["failed"]] == [(burst.pk, 30)]
    assert [m.subject for m in lists["each"]] == ["Older"]
