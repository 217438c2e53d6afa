"""The portal's world: the Dupont household (Marie, who reads French, and John, who reads
English and lives in London) with a heat pump job owned by bob; Acme Telecom is the stranger,
with its own contact and job.

Time is frozen on Monday 2 March 2026, 10:00 in Paris, the day the job starts. Its plan, in
business days: Request received Mon 2 March, Proposal sent Thu 5, Order confirmed Thu 12,
Installation scheduled Mon 16, Installed Mon 30 March, then the internal Follow-up.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.test import Client

from crm import ratelimit
from crm.links import portal_url
from crm.models import Contact, Customer, Job, Pipeline, StaffProfile, StageTemplate
from crm.services.jobs import job_advance, job_create

PARIS = ZoneInfo("Europe/Paris")
MONDAY_MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(MONDAY_MORNING, tick=False)


@pytest.fixture(autouse=True)
def _own_rate_limits(monkeypatch) -> None:
    # The cache may be a Redis shared by parallel test runs: each test counts in its own keys.
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"portal-rl-test-{uuid.uuid4().hex}")


@pytest.fixture
def john(customer: Customer) -> Contact:
    return Contact.objects.create(
        customer=customer,
        name="John Smith",
        email="john@example.com",
        phone="+447400123456",
        language="en",
        time_zone="Europe/London",
    )


@pytest.fixture
def bob_profile(bob: User) -> StaffProfile:
    return StaffProfile.objects.create(user=bob, phone="+33 1 99 00 12 02", job_title="Project manager")


@pytest.fixture
def job(customer: Customer, contact: Contact, john: Contact, installation: Pipeline, bob: User, bob_profile) -> Job:
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Heat pump installation",
        actor=bob,
        contacts=[contact, john],
        start_date=date(2026, 3, 2),
    )


@pytest.fixture
def stranger(other_customer: Customer) -> Contact:
    return Contact.objects.create(
        customer=other_customer, name="Olga Stranger", email="olga@acme.example", language="en"
    )


@pytest.fixture
def stranger_job(other_customer: Customer, stranger: Contact, installation: Pipeline, alice: User) -> Job:
    return job_create(customer=other_customer, pipeline=installation, owner=alice, title="Acme cabling", actor=alice)


def stage(job: Job, name: str) -> StageTemplate:
    return job.pipeline.stages.get(name=name)


def advance(job: Job, to: str, **kwargs: Any) -> Job:
    return job_advance(job=job, to_stage=stage(job, to), actor=job.owner, **kwargs)


def sign_in(client: Client, contact: Contact, job: Job | None = None) -> Client:
    response = client.get(portal_url(contact, job))
    assert response.status_code == 302, response
    return client


@pytest.fixture
def john_client(client: Client, john: Contact) -> Client:
    return sign_in(client, john)


@pytest.fixture
def marie_client(client: Client, contact: Contact) -> Client:
    return sign_in(client, contact)
