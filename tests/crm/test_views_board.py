"""The board: cards with what to know at a glance, and a card moved to another column — the job
page's own move, previewed, confirmed, refused on a stale board."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.models import Customer, Job, Message, Pipeline
from crm.services.jobs import job_advance, job_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)


def stage(job: Job, name: str):
    return job.pipeline.stages.get(name=name)


def move_url(job: Job) -> str:
    return reverse("crm:job_board_move", args=[job.public_id])


def test_a_card_shows_reference_customer_title_next_date_and_lateness(
    staff: Client, live_job: Job, time_machine
) -> None:
    body = staff.get(reverse("crm:job_board")).content.decode()
    assert live_job.reference in body and "Dupont household" in body and "Heat pump" in body
    assert "Next: Thu 5 Mar" in body and ">late<" not in body
    time_machine.move_to("2026-03-10 10:00:00+01:00", tick=False)
    late = staff.get(reverse("crm:job_board")).content.decode()
    assert ">late<" in late and 'text-danger fw-semibold">Next: Thu 5 Mar' in late
    # Each card's own "Move to" menu: every other stage, the next one chosen.
    assert f'action="{move_url(live_job)}"' in body
    assert '<option value="{}" selected>Proposal sent</option>'.format(stage(live_job, "Proposal sent").pk) in body


def test_the_board_keeps_its_queries_constant(
    staff: Client, customer: Customer, installation: Pipeline, bob: User, django_assert_max_num_queries
) -> None:
    def make(n: int) -> None:
        for i in range(n):
            job_create(
                customer=customer,
                pipeline=installation,
                owner=bob,
                title=f"Job {i}",
                actor=bob,
                notify_customer=False,
                not_told_reason="Test.",
            )

    make(2)
    with django_assert_max_num_queries(12) as small:
        staff.get(reverse("crm:job_board"))
    make(20)
    with django_assert_max_num_queries(12) as large:
        staff.get(reverse("crm:job_board"))
    assert len(large.captured_queries) == len(small.captured_queries)


def test_a_move_shows_what_the_customer_will_be_told_before_anything_moves(staff: Client, live_job: Job) -> None:
    proposal = stage(live_job, "Proposal sent")
    response = staff.get(
        move_url(live_job),
        {"to": proposal.pk, "expected": live_job.current_stage_id, "pipeline": live_job.pipeline_id, "owner": "all"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert f"<title>Move {live_job.reference} to “Proposal sent”" in body
    assert "What 1 contact will receive:" in body and "Marie Dupont" in body
    live_job.refresh_from_db()
    assert live_job.current_stage.name == "Request received"
    assert not Message.objects.filter(job=live_job).exists()
    assert 'name="owner" value="all"' in body


def test_confirming_moves_the_job_tells_the_customer_and_returns_to_the_board(staff: Client, live_job: Job) -> None:
    proposal = stage(live_job, "Proposal sent")
    response = staff.post(
        move_url(live_job),
        {
            "advance-to_stage": proposal.pk,
            "advance-expected_stage": live_job.current_stage_id,
            "advance-notify_customer": "on",
            "advance-note": "See you soon.",
            "pipeline": live_job.pipeline_id,
            "owner": "all",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('crm:job_board')}?pipeline={live_job.pipeline_id}&owner=all"
    live_job.refresh_from_db()
    assert live_job.current_stage == proposal
    sent = Message.objects.get(job=live_job)
    assert "See you soon." in sent.body_text
    board = staff.get(response["Location"]).content.decode()
    assert f"{live_job.reference} is now at “Proposal sent”." in board


def test_without_telling_nothing_is_sent(staff: Client, live_job: Job) -> None:
    proposal = stage(live_job, "Proposal sent")
    response = staff.post(
        move_url(live_job), {"advance-to_stage": proposal.pk, "advance-expected_stage": live_job.current_stage_id}
    )
    assert response.status_code == 302
    assert not Message.objects.filter(job=live_job).exists()


def test_a_stale_board_is_told_who_moved_the_job(staff: Client, live_job: Job, charlie: User) -> None:
    seen_at = live_job.current_stage_id
    job_advance(job=live_job, to_stage=stage(live_job, "Proposal sent"), actor=charlie, notify_customer=False)
    order = stage(live_job, "Order confirmed")
    page = staff.get(move_url(live_job), {"to": order.pk, "expected": seen_at})
    assert page.status_code == 409
    assert f"moved job {live_job.reference} to “Proposal sent” in the meantime" in page.content.decode()
    response = staff.post(move_url(live_job), {"advance-to_stage": order.pk, "advance-expected_stage": seen_at})
    assert response.status_code == 409
    assert "in the meantime" in response.content.decode()
    live_job.refresh_from_db()
    assert live_job.current_stage.name == "Proposal sent"


def test_moving_back_asks_why(staff: Client, live_job: Job, bob: User) -> None:
    job_advance(job=live_job, to_stage=stage(live_job, "Proposal sent"), actor=bob, notify_customer=False)
    live_job.refresh_from_db()
    received = stage(live_job, "Request received")
    page = staff.get(move_url(live_job), {"to": received.pk, "expected": live_job.current_stage_id})
    assert 'name="advance-backwards_reason"' in page.content.decode()
    refused = staff.post(
        move_url(live_job), {"advance-to_stage": received.pk, "advance-expected_stage": live_job.current_stage_id}
    )
    assert refused.status_code == 400
    moved = staff.post(
        move_url(live_job),
        {
            "advance-to_stage": received.pk,
            "advance-expected_stage": live_job.current_stage_id,
            "advance-backwards_reason": "Quote redone",
        },
    )
    assert moved.status_code == 302
    live_job.refresh_from_db()
    assert live_job.current_stage == received


@pytest.mark.parametrize("params", [{}, {"to": "x", "expected": "\x00"}, {"to": "99999999", "expected": "-1"}])
def test_odd_input_is_a_clear_page_not_a_500(staff: Client, live_job: Job, params: dict) -> None:
    response = staff.get(move_url(live_job), params)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Select a valid choice." in body or "This field is required." in body
    assert "What 1 contact will receive" not in body


def test_only_staff_may_move_a_card(client: Client, dana: User, live_job: Job) -> None:
    assert client.post(move_url(live_job), {}).status_code == 302
    client.force_login(dana)
    assert client.post(move_url(live_job), {}).status_code == 403
