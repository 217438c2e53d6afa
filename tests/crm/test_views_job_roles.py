"""The job page: who answers for the customer during each stage, and handing the job over."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.models import Job, JobEvent, JobRole, Message, PipelineRole, StageTemplate

pytestmark = pytest.mark.django_db


@pytest.fixture
def chloe(db) -> User:
    return User.objects.create_user(
        "chloe", "chloe@example.com", "pw", first_name="Chloé", last_name="Bernard", is_staff=True
    )


@pytest.fixture
def coordinator(live_job: Job) -> PipelineRole:
    role = PipelineRole.objects.create(pipeline=live_job.pipeline, name="Installation coordinator")
    StageTemplate.objects.filter(pipeline=live_job.pipeline, name__in=["Installation scheduled", "Installed"]).update(
        role=role
    )
    JobRole.objects.create(job=live_job, role=role, holder=live_job.owner)
    return role


def page(job: Job) -> str:
    return reverse("crm:job", args=[job.public_id])


def test_a_manager_names_who_answers_for_later_stages(
    client: Client, alice: User, chloe: User, live_job: Job, coordinator: PipelineRole
) -> None:
    client.force_login(alice)
    html = client.get(page(live_job)).content.decode()
    assert "Who answers for the customer" in html
    assert "Chloé Bernard" in html  # people are offered by their full names

    response = client.post(
        reverse("crm:job_roles", args=[live_job.public_id]), {f"roles-role_{coordinator.pk}": chloe.pk}
    )

    assert response.status_code == 302
    assert JobRole.objects.get(job=live_job, role=coordinator).holder == chloe
    assert live_job.events.filter(kind=JobEvent.Kind.ROLE_CHANGED).exists()
    live_job.refresh_from_db()
    assert live_job.owner.username == "bob"  # the current stage names no role: nothing changes yet


def test_only_a_manager_changes_who_answers(
    client: Client, bob: User, chloe: User, live_job: Job, coordinator: PipelineRole
) -> None:
    client.force_login(bob)
    response = client.post(
        reverse("crm:job_roles", args=[live_job.public_id]), {f"roles-role_{coordinator.pk}": chloe.pk}
    )
    assert response.status_code == 403
    assert JobRole.objects.get(job=live_job, role=coordinator).holder == bob


def test_handing_the_job_over_tells_the_customer_unless_asked_not_to(
    client: Client, alice: User, chloe: User, live_job: Job
) -> None:
    client.force_login(alice)
    data = {"owner-owner": chloe.pk, "owner-reason": "Bob is on leave"}

    client.post(reverse("crm:job_reassign", args=[live_job.public_id]), {**data, "owner-tell_customer": "on"})

    [told] = Message.objects.filter(job=live_job, kind=Message.Kind.CONTACT_CHANGED)
    assert "Chloé Bernard" in told.body_text
    [alert] = Message.objects.filter(kind=Message.Kind.STAFF_ALERT, staff=chloe)
    assert live_job.reference in alert.subject

    client.post(reverse("crm:job_reassign", args=[live_job.public_id]), {"owner-owner": alice.pk})
    assert Message.objects.filter(job=live_job, kind=Message.Kind.CONTACT_CHANGED).count() == 1
    live_job.refresh_from_db()
    assert live_job.owner == alice
