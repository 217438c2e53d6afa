"""The job page built around what to do next: the header's facts, the one or two actions the
situation calls for as its primary buttons (their forms open), every other action one click away
(a closed disclosure), each section with its anchor."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.models import Contact, Customer, Job, Pipeline
from crm.services.jobs import job_create
from crm.services.questions import question_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)


def make_job(customer: Customer, pipeline: Pipeline, owner: User, **kwargs) -> Job:
    return job_create(
        customer=customer,
        pipeline=pipeline,
        owner=owner,
        title="Heat pump",
        actor=owner,
        notify_customer=False,
        not_told_reason="Test.",
        **kwargs,
    )


def page(staff: Client, job: Job) -> str:
    return staff.get(reverse("crm:job", args=[job.public_id])).content.decode()


def primary(html: str) -> list[str]:
    found = re.search(r'data-next-actions="([^"]*)"', html)
    return found.group(1).split() if found else []


def is_open(html: str, anchor: str) -> bool:
    tag = re.search(rf'<details class="card mb-2 job-action" id="{anchor}"( open)?>', html)
    assert tag is not None, anchor
    return bool(tag.group(1))


def test_an_ordinary_job_offers_to_move_it_on(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    job = make_job(customer, installation, bob)
    html = page(staff, job)
    assert primary(html) == ["advance"]
    assert 'href="#action-advance">Move to “Proposal sent”</a>' in html
    assert is_open(html, "action-advance")
    for other in ("action-move", "action-message", "action-call", "action-status", "log-request"):
        assert not is_open(html, other), other
    # The header's facts: the next promise and its date, who hears about it and how.
    assert "Next promise" in html and "Proposal sent — Thu 5 Mar 18:00" in html
    assert 'Marie Dupont <span class="text-body-secondary">(Email, French)</span>' in html
    for anchor in ("timeline", "promises", "visits", "files", "messages", "history", "actions"):
        assert f'id="{anchor}"' in html and f'href="#{anchor}"' in html


def test_a_late_job_offers_a_new_date_told_now_first(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    job = make_job(customer, installation, bob, start_date=date(2026, 2, 2))  # its first dates have passed
    html = page(staff, job)
    assert primary(html) == ["new_date", "advance"]
    broken = job.commitments.filter(state__in=["open", "broken"]).order_by("due_at").first()
    assert (
        f'href="{reverse("crm:commitment_move", args=[job.public_id, broken.pk])}">New date, tell them now</a>' in html
    )
    assert is_open(html, "action-move")


def test_a_waiting_question_comes_first(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    job = make_job(customer, installation, bob)
    question_create(job=job, contact=contact, body="When do you come?", source="portal")
    html = page(staff, job)
    assert primary(html)[0] == "answer"
    assert 'href="#questions">Answer the waiting question</a>' in html
    assert 'id="questions"' in html


def test_a_closed_job_offers_nothing_to_move(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    job = make_job(customer, installation, bob)
    staff.post(
        reverse("crm:job_change_status", args=[job.public_id]),
        {"status-action": "cancel", "status-reason": "Customer moved away"},
    )
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert primary(page(staff, job)) == []


def test_a_form_with_errors_stays_open(
    staff: Client, customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    job = make_job(customer, installation, bob)
    response = staff.post(reverse("crm:job_log_call", args=[job.public_id]), {})
    assert response.status_code == 400
    html = response.content.decode()
    assert is_open(html, "action-call")
    assert not is_open(html, "action-message")
